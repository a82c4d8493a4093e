"""Data sets as in-memory arrays for training, conversion and evaluation.

Training sets here are small (synthetic sets, or a few thousand VWW images at 96x96,
which is 27 KB each), so decoding every image once into a uint8 array is simpler and
faster on two cores than a streaming pipeline that decodes JPEGs every epoch. Pixels
stay uint8 until the model's input, where they become pixel / 255.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from harness.data.dataset import Dataset

log = logging.getLogger(__name__)


@dataclass
class Arrays:
    """Images (N, H, W, C) uint8 and labels (N,) int."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: np.ndarray) -> Arrays:
        return Arrays(self.x[idx], self.y[idx])

    def class_counts(self, num_classes: int = 2) -> list[int]:
        return [int((self.y == c).sum()) for c in range(num_classes)]


@dataclass
class Splits:
    train: Arrays
    val: Arrays
    test: Arrays | None
    source: str  # how the splits were made, for the training log and model card
    root: Path | None = None  # the data set folder


def resize_image(rgb: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """Resize an HxWx3 uint8 image to resolution x resolution x channels (bilinear)."""
    from PIL import Image

    img = Image.fromarray(rgb)
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.Resampling.BILINEAR)
    if channels == 1:
        return np.asarray(img.convert("L"), dtype=np.uint8)[..., None]
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_split(ds: Dataset, split: str | None, resolution: int, channels: int) -> Arrays:
    """Decode every sample of ``split`` of a :class:`harness.data.dataset.Dataset`."""
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for sample in ds.iter_samples(split=split):
        xs.append(resize_image(sample.load_rgb(), resolution, channels))
        ys.append(int(sample.label))
    if not xs:
        raise DataError(f"split {split!r} has no images")
    return Arrays(np.stack(xs), np.asarray(ys, dtype=np.int64))


def stratified_split(arr: Arrays, fraction: float, seed: int) -> tuple[Arrays, Arrays]:
    """Split off ``fraction`` of each class (at least one image each) as a second set."""
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    take: list[int] = []
    for c in np.unique(arr.y):
        idx = np.flatnonzero(arr.y == c)
        rng.shuffle(idx)
        n = max(1, int(round(len(idx) * fraction))) if len(idx) > 1 else 0
        take.extend(idx[:n].tolist())
        keep.extend(idx[n:].tolist())
    return (arr.subset(np.sort(np.asarray(keep, dtype=np.intp))),
            arr.subset(np.sort(np.asarray(take, dtype=np.intp))))


def stratified_fraction(arr: Arrays, fraction: float, seed: int) -> Arrays:
    """Keep ``fraction`` of each class (at least one image of each class)."""
    if fraction >= 1.0:
        return arr
    _, kept = stratified_split(arr, fraction, seed)
    return kept


def open_dataset(path: Path) -> Dataset:
    from harness.data.dataset import Dataset

    return Dataset.open(path)


def _require_per_class(arr: Arrays, minimum: int, what: str, splits: str) -> None:
    """Refuse, in one line, a set too small to give every split an image of both classes."""
    counts = arr.class_counts()
    if min(counts) < minimum:
        raise DataError(
            f"{what} has {counts[1]} person and {counts[0]} no-person image(s); splitting it into "
            f"{splits} needs at least {minimum} of each class"
        )


def load_splits(
    data: Path, resolution: int, channels: int, seed: int = 0, val_fraction: float = 0.15
) -> Splits:
    """Train/val/test arrays of a data set folder.

    Uses the set's own ``train``/``val``/``test`` splits where it has them; a set without
    them (a folder read in place) is split deterministically by ``seed``, stratified by
    class, so that the held-out figures in a model card are reproducible.
    """
    ds = open_dataset(data)
    names = ds.splits()
    if "train" in names:
        train = load_split(ds, "train", resolution, channels)
        source = f"{data}: split 'train'"
        if "val" in names:
            val = load_split(ds, "val", resolution, channels)
            source += ", 'val'"
        else:
            _require_per_class(train, 2, f"{data}: split 'train'", "train and val")
            train, val = stratified_split(train, val_fraction, seed)
            source += f" ({val_fraction:.0%} of it held out as val, seed {seed})"
        test = load_split(ds, "test", resolution, channels) if "test" in names else None
        if test is not None:
            source += ", 'test'"
    else:
        everything = load_split(ds, None, resolution, channels)
        _require_per_class(everything, 3, f"{data} (no named splits)", "train, val and test")
        rest, test = stratified_split(everything, val_fraction, seed)
        train, val = stratified_split(rest, val_fraction, seed + 1)
        source = f"{data}: no named splits; stratified {len(train)}/{len(val)}/{len(test)}, seed {seed}"
    for name, arr in (("train", train), ("val", val)):
        if len(set(arr.y.tolist())) < 2:
            raise DataError(f"{data}: the {name} split has a single class; need both to train")
    log.info("data %s: train %s val %s", data, train.class_counts(), val.class_counts())
    return Splits(train, val, test, source, root=Path(data))
