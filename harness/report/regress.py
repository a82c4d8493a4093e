"""Regression checks of one run against the recent history of its cell.

Both checks are built to stay quiet on noise and speak on real change:

* accuracy: the run's accuracy is compared with the pooled accuracy of the recent runs
  (their correct counts over their image counts, with a Wilson interval). It regresses
  when Newcombe's interval (95 % by default) of (run - recent) lies entirely below
  zero, so it must fall outside what the sampling noise of both sides allows. Each
  check has a one-sided false-alarm rate of (1 - level) / 2 on unchanged models, so a
  large matrix may want ``accuracy_confidence = 0.99``.
* latency: the p50 regresses when it exceeds median + k * spread of the recent p50s,
  where spread is the MAD scaled to a standard deviation, floored at a fraction of the
  median (deterministic simulator estimates have a MAD of zero, and a timer tick must
  not count as a regression). Median and MAD ignore an odd slow night in the history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.stats import MAD_TO_SIGMA, median_mad, newcombe, wilson

PASS, REGRESSION, IMPROVED, NO_HISTORY, NO_DATA = (
    "pass", "regression", "improved", "insufficient history", "no data")


@dataclass(frozen=True)
class Policy:
    window: int = 10  # recent runs of the same cell to compare with
    latency_k: float = 4.0
    latency_rel_floor: float = 0.02
    min_latency_history: int = 3
    min_accuracy_history: int = 1
    accuracy_confidence: float = 0.95  # two-sided level of the intervals the check uses

    @property
    def accuracy_z(self) -> float:
        from statistics import NormalDist

        return NormalDist().inv_cdf(0.5 + self.accuracy_confidence / 2)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    message: str
    value: float = math.nan
    limit: float = math.nan

    @property
    def regressed(self) -> bool:
        return self.status == REGRESSION


def check_accuracy(correct: int | None, n: int | None, history: Sequence[tuple[int, int]],
                   policy: Policy) -> Check:
    """``history`` is (correct, n) of the recent runs."""
    if not n or correct is None:
        return Check("accuracy", NO_DATA, "no accuracy in this run")
    hist = [(c, m) for c, m in history if m]
    if len(hist) < policy.min_accuracy_history:
        return Check("accuracy", NO_HISTORY,
                     f"accuracy {correct / n:.3f}; {len(hist)} earlier run(s), "
                     f"{policy.min_accuracy_history} needed to judge")
    z = policy.accuracy_z
    cur = wilson(int(correct), int(n), z)
    ref = wilson(sum(c for c, _ in hist), sum(m for _, m in hist), z)
    d = newcombe(cur, ref)
    status = REGRESSION if d.high < 0 else IMPROVED if d.low > 0 else PASS
    level = f"{policy.accuracy_confidence * 100:g} %"
    msg = (f"accuracy {cur.value:.3f} [{cur.low:.3f}, {cur.high:.3f}] vs {ref.value:.3f} "
           f"[{ref.low:.3f}, {ref.high:.3f}] over the last {len(hist)} run(s); difference "
           f"{d.diff:+.3f} ({level} CI [{d.low:+.3f}, {d.high:+.3f}])")
    return Check("accuracy", status, msg, cur.value, ref.low)


def latency_limit(history_us: np.ndarray, policy: Policy) -> tuple[float, float, float]:
    """(median, spread, limit) of the recent p50s."""
    med, mad = median_mad(history_us)
    spread = max(MAD_TO_SIGMA * mad, policy.latency_rel_floor * med)
    return med, spread, med + policy.latency_k * spread


def check_latency(p50_us: float | None, history_us: Sequence[float], policy: Policy) -> Check:
    if p50_us is None or math.isnan(p50_us):
        return Check("latency", NO_DATA, "no latency in this run")
    hist = np.array([h for h in history_us if h is not None and not math.isnan(h)], dtype=float)
    if len(hist) < policy.min_latency_history:
        return Check("latency", NO_HISTORY,
                     f"p50 {p50_us / 1000:.2f} ms; {len(hist)} earlier run(s), "
                     f"{policy.min_latency_history} needed to judge")
    med, spread, limit = latency_limit(hist, policy)
    status = REGRESSION if p50_us > limit else PASS
    msg = (f"p50 {p50_us / 1000:.2f} ms vs median {med / 1000:.2f} ms of the last {len(hist)} "
           f"run(s); limit {limit / 1000:.2f} ms (median + {policy.latency_k:g} x "
           f"{spread / 1000:.3f} ms)")
    return Check("latency", status, msg, p50_us, limit)


def flag_series(correct: np.ndarray, n: np.ndarray, p50: np.ndarray, policy: Policy
                ) -> tuple[np.ndarray, np.ndarray]:
    """Regression flags for every point of one cell's time-ordered series (for trend plots)."""
    acc_flags = np.zeros(len(n), dtype=bool)
    lat_flags = np.zeros(len(n), dtype=bool)
    for i in range(len(n)):
        lo = max(0, i - policy.window)
        hist_acc = [(int(c), int(m)) for c, m in zip(correct[lo:i], n[lo:i], strict=True)
                    if not (math.isnan(c) or math.isnan(m))]
        c_i, n_i = correct[i], n[i]
        if not (math.isnan(c_i) or math.isnan(n_i)):
            acc_flags[i] = check_accuracy(int(c_i), int(n_i), hist_acc, policy).regressed
        lat_flags[i] = check_latency(float(p50[i]), list(p50[lo:i]), policy).regressed
    return acc_flags, lat_flags
