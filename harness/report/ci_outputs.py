"""What a nightly tells CI: a Markdown job summary, JUnit XML and OpenMetrics lines.

Each format has its own escaping rules (Markdown tables break on ``|`` and GitHub
renders raw HTML in summaries; XML via ElementTree; OpenMetrics label values escape
backslash, quote and newline), and every name here may come from a matrix or run
folder, so each writer escapes for its own format.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.report.regress import REGRESSION

if TYPE_CHECKING:
    from harness.report.matrix import Matrix
    from harness.report.records import CellOutcome


def md(text: Any) -> str:
    """Text safe inside a Markdown table cell (no HTML, no column breaks)."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("|", "\\|").replace("`", "\\`").replace("\n", " ")


def _acc(o: CellOutcome) -> str:
    r = o.row or {}
    a, lo, hi = r.get("accuracy"), r.get("accuracy_ci_low"), r.get("accuracy_ci_high")
    if a is None:
        return "\u2014"
    if lo is None or hi is None:
        return f"{a:.3f}"
    return f"{a:.3f} [{lo:.3f}, {hi:.3f}]"


def _lat(o: CellOutcome) -> str:
    r = o.row or {}
    p = r.get("latency_us_p50")
    return "\u2014" if p is None else f"{p / 1000:.2f} ms ({latency_words(r)})"


def latency_words(row: dict[str, Any]) -> str:
    """What a row's latency is: the run's own label (nightly adds it), else its source's words."""
    return str(row.get("latency_label") or source_words(row.get("latency_source")))


def latency_tag(row: dict[str, Any]) -> str:
    """``[latency <what it is>]``, appended to a message that quotes latency times."""
    return f"[latency {latency_words(row)}]"


# latency_source as stored in the history -> the words shown beside a time in CI outputs
SOURCE_WORDS = {
    "measured": "measured on the device",
    "estimated": "estimated from the sim cost model",
    "instructions": "estimated from QEMU instruction counts x CPI",
    "reported": "reported by the device (EEMBC lap times, timer unknown)",
}


def source_words(source: Any) -> str:
    return SOURCE_WORDS.get(str(source), f"source: {source or 'unknown'}")


def is_estimated(source: Any) -> bool:
    """Whether a history row's latency is an estimate rather than a measured time."""
    return str(source) != "measured"


def verdict(o: CellOutcome) -> str:
    if o.status != "ok":
        return o.status
    if o.regressed:
        return "REGRESSION: " + ", ".join(c.name for c in o.checks if c.regressed)
    return "ok"


def markdown(m: Matrix, outcomes: Sequence[CellOutcome], history_runs: int, stamp: str,
             page: Path) -> str:
    reg = [o for o in outcomes if o.regressed]
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    head = ("regressions found" if reg else "cells failed" if failed else "no regressions")
    icon = ":x:" if reg or failed else ":white_check_mark:"
    lines = [
        f"## Nightly {md(m.name)}: {icon} {head}",
        "",
        f"{stamp} \u00b7 {len(outcomes)} cells: "
        f"{sum(o.status == 'ok' for o in outcomes)} ran, {len(skipped)} skipped, "
        f"{len(failed)} failed, {len(reg)} regressed \u00b7 {history_runs} runs in the history",
        "",
        "| cell | result | accuracy (95 % CI) | p50 latency | run |",
        "| --- | --- | --- | --- | --- |",
    ]
    for o in outcomes:
        run = o.run_dir.name if o.run_dir else md(o.reason)
        lines.append(f"| {md(o.cell.name)} | {md(verdict(o))} | {_acc(o)} | {md(_lat(o))} | "
                     f"{md(run)} |")
    details = [(o, c) for o in outcomes for c in o.checks if c.status == REGRESSION]
    if details:
        lines += ["", "### Regressions", ""]
        lines += [f"- **{md(o.cell.name)}** {md(c.name)}: {md(c.message)}" for o, c in details]
    if skipped or failed:
        lines += ["", "### Not run", ""]
        lines += [f"- {md(o.cell.name)}: {o.status}: {md(o.reason)}" for o in skipped + failed]
    placed = [o for o in outcomes if o.place]
    if placed:
        lines += ["", "### Places", ""]
        lines += [f"- {md(o.cell.name)}: place `{md(o.place)}`" for o in placed]
    lines += ["", f"Trend plots: `{md(page)}`", ""]
    return "\n".join(lines)


def junit(m: Matrix, outcomes: Sequence[CellOutcome]) -> str:
    suite = ET.Element("testsuite", name=f"hil-nightly.{m.name}")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for o in outcomes:
        cls = f"nightly.{o.cell.board}.{o.cell.backend}"
        names = [c.name for c in o.checks] or ["run"]
        for name in names:
            counts["tests"] += 1
            case = ET.SubElement(suite, "testcase", classname=cls,
                                 name=f"{o.cell.label}: {name}",
                                 time=f"{o.seconds:.3f}")
            check = next((c for c in o.checks if c.name == name), None)
            msg = check.message if check is not None else ""
            if check is not None and check.name == "latency" and o.row and "[latency " not in msg:
                msg = f"{msg} {latency_tag(o.row)}"
            if o.status == "skipped":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=o.reason)
            elif o.status == "failed":
                counts["errors"] += 1
                ET.SubElement(case, "error", message=o.reason)
            elif check is not None and check.regressed:
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=msg, type="regression")
            elif check is not None:
                ET.SubElement(case, "system-out").text = f"{check.status}: {msg}"
    for k, v in counts.items():
        suite.set(k, str(v))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") \
        + "\n"


def _label(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# (metric name, unit or "", help, getter from the history row)
METRICS: list[tuple[str, str, str, Any]] = [
    ("hil_accuracy_ratio", "ratio", "Accuracy of the run (correct / images scored).",
     lambda r: r.get("accuracy")),
    ("hil_false_positive_ratio", "ratio", "False-positive rate.", lambda r: r.get("fpr")),
    ("hil_false_negative_ratio", "ratio", "False-negative rate.", lambda r: r.get("fnr")),
    ("hil_latency_p50_seconds", "seconds",
     "Median latency per inference: measured, or estimated where the estimated label is true.",
     lambda r: None if r.get("latency_us_p50") is None else r["latency_us_p50"] / 1e6),
    ("hil_latency_p99_seconds", "seconds",
     "99th percentile latency per inference: measured, or estimated where estimated is true.",
     lambda r: None if r.get("latency_us_p99") is None else r["latency_us_p99"] / 1e6),
    ("hil_arena_used_bytes", "bytes", "Tensor arena used on the device.",
     lambda r: r.get("arena_used")),
    ("hil_model_size_bytes", "bytes", "Model size in flash.", lambda r: r.get("model_bytes")),
    ("hil_host_mismatches", "", "Images whose device output differs from the host reference.",
     lambda r: r.get("host_mismatches")),
]


def openmetrics(outcomes: Sequence[CellOutcome]) -> str:
    out: list[str] = []

    def labels(o: CellOutcome, **extra: str) -> str:
        items = {"model": o.cell.label, "board": o.cell.board,
                 "backend": o.cell.backend, **extra}
        return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in items.items()) + "}"

    for name, unit, help_, get in METRICS:
        values = []
        for o in outcomes:
            v = get(o.row) if o.row else None
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                src = o.row.get("latency_source") if o.row else None
                extra = {"latency_source": str(src or "unknown"),
                         "estimated": "true" if is_estimated(src) else "false"} \
                    if "latency" in name and o.row else {}
                values.append(f"{name}{labels(o, **extra)} {float(v):g}")
        if values:
            out.append(f"# TYPE {name} gauge")
            if unit:
                out.append(f"# UNIT {name} {unit}")
            out.append(f"# HELP {name} {help_}")
            out += values
    out.append("# TYPE hil_regression gauge")
    out.append("# HELP hil_regression 1 when the check found a regression against the history.")
    for o in outcomes:
        for c in o.checks:
            out.append(f"hil_regression{labels(o, check=c.name)} {int(c.regressed)}")
    out.append("# TYPE hil_cell_up gauge")
    out.append("# HELP hil_cell_up 1 when the cell ran, 0 when it was skipped or failed.")
    for o in outcomes:
        out.append(f"hil_cell_up{labels(o, status=o.status)} {int(o.status == 'ok')}")
    out.append("# EOF")
    return "\n".join(out) + "\n"
