"""Reports and nightly on run folders written by the real bench runner on the sim board."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    api = pytest.importorskip("harness.bench.api", reason="the bench runner is not there yet")
    out = tmp_path_factory.mktemp("bench")
    try:
        return Path(api.run_bench(api.BenchRequest(board="nano33", backend="sim", out_dir=out / "runs",
                                                limit=12), quiet=True))
    except HarnessError as exc:
        pytest.skip(f"hil bench cannot run on the sim board here: {exc}")


def test_report_on_a_real_run(bench_run: Path) -> None:
    from harness.report.run_report import write_report
    from harness.report.runs import load_run

    run = load_run(bench_run)
    assert run.problems == [], run.problems
    html = write_report(bench_run).read_text()
    assert "could not be drawn" not in html
    assert f"latency_source = {run.latency_source}" in html


def test_nightly_with_the_real_runner(bench_run: Path, tmp_path: Path) -> None:
    from harness.report.nightly import run_nightly

    matrix = tmp_path / "m.toml"
    matrix.write_text('[nightly]\nlimit = 8\n[matrix]\nmodels = ["default"]\n'
                      'boards = ["nano33"]\nbackends = ["sim"]\n')
    res = run_nightly(matrix, tmp_path / "hist")
    assert [o.status for o in res.outcomes] == ["ok"], [o.reason for o in res.outcomes]
    assert res.exit_code == 0
    assert res.outcomes[0].row is not None and res.outcomes[0].row["accuracy"] is not None
