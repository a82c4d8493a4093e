"""The synthetic generator: deterministic, exact labels and subgroups by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.data import subgroups
from harness.data.build import ImageOptions, Job, build
from harness.data.dataset import Dataset
from harness.data.manifest import MANIFEST_NAME
from harness.data.smoke import build_smoke
from harness.data.synth import build_synthetic, render
from harness.errors import DataError


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


def _broken_render(seed: int, index: int, size: int, grayscale: bool | None) -> object:
    """A renderer that runs out of memory half way (what a huge --size did before it was checked)."""
    if index == 3:
        raise MemoryError("cannot allocate 30 GB")
    return render(seed, index, size, grayscale)


def test_a_failed_build_leaves_no_partial_manifest(tmp_path: Path) -> None:
    jobs = [
        Job(id=f"img{i}", split="train", label=None, source="test", license="cc0-1.0",
            renderer=_broken_render, render_args=(0, i, 16, None))
        for i in range(6)
    ]
    with pytest.raises(MemoryError):
        build(tmp_path / "out", jobs, name="broken", synthetic=True, description="", parameters={},
              source_hashes={}, subgroup_schema=subgroups.BASE_SCHEMA, opts=ImageOptions(size=16),
              workers=1)
    assert not list((tmp_path / "out").glob("*.partial")) and not (tmp_path / "out" / MANIFEST_NAME).exists()


@pytest.mark.parametrize("size", [7, 1025, 100_000])
def test_sizes_outside_the_range_are_refused_before_any_work(tmp_path: Path, size: int) -> None:
    with pytest.raises(DataError, match=rf"size {size} out of range \(8\.\.1024\)"):
        build_synthetic(tmp_path / "synth", 4, 0, size=size)
    with pytest.raises(DataError, match=rf"size {size} out of range \(8\.\.1024\)"):
        build_smoke(tmp_path / "smoke", size=size)
    assert not (tmp_path / "synth").exists() and not (tmp_path / "smoke").exists()
