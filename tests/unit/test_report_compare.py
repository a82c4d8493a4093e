"""Comparison report: Pareto front, significance of differences, run selection."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pytest

from harness.errors import DataError
from harness.report.compare import (
    compare,
    differences,
    different_data_warning,
    expand_runs,
    figures,
    latency_shift,
    mixed_sources_warning,
    pareto_front,
    pareto_groups,
    run_to_run_noise,
    side_by_side,
    write_comparison,
)
from harness.report.synth import SynthSpec, write_run
from harness.results import load_run


def test_pareto_front_keeps_only_undominated_points() -> None:
    pts = [(100.0, 0.80), (50.0, 0.85), (200.0, 0.90), (60.0, 0.70), (math.nan, 0.99)]
    assert pareto_front(pts) == {1, 2}


def test_pareto_front_ties_are_kept() -> None:
    assert pareto_front([(10.0, 0.5), (10.0, 0.5)]) == {0, 1}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("cmp")
    return [
        write_run(root, SynthSpec(n=400, seed=1, images=False, latency_ms=180)),
        write_run(root, SynthSpec(n=400, seed=2, images=False, latency_ms=181)),
        write_run(root, SynthSpec(n=400, seed=3, images=False, latency_ms=240, separation=0.6,
                                  board="esp32cam", model_name="worse")),
    ]


def test_latency_shift_against_noise(runs: list[Path]) -> None:
    a, b, c = (figures(load_run(r)) for r in runs)
    noise = run_to_run_noise([a, b, c])
    assert set(noise) == {("vww_96_025", "nano33", "sim")}
    same = latency_shift(a, b, noise, k=3)
    assert not same.significant and same.basis == "run-to-run spread"
    slow = latency_shift(a, c, noise, k=3)
    assert slow.significant and slow.delta_ms == pytest.approx(60, rel=0.05)


def test_comparison_page(runs: list[Path], tmp_path: Path) -> None:
    out = write_comparison(runs, tmp_path / "c.html")
    html = out.read_text()
    assert "Runs side by side" in html and "Pareto plot" in html
    assert html.count('class="plot"') == 3  # pareto, arena bars, flash bars
    rows = html.split("Differences against run #1")[1]
    assert "#2 vs #1" in rows and "#3 vs #1" in rows
    assert "worse" in rows and "slower" in rows and "within noise" in rows


def test_expand_globs_and_ids(runs: list[Path]) -> None:
    got = expand_runs([str(runs[0].parent / "2026*"), str(runs[0])])
    assert sorted(got) == sorted(runs)  # the repeat is dropped
    with pytest.raises(DataError, match="no run folders match"):
        expand_runs([str(runs[0].parent / "zzz*")])


def test_single_run_comparison_says_so(runs: list[Path], tmp_path: Path) -> None:
    html = write_comparison(runs[:1], tmp_path / "one.html").read_text()
    assert "One run only" in html


def test_figures_fall_back_to_manifest_metrics(tmp_path: Path) -> None:
    run = write_run(tmp_path, SynthSpec(n=100, seed=4, images=False))
    (run / "results.parquet").unlink()
    f = figures(load_run(run))
    assert f.accuracy.n == 96 and not np.isnan(f.pct["p50"])


def test_figures_agree_with_the_run_json_metrics(runs: list[Path]) -> None:
    """The DataFrame path (harness.results) gives the bench's own accuracy and p50."""
    run = load_run(runs[0])
    f = figures(run)
    assert f.accuracy.value == pytest.approx(run.metrics["accuracy"], abs=1e-6)
    assert f.accuracy.n == run.metrics["n_ok"]
    assert f.pct["p50"] == pytest.approx(run.metrics["latency_us_p50"] / 1000, rel=1e-6)


def test_console_tables_match_the_page_and_name_every_latency_source(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = compare(runs, tmp_path / "c.html")
    capsys.readouterr()
    result.print()  # pytest's capture is not a terminal: aligned plain text
    out = capsys.readouterr().out
    assert "\x1b" not in out and "┃" not in out
    lines = out.splitlines()
    assert lines[0] == "Runs side by side"
    assert lines[1].split() == ["#", "run", "model", "data", "set", "board/backend", "n", "accuracy", "(95",
                                "%", "CI)", "FPR", "FNR", "p50", "ms", "p90", "ms", "p99", "ms", "latency",
                                "arena", "used", "B", "model", "B"]
    assert [ln.split()[0] for ln in lines[2:5]] == ["1", "2", "3"]
    assert all(ln.split()[-3] == "estimated" for ln in lines[2:5])  # the latency column
    assert lines[5].startswith("latency of #1, #2, #3: estimated by the simulator's cost model")
    assert lines[6] == "Differences against run #1"
    diffs = {ln.split()[0] + " " + ln.split()[2]: ln for ln in lines[8:]}
    assert "ms estimated (" in diffs["#3 #1"] and "slower" in diffs["#3 #1"]
    assert "within noise" in diffs["#2 #1"]
    page = result.path.read_text()
    for row in side_by_side(result.figures):  # the page has the same figures, with full labels
        assert row[3] in page and row[6] in page and row[9] in page


def test_an_interrupted_run_is_named_before_its_figures(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    done = write_run(tmp_path, SynthSpec(n=80, seed=5, images=False))
    cut = write_run(tmp_path, SynthSpec(n=80, seed=6, images=False, status="interrupted"))
    result = compare([done, cut], tmp_path / "c.html")
    assert "run status is 'interrupted'" in html.unescape(result.path.read_text())
    with caplog.at_level("WARNING", logger="harness.report.compare"):
        result.print()
    assert any("interrupted" in r.getMessage() for r in caplog.records)


def _edit(run: Path, **changes: object) -> Path:
    """Change top-level run.json entries of a synthetic run (its data set, backend, latency block)."""
    import json

    meta = json.loads((run / "run.json").read_text())
    meta.update(changes)
    (run / "run.json").write_text(json.dumps(meta))
    return run


SMOKE = {"path": "/data/smoke", "name": "smoke", "sha256": "ef" * 32, "count": 21, "synthetic": True}


def test_runs_on_different_data_are_shown_apart_and_never_ranked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20 item 5: a 400-image run "worse" than the 21-image smoke run, an interrupted
    run "better", no data set column, one Pareto front."""
    a = write_run(tmp_path, SynthSpec(n=400, seed=1, images=False))
    b = write_run(tmp_path, SynthSpec(n=400, seed=2, images=False, separation=0.5))
    smoke = _edit(write_run(tmp_path, SynthSpec(n=21, seed=3, images=False, separation=5.0)), dataset=SMOKE)
    cut = write_run(tmp_path, SynthSpec(n=400, seed=4, images=False, separation=6.0, status="interrupted"))
    result = compare([a, b, smoke, cut], tmp_path / "c.html")
    figs = result.figures
    rows = side_by_side(figs)
    synth = "synthetic-vww cdcdcdcd"
    assert [r[3] for r in rows] == [synth, synth, "smoke efefefef", synth]
    assert "interrupted: not ranked" in rows[3][1]
    diffs = {r[0]: r for r in differences(figs, 3.0)}
    assert diffs["#2 vs #1"][2] == "worse"  # same data: ranked
    assert "#3 vs #1" not in diffs and diffs["#3"][2] == "no earlier run on smoke efefefef: not compared"
    assert diffs["#4 vs #1"][2] == "not ranked: #4 is interrupted"  # not "better"
    assert diffs["#4 vs #1"][5] == "not ranked: #4 is interrupted"
    groups = pareto_groups(figs)
    assert [(t, idx) for t, idx, _ in groups] == [
        ("synthetic-vww cdcdcdcd, estimated latency", [0, 1, 3]), ("smoke efefefef, estimated latency", [2])]
    assert 3 not in groups[0][2]  # the interrupted run is on no front
    page = html.unescape(result.path.read_text())
    assert "Runs on different data: synthetic-vww cdcdcdcd (#1, #2, #4); smoke efefefef (#3)" in page
    assert "Differences against the first run on the same data" in page
    assert page.count('alt="Pareto plot"') == 2
    with caplog.at_level("WARNING", logger="harness.report.compare"):
        result.print()
    assert any("Runs on different data" in r.getMessage() for r in caplog.records)


def test_a_limit_is_different_data(tmp_path: Path) -> None:
    a = write_run(tmp_path, SynthSpec(n=40, seed=1, images=False))
    b = write_run(tmp_path, SynthSpec(n=40, seed=2, images=False))
    _edit(b, settings={"threshold": 0.5, "split": "val", "limit": 48})
    figs = [figures(load_run(r)) for r in (a, b)]
    assert figs[1].data_text == "synthetic-vww cdcdcdcd first 48"
    assert different_data_warning(figs) is not None


QEMU_BASIS = {"timer": "instructions", "kind": "estimated", "estimated": True, "count_unit": "instructions",
              "time_unit": "us", "source": "QEMU", "cpi": 1.2,
              "label": "estimated from QEMU instruction counts x CPI 1.2"}
HOST_BASIS = {"timer": "host_clock", "kind": "measured", "estimated": False, "count_unit": "ns",
              "time_unit": "us", "source": "host clock", "label": "measured (host clock)", "cpi": None}


def test_latencies_of_different_kinds_are_not_ranked(tmp_path: Path) -> None:
    """Issue 20 item 6: QEMU-counted vs sim-estimated "slower (+8.1 %)", host clock "faster"."""
    sim = write_run(tmp_path, SynthSpec(n=100, seed=1, images=False, latency_ms=451))
    qemu = _edit(write_run(tmp_path, SynthSpec(n=100, seed=1, images=False, latency_ms=488)),
                 backend="qemu", latency=QEMU_BASIS)
    native = _edit(write_run(tmp_path, SynthSpec(n=100, seed=1, images=False, latency_ms=3)),
                   backend="native", latency=HOST_BASIS)
    figs = [figures(load_run(r)) for r in (sim, qemu, native)]
    assert [f.latency_kind for f in figs] == ["estimated", "counted", "host clock"]
    diffs = {r[0]: r for r in differences(figs, 3.0)}
    assert diffs["#2 vs #1"][3:] == ("\u2014", "\u2014", "not comparable: estimated vs counted")
    assert diffs["#3 vs #1"][5] == "not comparable: estimated vs host clock"
    warn = mixed_sources_warning(figs)
    assert warn is not None and "estimated: #1; counted: #2; host clock: #3" in warn
    assert len(pareto_groups(figs)) == 3  # one front per kind


def test_no_difference_is_no_verdict_when_the_noise_is_zero(tmp_path: Path) -> None:
    """A deterministic device (zero noise): "0.000 ms ... slower" must read "no difference"."""
    a = write_run(tmp_path, SynthSpec(n=60, seed=1, images=False, latency_ms=180, latency_jitter=0.0))
    same = write_run(tmp_path, SynthSpec(n=60, seed=1, images=False, latency_ms=180.00002,
                                         latency_jitter=0.0, board="esp32cam"))
    slower = write_run(tmp_path, SynthSpec(n=60, seed=1, images=False, latency_ms=190, latency_jitter=0.0,
                                           board="esp32cam", model_name="other"))
    figs = [figures(load_run(r)) for r in (a, same, slower)]
    assert figs[0].p50_se == 0 and 0 < figs[1].pct["p50"] - figs[0].pct["p50"] < 0.0005
    diffs = {r[0]: r for r in differences(figs, 3.0)}
    assert diffs["#2 vs #1"][5] == "no difference" and diffs["#2 vs #1"][3].startswith("0.000 ms")
    assert diffs["#3 vs #1"][5] == "slower"


def test_a_rounding_residue_of_noise_is_no_reason_for_a_verdict(tmp_path: Path) -> None:
    """The sim's estimates vary by a rounding residue (noise ~1e-6 ms): a 0.007 ms shift of a
    486 ms p50 is below what the tables resolve and read "faster" before; now "no difference"."""
    a = write_run(tmp_path, SynthSpec(n=60, seed=1, images=False, latency_ms=486.1, latency_jitter=1e-6))
    b = write_run(tmp_path, SynthSpec(n=60, seed=1, images=False, latency_ms=486.093, latency_jitter=1e-6,
                                      board="esp32cam"))
    figs = [figures(load_run(r)) for r in (a, b)]
    assert figs[0].p50_se > 0 or figs[1].p50_se > 0
    row = differences(figs, 3.0)[0]
    assert row[5] == "no difference", row
