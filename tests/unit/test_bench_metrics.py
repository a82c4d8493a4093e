"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.bench.metrics import (
    RunningTally,
    compute_metrics,
    confusion_rates,
    percentile,
    wilson_interval,
)
from harness.stats import confusion


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Wilson 95 %: centre (p + z^2/2n)/(1 + z^2/n), half-width z/(1+z^2/n) sqrt(p(1-p)/n + z^2/4n^2)
        (8, 10, 0.4901624, 0.9433178),
        (50, 100, 0.4038315, 0.5961685),
        (0, 10, 0.0, 0.2775328),
        (10, 10, 0.7224672, 1.0),
    ],
)
def test_wilson_interval_known_counts(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-6)
    assert hi == pytest.approx(high, abs=1e-6)


def test_wilson_interval_of_nothing_is_undefined() -> None:
    assert wilson_interval(0, 0) == (None, None)


def test_confusion_and_rates() -> None:
    c = confusion(np.array([1, 1, 1, 0, 0, 0, 0]), np.array([1, 1, 0, 1, 0, 0, 0]))
    assert (c.tp, c.fn, c.fp, c.tn) == (2, 1, 1, 3)
    d = confusion_rates(c)
    assert d["fpr"] == pytest.approx(1 / 4)
    assert d["fnr"] == pytest.approx(1 / 3)
    assert d["precision"] == pytest.approx(2 / 3)
    assert d["recall"] == pytest.approx(2 / 3)


def test_rates_with_empty_denominators_are_none() -> None:
    d = confusion_rates(confusion(np.array([1, 1]), np.array([1, 1])))
    assert d["fpr"] is None and d["fnr"] == 0.0


def test_percentile_interpolates_and_ignores_missing() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, float("nan")], 50) == pytest.approx(2.5)
    assert percentile([10.0, 20.0], 90) == pytest.approx(19.0)
    assert percentile([], 50) is None


def test_compute_metrics_scores_only_ok_rows() -> None:
    m = compute_metrics(
        status=["ok", "ok", "ok", "error", "ok"],
        label=[1, 0, 1, 1, 0],
        pred=[1, 0, 0, None, 1],
        latency_us=[100.0, 200.0, 300.0, None, 400.0],
        cycles=[10, 20, 30, None, 40],
        host_match=[True, False, True, None, True],
    )
    assert (m["n"], m["n_ok"], m["n_error"]) == (5, 4, 1)
    assert m["accuracy"] == pytest.approx(0.5)
    lo, hi = wilson_interval(2, 4)
    assert m["accuracy_ci_low"] == pytest.approx(lo) and m["accuracy_ci_high"] == pytest.approx(hi)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 1, 1)
    assert m["latency_us_p50"] == pytest.approx(250.0)
    assert m["latency_us_mean"] == pytest.approx(250.0)
    assert m["cycles_p50"] == pytest.approx(25.0)
    assert m["host_mismatches"] == 1


def test_compute_metrics_of_no_rows() -> None:
    m = compute_metrics([], [], [], [], [], [])
    assert m["n"] == 0 and m["accuracy"] is None and m["latency_us_p50"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in m.values())


def test_running_tally() -> None:
    t = RunningTally()
    t.add("ok", 1, 1, True)
    t.add("ok", 0, 1, False)
    t.add("error", 1, None, None)
    assert t.accuracy == pytest.approx(0.5)
    assert t.postfix() == "acc=50.0% err=1 mismatch=1"
