"""``hil bench`` from the outside: one-line errors, exit codes, Ctrl-C, no TensorFlow."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_fakes import UNIT_DIR, make_image_folder, tiny_model

from harness.bench.store import read_results


def _hil(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child with the fake backend registered (it is not a real backend)."""
    code = (
        f"import sys; sys.path.insert(0, {str(UNIT_DIR)!r}); import bench_fakes\n"
        "from harness.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **(env or {})),
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode not in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hil bench: error: ")
    return lines[0]


def test_missing_port_is_one_line(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "data", 2)
    model = tiny_model(tmp_path)
    proc = _hil(
        "bench",
        "--port",
        str(tmp_path / "no-such-tty"),
        "--model",
        str(model),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "runs"),
        cwd=tmp_path,
        timeout=60,
    )
    line = _one_error_line(proc)
    assert "no-such-tty" in line


def test_not_a_model_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"hello")
    data = make_image_folder(tmp_path / "data", 2)
    proc = _hil("bench", "--backend", "fake", "--model", str(junk), "--data", str(data), cwd=tmp_path)
    assert "not a TensorFlow Lite flatbuffer" in _one_error_line(proc)


def test_missing_data_and_bad_limit_are_one_line(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    proc = _hil(
        "bench", "--backend", "fake", "--model", str(model), "--data", str(tmp_path / "nothing"), cwd=tmp_path
    )
    assert "data set folder not found" in _one_error_line(proc)
    proc = _hil("bench", "--backend", "fake", "--model", str(model), "--limit", "0", cwd=tmp_path)
    assert "--limit must be at least 1" in _one_error_line(proc)


def test_unknown_resume_is_one_line(tmp_path: Path) -> None:
    proc = _hil(
        "bench", "--resume", "20260101T000000Z-nano33-sim-abcdef", "--out", str(tmp_path), cwd=tmp_path
    )
    assert "no run '20260101T000000Z-nano33-sim-abcdef' to resume" in _one_error_line(proc)


def test_corrupt_image_is_an_error_row_and_the_run_exits_5(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "data", 4, corrupt=(1,))
    model = tiny_model(tmp_path)
    proc = _hil(
        "bench",
        "--backend",
        "fake",
        "--model",
        str(model),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "runs"),
        "--quiet",
        cwd=tmp_path,
    )
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr == "hil bench: 1 of 4 images failed (error rows in the run folder)\n"
    assert "images   4 measured, 3 ok, 1 errors" in proc.stdout
    assert "latency  (estimated)" in proc.stdout
    folder = Path(proc.stdout.strip().splitlines()[-1].removeprefix("run folder: "))
    assert (folder / "summary.txt").read_text() in proc.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_interrupt_saves_rows_and_resume_finishes(tmp_path: Path, signum: int) -> None:
    data = make_image_folder(tmp_path / "data", 40)
    model = tiny_model(tmp_path)
    runs = tmp_path / "runs"
    code = (
        f"import sys; sys.path.insert(0, {str(UNIT_DIR)!r}); import bench_fakes\n"
        "from harness.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "bench",
            "--backend",
            "fake",
            "--model",
            str(model),
            "--data",
            str(data),
            "--out",
            str(runs),
            "--quiet",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, BENCH_FAKE_DELAY_S="0.05"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list(runs.glob("*/.pending.jsonl")) if runs.is_dir() else []
        if found and found[0].read_text().count("\n") >= 3:
            break
        assert child.poll() is None, child.communicate()
        time.sleep(0.02)
    child.send_signal(signum)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("hil bench: interrupted: ") and "rows saved in" in lines[0]
    command = shlex.split(lines[0].split("; resume with ", 1)[1])
    assert command[:3] == ["hil", "bench", "--resume"] and command[4:] == ["--out", str(runs)]
    run_id = command[3]
    saved = int(lines[0].split("interrupted: ")[1].split(" ")[0])
    table = read_results(runs / run_id)
    assert table is not None and table.num_rows == saved >= 3
    # the printed command, exactly as printed (from the same folder), finishes the run
    proc = _hil(*command[1:], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    table = read_results(runs / run_id)
    assert table is not None and sorted(table.column("image_id").to_pylist()) == [
        f"img_{i:05d}" for i in range(40)
    ]


@pytest.mark.parametrize(
    "module", ["harness.cli", "harness.bench.cli", "harness.bench.api", "harness.devices.sim"]
)
def test_bench_path_does_not_import_tensorflow(module: str) -> None:
    code = (
        f"import sys, importlib; m = importlib.import_module({module!r})\n"
        "import harness.bench.runner, harness.bench.reference\n"
        "from harness.cli import build_parser; build_parser()\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 and "No module named 'harness.devices.sim'" in proc.stderr:
        pytest.skip("harness.devices.sim is not available")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_a_model_with_other_classes_is_told_about_person_index(tmp_path: Path) -> None:
    """A 3-class model: the refusal names the option that fixes it, and the option works."""
    from deploy_tiny_model import write_tiny_model

    data = make_image_folder(tmp_path / "data", 3)
    model = write_tiny_model(tmp_path / "three.tflite", classes=3)
    base = ["bench", "--backend", "fake", "--model", str(model), "--data", str(data),
            "--out", str(tmp_path / "runs"), "--quiet"]
    line = _one_error_line(_hil(*base, cwd=tmp_path))
    assert "first output has 3 values" in line and "--person-index N" in line
    line = _one_error_line(_hil(*base, "--person-index", "3", cwd=tmp_path))
    assert "--person-index 3 is outside its 3 outputs (0..2)" in line
    proc = _hil(*base, "--person-index", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip().splitlines()[-1].removeprefix("run folder: "))
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["settings"]["person_index"] == 2 and manifest["request"]["person_index"] == 2
    table = read_results(folder)
    assert table is not None
    scores, outputs = table.column("score").to_pylist(), table.column("output_f").to_pylist()
    assert scores == pytest.approx([out[2] for out in outputs])


def test_person_index_picks_the_score_of_a_two_class_model(tmp_path: Path) -> None:
    """A [person, no person] model: --person-index 0 makes output 0 the score."""
    data = make_image_folder(tmp_path / "data", 3)
    model = tiny_model(tmp_path)
    proc = _hil("bench", "--backend", "fake", "--model", str(model), "--data", str(data),
                "--out", str(tmp_path / "runs"), "--quiet", "--person-index", "0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip().splitlines()[-1].removeprefix("run folder: "))
    table = read_results(folder)
    assert table is not None
    scores, outputs = table.column("score").to_pylist(), table.column("output_f").to_pylist()
    assert scores == pytest.approx([out[0] for out in outputs])


def _complete_run(tmp_path: Path, *extra: str) -> tuple[Path, dict[str, object]]:
    data = make_image_folder(tmp_path / "data", 6)
    model = tiny_model(tmp_path)
    proc = _hil("bench", "--backend", "fake", "--model", str(model), "--data", str(data),
                "--out", str(tmp_path / "runs"), "--quiet", *extra, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip().splitlines()[-1].removeprefix("run folder: "))
    return folder, json.loads((folder / "run.json").read_text())


def test_resume_of_a_complete_run_says_so_and_leaves_it_alone(tmp_path: Path) -> None:
    folder, before = _complete_run(tmp_path)
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    time.sleep(1.1)  # a rewrite would move finished_utc by at least a second
    proc = _hil("bench", "--resume", folder.name, "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout == (f"hil bench: run {folder.name} is already complete (6 images, finished "
                           f"{before['finished_utc']}); nothing to resume: {folder}\n")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files


@pytest.mark.parametrize(("first", "again", "kept"), [
    ((), "5", "no --limit, every image"),
    (("--limit", "4"), "2", "--limit 4"),
])
def test_resume_with_another_limit_is_refused(tmp_path: Path, first: tuple[str, ...], again: str,
                                              kept: str) -> None:
    folder, _ = _complete_run(tmp_path, *first)
    proc = _hil("bench", "--resume", folder.name, "--out", str(tmp_path / "runs"), "--limit", again,
                cwd=tmp_path)
    line = _one_error_line(proc)
    assert proc.returncode == 2
    assert line == (f"hil bench: error: --limit {again} does not go with --resume: the run continues as "
                    f"it was started ({kept}); start a new run to measure a different number of images")
