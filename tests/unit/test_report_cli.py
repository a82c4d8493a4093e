"""``hil report``, ``hil compare`` and ``hil nightly`` through the real dispatcher."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.synth import SynthSpec, write_run


def test_report_command_writes_into_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    run = write_run(tmp_path, SynthSpec(n=60, images=False))
    assert main(["report", str(run), "--gallery", "0", "--target-fpr", "0.1"]) == 0
    assert capsys.readouterr().out.strip() == str(run / "report.html")
    assert "meets FPR \u2264 0.1" in (run / "report.html").read_text()


def test_report_on_missing_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hil report: error: no run folder at")


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--target-fpr", "2", "--target-fpr must be a rate between 0 and 1 (exclusive), not 2"),
    ("--target-fpr", "0", "--target-fpr must be a rate between 0 and 1 (exclusive), not 0"),
    ("--target-fpr", "1", "--target-fpr must be a rate between 0 and 1 (exclusive), not 1"),
    ("--gallery", "-1", "--gallery must be 0 (none) or more, not -1"),
])
def test_report_refuses_options_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             option: str, value: str, words: str) -> None:
    run = write_run(tmp_path, SynthSpec(n=30, images=False))
    assert main(["report", str(run), option, value]) == 2
    err = capsys.readouterr().err
    assert err == f"hil report: error: {words}\n"
    assert not (run / "report.html").exists()


def test_compare_command_with_glob(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for seed in (1, 2):
        write_run(tmp_path / "runs", SynthSpec(n=60, seed=seed, images=False))
    out = tmp_path / "cmp.html"
    assert main(["compare", str(tmp_path / "runs" / "2026*"), "--out", str(out)]) == 0
    assert "Comparison of 2 runs" in out.read_text()


def test_nightly_with_bad_matrix_is_one_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text("[nightly]\nbogus = 1\n")
    assert main(["nightly", "--matrix", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hil nightly: error: {bad}: unknown [nightly] keys: bogus"]


def test_cli_module_imports_no_heavy_libraries() -> None:
    code = ("import sys, argparse; import harness.report.cli as c; "
            "c.register(argparse.ArgumentParser().add_subparsers()); "
            "print(sorted(m for m in ('matplotlib', 'duckdb', 'pyarrow', 'tensorflow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert out == "[]"
