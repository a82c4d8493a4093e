"""The on-disk data set format: ``manifest.parquet`` beside ``images/``, ``CARD.md``
and ``dataset.json``.

One row per image. The fixed columns are listed in :data:`COLUMNS`; subgroup
attributes follow as ``sg_<name>`` columns so that any consumer can find them without
knowing which builder made the set, and user columns pass through the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import DataError

MANIFEST_NAME = "manifest.parquet"
CARD_NAME = "CARD.md"
META_NAME = "dataset.json"
IMAGES_DIR = "images"
SUBGROUP_PREFIX = "sg_"
LABEL_NAMES = {0: "no_person", 1: "person"}

FIXED_FIELDS: tuple[pa.Field, ...] = (
    pa.field("id", pa.string(), nullable=False),
    pa.field("path", pa.string(), nullable=False),
    pa.field("label", pa.int8(), nullable=False),
    pa.field("label_name", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("source", pa.string()),
    pa.field("license", pa.string()),
    pa.field("license_url", pa.string()),
    pa.field("attribution", pa.string()),
    pa.field("sha256", pa.string()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("privacy", pa.string()),
)
COLUMNS: tuple[str, ...] = tuple(f.name for f in FIXED_FIELDS)

_ARROW_TYPES: dict[type, pa.DataType] = {
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
}


def subgroup_field(name: str, kind: type) -> pa.Field:
    """The Parquet column for subgroup ``name`` holding Python values of type ``kind``."""
    return pa.field(SUBGROUP_PREFIX + name, _ARROW_TYPES[kind])


def manifest_schema(subgroups: Mapping[str, type]) -> pa.Schema:
    """Schema of a manifest with the given subgroup columns (in the given order)."""
    return pa.schema(list(FIXED_FIELDS) + [subgroup_field(k, t) for k, t in subgroups.items()])


def label_name(label: int) -> str:
    try:
        return LABEL_NAMES[int(label)]
    except (KeyError, ValueError):
        raise DataError(f"label must be 0 (no person) or 1 (person), got {label!r}") from None


def content_hash(rows: Iterable[tuple[str, str, int, str, str]]) -> str:
    """sha256 over ``(id, rel_path, label, split, image_sha256)`` rows sorted by id.

    It identifies the data (which images, which labels, which split) and not how a
    Parquet writer happened to lay bytes out, so the same set hashes the same whether
    it is a built folder or read in place.
    """
    h = hashlib.sha256()
    for row in sorted(rows):
        h.update("\t".join(str(v) for v in row).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def unit_hash(key: str) -> float:
    """A stable number in [0, 1) for ``key``, so hash-chosen splits never move."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def hash_split(
    key: str, fractions: tuple[float, ...], names: tuple[str, ...] = ("train", "val", "test")
) -> str:
    """Deterministic split of ``key`` by ``fractions`` (an image keeps its split as sets grow)."""
    u = unit_hash(key)
    edge = 0.0
    for frac, name in zip(fractions, names, strict=False):
        edge += frac
        if u < edge:
            return name
    return names[min(len(fractions), len(names)) - 1]


def manifest_content_hash(path: Path) -> str:
    """:func:`content_hash` of a written manifest, read column-wise (compact in memory)."""
    cols = pq.read_table(path, columns=["id", "path", "label", "split", "sha256"]).to_pydict()
    return content_hash(
        zip(
            cols["id"],
            cols["path"],
            cols["label"],
            cols["split"],
            (h or "" for h in cols["sha256"]),
            strict=True,
        )
    )


class ManifestWriter:
    """Append rows in batches to ``manifest.parquet`` so a build never holds them all."""

    def __init__(self, path: Path, subgroups: Mapping[str, type], batch_rows: int = 2048):
        self.path = path
        self.schema = manifest_schema(subgroups)
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._batch: list[dict[str, Any]] = []
        self._batch_rows = batch_rows
        self.rows_written = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self._batch.append(dict(row))
        if len(self._batch) >= self._batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        cols = {name: [r.get(name) for r in self._batch] for name in self.schema.names}
        self._writer.write_table(pa.Table.from_pydict(cols, schema=self.schema))
        self.rows_written += len(self._batch)
        self._batch.clear()

    def close(self) -> None:
        self.flush()
        self._writer.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_manifest(path: Path) -> pa.Table:
    """Read and check a manifest; a missing column or unreadable file is a DataError."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise DataError(f"{path}: manifest not found") from None
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: unreadable manifest ({str(exc).splitlines()[0]})") from None
    missing = [c for c in ("id", "path", "label", "split") if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    return table


def subgroup_columns(table: pa.Table) -> list[str]:
    return [c for c in table.column_names if c.startswith(SUBGROUP_PREFIX)]
