"""Every latency figure says what it is: measured, counted instructions, or an estimate.

A run whose device counts instructions (QEMU -icount) must never show a time in ms/us/s
without the word "estimated" on the console, in run.json, the HTML report, JUnit or
OpenMetrics; a run on a cycle counter still shows measured milliseconds.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from bench_fakes import CYCLES, InProcessDevice, make_image_folder, tiny_model

from harness.bench.api import bench_on_device
from harness.boards import load_board
from harness.link.messages import TimerKind
from harness.report.ci_outputs import junit, openmetrics
from harness.report.history import FIELDS
from harness.report.matrix import Cell, Matrix
from harness.report.records import CellOutcome
from harness.report.regress import Check
from harness.report.run_report import write_report

TIME = re.compile(r"\d(?:[.,]\d+)?\s*(?:ms|µs|us|s)\b")


def _bench(tmp_path: Path, board_id: str, timer: TimerKind) -> Path:
    board = load_board(board_id)
    device = InProcessDevice(board, tiny_model(tmp_path / "models"), timer=timer, clock_hz=25_000_000)
    return bench_on_device(
        device, board=board, backend="fake", model=device.model_path,
        dataset=make_image_folder(tmp_path / "data", 4), out_dir=tmp_path / "runs",
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
