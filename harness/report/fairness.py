"""Metrics per subgroup and the gap of each group to the majority group.

The data set manifest can tag images with attributes (``sg_*`` columns: lighting,
scene, ...). A model that is accurate on average can still fail a minority of images,
so every metric is computed per group, and each group's accuracy, false-negative rate
and false-positive rate is compared to the largest ("majority") group of the same
attribute with a Newcombe interval. A group is called under-served only when the
interval says it is worse beyond sampling noise; groups too small to tell are named as
such rather than silently passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.stats import Confusion, Difference, Proportion, confusion, newcombe

MIN_GROUP = 20  # below this many images a group's figures are too wide to judge
MAX_GROUPS = 12  # numeric attributes with more distinct values are cut into quartiles


@dataclass(frozen=True)
class GroupStats:
    attribute: str
    group: str
    cm: Confusion
    latency_p50_us: float
    majority: bool
    acc_gap: Difference
    fnr_gap: Difference
    fpr_gap: Difference

    @property
    def n(self) -> int:
        return self.cm.n

    @property
    def underserved_by(self) -> list[str]:
        """Which metrics are significantly worse than the majority group's."""
        worse = []
        if self.acc_gap.significant and self.acc_gap.diff < 0:
            worse.append("accuracy")
        if self.fnr_gap.significant and self.fnr_gap.diff > 0:
            worse.append("false-negative rate")
        if self.fpr_gap.significant and self.fpr_gap.diff > 0:
            worse.append("false-positive rate")
        return worse


def _group_values(values: np.ndarray) -> np.ndarray:
    """String group names; many-valued numeric attributes become quartile ranges."""
    numeric = values.dtype.kind in "fiu"
    if numeric:
        finite = values[~np.isnan(values)] if values.dtype.kind == "f" else values
        if len(np.unique(finite)) > MAX_GROUPS:
            edges = np.unique(np.percentile(finite, [0, 25, 50, 75, 100]))
            idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
            names = np.array([f"[{edges[i]:.3g}, {edges[i + 1]:.3g}]"
                              for i in range(len(edges) - 1)], dtype=object)
            out = names[idx]
            if values.dtype.kind == "f":
                out[np.isnan(values)] = "(missing)"
            return out
        return np.array(["(missing)" if isinstance(v, float) and math.isnan(v)
                         else f"{v:g}" for v in values], dtype=object)
    return np.array(["(missing)" if v is None else str(v) for v in values], dtype=object)


def by_attribute(attribute: str, values: np.ndarray, labels: np.ndarray, preds: np.ndarray,
                 latency_us: np.ndarray | None) -> list[GroupStats]:
    """Stats for each group of one attribute, majority group first."""
    groups = _group_values(values)
    names, counts = np.unique(groups, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    names = names[order]
    cms = {g: confusion(labels[groups == g], preds[groups == g]) for g in names}
    major = str(names[0]) if len(names) else ""
    ref = cms.get(major)
    out = []
    for g in names:
        cm = cms[g]
        lat = latency_us[groups == g] if latency_us is not None else np.array([])
        lat = lat[~np.isnan(lat)]
        is_major = g == major
        out.append(GroupStats(
            attribute=attribute, group=str(g), cm=cm,
            latency_p50_us=float(np.median(lat)) if len(lat) else math.nan,
            majority=is_major,
            acc_gap=_gap(cm.accuracy, ref.accuracy if ref else None, is_major),
            fnr_gap=_gap(cm.fnr, ref.fnr if ref else None, is_major),
            fpr_gap=_gap(cm.fpr, ref.fpr if ref else None, is_major),
        ))
    return out


def _gap(p: Proportion, ref: Proportion | None, is_major: bool) -> Difference:
    if is_major or ref is None:
        return Difference(0.0, math.nan, math.nan) if is_major else Difference(
            math.nan, math.nan, math.nan)
    return newcombe(p, ref)


def statement(groups: list[GroupStats]) -> list[str]:
    """Plain sentences: which groups are under-served, and which are too small to tell."""
    if not groups:
        return []
    attr = groups[0].attribute
    major = groups[0]
    lines = []
    for g in groups[1:]:
        worse = g.underserved_by
        if worse:
            parts = []
            for metric in worse:
                d, mine, theirs = {
                    "accuracy": (g.acc_gap, g.cm.accuracy, major.cm.accuracy),
                    "false-negative rate": (g.fnr_gap, g.cm.fnr, major.cm.fnr),
                    "false-positive rate": (g.fpr_gap, g.cm.fpr, major.cm.fpr),
                }[metric]
                parts.append(f"{metric} {mine.value:.3f} vs {theirs.value:.3f} "
                             f"(gap {d.diff:+.3f}, 95 % CI [{d.low:+.3f}, {d.high:+.3f}])")
            lines.append(f"{attr} = {g.group} is under-served compared with the majority group "
                         f"{major.group}: " + "; ".join(parts) + ".")
        elif g.n < MIN_GROUP:
            lines.append(f"{attr} = {g.group} has only {g.n} images: too few to tell whether it "
                         "is served as well as the majority group.")
    if not lines:
        lines.append(f"No group of {attr} is served measurably worse than the majority group "
                     f"{major.group} (every 95 % CI of the gap includes zero).")
    return lines
