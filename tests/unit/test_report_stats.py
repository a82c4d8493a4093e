"""Statistics behind the reports, checked against published figures and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.stats import (
    confusion,
    curves,
    median_mad,
    median_standard_error,
    newcombe,
    percentiles,
    threshold_for_fpr,
    wilson,
)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_table(k: int, n: int, low: float, high: float) -> None:
    p = wilson(k, n)
    assert p.low == pytest.approx(low, abs=6e-5)
    assert p.high == pytest.approx(high, abs=6e-5)


def test_wilson_empty_is_nan() -> None:
    p = wilson(0, 0)
    assert math.isnan(p.value) and math.isnan(p.low) and math.isnan(p.high)


def test_newcombe_matches_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80, method 10
    d = newcombe(wilson(56, 70), wilson(48, 80))
    assert d.diff == pytest.approx(0.2, abs=1e-9)
    assert d.low == pytest.approx(0.0524, abs=6e-4)
    assert d.high == pytest.approx(0.3339, abs=6e-4)
    assert d.significant


def test_newcombe_equal_groups_not_significant() -> None:
    d = newcombe(wilson(40, 50), wilson(41, 50))
    assert d.low < 0 < d.high
    assert not d.significant


def test_curves_agree_with_sklearn() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    labels = (rng.random(800) < 0.4).astype(int)
    scores = np.round(np.clip(labels * 0.6 + rng.normal(0.3, 0.25, 800), 0, 1), 2)
    c = curves(labels, scores)
    assert c.roc_auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert c.average_precision == pytest.approx(average_precision_score(labels, scores), abs=1e-9)
    assert np.all(np.diff(c.thresholds) < 0)


def test_threshold_for_fpr_is_the_best_admissible() -> None:
    rng = np.random.default_rng(5)
    labels = (rng.random(500) < 0.5).astype(int)
    scores = rng.random(500) * 0.5 + labels * 0.3
    c = curves(labels, scores)
    thr, fpr, tpr = threshold_for_fpr(c, 0.1)  # type: ignore[misc]
    preds = (scores >= thr).astype(int)
    cm = confusion(labels, preds)
    assert cm.fpr.value == pytest.approx(fpr) and fpr <= 0.1
    assert cm.recall.value == pytest.approx(tpr)
    lower = scores[scores < thr].max()  # the next threshold admits more positives...
    assert confusion(labels, (scores >= lower).astype(int)).fpr.value > 0.1  # ...and breaks it


def test_threshold_for_fpr_none_without_negatives() -> None:
    c = curves(np.ones(10, dtype=int), np.linspace(0, 1, 10))
    assert threshold_for_fpr(c, 0.05) is None


def test_percentiles_and_mad() -> None:
    v = np.array([1.0, 2, 3, 4, 100])
    p = percentiles(v)
    assert p["p50"] == 3 and p["max"] == 100 and p["mean"] == pytest.approx(22)
    assert median_mad(v) == (3.0, 1.0)
    assert math.isnan(percentiles(np.array([]))["p50"])


def test_median_standard_error_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    small = median_standard_error(rng.normal(100, 5, 50))
    large = median_standard_error(rng.normal(100, 5, 5000))
    assert 0 < large < small
    assert median_standard_error(np.full(100, 7.0)) == 0
