"""Code generation: the model array, the op resolver and the config header, checked by g++."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from deploy_tiny_model import write_tiny_model  # noqa: E402

from harness.boards import load_board  # noqa: E402
from harness.deploy import codegen  # noqa: E402
from harness.deploy.tflm_ops import ADD_METHODS, resolver_methods  # noqa: E402
from harness.errors import FitError, ModelError  # noqa: E402
from harness.models.tflite_file import ModelInfo  # noqa: E402
from harness.paths import reference_models_dir  # noqa: E402
from harness.skip_groups import REFERENCE_MODELS, needs, tools_missing

GXX = shutil.which("g++") or ""


@pytest.fixture()
def tiny(tmp_path: Path) -> ModelInfo:
    return ModelInfo.from_file(write_tiny_model(tmp_path / "tiny.tflite"))


def _array_bytes(source: str) -> bytes:
    body = source.split("g_vww_model[] = {", 1)[1].split("};", 1)[0]
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))


def test_plan_arena_adds_headroom_and_aligns() -> None:
    small = codegen.plan_arena(1000)
    assert small.size >= 1000 + codegen.ARENA_MARGIN_MIN and small.size % 16 == 0
    big = codegen.plan_arena(100_000)
    assert big.size >= 100_000 * (1 + codegen.ARENA_MARGIN_FRACTION) and big.size % 16 == 0
    assert big.size - 100_000 < 100_000 * codegen.ARENA_MARGIN_FRACTION + 16
    with pytest.raises(ModelError):
        codegen.plan_arena(0)


def test_unknown_op_is_one_line_model_error() -> None:
    assert resolver_methods(["CONV_2D", "CONV_2D", "SOFTMAX"]) == ["AddConv2D", "AddSoftmax"]
    with pytest.raises(ModelError, match="^op CUSTOM:Foo has no TFLM kernel$"):
        resolver_methods(["CONV_2D", "CUSTOM:Foo"])


def test_generate_tiny_model(tmp_path: Path, tiny: ModelInfo) -> None:
    board = load_board("nano33")
    arena = codegen.measure_arena(tiny)
    assert arena.measured > 0 and arena.size > arena.measured
    out = codegen.generate(tiny, board, tmp_path / "fw", arena)
    files = {p.name: p.read_text() for p in out.files}
    assert set(files) == {"model_data.h", "model_data.cpp", "model_ops.h", "model_config.h"}
    assert "alignas(16) const uint8_t g_vww_model[]" in files["model_data.cpp"]
    assert _array_bytes(files["model_data.cpp"]) == tiny.data
    calls = re.findall(r"r\.(Add\w+)\(\)", files["model_ops.h"])
    assert calls == ["AddConv2D", "AddReshape", "AddFullyConnected", "AddSoftmax"]
    assert "MicroMutableOpResolver<kOpCount>" in files["model_ops.h"]
    assert "kOpCount = 4;" in files["model_ops.h"]
    cfg = files["model_config.h"]
    assert f"kArenaSize = {arena.size};" in cfg
    assert "kInputBytes = 64;" in cfg and 'kFitBoard[] = "nano33"' in cfg
    sha = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", cfg.split("kModelSha256", 1)[1]))
    assert sha.hex() == tiny.sha256


def test_fit_is_checked_before_writing(tmp_path: Path, tiny: ModelInfo) -> None:
    nano = load_board("nano33")
    board = dataclasses.replace(nano, ram_bytes=nano.ram_reserved_bytes + 4_464)  # 4,464 B for the arena
    with pytest.raises(FitError, match="does not fit nano33: RAM: arena 5,536 B") as exc:
        codegen.generate(tiny, board, tmp_path / "fw", codegen.plan_arena(1432))
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "fw").exists()


def _syntax_check(tmp_path: Path, generated: Path, checks: str) -> None:
    probe = tmp_path / "probe.cpp"
    probe.write_text(f'#include "model_config.h"\n#include "model_data.h"\n{checks}\n')
    for src in (probe, generated / "model_data.cpp"):
        proc = subprocess.run(
            [GXX, "-std=c++17", "-fsyntax-only", "-Wall", "-Werror", "-I", str(generated), str(src)],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.skipif(not GXX, reason=tools_missing(["g++"]))
def test_generated_sources_compile(tmp_path: Path, tiny: ModelInfo) -> None:
    out = codegen.generate(tiny, load_board("nano33"), tmp_path / "fw", codegen.plan_arena(1432))
    checks = f"""
static_assert(vww_generated::kArenaSize % 16 == 0, "arena alignment");
static_assert(vww_generated::kArenaSize == {out.arena.size}, "arena size");
static_assert(vww_generated::kInputBytes == 64, "input size");
static_assert(vww_generated::kModelSha256[0] == 0x{tiny.sha256[:2]}, "sha256");
static_assert(sizeof(vww_generated::kModelSha256) == 32, "sha256 length");
"""
    _syntax_check(tmp_path, out.directory, checks)


def test_every_mapped_method_follows_tflm_naming() -> None:
    for op, method in ADD_METHODS.items():
        assert method.startswith("Add") and method[3].isupper(), op


@pytest.mark.skipif(not GXX, reason=tools_missing(["g++"]))
def test_mlperf_reference_model(tmp_path: Path) -> None:
    ref = reference_models_dir()
    if ref is None or not (ref / "mlperf_tiny_vww_96_int8.tflite").exists():
        pytest.skip(needs(REFERENCE_MODELS,
                          "MLPerf Tiny reference model not found (../shared/reference/models)"))
    model = ModelInfo.from_file(ref / "mlperf_tiny_vww_96_int8.tflite")
    arena = codegen.measure_arena(model)
    # The MLPerf Tiny VWW model needs roughly 100 KB of arena on a 32-bit target.
    assert 60_000 < arena.measured < 160_000
    out = codegen.generate(model, load_board("nano33"), tmp_path / "fw", arena)
    ops_h = (out.directory / "model_ops.h").read_text()
    assert re.findall(r"r\.(Add\w+)\(\)", ops_h) == [
        "AddConv2D", "AddDepthwiseConv2D", "AddAveragePool2D", "AddReshape",
        "AddFullyConnected", "AddSoftmax",
    ]
    assert _array_bytes((out.directory / "model_data.cpp").read_text()) == model.data
    _syntax_check(tmp_path, out.directory,
                  "static_assert(vww_generated::kInputBytes == 96 * 96 * 3, \"input\");")


def test_committed_sources_match_the_shipped_model() -> None:
    from harness.models.zoo import DEFAULT_MODEL, entry_file, get_entry
    from harness.paths import firmware_dir

    config = firmware_dir() / codegen.GENERATED_SUBDIR / codegen.CONFIG_H
    if not config.is_file():
        pytest.skip("no generated sources in the firmware tree")
    try:
        model = ModelInfo.from_file(entry_file(get_entry(DEFAULT_MODEL)))
    except ModelError as exc:
        pytest.skip(f"shipped model not available: {exc}")
    sha_text = config.read_text().split("kModelSha256", 1)[1]
    sha = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", sha_text))
    assert sha.hex() == model.sha256, (
        "firmware/src/generated/ is stale: regenerate with "
        "`HIL_NO_REFERENCE=1 hil build --board nano33 --no-compile`"
    )
    ops_h = (firmware_dir() / codegen.GENERATED_SUBDIR / codegen.OPS_H).read_text()
    assert re.findall(r"r\.(Add\w+)\(\)", ops_h) == resolver_methods(model.ops_used)
