"""Fitting the sim's per-op cost coefficients to per-layer cycles derived from QEMU.

The sim estimates one op's cycles as

    MAC ops (conv, depthwise, fully connected):  a_op x MACs + b_op x output elements + c
    other ops:                                   b_op x output elements + c

(:meth:`harness.boards.CostModel.op_cycles`). The ``b_op`` term on MAC ops is the
per-output requantisation and loop set-up, which dominates the thin layers of small depth
multipliers; ``c`` is the interpreter's per-op overhead, shared by all ops.

The fit is a non-negative least-squares fit with two kinds of rows:

* one per layer, its *relative* error (the row divided by the layer's measured cycles),
  so that thin layers count as much as the few largest convolutions;
* one per model, the relative error of the whole inference (the sum of its layers'
  estimates against QEMU's count for one inference, which includes the interpreter's work
  between layers), weighted by ``TOTAL_WEIGHT`` x sqrt(layers).

Layer rows alone minimise the typical layer error but leave the sum free: on the MLPerf
VWW model that fit had a 3.2 % median layer error and a -7.5 % whole-inference error,
because relative errors of opposite sign on a few large layers do not cancel in cycles.
The whole inference is the figure the sim reports, so the model rows pin it; the layer
rows still decide how the cycles split between ops. Ops absent from the data keep the
profile's prior values.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from harness.boards import CostModel

MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
#: weight of a model's whole-inference row against one layer row (times sqrt(layers)):
#: large enough to bring the whole-inference error of the calibration models well under
#: 1 %, small enough to leave the per-layer split to the layer rows
TOTAL_WEIGHT = 10.0


@dataclass(frozen=True)
class LayerSample:
    """One layer of one model with the cycles QEMU's instruction count implies for it."""

    model: str
    index: int
    op: str
    macs: int
    output_elements: int
    cycles: float  # QEMU instructions x the board's CPI


@dataclass(frozen=True)
class Coefficients:
    """The cost model's free figures (see the module docstring for the formula)."""

    cycles_per_mac: dict[str, float]
    cycles_per_output_element: dict[str, float]
    default_cycles_per_output_element: float
    per_op_overhead_cycles: float

    @cached_property
    def cost_model(self) -> CostModel:
        """These figures as the sim's cost model, so that the fit and the sim share one formula."""
        return CostModel("fitted by hil calibrate", self.cycles_per_mac, self.cycles_per_output_element,
                         self.default_cycles_per_output_element, self.per_op_overhead_cycles)

    def op_cycles(self, op: str, macs: int, output_elements: int) -> float:
        return self.cost_model.op_cycles(op, macs, output_elements)


@dataclass(frozen=True)
class ModelError:
    """How far the cost model is from the QEMU-derived cycles on one model."""

    model: str
    layers: int
    median_layer_error: float  # median over layers of |estimate - derived| / derived
    total_error: float  # |sum of estimates - sum derived| / sum derived
    derived_cycles: float
    estimated_cycles: float


@dataclass
class FitResult:
    coefficients: Coefficients
    before: list[ModelError] = field(default_factory=list)
    after: list[ModelError] = field(default_factory=list)


def _is_mac(op: str, s: LayerSample) -> bool:
    return op in MAC_OPS and s.macs > 0


def fit(samples: Sequence[LayerSample], prior: Coefficients,
        totals: Mapping[str, float] | None = None) -> FitResult:
    """The non-negative fit of the coefficients to ``samples``, with errors before and after.

    ``totals``: cycles of one whole inference per model (QEMU's count x CPI); a model
    without one is pinned to the sum of its layers.
    """
    from scipy.optimize import nnls

    rows = [s for s in samples if s.cycles > 0]
    if not rows:
        raise ValueError("no layers with a positive cycle count to fit")
    by_model: dict[str, list[LayerSample]] = {}
    for s in rows:
        by_model.setdefault(s.model, []).append(s)
    whole = {m: (totals or {}).get(m) or sum(s.cycles for s in ls) for m, ls in by_model.items()}
    cols: list[tuple[str, str]] = []
    for s in rows:
        keys = [(s.op, "mac"), (s.op, "out")] if _is_mac(s.op, s) else [(s.op, "out")]
        cols.extend(k for k in keys if k not in cols)
    cols.append(("*", "overhead"))
    index = {k: i for i, k in enumerate(cols)}
    a = np.zeros((len(rows) + len(by_model), len(cols)))
    y = np.ones(len(rows) + len(by_model))
    for r, s in enumerate(rows):
        a[r] = _features(s, index) / s.cycles
    for r, (model, layers) in enumerate(by_model.items(), start=len(rows)):
        weight = TOTAL_WEIGHT * np.sqrt(len(layers))
        a[r] = sum(_features(s, index) for s in layers) * weight / whole[model]
        y[r] = weight
    scale = np.maximum(np.abs(a).max(axis=0), 1e-300)  # column scaling keeps NNLS well conditioned
    x, _ = nnls(a / scale, y, maxiter=50 * len(cols))
    x = x / scale
    per_mac = dict(prior.cycles_per_mac)
    per_out = dict(prior.cycles_per_output_element)
    for (op, kind), value in zip(cols, x, strict=True):
        if kind == "mac":
            per_mac[op] = float(value)
        elif kind == "out":
            per_out[op] = float(value)
    coeffs = Coefficients(per_mac, per_out, prior.default_cycles_per_output_element,
                          float(x[index[("*", "overhead")]]))
    return FitResult(coeffs, model_errors(rows, prior, whole), model_errors(rows, coeffs, whole))


def _features(s: LayerSample, index: dict[tuple[str, str], int]) -> np.ndarray:
    """The layer's row of the design matrix: MACs, output elements, 1 (per-op overhead)."""
    row = np.zeros(len(index))
    if _is_mac(s.op, s):
        row[index[(s.op, "mac")]] = s.macs
    row[index[(s.op, "out")]] = s.output_elements
    row[index[("*", "overhead")]] = 1.0
    return row


def model_errors(samples: Iterable[LayerSample], coeffs: Coefficients,
                 totals: Mapping[str, float] | None = None) -> list[ModelError]:
    """Per model: median relative layer error and the error of the whole inference.

    The whole inference is compared with ``totals[model]`` (QEMU's count for one
    inference x CPI) when given, else with the sum of the model's layers.
    """
    by_model: dict[str, list[LayerSample]] = {}
    for s in samples:
        if s.cycles > 0:
            by_model.setdefault(s.model, []).append(s)
    out = []
    for name, layers in by_model.items():
        est = [coeffs.op_cycles(s.op, s.macs, s.output_elements) for s in layers]
        rel = [abs(e - s.cycles) / s.cycles for e, s in zip(est, layers, strict=True)]
        derived = (totals or {}).get(name) or sum(s.cycles for s in layers)
        out.append(ModelError(name, len(layers), statistics.median(rel), abs(sum(est) - derived) / derived,
                              derived, sum(est)))
    return out
