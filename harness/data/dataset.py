"""Read a data set, whatever its layout, as a stream of labelled samples.

This is the only door through which training, the bench runner and reports see data.
It accepts three layouts so that ``hil bench --data DIR`` works on what users have:

* a built set (``manifest.parquet`` + ``images/`` + ``CARD.md`` + ``dataset.json``),
* a plain folder of images with ``labels.csv`` (``file,label[,split][,other...]``),
* a folder with ``person/`` and ``non_person/`` subfolders (the vw_coco2014_96 layout).

The last two are read in place. Samples carry paths, not pixels: pixels are decoded
one image at a time by :meth:`Sample.load_rgb`, so memory does not grow with the set.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from harness.data import manifest as mf
from harness.data.images import is_image_name, load_rgb
from harness.errors import DataError

log = logging.getLogger(__name__)

SubgroupValue = str | int | float | bool
LABELS_CSV = "labels.csv"
PERSON_DIRS = ("person",)
NON_PERSON_DIRS = ("non_person", "no_person", "not_person")
IN_PLACE_SPLIT = "all"

_LABEL_WORDS = {
    "1": 1, "person": 1, "true": 1, "yes": 1,
    "0": 0, "no_person": 0, "non_person": 0, "not_person": 0, "false": 0, "no": 0,
}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One labelled image; ``label`` is 1 for person and 0 for no person."""

    id: str
    path: Path
    rel_path: str
    label: int
    split: str
    subgroups: dict[str, SubgroupValue] = field(default_factory=dict)

    def load_rgb(self) -> np.ndarray:
        """Pixels as ``HxWx3`` uint8 RGB; a corrupt or missing file raises DataError."""
        return load_rgb(self.path)


def parse_label(value: str, where: str) -> int:
    label = _LABEL_WORDS.get(value.strip().lower())
    if label is None:
        raise DataError(f"{where}: label {value!r} is not one of 0/1/person/no_person")
    return label


def safe_relative(root: Path, rel: str, where: str) -> Path:
    """``root / rel``, refusing absolute paths and ``..`` components.

    The check is on the path text, not on resolved symlinks, so an ``images/`` folder
    that is a link to another disk still works, and opening a large set stays cheap.
    """
    if not rel:
        raise DataError(f"{where}: empty file path")
    candidate = Path(rel)
    if candidate.is_absolute() or ".." in candidate.parts or candidate.drive:
        raise DataError(f"{where}: path {rel!r} escapes the data set folder")
    return root / candidate


def infer_column(values: list[str]) -> list[SubgroupValue]:
    """Give a CSV column one type for all its rows: bool, int, float, else str."""
    low = [v.strip().lower() for v in values]
    if all(v in {"true", "false"} for v in low):
        return [v == "true" for v in low]
    for kind in (int, float):
        try:
            return [kind(v) for v in values]
        except ValueError:
            continue
    return list(values)


class _Rows:
    """Per-image metadata kept as columns, so a 100,000-image set costs a few MiB.

    :class:`Sample` objects (with their ``Path``) are made one at a time on iteration.
    """

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.rels: list[str] = []
        self.labels: list[int] = []
        self.splits: list[str] = []
        self.subgroups: dict[str, list[SubgroupValue | None]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, sid: str, rel: str, label: int, split: str, subgroups: dict[str, SubgroupValue]) -> None:
        n = len(self.ids)
        self.ids.append(sid)
        self.rels.append(rel)
        self.labels.append(label)
        self.splits.append(sys.intern(split))
        for k in subgroups.keys() - self.subgroups.keys():
            self.subgroups[k] = [None] * n
        for k, col in self.subgroups.items():
            col.append(subgroups.get(k))

    def sample(self, root: Path, i: int) -> Sample:
        sg: dict[str, SubgroupValue] = {}
        for k, col in self.subgroups.items():
            value = col[i]
            if value is not None:
                sg[k] = value
        return Sample(self.ids[i], root / self.rels[i], self.rels[i], self.labels[i], self.splits[i], sg)


# -- what a built set's files must hold -------------------------------------------------------
# A manifest written by another tool (or edited by hand) may hold labels as words, nulls or
# duplicate ids; each would surface as a traceback deep in the bench, or as an image
# measured twice. So the columns the harness reads are checked when the set is opened,
# each mistake one line naming the file, the column (or key) and what was expected.
#: column -> (accepts the arrow type, may hold nulls, what it expects)
MANIFEST_COLUMNS: dict[str, tuple[Any, bool, str]] = {
    "id": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t),
           False, "a unique string (or integer) per row"),
    "path": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), False,
             "a path relative to the data set folder (a string)"),
    "label": (lambda t: pa.types.is_integer(t) or pa.types.is_boolean(t), False,
              "0 (no person) or 1 (person), as an integer"),
    "split": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t),
              False, "a split name (a string) such as train, val or test"),
    "sha256": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t),
               True, "the image's sha256 as 64 hex digits, or null"),
}  # fmt: skip
#: dataset.json key -> (check, what it expects)
META_KEYS: dict[str, tuple[Any, str]] = {
    "name": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "synthetic": (lambda v: isinstance(v, bool), "true or false"),
}


def check_manifest_columns(table: pa.Table, where: Path) -> None:
    """Raise one :class:`DataError` line for the first column or value that breaks the schema."""
    for name, (accepts, nullable, expected) in MANIFEST_COLUMNS.items():
        if name not in table.column_names:
            continue  # read_manifest names the missing required ones
        column = table.column(name)
        if not accepts(column.type):
            raise DataError(f"{where}: column {name!r} has type {column.type}: expected {expected}")
        if not nullable and column.null_count:
            row = next(i for i, v in enumerate(column.to_pylist()) if v is None)
            raise DataError(f"{where}: column {name!r} row {row} is null: expected {expected}")
    labels = table.column("label").to_pylist()
    bad = next((i for i, v in enumerate(labels) if int(v) not in (0, 1)), None)
    if bad is not None:
        raise DataError(f"{where}: column 'label' row {bad} = {labels[bad]!r} is wrong: expected 0 or 1")
    seen: set[str] = set()
    for i, v in enumerate(table.column("id").to_pylist()):
        key = str(v)
        if key in seen:
            raise DataError(f"{where}: column 'id' row {i} = {key!r} repeats an earlier row: expected unique")
        seen.add(key)


def read_meta(path: Path) -> dict[str, Any]:
    """``dataset.json`` as a dict, checked; a broken file is one :class:`DataError` line."""
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: holds a JSON {type(meta).__name__}: expected an object of keys")
    for key, (check, expected) in META_KEYS.items():
        if key in meta and not check(meta[key]):
            shown = repr(meta[key]) if len(repr(meta[key])) <= 60 else repr(meta[key])[:57] + "..."
            raise DataError(f"{path}: {key} = {shown} is wrong: expected {expected}")
    return meta


class Dataset:
    """A labelled image set; see the module docstring for the layouts it reads."""

    def __init__(
        self,
        name: str,
        root: Path,
        rows: _Rows | None = None,
        synthetic: bool = False,
        card_path: Path | None = None,
        known_sha256: str | None = None,
        meta: dict[str, Any] | None = None,
    ):
        self.name = name
        self.root = root
        self.synthetic = synthetic
        self.card_path = card_path
        self.meta = meta or {}
        self.skipped: dict[str, int] = {}
        self._rows = rows if rows is not None else _Rows()
        self._sha256 = known_sha256

    # -- opening ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path) -> Dataset:
        root = Path(path).expanduser()
        if not root.exists():
            raise DataError(f"{root}: data set folder not found")
        if not root.is_dir():
            raise DataError(f"{root}: not a folder (give a data set folder)")
        root = root.resolve()
        if (root / mf.MANIFEST_NAME).is_file():
            ds = cls._open_built(root)
        elif (root / LABELS_CSV).is_file():
            ds = cls._open_csv(root)
        elif (root / "person").is_dir() and any((root / d).is_dir() for d in NON_PERSON_DIRS):
            ds = cls._open_class_folders(root)
        else:
            raise DataError(
                f"{root}: not a data set (no {mf.MANIFEST_NAME}, no {LABELS_CSV}, "
                "no person/ and non_person/ folders)"
            )
        if not len(ds._rows):
            raise DataError(f"{root}: data set has no images")
        return ds

    @classmethod
    def _open_built(cls, root: Path) -> Dataset:
        table = mf.read_manifest(root / mf.MANIFEST_NAME)
        check_manifest_columns(table, root / mf.MANIFEST_NAME)
        meta_path = root / mf.META_NAME
        meta = read_meta(meta_path) if meta_path.is_file() else {}
        sg_cols = mf.subgroup_columns(table)
        cols = table.select(["id", "path", "label", "split", "sha256", *sg_cols]).to_pydict()
        where = f"{root / mf.MANIFEST_NAME}"
        for i, rel in enumerate(cols["path"]):
            safe_relative(root, rel, f"{where} row {i}")
        rows = _Rows()
        rows.ids = [str(v) for v in cols["id"]]
        rows.rels = [str(v) for v in cols["path"]]
        rows.labels = [int(v) for v in cols["label"]]
        rows.splits = [sys.intern(str(v)) for v in cols["split"]]
        rows.subgroups = {c[len(mf.SUBGROUP_PREFIX) :]: cols[c] for c in sg_cols}
        known = mf.content_hash(
            zip(rows.ids, rows.rels, rows.labels, rows.splits, (h or "" for h in cols["sha256"]), strict=True)
        )
        card = root / mf.CARD_NAME
        return cls(
            name=str(meta.get("name") or root.name),
            root=root,
            rows=rows,
            synthetic=bool(meta.get("synthetic", False)),
            card_path=card if card.is_file() else None,
            known_sha256=known,
            meta=meta,
        )

    @classmethod
    def _open_csv(cls, root: Path) -> Dataset:
        csv_path = root / LABELS_CSV
        try:
            with csv_path.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                header = [h.strip() for h in (reader.fieldnames or [])]
                rows = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in reader]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{csv_path}: unreadable CSV ({exc})") from None
        if "file" not in header or "label" not in header:
            raise DataError(f"{csv_path}: needs columns 'file' and 'label' (found {header})")
        extra = [h for h in header if h not in {"file", "label", "split"}]
        typed = {h: infer_column([r.get(h, "") for r in rows]) for h in extra}
        ds = cls(name=root.name, root=root)
        for i, r in enumerate(rows):
            where = f"{csv_path} line {i + 2}"
            rel = r["file"].strip()
            full = safe_relative(root, rel, where)
            label = parse_label(r["label"], where)
            if not full.is_file():
                log.warning("%s: %s not found, skipped", where, rel)
                ds.skipped["missing image"] = ds.skipped.get("missing image", 0) + 1
                continue
            split = (r.get("split") or "").strip() or IN_PLACE_SPLIT
            sid = Path(rel).with_suffix("").as_posix()
            subgroups = {h: typed[h][i] for h in extra if r.get(h, "") != ""}
            ds._rows.append(sid, Path(rel).as_posix(), label, split, subgroups)
        return ds

    @classmethod
    def _open_class_folders(cls, root: Path) -> Dataset:
        ds = cls(name=root.name, root=root)
        dirs = [(d, 1) for d in PERSON_DIRS] + [(d, 0) for d in NON_PERSON_DIRS]
        for dirname, label in dirs:
            folder = root / dirname
            if not folder.is_dir():
                continue
            for full in sorted(p for p in folder.rglob("*") if p.is_file()):
                if not is_image_name(full):
                    ds.skipped["not an image file"] = ds.skipped.get("not an image file", 0) + 1
                    continue
                rel = full.relative_to(root).as_posix()
                ds._rows.append(rel.rsplit(".", 1)[0], rel, label, IN_PLACE_SPLIT, {})
        return ds

    # -- reading ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        kind = "synthetic" if self.synthetic else "real"
        return f"Dataset({self.name!r}, {len(self)} images, {kind}, root={str(self.root)!r})"

    def splits(self) -> list[str]:
        """Split names in order of first appearance."""
        return list(dict.fromkeys(self._rows.splits))

    def iter_samples(self, split: str | None = None, limit: int | None = None) -> Iterator[Sample]:
        """Samples of ``split`` (all when None) in a fixed order, at most ``limit`` of them."""
        if split is not None and split not in self.splits():
            raise DataError(f"{self.name}: no split {split!r} (has {', '.join(self.splits())})")
        n = 0
        for i, s in enumerate(self._rows.splits):
            if limit is not None and n >= limit:
                return
            if split is None or s == split:
                n += 1
                yield self._rows.sample(self.root, i)

    def count(self, split: str | None = None) -> dict[int, int]:
        """Images per label in ``split`` (all when None)."""
        out = {0: 0, 1: 0}
        for s, label in zip(self._rows.splits, self._rows.labels, strict=True):
            if split is None or s == split:
                out[label] += 1
        return out

    @property
    def sha256(self) -> str:
        """Hash of the manifest content (ids, paths, labels, splits, image hashes).

        In-place folders have no stored image hashes, so they are computed the first
        time this is read.
        """
        if self._sha256 is None:
            r = self._rows
            hashes = (mf.file_sha256(self.root / rel) for rel in r.rels)
            self._sha256 = mf.content_hash(zip(r.ids, r.rels, r.labels, r.splits, hashes, strict=True))
        return self._sha256
