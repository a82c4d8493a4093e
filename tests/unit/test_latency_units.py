"""Every latency figure says what it is: measured, counted instructions, or an estimate.

A run whose device counts instructions (QEMU -icount) must never show a time in ms/us/s
without the word "estimated" on the console, in run.json, the HTML report, JUnit or
OpenMetrics; a run on a cycle counter still shows measured milliseconds.
"""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from bench_fakes import CYCLES, InProcessDevice, make_image_folder, tiny_model
from rich.console import Console

from harness import console
from harness.bench.api import bench_on_device
from harness.bench.request import BenchRequest
from harness.boards import load_board
from harness.link.messages import TimerKind
from harness.report.ci_outputs import junit, openmetrics
from harness.report.compare import (
    DIFFERENCES,
    SIDE_BY_SIDE,
    compare,
    differences,
    latency_notes,
    side_by_side,
)
from harness.report.history import FIELDS
from harness.report.matrix import Cell, Matrix
from harness.report.nightly import run_nightly
from harness.report.records import CellOutcome
from harness.report.regress import Check
from harness.report.run_report import write_report

TIME = re.compile(r"\d(?:[.,]\d+)?\s*(?:ms|µs|us|s)\b")


def _bench(tmp_path: Path, board_id: str, timer: TimerKind, out_dir: Path | None = None) -> Path:
    board = load_board(board_id)
    device = InProcessDevice(board, tiny_model(tmp_path / "models"), timer=timer, clock_hz=25_000_000)
    data = tmp_path / "data"
    return bench_on_device(
        device, board=board, backend="fake", model=device.model_path,
        dataset=data if data.is_dir() else make_image_folder(data, 4),
        out_dir=out_dir or tmp_path / "runs",
    )  # fmt: skip


def _timed_lines_lack_estimated(text: str) -> list[str]:
    return [line for line in text.splitlines() if TIME.search(line) and "estimated" not in line]


def _history_row(manifest: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, _typ, keys in FIELDS:
        node: Any = manifest
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        row[name] = node
    return row


def _outcome(folder: Path, manifest: dict[str, Any]) -> CellOutcome:
    p50 = manifest["metrics"]["latency_us_p50"]
    msg = f"p50 {p50 / 1000:.2f} ms vs median {p50 / 1000:.2f} ms of the last 3 run(s)" if p50 else "none"
    cell = Cell(model="tiny", board=manifest["board"]["id"], backend="fake")
    return CellOutcome(cell, "ok", run_dir=folder, row=_history_row(manifest),
                       checks=[Check("latency", "ok", msg)])


@pytest.fixture()
def instr_run(tmp_path: Path) -> Path:
    return _bench(tmp_path, "nano33", TimerKind.INSTRUCTIONS)


def test_instruction_run_json_names_units_and_source(instr_run: Path) -> None:
    m = json.loads((instr_run / "run.json").read_text())
    lat = m["latency"]
    assert lat["timer"] == "instructions" and lat["count_unit"] == "instructions"
    assert lat["kind"] == "estimated" and lat["estimated"] is True and lat["cpi"] == 1.25
    assert "estimated from QEMU instruction counts x CPI 1.25" in lat["label"]
    met = m["metrics"]
    assert CYCLES <= met["instructions_p50"] <= CYCLES + 255
    # instructions x CPI / the board's 64 MHz clock, not instructions / the device's 25 MHz
    assert met["latency_us_p50"] == pytest.approx(met["instructions_p50"] * 1.25 / 64, rel=0.02)
    assert met["latency_estimated"] is True and met["latency_unit"] == "us"
    layer = m["profile"][0]
    assert layer["instructions"] == 40_000 and layer["unit"] == "instructions"
    assert layer["us"] == pytest.approx(40_000 * 1.25 / 64) and layer["us_estimated"] is True


def test_instruction_run_never_shows_a_time_without_estimated(instr_run: Path) -> None:
    summary = (instr_run / "summary.txt").read_text()
    assert "k instr per inference" in summary
    assert "latency  (estimated)" in summary
    assert _timed_lines_lack_estimated(summary) == []

    report = write_report(instr_run).read_text()
    for part in report.split("<section")[1:]:
        text = html.unescape(re.sub(r"<[^>]+>", " ", part))
        if TIME.search(text) and "ms" in text:
            assert "estimated" in text, text[:300]

    m = json.loads((instr_run / "run.json").read_text())
    outcome = _outcome(instr_run, m)
    xml = junit(Matrix(instr_run, "t", [outcome.cell], None, None, 0.5, None, 1), [outcome])
    assert _timed_lines_lack_estimated(xml) == []
    om = openmetrics([outcome])
    lat_lines = [ln for ln in om.splitlines() if ln.startswith("hil_latency_") and "{" in ln]
    assert lat_lines and all('estimated="true"' in ln for ln in lat_lines)


def test_instruction_run_without_cpi_shows_no_time(tmp_path: Path) -> None:
    folder = _bench(tmp_path, "esp32cam", TimerKind.INSTRUCTIONS)
    m = json.loads((folder / "run.json").read_text())
    assert m["latency"]["kind"] == "counted" and m["metrics"]["latency_us_p50"] is None
    summary = (folder / "summary.txt").read_text()
    assert "instr per inference" in summary and not TIME.search(summary.split("\nlatency")[1])


def test_measured_run_still_prints_ms(tmp_path: Path) -> None:
    folder = _bench(tmp_path, "nano33", TimerKind.DWT)
    summary = (folder / "summary.txt").read_text()
    line = next(ln for ln in summary.splitlines() if ln.startswith("latency"))
    assert "latency  (measured) p50" in line and " ms" in line and "estimated" not in line
    assert "DWT cycle counter" in line and "instr" not in summary
    m = json.loads((folder / "run.json").read_text())
    assert m["latency"]["kind"] == "measured" and m["metrics"]["latency_estimated"] is False
    outcome = _outcome(folder, m)
    assert 'estimated="false"' in openmetrics([outcome])


def _sections_with_a_time_say_estimated(page: str) -> None:
    for part in page.split("<section")[1:]:
        text = html.unescape(re.sub(r"<[^>]+>", " ", part))
        if TIME.search(text):
            assert "estimated" in text, text[:300]


def test_instruction_run_console_tables_never_show_a_bare_time(instr_run: Path, tmp_path: Path) -> None:
    """The terminal summary, ``hil compare``'s tables and page: every time says "estimated"."""
    con = Console(record=True, force_terminal=True, width=100)
    console.print_summary((instr_run / "summary.txt").read_text(), console=con)
    shown = con.export_text()
    assert "estimated" in shown and "instr" in shown
    for row in (ln for ln in shown.splitlines() if ln.count("│") == 3):
        label, value = row.split("│")[1].strip(), row.split("│")[2]
        if TIME.search(value):
            assert label == "latency", row  # the wrapped latency row, which says estimated
    assert _timed_lines_lack_estimated(console.plain_rows(["field", "value"], console.fields_of(
        (instr_run / "summary.txt").read_text()))) == []

    other = _bench(tmp_path, "nano33", TimerKind.INSTRUCTIONS, out_dir=tmp_path / "runs2")
    result = compare([instr_run, other], tmp_path / "c.html")
    out = io.StringIO()
    plain = console.make_console(out)
    console.print_rows(SIDE_BY_SIDE, side_by_side(result.figures, short=True), console=plain)
    console.print_lines(latency_notes(result.figures), console=plain)
    console.print_rows(DIFFERENCES, differences(result.figures, result.k), console=plain)
    text = out.getvalue()
    assert "latency of #1, #2: estimated from QEMU instruction counts x CPI 1.25" in text
    figures_only = [ln for ln in text.splitlines() if not ln.startswith(("#  run", "pair "))]  # not headers
    assert _timed_lines_lack_estimated("\n".join(figures_only)) == []
    rows = [ln for ln in text.splitlines() if ln.startswith(("1 ", "2 "))]
    assert len(rows) == 2 and all(ln.split()[-3] == "estimated" for ln in rows)
    _sections_with_a_time_say_estimated(result.path.read_text())


def test_instruction_run_nightly_outputs_say_estimated(tmp_path: Path) -> None:
    """A nightly over an instructions-timed cell: its table, Markdown, JUnit and OpenMetrics."""
    matrix = tmp_path / "m.toml"
    matrix.write_text('[nightly]\nname = "t"\nmin_latency_history = 1\n'
                      '[[cell]]\nboard = "nano33"\nbackend = "fake"\n')

    def runner(request: BenchRequest) -> Path:
        return _bench(tmp_path, "nano33", TimerKind.INSTRUCTIONS, out_dir=request.out_dir)

    for _ in range(2):  # the second night has a history, so its latency check quotes times
        res = run_nightly(matrix, tmp_path / "h", runner=runner, write_reports=False)
    ((cell, result, _acc, p50, _run),) = res.table_rows()
    assert result == "ok" and " ms (estimated from QEMU instruction counts x CPI 1.25" in p50
    summary = res.summary_path.read_text()
    assert " ms (estimated from QEMU instruction counts x CPI 1.25" in summary
    assert _timed_lines_lack_estimated(summary) == []
    assert _timed_lines_lack_estimated(res.junit_path.read_text()) == []
    om = res.metrics_path.read_text()
    lat = [ln for ln in om.splitlines() if ln.startswith("hil_latency_") and "{" in ln]
    assert lat and all('estimated="true"' in ln for ln in lat)
    _sections_with_a_time_say_estimated(res.html_path.read_text())


def _documented(field: str) -> set[str]:
    """The quoted values docs/results.md lists for a run.json field (before any remark)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "results.md").read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{field} "))
    return set(re.findall(r'"([a-z_]+)"', line.split("(")[0]))


def test_docs_list_the_latency_sources_runs_write(tmp_path: Path) -> None:
    """docs/results.md lists every latency_source a run writes, and not the old "instructions"."""
    written: dict[str, str] = {}
    for board_id, timers in (("nano33", list(TimerKind)), ("esp32cam", [TimerKind.INSTRUCTIONS])):
        for timer in timers:
            folder = _bench(tmp_path / f"{board_id}-{timer.name}", board_id, timer)
            manifest = json.loads((folder / "run.json").read_text())
            written[f"{board_id}/{timer.name}"] = manifest["latency_source"]
    assert written["nano33/INSTRUCTIONS"] == "estimated"  # what QEMU runs write
    documented = _documented("latency_source")
    assert set(written.values()) <= documented, written
    assert "instructions" not in documented  # no run writes it since the latency block exists
