"""Opening data sets in each layout and streaming samples from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.data.dataset import Dataset
from harness.errors import DataError


def _img(path: Path, color: tuple[int, int, int] = (10, 20, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), color).save(path)


def test_labels_csv_with_split_and_user_columns(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "sub/c.png"):
        _img(tmp_path / name)
    (tmp_path / "labels.csv").write_text(
        "file,label,split,camera,score\n"
        "a.png,person,train,cam1,0.5\n"
        "b.png,0,test,cam2,1.5\n"
        "sub/c.png,1,test,cam1,2\n"
        "gone.png,1,test,cam1,3\n"
    )
    ds = Dataset.open(tmp_path)
    assert len(ds) == 3 and ds.skipped == {"missing image": 1}
    assert ds.splits() == ["train", "test"]
    samples = list(ds.iter_samples("test"))
    assert [s.label for s in samples] == [0, 1]
    assert samples[1].rel_path == "sub/c.png" and samples[1].path.is_absolute()
    assert samples[0].subgroups == {"camera": "cam2", "score": 1.5}
    assert samples[0].load_rgb().shape == (10, 12, 3)
    assert not ds.synthetic and ds.card_path is None
    assert len(ds.sha256) == 64 and ds.sha256 == Dataset.open(tmp_path).sha256


def test_person_non_person_folders(tmp_path: Path) -> None:
    _img(tmp_path / "person" / "1.jpg")
    _img(tmp_path / "person" / "2.jpg")
    _img(tmp_path / "non_person" / "3.jpg")
    (tmp_path / "non_person" / "readme.txt").write_text("x")
    ds = Dataset.open(tmp_path)
    assert ds.count() == {1: 2, 0: 1}
    assert ds.skipped == {"not an image file": 1}
    assert [s.id for s in ds.iter_samples(limit=2)] == ["person/1", "person/2"]
    assert ds.splits() == ["all"]


def test_sha256_changes_with_content(tmp_path: Path) -> None:
    _img(tmp_path / "person" / "1.png", (1, 2, 3))
    _img(tmp_path / "non_person" / "2.png")
    before = Dataset.open(tmp_path).sha256
    _img(tmp_path / "person" / "1.png", (9, 9, 9))
    assert Dataset.open(tmp_path).sha256 != before


@pytest.mark.parametrize(
    "csv_text,match",
    [
        ("name,label\na.png,1\n", "needs columns"),
        ("file,label\na.png,maybe\n", "label 'maybe'"),
        ("file,label\n../etc/passwd,1\n", "escapes"),
        ("file,label\n", "no images"),
    ],
)
def test_bad_csv(tmp_path: Path, csv_text: str, match: str) -> None:
    _img(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text(csv_text)
    with pytest.raises(DataError, match=match) as exc:
        Dataset.open(tmp_path)
    assert "\n" not in str(exc.value)


def test_missing_and_unrecognised_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        Dataset.open(tmp_path / "nope")
    with pytest.raises(DataError, match="not a data set"):
        Dataset.open(tmp_path)
    with pytest.raises(DataError, match="no split"):
        _img(tmp_path / "person" / "1.png")
        (tmp_path / "non_person").mkdir()
        list(Dataset.open(tmp_path).iter_samples("test"))


def test_corrupt_image_surfaces_on_load(tmp_path: Path) -> None:
    _img(tmp_path / "person" / "ok.png")
    (tmp_path / "non_person").mkdir()
    (tmp_path / "non_person" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = Dataset.open(tmp_path)
    bad = [s for s in ds.iter_samples() if s.label == 0][0]
    with pytest.raises(DataError, match="bad.png"):
        bad.load_rgb()
    good = [s for s in ds.iter_samples() if s.label == 1][0]
    assert isinstance(good.load_rgb(), np.ndarray)


# -- built sets: the manifest's columns and dataset.json are checked on open --------------------


def _built_set(root: Path, columns: dict[str, object] | None = None, meta: bytes | None = None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    (root / "images").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / "images" / f"{i}.png")
    cols: dict[str, object] = {
        "id": ["a", "b", "c"], "path": [f"images/{i}.png" for i in range(3)], "label": [0, 1, 0],
        "split": ["test"] * 3, "sha256": [None, None, None],
    }
    cols.update(columns or {})
    pq.write_table(pa.table(cols), root / "manifest.parquet")
    if meta is not None:
        (root / "dataset.json").write_bytes(meta)
    return root


def test_a_well_formed_built_set_opens(tmp_path: Path) -> None:
    ds = Dataset.open(_built_set(tmp_path / "ok", meta=b'{"name": "three", "synthetic": true}'))
    assert len(ds) == 3 and ds.name == "three" and ds.synthetic


@pytest.mark.parametrize(
    ("columns", "meta", "message"),
    [
        ({"label": ["person", "no", "yes"]}, None, "column 'label' has type string: expected 0 (no"),
        ({"label": [0, 2, 1]}, None, "column 'label' row 1 = 2 is wrong: expected 0 or 1"),
        ({"label": [0, None, 1]}, None, "column 'label' row 1 is null"),
        ({"path": ["images/0.png", None, "images/2.png"]}, None, "column 'path' row 1 is null"),
        ({"id": ["a", "b", "a"]}, None, "column 'id' row 2 = 'a' repeats an earlier row"),
        ({"split": [1, 2, 3]}, None, "column 'split' has type int64: expected a split name"),
        ({}, b'["not", "an", "object"]', "dataset.json: holds a JSON list: expected an object"),
        ({}, b'{"name": 7}', "dataset.json: name = 7 is wrong: expected a non-empty string"),
        ({}, b'{"synthetic": "yes"}', "dataset.json: synthetic = 'yes' is wrong: expected true or false"),
        ({}, b'{"name": "caf\xe9"}', "dataset.json: not UTF-8 text (byte"),
        ({}, b'{"name": ', "dataset.json: not valid JSON"),
    ],
    ids=["label-words", "label-range", "label-null", "path-null", "duplicate-id", "split-type",
         "meta-list", "meta-name", "meta-synthetic", "meta-latin1", "meta-truncated"],
)
def test_a_broken_built_set_is_one_line_naming_file_and_column(
    tmp_path: Path, columns: dict[str, object], meta: bytes | None, message: str
) -> None:
    root = _built_set(tmp_path / "bad", columns, meta)
    with pytest.raises(DataError) as err:
        Dataset.open(root)
    text = str(err.value)
    assert message in text and str(root) in text and "\n" not in text
