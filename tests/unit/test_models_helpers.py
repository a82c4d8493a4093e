"""Pure helpers of training and sweeps: splits, balancing, images seen, Pareto front."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.models.arrays import Arrays, stratified_fraction, stratified_split
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
