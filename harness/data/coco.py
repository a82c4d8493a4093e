"""Visual Wake Words from a local COCO download (2014 or 2017 instance annotations).

The rule is the one of the VWW paper (Chowdhery et al., 2019, arXiv:1906.05721): an
image is "person" when at least one person box covers more than a fraction of the
image area (0.5 % by default), else "no person". The paper trains on COCO train plus
val minus a held-out "minival" subset of val (8,059 images) and tests on minival;
``split_mode="paper"`` reproduces that split (exactly, given the minival id list,
else by a deterministic hash choice of the same size), ``"coco"`` keeps COCO's own
train/val, and ``"random"`` hashes every image into train/val/test fractions.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data import subgroups
from harness.data.build import ImageOptions, Job, build
from harness.data.licenses import LicensePolicy, from_url
from harness.data.manifest import file_sha256, hash_split, unit_hash
from harness.errors import DataError

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.005
PAPER_MINIVAL_SIZE = 8059
SPLIT_MODES = ("coco", "paper", "random")


@dataclass(frozen=True)
class CocoSource:
    split: str  # "train" or "val"
    year: str
    annotations: Path
    images: Path


def find_sources(root: Path, year: str = "auto") -> list[CocoSource]:
    """Locate ``annotations/instances_<split><year>.json`` and their image folders."""
    root = root.expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: COCO root folder not found")
    years = ("2017", "2014") if year == "auto" else (year,)
    for y in years:
        found = []
        for split in ("train", "val"):
            ann = root / "annotations" / f"instances_{split}{y}.json"
            if not ann.is_file():
                continue
            candidates = [root / f"{split}{y}", root / "images" / f"{split}{y}"]
            img_dir = next((c for c in candidates if c.is_dir()), None)
            if img_dir is None:
                raise DataError(
                    f"{ann.name} found but no image folder {split}{y}/ under {root} or {root}/images"
                )
            found.append(CocoSource(split, y, ann, img_dir))
        if found:
            return found
    raise DataError(
        f"{root}: no COCO instance annotations (expected annotations/instances_train"
        f"{'|'.join(years)}.json or instances_val...)"
    )


def load_coco(ann: Path) -> Any:
    """Load with pycocotools, keeping its progress prints off our stdout."""
    try:
        from pycocotools.coco import COCO
    except ImportError:
        raise DataError("pycocotools is not installed (pip install pycocotools)") from None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(ann))
    except (ValueError, json.JSONDecodeError) as exc:
        raise DataError(f"{ann}: not a valid COCO annotation file ({exc})") from None
    except (KeyError, TypeError) as exc:
        raise DataError(f"{ann}: COCO annotation file lacks expected fields ({exc})") from None


def person_facts(
    coco: Any, img: dict[str, Any], person_ids: set[int], threshold: float, ignore_crowd: bool
) -> dict[str, Any]:
    """Label and subgroups of one COCO image from its annotations."""
    area = float(img["width"]) * float(img["height"])
    anns = coco.imgToAnns.get(img["id"], [])
    fracs: list[float] = []
    crowd = False
    supercats: set[str] = set()
    for a in anns:
        cat = coco.cats.get(a["category_id"], {})
        if cat.get("supercategory"):
            supercats.add(str(cat["supercategory"]))
        if a["category_id"] not in person_ids:
            continue
        if a.get("iscrowd"):
            crowd = True
            if ignore_crowd:
                continue
        w, h = a["bbox"][2], a["bbox"][3]
        fracs.append(max(0.0, float(w) * float(h)) / area if area > 0 else 0.0)
    big = [f for f in fracs if f > threshold]
    label = 1 if big else 0
    return {
        "label": label,
        "person_size": subgroups.size_bucket(max(big) if big else None),
        "n_persons": len(big),
        "crowd": crowd,
        "supercategories": ";".join(sorted(supercats)),
    }


def _read_ids(path: Path) -> set[int]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read minival id list ({exc})") from None
    try:
        return {int(t) for t in text.replace(",", " ").split()}
    except ValueError:
        raise DataError(f"{path}: minival id list must hold integers") from None


def _split_of(
    source: CocoSource, image_id: int, mode: str, minival: set[int] | None, fractions: tuple[float, ...]
) -> str:
    if mode == "coco":
        return source.split
    if mode == "paper":
        assert minival is not None
        return "test" if source.split == "val" and image_id in minival else "train"
    return hash_split(f"coco{source.year}:{image_id}", fractions)


def _paper_minival(coco_val: Any, year: str, size: int) -> set[int]:
    ids = sorted(coco_val.imgs, key=lambda i: unit_hash(f"minival{year}:{i}"))
    return set(ids[: min(size, len(ids))])


def vww_jobs(
    sources: list[CocoSource],
    cocos: list[Any],
    threshold: float,
    mode: str,
    minival: set[int] | None,
    fractions: tuple[float, ...],
    ignore_crowd: bool,
    limit: int | None,
    skipped: Counter[str],
) -> Iterator[Job]:
    n = 0
    for source, coco in zip(sources, cocos, strict=True):
        licenses = {lic["id"]: from_url(str(lic.get("url", ""))) for lic in coco.dataset.get("licenses", [])}
        person_ids = {c["id"] for c in coco.cats.values() if c.get("name") == "person"}
        for image_id in sorted(coco.imgs):
            if limit is not None and n >= limit:
                return
            img = coco.imgs[image_id]
            name = str(img.get("file_name", ""))
            rel = Path(name)
            if not name or rel.is_absolute() or ".." in rel.parts:
                skipped["unsafe image path in annotations"] += 1
                continue
            if not img.get("width") or not img.get("height"):
                skipped["image without size in annotations"] += 1
                continue
            facts = person_facts(coco, img, person_ids, threshold, ignore_crowd)
            lic = licenses.get(img.get("license"))
            url = img.get("flickr_url") or img.get("coco_url") or ""
            n += 1
            yield Job(
                id=f"coco{source.year}-{int(image_id):012d}",
                split=_split_of(source, int(image_id), mode, minival, fractions),
                label=facts.pop("label"),
                source=f"coco{source.year}:{source.split}{source.year}/{name}",
                license=lic.id if lic else "unknown",
                attribution=f"Flickr {url} (COCO {source.year} image {image_id})" if url else "",
                src_path=str(source.images / rel),
                subgroups=facts,
            )


def build_vww(
    coco_root: Path,
    out: Path,
    *,
    year: str = "auto",
    threshold: float = DEFAULT_THRESHOLD,
    split_mode: str = "paper",
    minival_ids: Path | None = None,
    minival_size: int = PAPER_MINIVAL_SIZE,
    fractions: tuple[float, ...] = (0.8, 0.1, 0.1),
    ignore_crowd: bool = False,
    opts: ImageOptions | None = None,
    policy: LicensePolicy | None = None,
    workers: int | None = None,
    force: bool = False,
    limit: int | None = None,
) -> Path:
    """Build a VWW data set from the COCO download at ``coco_root`` into ``out``."""
    if not 0.0 <= threshold < 1.0:
        raise DataError(f"threshold {threshold} must be in [0, 1)")
    if split_mode not in SPLIT_MODES:
        raise DataError(f"split mode {split_mode!r} (choose {', '.join(SPLIT_MODES)})")
    opts = opts or ImageOptions()
    sources = find_sources(coco_root, year)
    cocos = [load_coco(s.annotations) for s in sources]
    minival: set[int] | None = None
    if split_mode == "paper":
        val = [c for s, c in zip(sources, cocos, strict=True) if s.split == "val"]
        if not val:
            raise DataError("split mode 'paper' needs the val annotations (instances_val*.json)")
        minival = (
            _read_ids(minival_ids) if minival_ids else _paper_minival(val[0], sources[0].year, minival_size)
        )
    hashes = {s.annotations.name: file_sha256(s.annotations) for s in sources}
    if minival_ids:
        hashes[minival_ids.name] = file_sha256(minival_ids)
    skipped: Counter[str] = Counter()
    year_used = sources[0].year
    params: dict[str, Any] = {
        "coco_root": str(coco_root), "year": year_used, "threshold": threshold,
        "split_mode": split_mode, "minival_ids": str(minival_ids) if minival_ids else None,
        "minival_size": len(minival) if minival is not None else None,
        "fractions": list(fractions) if split_mode == "random" else None,
        "ignore_crowd": ignore_crowd, "limit": limit,
    }  # fmt: skip
    jobs = vww_jobs(sources, cocos, threshold, split_mode, minival, fractions, ignore_crowd, limit, skipped)
    return build(
        out,
        jobs,
        name=f"vww-coco{year_used}-{opts.size or 'orig'}{'g' if opts.grayscale else ''}",
        synthetic=False,
        description=(
            f"Visual Wake Words built from COCO {year_used} instance annotations: person when a "
            f"person box covers more than {threshold:.4%} of the image"
            f"{' (crowd boxes ignored)' if ignore_crowd else ''}. Images are Flickr photos "
            "under the licences listed below; attribution is kept per image in the manifest."
        ),
        parameters=params,
        source_hashes=hashes,
        subgroup_schema=subgroups.COCO_SCHEMA,
        opts=opts,
        policy=policy,
        workers=workers,
        force=force,
        pre_skipped=skipped,
    )
