"""The MLPerf Tiny runner's figures of an EEMBC run, beside the harness's own.

The official runner (mlcommons/tiny ``benchmark/runner/``) reports, in accuracy mode,
``Top 1%``: the share of files whose arg-max over the normalised scores is the label, and
``AUC`` on the normalised person score (main.py ``summarize_result``); in performance mode,
the median over 5 windows of ``N / (t1 - t0)`` from the two ``m-lap-us`` lap times of one
``infer N W``, each window meant to last at least 10 s (tests_performance.yaml runs
``loop 5: download, infer 20 5``; the runner warns when a window is shorter).

A harness EEMBC run has, per image, the same lap times over ``repeats`` timed runs. The
runner-style throughput here takes consecutive images' timed runs as windows of at least
10 s of device time each and the median of the first 5; a run with less than that gets
the figure over what it has and says the run is too short to be the runner's. The
harness's own figures are the per-image median latency and its inverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.stats import curves

#: tests_performance.yaml: 5 windows; the runner's minimum duration of one window.
RUNNER_WINDOWS = 5
RUNNER_WINDOW_S = 10.0


@dataclass(frozen=True)
class EembcFigures:
    """The runner's way and the harness's way of reading the same rows."""

    runner_top1: float | None  # percent, arg-max over normalised scores
    runner_auc: float | None
    runner_throughput: float | None  # median inf/s over the windows below
    windows: tuple[tuple[int, float], ...]  # (inferences, seconds) per window
    runner_valid: bool  # 5 windows of at least 10 s each
    harness_accuracy: float | None  # percent, at the run's threshold
    harness_latency_ms: float | None  # median per-image latency
    harness_throughput: float | None  # 1 / median latency
    note: str


def _windows(seconds_per_row: list[float], runs_per_row: int) -> list[tuple[int, float]]:
    """Consecutive rows grouped into windows of at least RUNNER_WINDOW_S of device time."""
    out: list[tuple[int, float]] = []
    n, t = 0, 0.0
    for s in seconds_per_row:
        n += runs_per_row
        t += s
        if t >= RUNNER_WINDOW_S:
            out.append((n, t))
            n, t = 0, 0.0
    if n and len(out) < RUNNER_WINDOWS:
        out.append((n, t))  # the short remainder counts only when nothing better exists
    return out[:RUNNER_WINDOWS]


def eembc_figures(manifest: dict[str, Any], columns: dict[str, np.ndarray]) -> EembcFigures | None:
    """The figures of an EEMBC run, or None for a run of another protocol."""
    if manifest.get("protocol") != "eembc":
        return None
    status = columns.get("status")
    n = len(next(iter(columns.values()))) if columns else 0
    ok = np.array([s == "ok" for s in status]) if status is not None else np.ones(n, bool)
    labels = np.asarray(columns.get("label", np.full(n, np.nan)), dtype=float)[ok]
    outputs = [o for o, k in zip(columns.get("output_f", [None] * n), ok, strict=False) if k]
    runner_top1 = runner_auc = None
    usable = [(lab, np.asarray(o, dtype=float)) for lab, o in zip(labels, outputs, strict=False)
              if o is not None and len(o) == 2 and not np.isnan(lab)]
    if usable:
        y = np.array([int(lab) for lab, _ in usable])
        probs = np.array([o / o.sum() if o.sum() > 0 else o for _, o in usable])
        runner_top1 = 100.0 * float(np.mean(np.argmax(probs, axis=1) == y))
        if 0 < y.sum() < len(y):
            runner_auc = curves(y, probs[:, 1]).roc_auc
    settings = manifest.get("settings") or {}
    repeats = int(settings.get("repeats") or 1)
    lat = np.asarray(columns.get("latency_us", np.full(n, np.nan)), dtype=float)[ok]
    lat = lat[~np.isnan(lat)]
    windows = _windows([float(v) * repeats / 1e6 for v in lat], repeats)
    rates = [k / t for k, t in windows if t > 0]
    valid = len(windows) == RUNNER_WINDOWS and all(t >= RUNNER_WINDOW_S for _, t in windows)
    total = float(lat.sum()) * repeats / 1e6
    if valid:
        note = (f"runner-style throughput: median of {RUNNER_WINDOWS} windows of at least "
                f"{RUNNER_WINDOW_S:g} s of device time each, as tests_performance.yaml asks")
    else:
        note = (f"run too short for the runner's performance figure: {total:.1f} s of timed "
                f"inference, the runner wants {RUNNER_WINDOWS} windows of at least {RUNNER_WINDOW_S:g} s "
                f"(raise --repeats or the image count); the figure shown is over "
                f"{len(windows)} shorter window(s)")
    metrics = manifest.get("metrics") or {}
    acc = metrics.get("accuracy")
    med = float(np.median(lat)) if len(lat) else None
    return EembcFigures(
        runner_top1=runner_top1,
        runner_auc=runner_auc,
        runner_throughput=float(np.median(rates)) if rates else None,
        windows=tuple(windows),
        runner_valid=valid,
        harness_accuracy=100.0 * float(acc) if isinstance(acc, int | float) else None,
        harness_latency_ms=med / 1000.0 if med else None,
        harness_throughput=1e6 / med if med else None,
        note=note,
    )
