"""The real firmware (TFLM + CMSIS-NN) on the emulated boards: native (host g++) and QEMU.

``hil bench --backend native|qemu --model M`` builds the same C++ the boards run, with M
compiled in, and benchmarks it over the protocol: these tests hold it to what a board
would report (engine "tflm", outputs equal to the host reference, a per-layer profile,
the arena the device measured) and check the builds' refusals. The TFLM library build is
slow the first time (minutes) and cached by its inputs afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.boards import load_board
from harness.errors import HarnessError
from harness.models.zoo import reference_model_file
from harness.skip_groups import REFERENCE_MODELS, TFLM_TREE, needs, tools_missing

TOOLS = {
    "native": ("cmake", "g++"),
    "qemu": ("cmake", "arm-none-eabi-g++", "qemu-system-arm"),
}
#: QEMU uploads through an emulated UART; a handful of images keeps the test short.
IMAGES = {"native": 12, "qemu": 3}


def _tree_or_skip() -> None:
    from harness.deploy.tflm_tree import find_tree

    try:
        find_tree()
    except HarnessError as exc:
        pytest.skip(needs(TFLM_TREE, str(exc)))


def _tools_or_skip(target: str) -> None:
    missing = [t for t in TOOLS[target] if shutil.which(t) is None]
    if missing:
        pytest.skip(tools_missing(missing))


def _reference_or_skip() -> Path:
    path = reference_model_file()
    if path is None:
        pytest.skip(needs(REFERENCE_MODELS,
                          "MLPerf Tiny reference model not found (../shared/reference/models or "
                          "the model cache)"))
    return path


def _hil(*args: str, cwd: Path, timeout: float = 1800,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode not in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("target", ["native", "qemu"])
def test_bench_runs_the_real_firmware_with_the_reference_model(target: str, tmp_path: Path) -> None:
    _tools_or_skip(target)
    _tree_or_skip()
    model = _reference_or_skip()
    proc = _hil("bench", "--backend", target, "--model", str(model), "--limit", str(IMAGES[target]),
                "--out", str(tmp_path / "runs"), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_json,) = (tmp_path / "runs").glob("*/run.json")
    m = json.loads(run_json.read_text())
    assert m["status"] == "complete" and m["backend"] == target
    assert m["device"]["engine"] == "tflm"
    assert m["device"]["model_sha256"] == m["model"]["sha256"]
    assert m["metrics"]["n_ok"] == IMAGES[target]
    # the firmware's TFLM gives exactly the host reference kernels' outputs (at most a
    # softmax rounding step, as TFLM in-process does)
    assert m["metrics"]["host_max_abs_diff_q"] <= 1
    assert m["metrics"]["host_mismatches"] == 0
    assert m["memory"]["arena_used"] > 50_000
    layers = m["profile"]
    assert len(layers) >= 10 and all(int(p["cycles"]) > 0 for p in layers)
    fw = m["firmware"]
    assert fw["tflm"]["version"] == "2.0.0" and len(fw["tflm"]["checksum"]) == 64
    assert fw["model_sha256"] == m["model"]["sha256"]
    if target == "qemu":
        assert m["device"]["timer"] == "instructions"
        # counted instructions, and a board latency that says it is an estimate and from what
        assert m["latency"]["count_unit"] == "instructions" and m["latency"]["estimated"]
        assert "QEMU instruction counts" in m["latency"]["source"]
        assert 15e6 < m["metrics"]["instructions_p50"] < 40e6
        assert fw["elf"]["flash"] > 300_000
        # the firmware's port is named in run.json and in the summary (semihosting by default)
        assert fw["port"].startswith("semihosting console")
        from harness.bench.summary import format_summary

        assert "port     semihosting console" in format_summary(m)
    else:
        assert m["device"]["timer"] == "host_clock"


def test_a_cached_image_is_reused_and_never_for_another_model(tmp_path: Path) -> None:
    _tools_or_skip("native")
    _tree_or_skip()
    from harness.deploy.tflm_build import build_image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from bench_fakes import tiny_model

    reference = _reference_or_skip()
    board = load_board("nano33")
    first = build_image("native", reference, board)
    again = build_image("native", reference, board)
    assert again.cached and again.path == first.path
    other = build_image("native", tiny_model(tmp_path), board)
    assert other.path != first.path and other.model_sha256 != first.model_sha256
    eembc = build_image("native", reference, board, protocol="eembc")
    assert eembc.path != first.path and eembc.model_sha256 == first.model_sha256


def test_a_missing_tflm_tree_is_one_line(tmp_path: Path) -> None:
    _tools_or_skip("native")
    model = _reference_or_skip()
    proc = _hil("bench", "--backend", "native", "--model", str(model), "--limit", "1", "--quiet",
                "--out", str(tmp_path / "runs"), cwd=tmp_path, timeout=300,
                env={"HIL_TFLM_DIR": str(tmp_path / "nowhere")})
    line = _one_error_line(proc)
    assert "no TFLM tree at" in line and "Chirale_TensorFLowLite 2.0.0" in line


def test_a_missing_cross_compiler_is_one_line(tmp_path: Path) -> None:
    _tree_or_skip()
    model = _reference_or_skip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cmake", "qemu-system-arm"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    proc = _hil("bench", "--backend", "qemu", "--model", str(model), "--limit", "1", "--quiet",
                "--out", str(tmp_path / "runs"), cwd=tmp_path, timeout=300,
                env={"PATH": f"{bin_dir}:{Path(sys.executable).parent}"})
    line = _one_error_line(proc)
    assert "arm-none-eabi-gcc is not installed" in line and "gcc-arm-none-eabi" in line


def _model_with_an_op_tflm_lacks(path: Path) -> Path:
    """The tiny deploy model with its RESHAPE relabelled LSH_PROJECTION (no TFLM kernel)."""
    import flatbuffers
    from tflite_micro.python.tflite_micro import runtime

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from deploy_tiny_model import tiny_int8_model_bytes

    fb = runtime.schema_fb
    model = runtime.convert_bytearray_to_object(bytearray(tiny_int8_model_bytes()))
    for code in model.operatorCodes:
        if code.builtinCode == fb.BuiltinOperator.RESHAPE:
            code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.LSH_PROJECTION
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def test_a_model_with_ops_the_tree_lacks_is_refused_before_building(tmp_path: Path) -> None:
    _tools_or_skip("native")
    _tree_or_skip()
    from harness.deploy.tflm_tree import find_tree

    tree = find_tree()
    with pytest.raises(HarnessError, match="does not have"):
        tree.check_ops(["AddConv2D", "AddNoSuchKernel"], "a model")
    odd = _model_with_an_op_tflm_lacks(tmp_path / "odd.tflite")
    proc = _hil("bench", "--backend", "native", "--model", str(odd), "--limit", "1", "--quiet",
                "--out", str(tmp_path / "runs"), cwd=tmp_path, timeout=300)
    assert "LSH_PROJECTION" in _one_error_line(proc)


def test_the_board_sketch_compiles_with_the_wiring_the_emulators_run(tmp_path: Path) -> None:
    """main.cpp (PlatformIO) and the emulator mains share src/vww_app.h; the sketch must compile
    against it and the same TFLM headers (Arduino.h stubbed: only the wiring is checked)."""
    _tools_or_skip("native")
    _tree_or_skip()
    from harness.deploy.tflm_tree import find_tree
    from harness.paths import firmware_dir

    src = find_tree().src
    (tmp_path / "Arduino.h").write_text("#pragma once\n")
    fw = firmware_dir()
    proc = subprocess.run(
        ["g++", "-std=gnu++17", "-fsyntax-only", "-Wall", "-Werror", "-DARDUINO", "-DVWW_TFLM_BARE_METAL",
         f"-I{tmp_path}", f"-I{fw / 'src'}", f"-I{fw / 'lib/vww_core/include'}",
         f"-I{fw / 'lib/vww_tflm/include'}", "-isystem", str(src),
         "-isystem", str(src / "third_party/flatbuffers/include"), str(fw / "src/main.cpp")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def _padded_model(path: Path, pad_bytes: int) -> Path:
    """The tiny deploy model with ``pad_bytes`` of unused buffer: too big, nothing else wrong."""
    import flatbuffers
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from deploy_tiny_model import tiny_int8_model_bytes

    model = runtime.convert_bytearray_to_object(bytearray(tiny_int8_model_bytes()))
    pad = runtime.schema_fb.BufferT()
    pad.data = np.zeros(pad_bytes, dtype=np.uint8)
    model.buffers.append(pad)
    builder = flatbuffers.Builder(pad_bytes + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


@pytest.mark.parametrize("backend", ["sim", "native", "qemu"])
def test_a_model_too_large_for_the_board_exits_2_on_every_backend(tmp_path: Path, backend: str) -> None:
    """The README's promise: a model too large for the board is a user's error, exit 2, on any backend."""
    if backend != "sim":
        _tools_or_skip(backend)
        _tree_or_skip()
    big = _padded_model(tmp_path / "big.tflite", 1_200_000)
    proc = _hil("bench", "--backend", backend, "--model", str(big), "--limit", "1", "--quiet",
                "--out", str(tmp_path / "runs"), cwd=tmp_path, timeout=300)
    line = _one_error_line(proc)
    assert proc.returncode == 2, proc.stderr
    assert "big.tflite does not fit nano33" in line and "flash" in line
    assert not (tmp_path / "runs").exists()


def test_a_model_too_big_for_the_board_or_the_memory_map_is_refused(tmp_path: Path) -> None:
    _tools_or_skip("qemu")
    _tree_or_skip()
    from harness.deploy.tflm_build import build_image

    board = load_board("nano33")
    big = _padded_model(tmp_path / "big.tflite", 1_200_000)
    proc = _hil("bench", "--backend", "qemu", "--model", str(big), "--limit", "1", "--quiet",
                "--out", str(tmp_path / "runs"), cwd=tmp_path, timeout=300)
    assert "does not fit nano33" in _one_error_line(proc)
    # counting work (hil calibrate) needs only QEMU's 4 MiB: 1.2 MB passes that check,
    # 5 MB does not, and neither reaches the compiler
    huge = _padded_model(tmp_path / "huge.tflite", 5_000_000)
    with pytest.raises(HarnessError, match="does not fit the qemu memory map"):
        build_image("qemu", huge, board, fit_board=False)
