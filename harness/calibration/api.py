"""`hil calibrate`: collect QEMU per-layer counts, fit the cost model, write it beside the profile."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.boards import Board
from harness.calibration.collect import CalibrationError, count_model, samples_for, whole_cycles
from harness.calibration.fit import Coefficients, FitResult, LayerSample, ModelError, fit, model_errors
from harness.calibration_file import ModelRecord, link_profile, render
from harness.units import board_cpi

log = logging.getLogger(__name__)


@dataclass
class Calibration:
    board: Board
    cpi: float
    cpi_source: str
    records: list[dict[str, Any]]  # as save_profiles writes them
    samples: list[LayerSample]
    #: cycles of one whole inference per model (QEMU's count x CPI)
    totals: dict[str, float]
    result: FitResult
    #: the held-out models' errors, prior and fitted (they are not in the fit)
    held_before: list[ModelError] = field(default_factory=list)
    held_after: list[ModelError] = field(default_factory=list)

    def model_records(self) -> list[ModelRecord]:
        before = {e.model: e for e in self.result.before + self.held_before}
        after = {e.model: e for e in self.result.after + self.held_after}
        out = []
        for r in self.records:
            name = r["name"]
            out.append(ModelRecord(
                name, r["sha256"], len(r["layers"]), int(round(self.totals[name] / self.cpi)),
                before[name].median_layer_error, after[name].median_layer_error,
                before[name].total_error, after[name].total_error, bool(r.get("held_out", False)),
            ))  # fmt: skip
        return out


def prior_of(board: Board) -> Coefficients:
    """The profile's coefficients before calibration (its hand-written [cost_model] table)."""
    cm = board.raw.get("cost_model", {})
    return Coefficients(
        {k: float(v) for k, v in cm.get("cycles_per_mac", {}).items()},
        {k: float(v) for k, v in cm.get("cycles_per_output_element", {}).items()},
        float(cm.get("default_cycles_per_output_element", 10.0)),
        float(cm.get("per_op_overhead_cycles", 0.0)),
    )


def require_cpi(board: Board) -> tuple[float, str]:
    cpi, src = board_cpi(board)
    if cpi is None:
        raise CalibrationError(
            f"board {board.id} has no [cost_model] cpi figure: QEMU's Cortex-M4 instruction counts "
            f"say nothing about a {board.core} without one"
        )
    return cpi, src


def collect(board: Board, models: Sequence[tuple[str, Path]],
            held_out: Sequence[tuple[str, Path]] = ()) -> list[dict[str, Any]]:
    """One QEMU inference per model, as layer-count records (``held_out`` ones marked so)."""
    records = []
    for (name, path), hold in [(m, False) for m in models] + [(m, True) for m in held_out]:
        log.info("counting instructions of %s in QEMU", name)
        record = count_model(board, name, path)
        if hold:
            record["held_out"] = True
        records.append(record)
    return records


def calibrate(board: Board, records: list[dict[str, Any]]) -> Calibration:
    """Fit the board's cost model to the layer counts in ``records``.

    Records marked ``held_out`` are left out of the fit and only measured against it: the
    error on a model the fit has not seen is the figure that carries over to new models.
    """
    cpi, src = require_cpi(board)
    fitted = [r for r in records if not r.get("held_out")]
    if not fitted:
        raise CalibrationError("no models to calibrate on")
    samples = [s for r in fitted for s in samples_for(r, cpi)]
    held = [s for r in records if r.get("held_out") for s in samples_for(r, cpi)]
    totals = {str(r["name"]): whole_cycles(r, cpi) for r in records}
    prior = prior_of(board)
    result = fit(samples, prior, totals)
    return Calibration(board, cpi, src, records, samples, totals, result,
                       model_errors(held, prior, totals), model_errors(held, result.coefficients, totals))


def write(cal: Calibration, qemu: str = "qemu-system-arm -icount shift=0") -> Path:
    """Write ``boards/calibration/<id>.toml`` and point the profile at it."""
    board = cal.board
    folder = board.path.parent / "calibration"
    folder.mkdir(exist_ok=True)
    target = folder / f"{board.id}.toml"
    after = [e.median_layer_error for e in cal.result.after]
    before = [e.median_layer_error for e in cal.result.before]
    whole = [e.total_error for e in cal.result.after]
    header = {
        "method": ("non-negative least squares on per-layer relative error, with each model's "
                   "whole inference pinned (harness/calibration/fit.py)"),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "qemu": qemu,
        "cpi": cal.cpi,
        "cpi_source": cal.cpi_source,
        "layers": len(cal.samples),
        "median_layer_error_before": sorted(before)[len(before) // 2],
        "median_layer_error_after": sorted(after)[len(after) // 2],
        "worst_whole_inference_error_after": max(whole),
        "worst_whole_inference_error_held_out": max((e.total_error for e in cal.held_after), default=None),
        "per_op_overhead_cycles": cal.result.coefficients.per_op_overhead_cycles,
    }
    comment = (f"Cost model of {board.id}, fitted by `hil calibrate --board {board.id}`; rerun it "
               "rather than editing.\nCycles = QEMU instructions x cpi; the prior figures and their "
               f"basis stay in {board.path.name}.")
    coeffs = cal.result.coefficients
    fitted_ops = {s.op for s in cal.samples}
    per_mac = {k: v for k, v in coeffs.cycles_per_mac.items() if k in fitted_ops}
    per_out = {k: v for k, v in coeffs.cycles_per_output_element.items() if k in fitted_ops}
    target.write_text(render(header, per_mac, per_out, cal.model_records(), comment), encoding="utf-8")
    link_profile(board.path, f"calibration/{target.name}")
    return target


def error_table(cal: Calibration) -> list[str]:
    """Lines: per model, median layer error and whole-inference error, before and after
    (held-out models, not in the fit, last and marked)."""
    before = {e.model: e for e in cal.result.before + cal.held_before}
    lines = [f"{'model':<40} {'layers':>6} {'cycles (QEMU x CPI)':>20} "
             f"{'median layer err before':>24} {'after':>7} {'total err before':>17} {'after':>7}"]
    for e in cal.result.after + cal.held_after:
        b = before[e.model]
        name = f"{e.model} (held out)" if e in cal.held_after else e.model
        lines.append(f"{name:<40} {e.layers:>6} {e.derived_cycles:>20,.0f} "
                     f"{100 * b.median_layer_error:>23.1f}% {100 * e.median_layer_error:>6.1f}% "
                     f"{100 * b.total_error:>16.1f}% {100 * e.total_error:>6.1f}%")
    return lines
