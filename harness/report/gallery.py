"""Thumbnails of the worst mistakes: the qualitative side of the report.

Numbers say how often the model is wrong; looking at the confidently wrong images says
why (dark scenes, people seen from far away, posters of people). The images are read
from the data set folder named in run.json. A missing or unreadable image is shown as a
labelled placeholder: a gallery is never a reason for the report to fail.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.report.html import Safe, data_uri, img, join, tag

log = logging.getLogger(__name__)
THUMB = 128


@dataclass(frozen=True)
class Item:
    image_id: str
    rel_path: str
    score: float
    label: int


def worst(ids: np.ndarray, paths: np.ndarray, labels: np.ndarray, preds: np.ndarray,
          scores: np.ndarray, count: int) -> tuple[list[Item], list[Item]]:
    """(false positives by highest score, false negatives by lowest score)."""
    fp = np.nonzero((labels == 0) & (preds == 1))[0]
    fn = np.nonzero((labels == 1) & (preds == 0))[0]
    fp = fp[np.argsort(-scores[fp], kind="stable")][:count]
    fn = fn[np.argsort(scores[fn], kind="stable")][:count]

    def items(idx: np.ndarray) -> list[Item]:
        return [Item(str(ids[i]), str(paths[i]), float(scores[i]), int(labels[i])) for i in idx]

    return items(fp), items(fn)


def dataset_roots(dataset_path: str | None, run_dir: Path) -> list[Path]:
    """Where to look for images: the path as recorded, then relative to the run folder."""
    if not dataset_path:
        return []
    p = Path(dataset_path).expanduser()
    roots = [p]
    if not p.is_absolute():
        roots.append(run_dir / p)
    return roots


def _safe_join(root: Path, rel: str) -> Path | None:
    """root/rel, refusing paths that climb out of the data set (a hostile manifest)."""
    try:
        target = (root / rel).resolve()
        target.relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return target


def thumbnail(roots: list[Path], rel: str) -> tuple[str | None, str]:
    """(data URI, "") for a readable image, else (None, reason)."""
    from PIL import Image, UnidentifiedImageError

    for root in roots:
        path = _safe_join(root, rel)
        if path is None:
            return None, "path leaves the data set folder"
        if not path.is_file():
            continue
        try:
            if path.suffix == ".npy":
                arr = np.load(path, allow_pickle=False)
                arr = np.squeeze(arr)
                if arr.dtype != np.uint8:
                    lo, hi = float(arr.min()), float(arr.max())
                    arr = ((arr - lo) / (hi - lo or 1) * 255).astype(np.uint8)
                im = Image.fromarray(arr)
            else:
                im = Image.open(path)
                im.draft("RGB", (THUMB, THUMB))
            im = im.convert("RGB")
            im.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=False)
            return data_uri(buf.getvalue(), "image/png"), ""
        except (OSError, ValueError, UnidentifiedImageError) as exc:
            log.debug("cannot read %s: %s", path, exc)
            return None, "unreadable image"
    return None, "image not found"


def render(title: str, items: list[Item], roots: list[Path]) -> tuple[Safe, int]:
    """A gallery block and how many of its images were missing."""
    if not items:
        return tag("h3", title) + tag("p", "none", class_="note"), 0
    figs = []
    missing = 0
    for it in items:
        uri, why = thumbnail(roots, it.rel_path) if roots else (None, "no data set path")
        caption = tag("figcaption", tag("code", it.image_id), Safe("<br>"),
                      f"score {it.score:.3f}")
        if uri is None:
            missing += 1
            figs.append(tag("figure", tag("div", why, class_="missing"), caption))
        else:
            figs.append(tag("figure", img(uri, f"{it.image_id} (score {it.score:.3f})",
                                          class_="thumb"), caption))
    return tag("h3", title) + tag("div", join(figs), class_="gallery"), missing

