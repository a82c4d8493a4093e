"""The pytest plugin from the outside: options, skips without a board, failures with a bad port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HIL_TESTS = REPO / "tests" / "hil"


def _pytest(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_every_option_with_its_default() -> None:
    proc = _pytest("--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    for option in (
        "--board",
        "--backend",
        "--port",
        "--baud",
        "--model",
        "--dataset",
        "--hil-limit",
        "--min-accuracy",
        "--max-latency-ms",
    ):
        start = text.index(option + "=")
        assert "Default:" in text[start : start + 400], option


def test_board_without_hardware_skips_each_test_with_one_line() -> None:
    proc = _pytest(str(HIL_TESTS), "--board", "nano33")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    skips = [ln for ln in proc.stdout.splitlines() if ln.startswith("SKIPPED")]
    n_tests = sum(
        1 for ln in (HIL_TESTS / "test_hil_device.py").read_text().splitlines() if ln.startswith("def test_")
    )
    assert len(skips) == n_tests, proc.stdout
    assert all("no nano33 attached" in ln for ln in skips), proc.stdout
    assert "passed" not in proc.stdout.splitlines()[-1] and "failed" not in proc.stdout.splitlines()[-1]


def test_explicit_port_that_does_not_exist_fails_with_one_line(tmp_path: Path) -> None:
    proc = _pytest(
        str(HIL_TESTS / "test_hil_device.py::test_device_runs_the_expected_model"),
        "--board",
        "nano33",
        "--port",
        str(tmp_path / "ttyNONE"),
    )
    assert proc.returncode == 1
    assert "cannot open port" in proc.stdout and "Traceback" not in proc.stdout


def test_hardware_marker_skips_off_hardware(tmp_path: Path) -> None:
    test = tmp_path / "test_needs_board.py"
    test.write_text(
        "import pytest\n\n@pytest.mark.hardware\ndef test_real():\n    assert False\n\n"
        "@pytest.mark.emulator('renode-not-installed-here')\ndef test_emu():\n    assert False\n"
    )
    proc = _pytest(str(test), "--rootdir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout
    assert "needs a real board" in proc.stdout
    assert "emulator renode-not-installed-here is not installed" in proc.stdout
