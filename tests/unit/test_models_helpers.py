"""Pure helpers of training and sweeps: splits, balancing, images seen, Pareto front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.errors import ConfigError, DataError
from harness.models.arrays import Arrays, load_splits, stratified_fraction, stratified_split
from harness.models.mobilenet import ArchConfig
from harness.models.sweep import SweepGrid, pareto_front
from harness.models.training import TrainConfig, _images_seen, _oversample, class_weights


def _arrays(labels: list[int]) -> Arrays:
    y = np.asarray(labels)
    return Arrays(np.arange(len(y))[:, None, None, None].astype(np.uint8), y)


def test_stratified_split_keeps_both_classes_and_is_seeded() -> None:
    arr = _arrays([0] * 30 + [1] * 10)
    keep, take = stratified_split(arr, 0.2, seed=5)
    assert take.class_counts() == [6, 2] and keep.class_counts() == [24, 8]
    assert not set(keep.x.ravel()) & set(take.x.ravel())
    again, _ = stratified_split(arr, 0.2, seed=5)
    np.testing.assert_array_equal(keep.x, again.x)
    tiny = stratified_fraction(arr, 0.01, seed=0)
    assert tiny.class_counts() == [1, 1]  # at least one image of each class


def test_balancing() -> None:
    y = np.asarray([0] * 30 + [1] * 10)
    w = class_weights(y, 2)
    assert w[0] * 30 == pytest.approx(w[1] * 10)  # each class carries the same total weight
    over = _oversample(_arrays(y.tolist()), seed=0)
    assert over.class_counts() == [30, 30]


def test_images_seen_counts_short_last_batches() -> None:
    # 100 images, batch 32: 4 batches per epoch, the last one of 4 images
    assert _images_seen({"batches": 4}, 100, 32) == 100
    assert _images_seen({"batches": 9}, 100, 32) == 232


def test_pareto_front() -> None:
    pts = [(10.0, 0.8), (20.0, 0.9), (15.0, 0.7), (30.0, 0.9), (5.0, 0.6)]
    assert pareto_front(pts) == [0, 1, 4]


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        ArchConfig(channels=2)
    with pytest.raises(ConfigError):
        ArchConfig(resolution=16)
    with pytest.raises(ConfigError):
        TrainConfig(freeze_blocks=3)  # freezing needs a backbone
    with pytest.raises(ConfigError):
        TrainConfig(train_fraction=0)
    with pytest.raises(ConfigError):
        SweepGrid(alphas=[0.25], resolutions=[96], colours=["cmyk"])
    assert len(SweepGrid([0.25, 0.5], [64, 96], ["rgb", "gray"]).archs()) == 8


def _image_folder(root: Path, person: int, no_person: int) -> Path:
    for name, n in (("person", person), ("non_person", no_person)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (20, 20), (40 * i, 90, 200)).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize("person,no_person", [(2, 1), (1, 1), (3, 2)])
def test_train_on_too_few_images_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], person: int, no_person: int
) -> None:
    """A set without named splits needs three images of each class (train, val, test)."""
    data = tmp_path / "set"
    assert main(["data", "import", str(_image_folder(tmp_path / "src", person, no_person)),
                 "--out", str(data), "--size", "32"]) == 0
    capsys.readouterr()
    argv = ["train", "--data", str(data), "--resolution", "32", "--blocks", "1", "--epochs", "1",
            "--out", str(tmp_path / "model")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hil train: error:")
    assert f"{person} person and {no_person} no-person image(s)" in err and "at least 3 of each class" in err
    assert not (tmp_path / "model").exists()


def test_a_train_split_without_val_needs_two_of_each_class(tmp_path: Path) -> None:
    data = tmp_path / "set"
    assert main(["data", "synth", "--n", "3", "--size", "16", "--splits", "1", "--out", str(data)]) == 0
    with pytest.raises(DataError, match="split 'train' has .* needs at least 2 of each class"):
        load_splits(data, 16, 3)


def test_convert_says_what_is_wrong_with_a_file_that_is_not_keras(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .tflite (already converted) or any other file: one line naming what it is, not "ValueError"."""
    from deploy_tiny_model import write_tiny_model

    kws = write_tiny_model(tmp_path / "kws.tflite")
    assert main(["convert", str(kws)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kws.tflite is a TFLite model, already converted" in err
    assert "hil bench --model" in err
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    assert main(["convert", str(notes)]) == 2
    assert "notes.txt is not a Keras model (.keras or .h5)" in capsys.readouterr().err
