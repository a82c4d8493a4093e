"""The run report: its sections, its statements, its escaping and its bad-input behaviour."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.report.html import CHECK_SCRIPT
from harness.report.run_report import ReportOptions, write_report
from harness.report.synth import SynthSpec, write_run

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", html, flags=re.S)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("rep")
    run = write_run(root, SynthSpec(n=260, seed=2, missing_images=260))
    return _text(write_report(run))


def test_every_section_is_present(report: str) -> None:
    for sid in ("summary", "classification", "latency", "layers", "memory", "agreement",
                "fairness", "gallery", "errors", "provenance"):
        assert f'id="{sid}"' in report, sid
    assert "could not be drawn" not in report
    assert 'id="problems"' not in report


def test_report_is_self_contained(report: str) -> None:
    assert "http://" not in report and "https://" not in report
    assert _scripts(report) == [CHECK_SCRIPT]
    srcs = re.findall(r'src="([^"]*)"', report)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert "default-src &#x27;none&#x27;" in report


def test_latency_is_labelled_with_its_source(report: str) -> None:
    assert "estimated by the simulator" in report
    assert "latency_source = estimated" in report


def test_fairness_names_the_underserved_group(report: str) -> None:
    # the synthetic "night" images are scored with less separation than "day" ones
    assert "sg_lighting = night is under-served compared with the majority group day" in report
    assert "sg_scene = outdoor is under-served" not in report


def test_missing_images_are_stated_not_fatal(report: str) -> None:
    assert "image not found" in report
    assert "could not be shown" in report


def test_threshold_for_target_fpr_is_reported(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=200, seed=4, images=False))
    html = _text(write_report(run, opts=ReportOptions(target_fpr=0.02)))
    assert "meets FPR \u2264 0.02" in html
    assert "FPR \u2264 0.02 at threshold" not in html  # that label lives inside the SVG plot


def test_no_subgroup_gap_when_groups_are_served_alike(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=300, seed=6, images=False, minority_share=0.0))
    html = _text(write_report(run))
    assert "No under-served group found." in html


def test_gallery_shows_thumbnails(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=200, seed=7, missing_images=0))
    html = _text(write_report(run))
    assert html.count('class="thumb"') >= 4
    assert "image not found" not in html


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=80, seed=8, model_name=EVIL, board="b<i>x",
                                        separation=0.3))
    table = pq.read_table(run / "results.parquet")
    n = table.num_rows
    table = table.set_column(table.schema.get_field_index("image_id"), "image_id",
                             pa.array([f"{EVIL}{i}" for i in range(n)]))
    table = table.set_column(table.schema.get_field_index("sg_scene"), "sg_scene",
                             pa.array([EVIL if i % 2 else "ok" for i in range(n)]))
    table = table.set_column(table.schema.get_field_index("error"), "error",
                             pa.array([EVIL] * n))
    pq.write_table(table, run / "results.parquet")
    m = json.loads((run / "run.json").read_text())
    m["device"]["firmware_version"] = EVIL
    m["dataset"]["path"] = EVIL
    (run / "run.json").write_text(json.dumps(m))
    html = _text(write_report(run))
    assert _scripts(html) == [CHECK_SCRIPT]
    assert "<img src=x" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_gallery_refuses_paths_leaving_the_dataset(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=120, seed=9, separation=0.3))
    table = pq.read_table(run / "results.parquet")
    table = table.set_column(table.schema.get_field_index("path"), "path",
                             pa.array(["../../../../etc/passwd"] * table.num_rows))
    pq.write_table(table, run / "results.parquet")
    html = _text(write_report(run))
    assert "path leaves the data set folder" in html


def test_damaged_run_still_gets_a_report(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=60, seed=10, images=False))
    data = (run / "results.parquet").read_bytes()
    (run / "results.parquet").write_bytes(data[:200])
    html = _text(write_report(run))
    assert 'id="problems"' in html and "results.parquet is unreadable" in html
    assert "No labelled, successful rows" in html
    assert 'id="memory"' in html  # the manifest's sections are still drawn


def test_empty_run_report(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=0, images=False))
    html = _text(write_report(run))
    assert "empty run" in html
    assert "could not be drawn" not in html


def test_report_out_path(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=40, seed=11, images=False))
    out = tmp_path / "elsewhere"
    out.mkdir()
    assert write_report(run, out) == out / "report.html"
    assert (out / "report.html").is_file()


def test_latency_from_cycles_when_older_runs_lack_microseconds(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=50, seed=12, images=False, latency_ms=100.0,
                                        latency_jitter=0.0))
    table = pq.read_table(run / "results.parquet").drop(["latency_us"])
    pq.write_table(table, run / "results.parquet")
    html = _text(write_report(run))
    assert "no &#x27;latency_us&#x27; column" in html
    assert "100.000 ms" in html  # p50 from cycles / 64 MHz


def _memory_bars(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list, str]:
    """The memory bars the report draws (label, used, limit) and the page's text."""
    from harness.report import plots

    drawn: list = []
    real = plots.memory_bars

    def spy(bars, *a, **k):  # type: ignore[no-untyped-def]
        drawn.extend(bars)
        return real(bars, *a, **k)

    monkeypatch.setattr(plots, "memory_bars", spy)
    return drawn, _text(write_report(run_dir))


def _with_device_memory(run_dir: Path, **extra: int) -> None:
    meta = json.loads((run_dir / "run.json").read_text())
    meta["memory"].update(extra)
    (run_dir / "run.json").write_text(json.dumps(meta))


# what the QEMU firmware answers MEMORY with: the mps2-an386's 4 MiB, 163.9 KiB of it in use
QEMU_MEMORY = {"device_ram_total": 4_190_208, "device_ram_free": 4_190_208 - 167_834,
               "device_flash_total": 4_194_304, "device_flash_used": 420_000}


def test_an_emulated_run_s_memory_is_judged_against_the_board(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 item 3: "RAM in use 163.9 KiB (4 % of 4,092 KiB)" on a nano33 QEMU run was the
    emulated machine's RAM; the board the run stands for has 256 KiB (about 64 %)."""
    run = write_run(tmp_path, SynthSpec(n=40, backend="qemu", board="nano33", images=False))
    _with_device_memory(run, ram_bytes=262_144, flash_bytes=1_048_576, **QEMU_MEMORY)
    bars, page = _memory_bars(run, monkeypatch)
    ram = next(b for b in bars if b.label.startswith("RAM in use"))
    assert ram.limit == 262_144 and round(ram.used / ram.limit, 2) == 0.64
    assert "nano33" in ram.label
    flash = next(b for b in bars if b.label.startswith("whole image in flash"))
    assert flash.limit == 1_048_576
    assert "emulated machine (qemu), not the nano33" in page


def test_a_board_s_own_memory_totals_are_its_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_run(tmp_path, SynthSpec(n=40, backend="serial", board="nano33", images=False))
    _with_device_memory(run, device_ram_total=262_144, device_ram_free=100_000)
    bars, page = _memory_bars(run, monkeypatch)
    ram = next(b for b in bars if b.label.startswith("RAM in use"))
    assert ram.label == "RAM in use (device)" and ram.limit == 262_144
    assert "emulated machine" not in page
