"""Train -> convert -> analyze -> publish from the CLI, on a tiny synthetic set.

Tiny settings throughout (32x32 images, 3 blocks, one epoch): these tests check that
the pipeline is wired right and that its checks hold, not that the model is good.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.errors import ModelError
from harness.skip_groups import TENSORFLOW, needs

pytestmark = pytest.mark.tensorflow
tf = pytest.importorskip("tensorflow", reason=needs(TENSORFLOW, "not installed (pip install -e .[train])"))

BLOCKS = [(64, 1), (128, 2), (128, 1)]


def hand_macs(alpha: float, res: int, channels: int, blocks: list[tuple[int, int]]) -> int:
    size = math.ceil(res / 2)
    c = int(32 * alpha)
    macs = size * size * 9 * channels * c
    for filters, stride in blocks:
        size = math.ceil(size / stride)
        n = int(filters * alpha)
        macs += size * size * 9 * c + size * size * c * n
        c = n
    return macs + c * 2


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.data.synth import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("data") / "synth", 48, seed=1, size=32, workers=1)


@pytest.fixture(scope="module")
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "model"
    rc = main(["train", "--data", str(tiny_data), "--out", str(out), "--resolution", "32",
               "--blocks", "3", "--epochs", "1", "--batch-size", "16", "--seed", "3"])  # fmt: skip
    assert rc == 0
    return out


def test_training_writes_model_and_log(trained: Path) -> None:
    record = json.loads((trained / "training_log.json").read_text())
    assert (trained / "model.keras").is_file()
    assert record["mode"] == "scratch"
    n = record["data"]["train_images"]
    assert record["images_seen"] == n  # one epoch over the training split
    assert sum(record["data"]["train_class_counts"]) == n
    assert [row["epoch"] for row in record["history"]] == [1]
    lines = (trained / "epochs.jsonl").read_text().splitlines()
    assert len(lines) == 1 and "val_accuracy" in json.loads(lines[0])
    assert record["config"]["arch"]["blocks"] == 3


def test_convert_analyze_publish(
    trained: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.models.analysis import analyze
    from harness.models.tflite_file import ModelInfo

    assert main(["convert", str(trained), "--data", str(tiny_data), "--check-images", "4"]) == 0
    report = json.loads((trained / "convert_report.json").read_text())
    assert report["tflm_identical"] == report["tflm_checked_images"] == 4
    assert report["tflm_max_abs_diff"] == 0
    assert 0.0 <= report["int8_val_accuracy"] <= 1.0
    tflite = trained / "model_int8.tflite"
    info = ModelInfo.from_file(tflite)
    spec = info.inputs[0]
    assert spec.shape == (1, 32, 32, 3)
    assert spec.zero_point == -128 and spec.scale == pytest.approx(1 / 255)  # uint8 pixel - 128
    a = analyze(tflite)
    assert a.total_macs == hand_macs(0.25, 32, 3, BLOCKS)
    assert len(a.pairs) == 3 and all(p.agrees for p in a.pairs)
    assert a.arena_bytes and a.arena_bytes > 0

    zoo = tmp_path / "zoo"
    assert main(["publish", str(trained), "--data", str(tiny_data), "--name", "tiny-test",
                 "--zoo", str(zoo)]) == 0  # fmt: skip
    card = (zoo / "tiny_test" / "MODEL_CARD.md").read_text()
    assert "synthetic" in card and "95 % Wilson interval" in card
    capsys.readouterr()


def test_qat_conversion(trained: Path, tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "qat.tflite"
    rc = main(["convert", str(trained), "--data", str(tiny_data), "--qat-epochs", "1",
               "--out", str(out), "--check-images", "2"])  # fmt: skip
    assert rc == 0 and out.is_file()
    report = json.loads((tmp_path / "convert_report.json").read_text())
    assert report["qat_epochs"] == 1 and report["tflm_identical"] == 2


def test_family_parameters() -> None:
    from harness.models.mobilenet import ArchConfig, HeadConfig, build_mobilenet_v1

    for alpha in (0.1, 0.35, 0.6):  # none of these has ImageNet weights
        arch = ArchConfig(alpha=alpha, resolution=40, channels=1, blocks=2)
        m = build_mobilenet_v1(arch)
        assert m.input_shape == (None, 40, 40, 1)
        assert m.get_layer("block2_pw").kernel.shape[-1] == int(128 * alpha)
    head = HeadConfig(pool="global", dropout=0.2, hidden=16)
    m = build_mobilenet_v1(ArchConfig(resolution=32, blocks=1, head=head))
    assert m.get_layer("head_hidden").units == 16 and m.output_shape == (None, 2)
    with pytest.raises(Exception, match="alpha must be positive"):
        ArchConfig(alpha=0)


def _convert_keras(model: object, rep_shape: tuple[int, ...], path: Path) -> Path:
    from harness.models.convert import _quiet_native

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.random(rep_shape, dtype=np.float32)] for _ in range(4))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    with _quiet_native():
        path.write_bytes(conv.convert())
    return path


def test_bad_models_are_one_line(tmp_path: Path) -> None:
    import keras

    from harness.models.analysis import analyze

    inp = keras.Input((10,), batch_size=1)
    vector = _convert_keras(keras.Model(inp, keras.layers.Dense(2)(inp)), (1, 10),
                            tmp_path / "vector.tflite")  # fmt: skip
    with pytest.raises(ModelError, match="is not an image"):
        analyze(vector, arena=False)

    img = keras.Input((8, 8, 3), batch_size=1)
    tiled = keras.layers.Lambda(lambda x: tf.tile(x, [1, 2, 1, 1]))(img)
    tile = _convert_keras(keras.Model(img, keras.layers.Conv2D(2, 1)(tiled)), (1, 8, 8, 3),
                          tmp_path / "tile.tflite")  # fmt: skip
    with pytest.raises(ModelError, match="TFLM lacks: TILE"):
        analyze(tile, arena=False)


TF_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "port.cc:")


@pytest.mark.slow
def test_tensorflow_noise_is_dropped_and_errors_pass(tmp_path: Path) -> None:
    """A real TensorFlow import in a pipe: its absl/oneDNN lines go, other stderr stays."""
    code = ("import logging, os\n"
            "from harness.models.tf_noise import quiet_tensorflow\n"
            "quiet_tensorflow()\n"
            "import tensorflow as tf\n"
            "tf.keras.Sequential([tf.keras.layers.Input((4,)), tf.keras.layers.Dense(1)])\n"
            "os.write(2, b'E0000 00:00:1.5   7 x.cc:1] a real TensorFlow error\\n')\n"
            "logging.getLogger('harness').warning('our own warning')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    assert not any(n in proc.stderr for n in TF_NOISE), proc.stderr
    assert "a real TensorFlow error" in proc.stderr and "our own warning" in proc.stderr


@pytest.mark.slow
def test_training_in_a_pipe_shows_progress_and_no_tensorflow_noise(tiny_data: Path,
                                                                   tmp_path: Path) -> None:
    """``hil train`` with its output piped (as in CI): progress lines, none of TF's log."""
    argv = [sys.executable, "-m", "harness.cli", "train", "--data", str(tiny_data), "--out",
            str(tmp_path / "m"), "--resolution", "32", "--blocks", "1", "--epochs", "1"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "HIL_PROGRESS_EVERY": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not any(n in proc.stderr for n in TF_NOISE), proc.stderr
    progress = [ln for ln in proc.stderr.splitlines() if ln.startswith("hil: ")]
    assert any(ln.startswith("hil: loading TensorFlow and synth") for ln in progress), proc.stderr
    assert any(ln.startswith("hil: train scratch: ") for ln in progress), proc.stderr
    assert "trained scratch model" in proc.stdout
