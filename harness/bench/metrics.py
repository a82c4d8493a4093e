"""Metrics of one run, computed from its per-image rows.

Accuracy and the rates are over the rows with status "ok": an image the harness could not
measure (corrupt file, device error) is counted in ``n_error`` and listed, never scored as
right or wrong. Undefined figures (a rate with an empty denominator) are None, which the
manifest stores as JSON null, rather than NaN, which JSON cannot hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.stats import Confusion, confusion, wilson


def wilson_interval(successes: int, n: int) -> tuple[float | None, float | None]:
    """The 95 % Wilson interval (:func:`harness.stats.wilson`) as JSON-ready bounds.

    None rather than NaN when there is nothing to count, because run.json cannot hold NaN.
    """
    if n <= 0:
        return None, None
    p = wilson(successes, n)
    return p.low, p.high


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def confusion_rates(c: Confusion) -> dict[str, Any]:
    """The confusion counts and the rates derived from them, as the manifest stores them."""
    return {
        "tp": c.tp,
        "fp": c.fp,
        "tn": c.tn,
        "fn": c.fn,
        "fpr": _ratio(c.fp, c.fp + c.tn),
        "fnr": _ratio(c.fn, c.fn + c.tp),
        "precision": _ratio(c.tp, c.tp + c.fp),
        "recall": _ratio(c.tp, c.tp + c.fn),
    }


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return None
    return float(np.percentile(arr, q))


def compute_metrics(
    status: Sequence[str],
    label: Sequence[int],
    pred: Sequence[int | None],
    latency_us: Sequence[float | None],
    cycles: Sequence[int | None],
    host_match: Sequence[bool | None],
) -> dict[str, Any]:
    """The ``metrics`` block of run.json (keys as in docs/results.md)."""
    ok = np.array([s == "ok" for s in status], dtype=bool)
    n = int(ok.size)
    n_ok = int(ok.sum())
    lab = np.array(label, dtype=np.int64)[ok] if n else np.zeros(0, np.int64)
    prd = np.array([p if p is not None else -1 for p in pred], dtype=np.int64)[ok] if n else lab
    conf = confusion(lab == 1, prd == 1)
    correct = conf.tp + conf.tn
    low, high = wilson_interval(correct, n_ok)
    lat = np.array([v if v is not None else np.nan for v in latency_us], dtype=np.float64)
    lat = lat[ok] if n else lat
    cyc = np.array([v if v is not None else np.nan for v in cycles], dtype=np.float64)
    cyc = cyc[ok] if n else cyc
    finite_lat = lat[np.isfinite(lat)]
    mismatches = sum(1 for m, k in zip(host_match, ok, strict=True) if k and m is False)
    out: dict[str, Any] = {
        "n": n,
        "n_ok": n_ok,
        "n_error": n - n_ok,
        "accuracy": _ratio(correct, n_ok),
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
    }
    out.update(confusion_rates(conf))
    out.update(
        {
            "latency_us_p50": percentile(lat, 50),
            "latency_us_p90": percentile(lat, 90),
            "latency_us_p99": percentile(lat, 99),
            "latency_us_mean": float(finite_lat.mean()) if finite_lat.size else None,
            "cycles_p50": percentile(cyc, 50),
            "host_mismatches": int(mismatches),
        }
    )
    return out


class RunningTally:
    """Counts kept while the run goes, for the progress bar (the manifest recomputes from rows)."""

    def __init__(self) -> None:
        self.ok = 0
        self.correct = 0
        self.errors = 0
        self.mismatches = 0

    def add(self, status: str, label: int, pred: int | None, host_match: bool | None) -> None:
        if status != "ok":
            self.errors += 1
            return
        self.ok += 1
        self.correct += int(pred == label)
        self.mismatches += int(host_match is False)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.ok if self.ok else None

    def postfix(self) -> str:
        acc = f"{self.accuracy:.1%}" if self.accuracy is not None else "-"
        return f"acc={acc} err={self.errors} mismatch={self.mismatches}"
