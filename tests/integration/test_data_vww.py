"""`hil data vww` on a small COCO-format fixture the test writes itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from PIL import Image

from harness.cli import main
from harness.data.coco import build_vww
from harness.data.dataset import Dataset
from harness.errors import DataError
from harness.skip_groups import PYCOCOTOOLS, needs

pytest.importorskip("pycocotools", reason=needs(PYCOCOTOOLS, "not installed (pip install pycocotools)"))

LICENSES = [
    {
        "id": 2,
        "name": "Attribution-NonCommercial License",
        "url": "http://creativecommons.org/licenses/by-nc/2.0/",
    },
    {"id": 4, "name": "Attribution License", "url": "http://creativecommons.org/licenses/by/2.0/"},
    {
        "id": 6,
        "name": "Attribution-NoDerivs License",
        "url": "http://creativecommons.org/licenses/by-nd/2.0/",
    },
]
CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
]

# image id -> (split, annotations [(category, bbox w, h, iscrowd)], licence, kind)
# Images are 100 x 100 = 10,000 px; the 0.5 % threshold is 50 px.
FIXTURE: dict[int, tuple[str, list[tuple[int, float, float, int]], int, str]] = {
    1: ("train", [(1, 20, 20, 0), (18, 30, 30, 0)], 4, "rgb"),
    2: ("train", [(1, 10, 5, 0)], 4, "rgb"),  # exactly 0.5 %: not "more than"
    3: ("train", [(1, 10, 5.1, 0)], 4, "rgb"),  # 0.51 %: person
    4: ("train", [(1, 50, 50, 1)], 4, "rgb"),  # crowd box only
    5: ("train", [], 6, "rgb"),  # no-derivatives licence
    6: ("train", [(3, 40, 20, 0)], 2, "rgb"),  # non-commercial licence
    7: ("train", [(1, 40, 40, 0)], 4, "absent"),
    8: ("train", [(1, 40, 40, 0)], 4, "corrupt"),
    101: ("val", [(1, 60, 60, 0), (1, 30, 30, 0)], 4, "rgb"),
    102: ("val", [(2, 20, 20, 0)], 4, "rgb"),
    103: ("val", [(1, 30, 30, 0)], 4, "rgb"),
    104: ("val", [], 4, "gray"),
}


def make_coco(root: Path, year: str = "2017") -> Path:
    ann_id = 1
    data: dict[str, dict[str, Any]] = {}
    for split in ("train", "val"):
        data[split] = {"images": [], "annotations": [], "categories": CATEGORIES, "licenses": LICENSES}
        (root / f"{split}{year}").mkdir(parents=True, exist_ok=True)
    for image_id, (split, anns, lic, kind) in FIXTURE.items():
        name = f"{image_id:012d}.jpg"
        data[split]["images"].append({
            "id": image_id, "file_name": name, "width": 100, "height": 100, "license": lic,
            "flickr_url": f"http://farm1.staticflickr.com/{image_id}.jpg",
            "coco_url": f"http://images.cocodataset.org/{split}{year}/{name}",
        })  # fmt: skip
        for cat, w, h, crowd in anns:
            data[split]["annotations"].append({
                "id": ann_id, "image_id": image_id, "category_id": cat, "bbox": [5, 5, w, h],
                "area": w * h, "iscrowd": crowd, "segmentation": [[5, 5, 5 + w, 5, 5 + w, 5 + h]],
            })  # fmt: skip
            ann_id += 1
        path = root / f"{split}{year}" / name
        if kind == "rgb":
            Image.new("RGB", (100, 100), (image_id % 255, 90, 160)).save(path)
        elif kind == "gray":
            Image.new("L", (100, 100), 70).save(path)
        elif kind == "corrupt":
            path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "annotations").mkdir(exist_ok=True)
    for split, d in data.items():
        (root / "annotations" / f"instances_{split}{year}.json").write_text(json.dumps(d))
    return root


def _rows(out: Path) -> dict[int, dict[str, Any]]:
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    return {int(r["id"].split("-")[1]): r for r in table}


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_coco_split_labels_subgroups_and_skips(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "coco")
    before = _files(tmp_path)
    out = build_vww(coco, tmp_path / "out", split_mode="coco", workers=1)
    new = _files(tmp_path) - before
    assert all(p.is_relative_to(out) for p in new), "nothing written outside the output folder"
    rows = _rows(out)
    labels = {i: r["label"] for i, r in rows.items()}
    assert labels == {1: 1, 2: 0, 3: 1, 4: 1, 6: 0, 101: 1, 102: 0, 103: 1, 104: 0}
    assert rows[1]["sg_person_size"] == "small" and rows[1]["sg_supercategories"] == "animal;person"
    assert rows[101]["sg_n_persons"] == 2 and rows[101]["sg_person_size"] == "large"
    assert rows[103]["sg_person_size"] == "medium"
    assert rows[4]["sg_crowd"] is True and rows[1]["sg_crowd"] is False
    assert rows[2]["sg_person_size"] == "none"
    assert rows[104]["sg_grayscale_source"] is True and rows[1]["sg_grayscale_source"] is False
    assert rows[1]["split"] == "train" and rows[101]["split"] == "val"
    assert rows[1]["license"] == "cc-by-2.0" and "staticflickr.com/1.jpg" in rows[1]["attribution"]
    assert (rows[1]["width"], rows[1]["height"]) == (96, 96)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["skipped"] == {"missing image": 1, "corrupt image": 1}
    assert meta["dropped_by_license"] == {"licence cc-by-nd-2.0 forbids derivatives (resized copy)": 1}
    assert meta["synthetic"] is False and "instances_train2017.json" in meta["source_hashes"]
    card = (out / "CARD.md").read_text()
    assert "missing image: 1" in card and "forbids derivatives" in card


def test_paper_split_with_minival_ids(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "coco")
    ids = tmp_path / "minival.txt"
    ids.write_text("101\n103\n")
    out = build_vww(coco, tmp_path / "out", split_mode="paper", minival_ids=ids, workers=2)
    rows = _rows(out)
    assert {i for i, r in rows.items() if r["split"] == "test"} == {101, 103}
    assert {r["split"] for i, r in rows.items() if i not in (101, 103)} == {"train"}
    ds = Dataset.open(out)
    assert ds.splits() == ["train", "test"] or sorted(ds.splits()) == ["test", "train"]


def test_random_split_is_deterministic(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "coco")
    a = build_vww(coco, tmp_path / "a", split_mode="random", workers=1)
    b = build_vww(coco, tmp_path / "b", split_mode="random", workers=1)
    assert {i: r["split"] for i, r in _rows(a).items()} == {i: r["split"] for i, r in _rows(b).items()}
    assert Dataset.open(a).sha256 == Dataset.open(b).sha256


def test_cli_threshold_crowd_commercial_grayscale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coco = make_coco(tmp_path / "coco")
    out = tmp_path / "out"
    rc = main([
        "data", "vww", "--coco-root", str(coco), "--out", str(out), "--split-mode", "coco",
        "--threshold", "0.05", "--ignore-crowd", "--commercial", "--grayscale", "--size", "32",
        "--workers", "1",
    ])  # fmt: skip
    assert rc == 0
    assert "vww-coco2017-32g" in capsys.readouterr().out
    rows = _rows(out)
    assert rows[1]["label"] == 0  # 4 % is not more than 5 %
    assert rows[3]["label"] == 0
    assert rows[4]["label"] == 0  # crowd ignored
    assert rows[101]["label"] == 1 and rows[103]["label"] == 1
    assert 6 not in rows  # non-commercial dropped
    img = Image.open(out / rows[101]["path"])
    assert img.mode == "L" and img.size == (32, 32)


def test_bad_coco_inputs_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no COCO instance annotations"):
        build_vww(tmp_path / "empty", tmp_path / "o1")
    coco = make_coco(tmp_path / "coco")
    for p in (coco / "val2017").iterdir():
        p.unlink()
    (coco / "val2017").rmdir()
    with pytest.raises(DataError, match="no image folder val2017"):
        build_vww(coco, tmp_path / "o2")
    (coco / "annotations" / "instances_train2017.json").write_text("{not json")
    (coco / "annotations" / "instances_val2017.json").unlink()
    rc = main(
        ["data", "vww", "--coco-root", str(coco), "--out", str(tmp_path / "o3"), "--split-mode", "coco"]
    )
    err = capsys.readouterr().err
    assert rc != 0 and err.count("\n") == 1 and "not a valid COCO annotation file" in err
    assert not (tmp_path / "o3" / "manifest.parquet").exists()


def test_refuses_non_empty_output_without_force(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "coco")
    out = tmp_path / "out"
    build_vww(coco, out, split_mode="coco", workers=1)
    with pytest.raises(DataError, match="--force"):
        build_vww(coco, out, split_mode="coco", workers=1)
    (out / "keep.txt").write_text("user file")
    build_vww(coco, out, split_mode="coco", workers=1, force=True, limit=3)
    assert (out / "keep.txt").exists() and len(Dataset.open(out)) <= 3
