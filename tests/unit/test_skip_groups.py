"""The run's last lines say which third-party groups were skipped, read from the skip reasons.

The summary is checked on a real pytest run in a child process (with this package's
plugin, as ``.ci/run`` has it), on a small test file whose skips carry the tags the
project's tests use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.skip_groups import (
    ARM_COMPILER,
    MLPERF_RUNNER,
    QEMU,
    TFLM_TREE,
    groups_of,
    needs,
    needs_from_message,
    summary_line,
    tools_missing,
)

TESTS = '''
import pytest
from harness.skip_groups import needs, tools_missing

@pytest.mark.parametrize("n", range(3))
def test_firmware(n):
    pytest.skip(needs("TFLM tree", "no TFLM tree found (HIL_TFLM_DIR unset)"))

def test_qemu_image():
    pytest.skip(tools_missing(["qemu-system-arm", "arm-none-eabi-g++"]))

@pytest.mark.skipif(True, reason=needs("MLPerf Tiny runner", "HIL_MLPERF_TINY_RUNNER unset"))
def test_runner():
    pass

def test_ordinary_skip():
    pytest.skip("host clock timings vary")

def test_runs():
    assert True
'''


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_tiny.py").write_text(TESTS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, "test_tiny.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)


def test_the_last_lines_name_the_skipped_groups_with_their_counts(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "-ra")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    # the very end: the groups line, then pytest's own counts
    assert "1 passed, 6 skipped" in lines[-1]
    assert lines[-2] == ("NOT RUN for want of third-party code or tools: TFLM tree (3 tests), "
                         "ARM compiler (1 test), MLPerf Tiny runner (1 test), QEMU (1 test) "
                         "(README: Optional third-party pieces)")
    assert "host clock" not in lines[-2]
    assert sum("NOT RUN for want" in line for line in lines) == 1


def test_a_run_that_skipped_nothing_for_want_of_tools_says_so(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "-q", "-k", "runs or ordinary")
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == "third-party code and tools: no test skipped for want of them", proc.stdout


def test_tags_are_read_back_from_reasons() -> None:
    assert groups_of(needs(TFLM_TREE, "x")) == [TFLM_TREE]
    assert groups_of(tools_missing(["qemu-system-arm", "arm-none-eabi-gcc", "arm-none-eabi-g++"])) == [
        QEMU, ARM_COMPILER]
    assert groups_of("plain reason") == []
    # a harness error's one line is tagged by what it names, once
    line = needs_from_message("native via native: no TFLM tree found (HIL_TFLM_DIR unset)")
    assert groups_of(line) == [TFLM_TREE] and groups_of(needs_from_message(line)) == [TFLM_TREE]
    assert summary_line([needs(MLPERF_RUNNER, "a"), "b"]).count("(1 test)") == 1
