"""`hil calibrate`: collect QEMU per-layer counts, fit the cost model, write it beside the profile."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.boards import Board
from harness.calibration.collect import CalibrationError, count_model, samples_for, whole_cycles
from harness.calibration.fit import Coefficients, FitResult, LayerSample, fit
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

    def model_records(self) -> list[ModelRecord]:
        before = {e.model: e for e in self.result.before}
        after = {e.model: e for e in self.result.after}
        out = []
        for r in self.records:
            name = r["name"]
            out.append(ModelRecord(
                name, r["sha256"], len(r["layers"]), int(round(self.totals[name] / self.cpi)),
                before[name].median_layer_error, after[name].median_layer_error,
                before[name].total_error, after[name].total_error,
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


def collect(board: Board, models: Sequence[tuple[str, Path]]) -> list[dict[str, Any]]:
    """One QEMU inference per model, as layer-count records."""
    records = []
    for name, path in models:
        log.info("counting instructions of %s in QEMU", name)
        records.append(count_model(board, name, path))
    return records


def calibrate(board: Board, records: list[dict[str, Any]]) -> Calibration:
    """Fit the board's cost model to the layer counts in ``records``."""
    cpi, src = require_cpi(board)
    if not records:
        raise CalibrationError("no models to calibrate on")
    samples = [s for r in records for s in samples_for(r, cpi)]
    totals = {str(r["name"]): whole_cycles(r, cpi) for r in records}
    return Calibration(board, cpi, src, records, samples, totals, fit(samples, prior_of(board), totals))


def write(cal: Calibration, qemu: str = "qemu-system-arm -icount shift=0") -> Path:
    """Write ``boards/calibration/<id>.toml`` and point the profile at it."""
    board = cal.board
    folder = board.path.parent / "calibration"
    folder.mkdir(exist_ok=True)
    target = folder / f"{board.id}.toml"
    after = [e.median_layer_error for e in cal.result.after]
    before = [e.median_layer_error for e in cal.result.before]
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
    """Lines: per model, median layer error and whole-inference error, before and after."""
    before = {e.model: e for e in cal.result.before}
    lines = [f"{'model':<34} {'layers':>6} {'cycles (QEMU x CPI)':>20} "
             f"{'median layer err before':>24} {'after':>7} {'total err before':>17} {'after':>7}"]
    for e in cal.result.after:
        b = before[e.model]
        lines.append(f"{e.model:<34} {e.layers:>6} {e.derived_cycles:>20,.0f} "
                     f"{100 * b.median_layer_error:>23.1f}% {100 * e.median_layer_error:>6.1f}% "
                     f"{100 * b.total_error:>16.1f}% {100 * e.total_error:>6.1f}%")
    return lines
