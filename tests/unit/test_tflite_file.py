"""The TF-free model reader, checked against the MLPerf Tiny reference model's published facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ModelError
from harness.link.messages import DType
from harness.models.tflite_file import ModelInfo
from harness.paths import reference_models_dir
from harness.skip_groups import REFERENCE_MODELS, needs


@pytest.fixture(scope="module")
def mlperf_int8() -> Path:
    ref = reference_models_dir()
    if ref is None or not (ref / "mlperf_tiny_vww_96_int8.tflite").exists():
        pytest.skip(needs(REFERENCE_MODELS,
                          "MLPerf Tiny reference model not found (../shared/reference/models)"))
    return ref / "mlperf_tiny_vww_96_int8.tflite"


def test_reference_model_facts(mlperf_int8: Path) -> None:
    info = ModelInfo.from_file(mlperf_int8)
    # sha256 and size from ../shared/reference/README.md
    assert info.sha256 == "597a384c8c2c8a1276f04702f25013b7838f2f814f1ca7c174d295b73e3d6b7b"
    assert info.size == 333_288
    (inp,) = info.inputs
    assert inp.dtype is DType.INT8 and inp.shape == (1, 96, 96, 3)
    assert inp.zero_point == -128 and inp.scale == pytest.approx(1 / 255)
    (out,) = info.outputs
    assert out.shape == (1, 2)
    # MobileNetV1 0.25 at 96x96: 14 conv-like layers + pool + FC + softmax
    assert info.ops_used == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX",
    ]
    assert sum(1 for layer in info.layers if layer.op == "DEPTHWISE_CONV_2D") == 13
    # MLPerf Tiny lists the VWW model at about 7.5 M MACs.
    assert 7.4e6 < info.total_macs < 7.6e6
    info.require_int8_io()


def test_float_model_is_refused_with_one_line() -> None:
    ref = reference_models_dir()
    if ref is None or not (ref / "mlperf_tiny_vww_96_float.tflite").exists():
        pytest.skip(needs(REFERENCE_MODELS, "MLPerf Tiny float reference model not found"))
    info = ModelInfo.from_file(ref / "mlperf_tiny_vww_96_float.tflite")
    with pytest.raises(ModelError, match="float32 input"):
        info.require_int8_io()


def test_truncated_and_foreign_files_are_model_errors(tmp_path: Path, mlperf_int8: Path) -> None:
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(mlperf_int8.read_bytes()[:5000])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        ModelInfo.from_file(truncated)
    text = tmp_path / "notes.tflite"
    text.write_text("not a model at all")
    with pytest.raises(ModelError, match="not a TensorFlow Lite flatbuffer"):
        ModelInfo.from_file(text)
    with pytest.raises(ModelError, match="does not exist"):
        ModelInfo.from_file(tmp_path / "absent.tflite")


def test_a_cut_off_model_is_one_line_without_the_readers_struct_error(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from deploy_tiny_model import write_tiny_model

    data = write_tiny_model(tmp_path / "whole.tflite", 0).read_bytes()
    cut = tmp_path / "cut.tflite"
    for keep in (8, 37, len(data) // 4, len(data) // 2, len(data) - 1):
        cut.write_bytes(data[:keep])
        with pytest.raises(ModelError) as err:
            ModelInfo.from_file(cut)
        message = str(err.value)
        assert message.startswith(f"{cut} is truncated or corrupt: it has {keep:,} bytes but its contents")
        assert "\n" not in message and "struct" not in message and "unpack_from" not in message
