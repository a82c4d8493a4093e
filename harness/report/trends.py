"""Trend plots over the history and the nightly HTML page.

One plot per metric with one line per cell (model @ board/backend), drawn from a single
DuckDB query over the history index; points that a regression check flags against
their own preceding window are marked with a red cross, so a reader sees when a
regression started, not only that there is one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.report import plots
from harness.report.ci_outputs import latency_words, verdict
from harness.report.html import Safe, fmt, img, note, page, section, table, tag
from harness.report.regress import REGRESSION, Policy, flag_series

if TYPE_CHECKING:
    from harness.report.history import History
    from harness.report.matrix import Matrix
    from harness.report.records import CellOutcome

# (history column, y label, scale, which regression flags to mark)
TREND_METRICS: list[tuple[str, str, float, str | None]] = [
    ("accuracy", "accuracy", 1.0, "accuracy"),
    ("latency_us_p50", "p50 latency, ms (measured or estimated: see latency source)", 1e-3, "latency"),
    ("latency_us_p99", "p99 latency, ms (measured or estimated: see latency source)", 1e-3, None),
    ("arena_used", "arena used, KiB", 1 / 1024, None),
    ("model_bytes", "model size, KiB", 1 / 1024, None),
    ("host_mismatches", "host/device mismatches", 1.0, None),
]


def trend_plots(history: History, policy: Policy) -> list[tuple[str, str]]:
    """(title, SVG data URI) per metric that has any values."""
    cols = [c for c, _, _, _ in TREND_METRICS]
    data = history.trends(cols + ["correct", "n_ok"])
    cells = data["cell"]
    if len(cells) == 0:
        return []
    names, starts = np.unique(cells, return_index=True)
    bounds = list(zip(starts, list(starts[1:]) + [len(cells)], strict=True))
    order = np.argsort(starts)
    created = data["created"].astype("datetime64[s]")

    def col(name: str) -> np.ndarray:
        return np.asarray(data[name], dtype=float)

    flags: dict[str, list[np.ndarray]] = {"accuracy": [], "latency": []}
    correct, n_ok, p50 = col("correct"), col("n_ok"), col("latency_us_p50")
    for i in order:
        a, b = bounds[i]
        acc_f, lat_f = flag_series(correct[a:b], n_ok[a:b], p50[a:b], policy)
        flags["accuracy"].append(acc_f)
        flags["latency"].append(lat_f)
    out = []
    for metric, ylabel, scale, flag_kind in TREND_METRICS:
        y_all = col(metric) * scale
        if np.isnan(y_all).all():
            continue
        series = []
        for k, i in enumerate(order):
            a, b = bounds[i]
            y = y_all[a:b]
            keep = ~np.isnan(y)
            if not keep.any():
                continue
            fl = flags[flag_kind][k][keep] if flag_kind else None
            series.append(plots.Series(str(names[i]), created[a:b][keep], y[keep], fl))
        title = f"{ylabel} over time"
        out.append((title, plots.trend(series, ylabel, title)))
    return out


def _link(o: CellOutcome, out: Path) -> Any:
    if o.report is None:
        return o.run_dir.name if o.run_dir else o.reason
    rel = os.path.relpath(o.report, out)
    return tag("a", o.run_dir.name if o.run_dir else "report", href=rel)


def nightly_page(m: Matrix, outcomes: Sequence[CellOutcome], history: History, out: Path) -> str:
    body: list[Any] = []
    if outcomes:
        rows = []
        for o in outcomes:
            r = o.row or {}
            p50 = r.get("latency_us_p50")
            rows.append((o.cell.name, tag("span", verdict(o), class_="bad" if o.regressed
                                          or o.status == "failed" else "ok"
                                          if o.status == "ok" else "note"),
                         fmt(r.get("accuracy")),
                         fmt(p50 / 1000 if p50 is not None else None, 2),
                         latency_words(r) if r.get("latency_source") or r.get("latency_label") else "\u2014",
                         _link(o, out)))
        body.append(section("Tonight", table(["cell", "result", "accuracy", "p50 ms",
                                              "latency", "run / reason"], rows)))
        checks = [tag("li", tag("b", f"{o.cell.name} {c.name}: "), c.message)
                  for o in outcomes for c in o.checks if c.status == REGRESSION]
        body.append(section("Regressions", tag("ul", *checks) if checks else
                            tag("p", "No regression against the history.", class_="ok")))
        notes = [tag("li", f"{o.cell.name}: {o.status}: {o.reason}")
                 for o in outcomes if o.status != "ok"]
        if notes:
            body.append(section("Not run", tag("ul", *notes)))
        placed = [(o.cell.name, o.place) for o in outcomes if o.place]
        if placed:
            body.append(section("Places", table(["cell", "place"], placed)))
        details = [(o.cell.name, c.name, c.status, c.message) for o in outcomes for c in o.checks]
        if details:
            body.append(section("Checks", table(["cell", "check", "status", "detail"], details)))
    plots_ = trend_plots(history, m.policy)
    total = history.count()
    if plots_:
        body.append(section(f"Trends over {total} stored runs",
                            tag("div", *(img(uri, title) for title, uri in plots_),
                                class_="grid"),
                            note("Red crosses: runs that regressed against their own preceding "
                                 f"{m.policy.window} runs.")))
    else:
        body.append(section("Trends", note("The history is empty.")))
    return page(f"Nightly {m.name}", f"history in {out}", body) if body else Safe("")
