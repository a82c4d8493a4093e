"""Write a data set in the MLPerf Tiny runner's layout, so the official runner sees our images.

The runner reads ``<dir>/vww01/y_labels.csv`` (no header; ``file.bin,2,<label>``, 1 =
person; datasets.py) and sends each ``.bin`` file's bytes to the DUT unchanged. For VWW a
file is one 96 x 96 x 3 uint8 RGB image, from which the reference firmware subtracts 128.

The pixels must be exactly those ``hil bench`` gives the model, or the runner's Top-1 and
the bench's accuracy would measure different inputs. So the caller passes the bench's own
preprocessing as ``tensor_of`` (the data package may not import the bench): the image as
the model's quantised input tensor. A ``.bin`` holds that tensor plus 128 for an int8 input
(exactly the resized RGB pixels for the MLPerf Tiny model, whose input quantisation is
``pixel - 128``), so that a DUT subtracting 128 gets the bench's int8 input bit for bit.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import DataError

log = logging.getLogger(__name__)

MLPERF_MODEL = "vww01"
LABELS_FILE = "y_labels.csv"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ExportResult:
    folder: Path  # OUT/vww01
    images: int
    skipped: list[str]


def bin_name(sample_id: str, used: set[str]) -> str:
    """A file name for an image id: safe characters only, unique within the export."""
    base = _SAFE.sub("_", sample_id).strip("._") or "image"
    name = f"{base}.bin"
    n = 1
    while name in used:
        n += 1
        name = f"{base}_{n}.bin"
    used.add(name)
    return name


def export_mlperf_tiny(
    dataset: Any,
    out: Path,
    tensor_of: Callable[[np.ndarray], np.ndarray],
    *,
    split: str | None = None,
    limit: int | None = None,
    force: bool = False,
) -> ExportResult:
    """Write ``out/vww01/y_labels.csv`` and one ``.bin`` per image of ``dataset``.

    ``tensor_of`` turns decoded RGB pixels into the model's input tensor (int8 or uint8); an
    image that cannot be decoded is skipped and named in the result, as the bench would
    make it an error row.
    """
    folder = Path(out) / MLPERF_MODEL
    labels = folder / LABELS_FILE
    if labels.exists() and not force:
        raise DataError(f"{labels} exists; pass --force to replace the export")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.bin"):
        old.unlink()
    used: set[str] = set()
    rows: list[tuple[str, int, int]] = []
    skipped: list[str] = []
    for sample in dataset.iter_samples(split, limit):
        try:
            tensor = np.asarray(tensor_of(sample.load_rgb()))
        except DataError as exc:
            skipped.append(f"{sample.id}: {exc}")
            log.warning("skipped %s: %s", sample.id, exc)
            continue
        if tensor.dtype == np.int8:
            data = (tensor.astype(np.int16) + 128).astype(np.uint8).tobytes()
        elif tensor.dtype == np.uint8:
            data = tensor.tobytes()
        else:
            raise DataError(f"the model input is {tensor.dtype}; the MLPerf Tiny layout holds uint8 bytes")
        name = bin_name(sample.id, used)
        (folder / name).write_bytes(data)
        rows.append((name, 2, int(sample.label)))
    if not rows:
        raise DataError("no image of the data set could be exported")
    tmp = labels.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="ascii") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    tmp.replace(labels)
    return ExportResult(folder, len(rows), skipped)
