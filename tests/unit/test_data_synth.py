"""The synthetic generator: deterministic, exact labels and subgroups by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from harness.data.dataset import Dataset
from harness.data.synth import build_synthetic, render


def test_render_is_deterministic_and_seed_dependent() -> None:
    a, la, sa = render(7, 3, 32, None)
    b, lb, sb = render(7, 3, 32, None)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and (la, sa) == (lb, sb)
    c, _, _ = render(8, 3, 32, None)
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_labels_and_subgroups_agree() -> None:
    labels = []
    for i in range(60):
        img, label, sg = render(1, i, 32, None)
        labels.append(label)
        assert img.size == (32, 32)
        assert (img.mode == "L") == sg["grayscale_source"]
        if label == 1:
            assert 1 <= sg["n_persons"] <= 3 and sg["person_size"] in {"small", "medium", "large"}
        else:
            assert sg["n_persons"] == 0 and sg["person_size"] == "none"
    assert 15 < sum(labels) < 45  # both classes present in quantity


def test_backgrounds_are_textured() -> None:
    """No image is flat, so a model cannot tell classes apart by plain backgrounds."""
    for i in range(20):
        img, _, _ = render(5, i, 48, False)
        arr = np.asarray(img, dtype=np.float32)
        assert arr.std() > 5.0  # textured, never a flat image


def test_build_is_identical_for_one_and_two_workers(tmp_path: Path) -> None:
    n = 160  # above the in-process threshold, so two workers really run
    a = build_synthetic(tmp_path / "a", n, seed=11, size=16, workers=1)
    b = build_synthetic(tmp_path / "b", n, seed=11, size=16, workers=2)
    ta, tb = pq.read_table(a / "manifest.parquet"), pq.read_table(b / "manifest.parquet")
    assert ta.column("sha256").to_pylist() == tb.column("sha256").to_pylist()
    da, db = Dataset.open(a), Dataset.open(b)
    assert da.sha256 == db.sha256 == da.meta["content_sha256"] and da.synthetic
    assert sorted(da.splits()) == ["test", "train", "val"]
    assert da.count("train")[0] + da.count("train")[1] == 128
    assert "SYNTHETIC" in (a / "CARD.md").read_text()


def test_grayscale_build(tmp_path: Path) -> None:
    out = build_synthetic(tmp_path / "g", 6, seed=2, size=16, grayscale=True, workers=1)
    ds = Dataset.open(out)
    for s in ds.iter_samples():
        assert s.subgroups["grayscale_source"] is True
        rgb = s.load_rgb()
        assert rgb.shape == (16, 16, 3) and np.array_equal(rgb[..., 0], rgb[..., 1])
