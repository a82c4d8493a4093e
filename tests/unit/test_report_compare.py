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
    expand_runs,
    figures,
    latency_shift,
    pareto_front,
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
    assert lines[1].split() == ["#", "run", "model", "board/backend", "n", "accuracy", "(95", "%", "CI)",
                                "FPR", "FNR", "p50", "ms", "p90", "ms", "p99", "ms", "latency", "arena",
                                "used", "B", "model", "B"]
    assert [ln.split()[0] for ln in lines[2:5]] == ["1", "2", "3"]
    assert all(ln.split()[-3] == "estimated" for ln in lines[2:5])  # the latency column
    assert lines[5].startswith("latency of #1, #2, #3: estimated by the simulator's cost model")
    assert lines[6] == "Differences against run #1"
    diffs = {ln.split()[0] + " " + ln.split()[2]: ln for ln in lines[8:]}
    assert "ms estimated (" in diffs["#3 #1"] and "slower" in diffs["#3 #1"]
    assert "within noise" in diffs["#2 #1"]
    page = result.path.read_text()
    for row in side_by_side(result.figures):  # the page has the same figures, with full labels
        assert row[5] in page and row[8] in page


def test_an_interrupted_run_is_named_before_its_figures(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    done = write_run(tmp_path, SynthSpec(n=80, seed=5, images=False))
    cut = write_run(tmp_path, SynthSpec(n=80, seed=6, images=False, status="interrupted"))
    result = compare([done, cut], tmp_path / "c.html")
    assert "run status is 'interrupted'" in html.unescape(result.path.read_text())
    with caplog.at_level("WARNING", logger="harness.report.compare"):
        result.print()
    assert any("interrupted" in r.getMessage() for r in caplog.records)
