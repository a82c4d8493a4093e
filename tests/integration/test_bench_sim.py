"""The runner and ``hil bench`` on the real simulated board (TFLM in a child process)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

UNIT_DIR = Path(__file__).resolve().parents[1] / "unit"
sys.path.insert(0, str(UNIT_DIR))

from bench_fakes import make_image_folder, tiny_model  # noqa: E402

from harness.bench.api import run_bench  # noqa: E402
from harness.bench.request import BenchRequest  # noqa: E402
from harness.bench.store import load_run  # noqa: E402
from harness.models.zoo import reference_model_file  # noqa: E402
from harness.skip_groups import REFERENCE_MODELS, needs  # noqa: E402

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("harness.devices.sim") is None, reason="harness.devices.sim is not available yet"
)


def _hil(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode not in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _shipped_model() -> Path:
    from harness.errors import HarnessError
    from harness.models.zoo import resolve_model

    try:
        return resolve_model("vww-default")
    except HarnessError as exc:
        pytest.skip(f"no shipped default model: {exc}")


def test_sim_run_matches_host_reference(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "data", 6, corrupt=(2,), size=(128, 96))
    folder = run_bench(BenchRequest(model=str(_shipped_model()), data=str(data), out_dir=tmp_path / "runs"))
    run = load_run(folder)
    m = run.manifest
    assert m["status"] == "complete" and m["backend"] == "sim"
    assert m["latency_source"] == "estimated"
    assert m["device"]["engine"] != "test-double"
    assert m["metrics"]["n_ok"] == 5
    # TFLM and LiteRT's reference kernels may round a softmax output one step apart, never more
    assert m["metrics"]["host_max_abs_diff_q"] <= 1
    assert m["profile"] and all(p["cycles"] >= 0 for p in m["profile"])
    assert m["memory"]["arena_used"] > 0
    assert m["settings"]["warmups"] == 0
    assert (folder / "device.log").read_text().strip()
    cycles = [c for c in run.columns["cycles"] if c is not None]
    assert len(set(cycles)) == 1 and cycles[0] > 0  # an estimate: the same for every image


def test_model_too_large_is_the_sims_one_line_refusal(tmp_path: Path) -> None:
    import flatbuffers
    from tflite_micro.python.tflite_micro import runtime

    model = runtime.convert_bytearray_to_object(bytearray(tiny_model(tmp_path).read_bytes()))
    pad = runtime.schema_fb.BufferT()
    pad.data = np.zeros(1_200_000, dtype=np.uint8)
    model.buffers.append(pad)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    big = tmp_path / "big.tflite"
    big.write_bytes(bytes(builder.Output()))
    data = make_image_folder(tmp_path / "data", 2)
    proc = _hil(
        "bench", "--model", str(big), "--data", str(data), "--out", str(tmp_path / "runs"), cwd=tmp_path
    )
    line = _one_error_line(proc)
    assert "does not fit nano33" in line and "flash" in line
    assert not (tmp_path / "runs").exists()


def test_port_that_answers_garbage_is_one_line(tmp_path: Path) -> None:
    master, slave = os.openpty()
    stop = threading.Event()

    def babble() -> None:
        while not stop.is_set():
            try:
                os.write(master, b"AT+OK\r\nhello from a modem \x00\xff\x10" * 4)
            except OSError:
                return
            stop.wait(0.05)

    thread = threading.Thread(target=babble, daemon=True)
    thread.start()
    try:
        data = make_image_folder(tmp_path / "data", 2)
        proc = _hil(
            "bench",
            "--port",
            os.ttyname(slave),
            "--model",
            str(tiny_model(tmp_path)),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "runs"),
            cwd=tmp_path,
        )
    finally:
        stop.set()
        thread.join(timeout=5)
        os.close(master)
        os.close(slave)
    line = _one_error_line(proc)
    assert line.startswith("hil bench: error: ") and os.ttyname is not None


def test_mlperf_reference_model_on_the_sim(tmp_path: Path) -> None:
    model = reference_model_file()
    if model is None:
        pytest.skip(needs(REFERENCE_MODELS,
                          "MLPerf Tiny VWW reference model not found (../shared/reference/models)"))
    data = make_image_folder(tmp_path / "data", 3, size=(120, 90))
    proc = _hil(
        "bench",
        "--model",
        str(model),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "runs"),
        "--quiet",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "of 3 outputs differ from the host reference" in proc.stdout
    steps = re.search(r"by at most (\d+) quantisation step", proc.stdout)
    assert steps is None or int(steps.group(1)) <= 1
    assert "latency  (estimated)" in proc.stdout
