"""Statistics the reports rely on, in plain NumPy.

Accuracy figures from a few hundred images are noisy, so every proportion the reports
show carries a 95 % Wilson score interval (it stays inside [0, 1] and behaves at 0 and n,
unlike the normal approximation), and every difference of two proportions carries
Newcombe's hybrid score interval (method 10 in Newcombe, Statistics in Medicine 17:873,
1998), which is built from the two Wilson intervals. Latency is summarised with robust
statistics (median, MAD) because a single stalled inference must not move the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
MAD_TO_SIGMA = 1.482602218505602  # MAD of a normal distribution times this is its sigma


@dataclass(frozen=True)
class Proportion:
    """k successes out of n, with its 95 % Wilson interval."""

    k: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else math.nan


def wilson(k: int, n: int, z: float = Z95) -> Proportion:
    """Wilson score interval for k out of n (NaN bounds when n is 0)."""
    if n <= 0:
        return Proportion(k, n, math.nan, math.nan)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Proportion(k, n, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Difference:
    """p1 - p2 with Newcombe's 95 % interval."""

    diff: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero."""
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)


def newcombe(a: Proportion, b: Proportion) -> Difference:
    """Interval for a.value - b.value from the two independent Wilson intervals."""
    if a.n == 0 or b.n == 0:
        return Difference(math.nan, math.nan, math.nan)
    p1, p2 = a.value, b.value
    d = p1 - p2
    low = d - math.sqrt((p1 - a.low) ** 2 + (b.high - p2) ** 2)
    high = d + math.sqrt((a.high - p1) ** 2 + (p2 - b.low) ** 2)
    return Difference(d, max(-1.0, low), min(1.0, high))


@dataclass(frozen=True)
class Confusion:
    """Binary confusion counts and the rates derived from them."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> Proportion:
        return wilson(self.tp + self.tn, self.n)

    @property
    def fpr(self) -> Proportion:
        return wilson(self.fp, self.fp + self.tn)

    @property
    def fnr(self) -> Proportion:
        return wilson(self.fn, self.fn + self.tp)

    @property
    def precision(self) -> Proportion:
        return wilson(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> Proportion:
        return wilson(self.tp, self.tp + self.fn)


def confusion(labels: np.ndarray, preds: np.ndarray) -> Confusion:
    """Counts for 0/1 arrays of equal length."""
    labels = labels.astype(bool)
    preds = preds.astype(bool)
    return Confusion(
        tp=int(np.count_nonzero(labels & preds)),
        fp=int(np.count_nonzero(~labels & preds)),
        tn=int(np.count_nonzero(~labels & ~preds)),
        fn=int(np.count_nonzero(labels & ~preds)),
    )


@dataclass(frozen=True)
class Curves:
    """ROC and precision-recall curves over every distinct score threshold.

    Index i describes predicting "person" when score >= thresholds[i]; thresholds fall.
    """

    thresholds: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray
    precision: np.ndarray
    n_pos: int
    n_neg: int

    @property
    def roc_auc(self) -> float:
        if self.n_pos == 0 or self.n_neg == 0:
            return math.nan
        x = np.concatenate([[0.0], self.fpr])
        y = np.concatenate([[0.0], self.tpr])
        return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))

    @property
    def average_precision(self) -> float:
        """Step-wise area under the PR curve (sum of precision times recall increments)."""
        if self.n_pos == 0:
            return math.nan
        recall = np.concatenate([[0.0], self.tpr])
        return float(np.sum(np.diff(recall) * self.precision))


def curves(labels: np.ndarray, scores: np.ndarray) -> Curves:
    """ROC/PR points, one per distinct score, computed with one sort (O(n log n))."""
    labels = labels.astype(bool)
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    y = labels[order]
    tps = np.cumsum(y)
    fps = np.cumsum(~y)
    # keep the last index of each run of equal scores: the threshold admits them all
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1] if len(s) else np.array([], dtype=int)
    tps, fps, thr = tps[last], fps[last], s[last]
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    tpr = tps / n_pos if n_pos else np.zeros_like(tps, dtype=float)
    fpr = fps / n_neg if n_neg else np.zeros_like(fps, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tps + fps > 0, tps / np.maximum(tps + fps, 1), 1.0)
    return Curves(thr.astype(float), fpr.astype(float), tpr.astype(float),
                  precision.astype(float), n_pos, n_neg)


def threshold_for_fpr(c: Curves, target_fpr: float) -> tuple[float, float, float] | None:
    """The threshold with the highest TPR whose FPR stays at or below target_fpr.

    Returns (threshold, fpr, tpr), or None when no threshold meets the target
    (or there are no negatives to measure an FPR on).
    """
    if c.n_neg == 0 or len(c.thresholds) == 0:
        return None
    ok = np.nonzero(c.fpr <= target_fpr)[0]
    if len(ok) == 0:
        return None
    i = int(ok[-1])  # thresholds fall, so the last admissible index has the highest TPR
    return float(c.thresholds[i]), float(c.fpr[i]), float(c.tpr[i])


def percentiles(values: np.ndarray, qs: tuple[float, ...] = (50, 90, 99)) -> dict[str, float]:
    """Named percentiles (p50, p90, ...) plus mean and max; NaN for an empty array."""
    out: dict[str, float] = {}
    if len(values) == 0:
        for q in qs:
            out[f"p{q:g}"] = math.nan
        out["mean"] = out["max"] = math.nan
        return out
    for q, v in zip(qs, np.percentile(values, qs), strict=True):
        out[f"p{q:g}"] = float(v)
    out["mean"] = float(np.mean(values))
    out["max"] = float(np.max(values))
    return out


def median_mad(values: np.ndarray) -> tuple[float, float]:
    """Median and median absolute deviation (raw, not scaled to sigma)."""
    if len(values) == 0:
        return math.nan, math.nan
    med = float(np.median(values))
    return med, float(np.median(np.abs(values - med)))


def median_standard_error(values: np.ndarray, resamples: int = 200, seed: int = 0) -> float:
    """Bootstrap standard error of the median, the noise of one run's p50 latency."""
    n = len(values)
    if n < 2:
        return math.nan
    rng = np.random.default_rng(seed)
    sample = values if n <= 5000 else rng.choice(values, 5000, replace=False)
    idx = rng.integers(0, len(sample), size=(resamples, len(sample)))
    meds = np.median(sample[idx], axis=1)
    se = float(np.std(meds, ddof=1))
    return se * math.sqrt(len(sample) / n)
