"""Plots as inline SVG data URIs, drawn with matplotlib's object API (no pyplot).

Using ``Figure`` directly keeps matplotlib's global state and GUI backends out of the
way (the Agg canvas is attached explicitly), so drawing works headless and in threads,
and matplotlib is imported only when a plot is drawn. Math text is switched off because
labels come from model and board names, where a ``$`` is a character, not TeX. SVG is
embedded through ``<img>`` so a plot can never run script; text is drawn as paths so the
pages look the same without the fonts.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.plot_fit import fit_text
from harness.report.html import data_uri
from harness.stats import Confusion, Curves

RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "hil-report",
    "text.parse_math": False,
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
BLUE, ORANGE, RED, GREEN, GREY = "#2f6db5", "#e08a1e", "#b3261e", "#1b6e3a", "#7a8290"
MAX_CURVE_POINTS = 400


@contextmanager
def figure(width: float = 5.0, height: float = 3.4, left: float = 0.75) -> Iterator[Any]:
    """A figure with fixed margins in inches (``left`` wide enough for the y labels).

    Fixed margins instead of constrained layout halve the drawing time, which is most
    of what a report costs.
    """
    import matplotlib

    with matplotlib.rc_context(RC):  # type: ignore[arg-type]
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width, height), dpi=100)
        fig.subplots_adjust(left=left / width, right=1 - 0.2 / width, bottom=0.6 / height,
                            top=1 - 0.35 / height)
        FigureCanvasAgg(fig)
        yield fig


def to_uri(fig: Any) -> str:
    """The figure as an SVG data URI, after every text has been fitted inside it."""
    fit_text(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return data_uri(buf.getvalue(), "image/svg+xml")


def _thin(*arrays: np.ndarray) -> list[np.ndarray]:
    """At most MAX_CURVE_POINTS evenly spaced points, keeping both ends."""
    n = len(arrays[0])
    if n <= MAX_CURVE_POINTS:
        return list(arrays)
    idx = np.unique(np.linspace(0, n - 1, MAX_CURVE_POINTS).astype(int))
    return [a[idx] for a in arrays]


def label_margin(labels: Sequence[str], fontsize: float = 8.0) -> float:
    """Left margin in inches that fits the longest y tick label (about 0.6 em per char)."""
    longest = max((len(x) for x in labels), default=4)
    return 0.3 + longest * fontsize * 0.6 / 72


def short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def confusion_plot(cm: Confusion) -> str:
    counts = np.array([[cm.tn, cm.fp], [cm.fn, cm.tp]], dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    with figure(3.8, 3.0, left=1.2) as fig:
        ax = fig.add_subplot()
        ax.grid(False)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(counts):
            ax.text(j, i, f"{int(v)}\n{rates[i, j]:.1%}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.55 else "black")
        ax.set_xticks([0, 1], ["no person", "person"])
        ax.set_yticks([0, 1], ["no person", "person"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true label")
        ax.set_title("Confusion matrix (row-normalised)")
        return to_uri(fig)


def roc_plot(c: Curves, op: tuple[float, float] | None,
             target: tuple[float, float, float] | None, target_fpr: float) -> str:
    fpr, tpr = _thin(np.r_[0.0, c.fpr], np.r_[0.0, c.tpr])
    with figure() as fig:
        ax = fig.add_subplot()
        ax.plot(fpr, tpr, color=BLUE, lw=1.6, label=f"ROC (AUC {c.roc_auc:.3f})")
        ax.plot([0, 1], [0, 1], color=GREY, lw=0.8, ls=":")
        if op is not None:
            ax.plot(*op, "o", color=RED, label=f"operating point (FPR {op[0]:.3f}, "
                    f"TPR {op[1]:.3f})")
        ax.axvline(target_fpr, color=ORANGE, lw=0.8, ls="--")
        if target is not None:
            ax.plot(target[1], target[2], "s", color=ORANGE,
                    label=f"FPR \u2264 {target_fpr:g} at threshold {target[0]:.3f}")
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_title("ROC curve")
        ax.legend(loc="lower right", fontsize=8)
        return to_uri(fig)


def pr_plot(c: Curves, op: tuple[float, float] | None,
            target: tuple[float, float] | None) -> str:
    # falling recall, ending at (0, 1), drawn as steps: the usual PR staircase
    recall, precision = _thin(np.r_[c.tpr[::-1], 0.0], np.r_[c.precision[::-1], 1.0])
    with figure() as fig:
        ax = fig.add_subplot()
        ax.plot(recall, precision, drawstyle="steps-post", color=BLUE, lw=1.6,
                label=f"PR (AP {c.average_precision:.3f})")
        base = c.n_pos / max(1, c.n_pos + c.n_neg)
        ax.axhline(base, color=GREY, lw=0.8, ls=":", label=f"prevalence {base:.2f}")
        if op is not None:
            ax.plot(*op, "o", color=RED, label="operating point")
        if target is not None:
            ax.plot(*target, "s", color=ORANGE, label="target-FPR threshold")
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Precision-recall curve")
        ax.legend(loc="lower left", fontsize=8)
        return to_uri(fig)


def score_hist(scores: np.ndarray, labels: np.ndarray, threshold: float) -> str:
    bins = np.linspace(0, 1, 41) if np.nanmin(scores) >= 0 and np.nanmax(scores) <= 1 else 40
    with figure() as fig:
        ax = fig.add_subplot()
        ax.hist(scores[labels == 0], bins=bins, alpha=0.6, color=BLUE,
                label=f"no person (n={int((labels == 0).sum())})")
        ax.hist(scores[labels == 1], bins=bins, alpha=0.6, color=ORANGE,
                label=f"person (n={int((labels == 1).sum())})")
        ax.axvline(threshold, color=RED, lw=1.2, ls="--", label=f"threshold {threshold:g}")
        ax.set_xlabel("person score")
        ax.set_ylabel("images")
        ax.set_title("Score distribution per class")
        ax.legend(fontsize=8)
        return to_uri(fig)


def latency_hist(lat_ms: np.ndarray, pct: dict[str, float], source: str) -> str:
    with figure() as fig:
        ax = fig.add_subplot()
        lo, hi = float(np.min(lat_ms)), float(np.max(lat_ms))
        bins = 40 if hi > lo else np.array([lo - 0.5, hi + 0.5])
        ax.hist(lat_ms, bins=bins, color=BLUE, alpha=0.8)
        for name, color in (("p50", GREEN), ("p90", ORANGE), ("p99", RED)):
            v = pct.get(name, math.nan)
            if not math.isnan(v):
                ax.axvline(v, color=color, lw=1.2, ls="--", label=f"{name} {v:.2f} ms")
        ax.set_xlabel(f"latency per inference, ms ({source})")
        ax.set_ylabel("images")
        ax.set_title(f"Latency ({source})")
        ax.legend(fontsize=8)
        return to_uri(fig)


def layer_bars(names: Sequence[str], us: np.ndarray, source: str) -> str:
    height = max(2.6, 0.17 * len(names) + 0.9)
    labels = [short(n, 36) for n in names]
    with figure(6.4, height, left=label_margin(labels, 7)) as fig:
        ax = fig.add_subplot()
        y = np.arange(len(names))
        ax.barh(y, us / 1000.0, color=BLUE)
        ax.set_yticks(y, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"time per inference, ms ({source})")
        ax.set_title("Time per layer")
        return to_uri(fig)


@dataclass(frozen=True)
class MemoryBar:
    label: str
    used: float
    limit: float | None
    reserved: float | None = None  # e.g. arena size allocated vs arena used


def memory_bars(bars: Sequence[MemoryBar], title: str = "Memory against the board's limits"
                ) -> str:
    margin = label_margin([short(b.label, 40) for b in bars])
    with figure(6.4, max(2.0, 0.55 * len(bars) + 1.0), left=margin) as fig:
        ax = fig.add_subplot()
        y = np.arange(len(bars))
        for i, b in enumerate(bars):
            over = b.limit is not None and b.used > b.limit
            if b.reserved is not None:
                ax.barh(i, b.reserved / 1024, color=GREY, alpha=0.35, height=0.6)
            ax.barh(i, b.used / 1024, color=RED if over else BLUE, height=0.6)
            if b.limit is not None:
                ax.plot([b.limit / 1024] * 2, [i - 0.4, i + 0.4], color=RED, lw=2)
                pct = f" ({b.used / b.limit:.0%} of {b.limit / 1024:,.0f} KiB)" if b.limit else ""
            else:
                pct = ""
            ax.text(b.used / 1024, i, f" {b.used / 1024:,.1f} KiB{pct}", va="center", fontsize=8)
        ax.set_yticks(y, [short(b.label, 40) for b in bars], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("KiB (red tick: limit; grey: allocated)")
        ax.set_title(title)
        right = max([b.used for b in bars] + [b.limit or 0 for b in bars]
                    + [b.reserved or 0 for b in bars]) / 1024
        ax.set_xlim(0, right * 1.45 if right > 0 else 1)
        return to_uri(fig)


@dataclass(frozen=True)
class Interval:
    label: str
    value: float
    low: float
    high: float
    highlight: bool = False


def forest(items: Sequence[Interval], reference: float | None, xlabel: str, title: str) -> str:
    """Point estimates with 95 % intervals, one row each (subgroups, runs)."""
    margin = label_margin([short(it.label, 40) for it in items])
    with figure(6.0, max(1.8, 0.32 * len(items) + 1.0), left=margin) as fig:
        ax = fig.add_subplot()
        for i, it in enumerate(items):
            color = RED if it.highlight else BLUE
            if not math.isnan(it.value):
                ax.errorbar(it.value, i, xerr=[[it.value - it.low], [it.high - it.value]],
                            fmt="o", color=color, capsize=3)
        if reference is not None and not math.isnan(reference):
            ax.axvline(reference, color=GREY, ls="--", lw=1)
        ax.set_yticks(range(len(items)), [short(it.label, 40) for it in items], fontsize=8)
        ax.set_ylim(len(items) - 0.5, -0.5)
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        return to_uri(fig)


@dataclass(frozen=True)
class ParetoPoint:
    label: str
    latency_ms: float
    accuracy: float
    low: float
    high: float
    group: str


def pareto(points: Sequence[ParetoPoint], front: set[int]) -> str:
    with figure(6.4, 4.2) as fig:
        ax = fig.add_subplot()
        groups = sorted({p.group for p in points})
        colors = [BLUE, ORANGE, GREEN, RED, "#6b4fa1", "#0f8b8d", GREY]
        for gi, g in enumerate(groups):
            sel = [p for p in points if p.group == g]
            ax.errorbar([p.latency_ms for p in sel], [p.accuracy for p in sel],
                        yerr=[[p.accuracy - p.low for p in sel], [p.high - p.accuracy for p in sel]],
                        fmt="o", color=colors[gi % len(colors)], capsize=2, label=short(g, 30))
        fr = sorted((points[i] for i in front), key=lambda p: p.latency_ms)
        if fr:
            ax.step([p.latency_ms for p in fr], [p.accuracy for p in fr], where="post",
                    color=GREY, ls="--", lw=1, label="Pareto front")
        for (lat, acc), label in _labels_per_point(points).items():
            ax.annotate(label, (lat, acc), fontsize=7, xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel("p50 latency, ms (lower is better)")
        ax.set_ylabel("accuracy, 95 % CI")
        ax.set_title("Latency vs accuracy")
        ax.legend(fontsize=7, loc="best")
        return to_uri(fig)


def _labels_per_point(points: Sequence[ParetoPoint]) -> dict[tuple[float, float], str]:
    """One label per position: runs with the same figures (repeats of one model) share it
    (``#1, #3 vww_96_025``) instead of being printed over each other."""
    at: dict[tuple[float, float], list[str]] = {}
    for p in points:
        at.setdefault((p.latency_ms, p.accuracy), []).append(p.label)
    out = {}
    for pos, labels in at.items():
        tags = [lb.split(" ", 1) for lb in labels]
        names = {t[1] if len(t) > 1 else "" for t in tags}
        if len(labels) > 1 and len(names) == 1 and all(t[0].startswith("#") for t in tags):
            out[pos] = short(f"{', '.join(t[0] for t in tags)} {names.pop()}", 40)
        else:
            out[pos] = "\n".join(short(lb, 28) for lb in labels)
    return out


@dataclass(frozen=True)
class Series:
    label: str
    x: np.ndarray  # datetime64 values
    y: np.ndarray
    flagged: np.ndarray | None = None  # boolean mask of points to mark (regressions)


def trend(series: Sequence[Series], ylabel: str, title: str) -> str:
    with figure(5.4, 3.2) as fig:
        ax = fig.add_subplot()
        for s in series:
            line = ax.plot(s.x, s.y, marker=".", ms=3, lw=1, label=short(s.label, 40))[0]
            if s.flagged is not None and s.flagged.any():
                ax.plot(s.x[s.flagged], s.y[s.flagged], "x", color=RED, ms=8, mew=2)
                line.set_zorder(1)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if len(series) <= 8:
            ax.legend(fontsize=7, loc="best")
        fig.autofmt_xdate()
        return to_uri(fig)


def bars(labels: Sequence[str], values: Sequence[float], xlabel: str, title: str) -> str:
    margin = label_margin([short(x, 40) for x in labels])
    with figure(6.0, max(1.8, 0.3 * len(labels) + 1.0), left=margin) as fig:
        ax = fig.add_subplot()
        ax.barh(range(len(labels)), values, color=BLUE)
        ax.set_yticks(range(len(labels)), [short(x, 40) for x in labels], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        return to_uri(fig)
