"""Transfer learning from the MLPerf Keras backbone, the scratch-vs-transfer comparison, sweeps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.errors import ModelError
from harness.paths import reference_models_dir
from harness.skip_groups import REFERENCE_MODELS, TENSORFLOW, needs

pytestmark = pytest.mark.tensorflow
pytest.importorskip("tensorflow", reason=needs(TENSORFLOW, "not installed (pip install -e .[train])"))


@pytest.fixture(scope="module")
def backbone() -> Path:
    ref = reference_models_dir()
    if ref is None or not (ref / "mlperf_tiny_vww_96.h5").is_file():
        pytest.skip(needs(REFERENCE_MODELS,
                          "MLPerf Tiny Keras backbone not found (../shared/reference/models)"))
    return ref / "mlperf_tiny_vww_96.h5"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.data.synth import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("data") / "synth", 48, seed=1, size=32, workers=1)


def test_copied_backbone_reproduces_the_reference_model(backbone: Path) -> None:
    """All 13 blocks + the classifier copied by position give the published float model's outputs."""
    from ai_edge_litert.interpreter import Interpreter

    from harness.models.mobilenet import ArchConfig, build_mobilenet_v1
    from harness.models.transfer import copy_backbone, read_backbone

    arch = ArchConfig()
    model = build_mobilenet_v1(arch)
    info = copy_backbone(model, backbone, arch, 13)
    assert info["copied_layers"] == 2 + 4 * 13
    dense = [layer for layer in read_backbone(backbone) if layer.kind == "dense"][0]
    model.get_layer("classifier").set_weights(dense.weights)

    x = np.random.default_rng(0).random((2, 96, 96, 3), dtype=np.float32)
    ours = model.predict(x, verbose=0)
    ref = Interpreter(model_path=str(backbone.parent / "mlperf_tiny_vww_96_float.tflite"))
    ref.allocate_tensors()
    for i in range(2):
        ref.set_tensor(ref.get_input_details()[0]["index"], x[i : i + 1])
        ref.invoke()
        theirs = ref.get_tensor(ref.get_output_details()[0]["index"])[0]
        np.testing.assert_allclose(ours[i], theirs, atol=1e-4)


def test_mismatched_backbones_are_refused(backbone: Path, tmp_path: Path) -> None:
    import keras

    from harness.models.mobilenet import ArchConfig, build_mobilenet_v1
    from harness.models.transfer import copy_backbone

    wide = ArchConfig(alpha=0.5, resolution=32, blocks=2)
    with pytest.raises(ModelError, match="does not match the requested architecture") as err:
        copy_backbone(build_mobilenet_v1(wide), backbone, wide, 2)
    assert "\n" not in str(err.value)

    inp = keras.Input((32, 32, 3))
    other = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    other.save(tmp_path / "other.keras")
    small = ArchConfig(resolution=32, blocks=2)
    with pytest.raises(ModelError, match="not a matching MobileNetV1|does not match"):
        copy_backbone(build_mobilenet_v1(small), tmp_path / "other.keras", small, 2)


def test_transfer_training_freezes_copied_blocks(backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    import keras

    from harness.models.transfer import read_backbone

    out = tmp_path / "transfer"
    rc = main(["train", "--data", str(tiny_data), "--out", str(out), "--resolution", "32",
               "--blocks", "3", "--epochs", "1", "--batch-size", "16",
               "--backbone", str(backbone), "--freeze-blocks", "2"])  # fmt: skip
    assert rc == 0
    record = json.loads((out / "training_log.json").read_text())
    assert record["mode"] == "transfer" and record["transfer"]["copied_blocks"] == 2
    model = keras.models.load_model(out / "model.keras", compile=False)
    src = [layer for layer in read_backbone(backbone) if layer.kind != "dense"]
    # block 2's pointwise conv is layer 2 + 4 + 2 of the backbone: copied, frozen, unchanged
    np.testing.assert_array_equal(model.get_layer("block2_pw").get_weights()[0], src[8].weights[0])
    # block 3 was trained from a fresh start: it cannot equal the backbone's block 3
    assert model.get_layer("block3_pw").get_weights()[0].shape == src[12].weights[0].shape
    assert not np.array_equal(model.get_layer("block3_pw").get_weights()[0], src[12].weights[0])


def test_compare_scratch_and_transfer(backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    rc = main(["train-compare", "--data", str(tiny_data), "--out", str(out), "--resolution", "32",
               "--blocks", "2", "--epochs", "1", "--batch-size", "16", "--fractions", "1,0.5",
               "--backbone", str(backbone), "--freeze-blocks", "1"])  # fmt: skip
    assert rc == 0
    rows = json.loads((out / "compare.json").read_text())
    assert [(r["fraction"], r["mode"]) for r in rows] == [
        (1.0, "scratch"), (1.0, "transfer"), (0.5, "scratch"), (0.5, "transfer"),
    ]  # fmt: skip
    full, half = rows[0]["train_images"], rows[2]["train_images"]
    assert half < full and rows[2]["images_seen"] == half
    assert all(0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1 for r in rows)


def test_sweep_reports_points_that_fit_no_board(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.paths import boards_dir

    boards = tmp_path / "boards"
    boards.mkdir()
    text = (boards_dir() / "nano33.toml").read_text()
    text = text.replace('id = "nano33"', 'id = "minuscule"').replace(
        "flash_bytes = 1_048_576", "flash_bytes = 330_000"
    )
    (boards / "minuscule.toml").write_text(text)
    shutil.copytree(boards_dir() / "calibration", boards / "calibration")  # the fitted cost model it names
    monkeypatch.setenv("HIL_BOARDS_DIR", str(boards))
    out = tmp_path / "sweep"
    rc = main(["sweep", "--data", str(tiny_data), "--out", str(out), "--alphas", "0.25",
               "--resolutions", "32", "--colours", "rgb,gray", "--epochs", "1",
               "--blocks", "2"])  # fmt: skip
    assert rc == 0
    points = json.loads((out / "sweep.json").read_text())
    assert [p["colour"] for p in points] == ["rgb", "gray"]
    for p in points:
        assert p["error"] is None, p["error"]
        assert p["fits"] == {"minuscule": False} and p["latency_ms"]["minuscule"] > 0
    assert (out / "pareto.png").stat().st_size > 1000
    assert "fits" in (out / "sweep.csv").read_text().splitlines()[0]


def test_fine_tune_unfreezes_everything(backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    import keras

    from harness.models.transfer import read_backbone

    out = tmp_path / "ft"
    rc = main(["train", "--data", str(tiny_data), "--out", str(out), "--resolution", "32",
               "--blocks", "2", "--epochs", "1", "--batch-size", "16", "--backbone", str(backbone),
               "--freeze-blocks", "1", "--fine-tune-epochs", "1"])  # fmt: skip
    assert rc == 0
    record = json.loads((out / "training_log.json").read_text())
    assert [row["stage"] for row in record["history"]] == ["transfer", "fine-tune"]
    assert record["images_seen"] == 2 * record["data"]["train_images"]
    model = keras.models.load_model(out / "model.keras", compile=False)
    src = [layer for layer in read_backbone(backbone) if layer.kind != "dense"]
    # block 1 was copied and frozen, then fine-tuned: it has moved away from the backbone
    assert not np.array_equal(model.get_layer("block1_pw").get_weights()[0], src[4].weights[0])


def test_keras_mobilenet_and_grayscale_backbones(tmp_path: Path) -> None:
    """Keras' own MobileNet (no conv biases) seeds our layers; an RGB stem seeds a grey one."""
    import keras

    from harness.models.mobilenet import ArchConfig, build_mobilenet_v1
    from harness.models.transfer import copy_backbone

    src = keras.applications.MobileNet(alpha=0.25, weights=None, input_shape=(96, 96, 3), include_top=False)
    src.save(tmp_path / "mobilenet.keras")
    gray = ArchConfig(resolution=32, channels=1, blocks=2)
    model = build_mobilenet_v1(gray)
    copy_backbone(model, tmp_path / "mobilenet.keras", gray, 2)
    kernel, bias = model.get_layer("stem_conv").get_weights()
    np.testing.assert_allclose(kernel[:, :, 0, :], src.get_layer("conv1").kernel.numpy().sum(axis=2))
    assert not bias.any()
    np.testing.assert_array_equal(
        model.get_layer("block2_pw").get_weights()[0], src.get_layer("conv_pw_2").kernel.numpy()
    )
