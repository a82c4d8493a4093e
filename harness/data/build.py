"""Turn a stream of build jobs into a data set folder, on all cores, in bounded memory.

Every builder (COCO, smoke, synthetic, import) describes its images as :class:`Job`
objects and hands them to :func:`build`. Workers decode (or render), audit metadata,
resize, re-encode pixels only (which strips all metadata) and write the image file
themselves; the parent only receives a small manifest row back. At most a few chunks
are in flight at a time, so memory stays flat however many sources there are, and
results come back in job order, so the manifest is deterministic.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import multiprocessing as mp
import os
import re
import shutil
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness import console
from harness.data import manifest as mf
from harness.data import privacy, subgroups
from harness.data.card import write_card
from harness.data.images import (
    fit_to_square,
    is_grayscale_mode,
    luminance_mean,
    open_image,
    to_rgb_image,
)
from harness.data.licenses import LICENSES, LicensePolicy
from harness.errors import DataError

log = logging.getLogger(__name__)

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
SPLIT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
CHUNK = 32
IN_PROCESS_MAX = 4 * CHUNK
IN_FLIGHT_PER_WORKER = 4
RESULT_TIMEOUT_S = 600.0
MAX_DISTINCT_LISTED = 40
#: the square sides a build accepts: larger ones cost gigabytes (a 100,000 px side needs
#: about 30 GB per image), smaller ones hold no usable content
MIN_SIZE, MAX_SIZE = 8, 1024

Renderer = Callable[..., tuple[Image.Image, int, dict[str, Any]]]


@dataclass(frozen=True)
class Job:
    """One image to build: read from ``src_path`` or drawn by ``renderer(*render_args)``."""

    id: str
    split: str
    label: int | None
    source: str
    license: str
    attribution: str = ""
    src_path: str | None = None
    crop: tuple[int, int, int, int] | None = None
    renderer: Renderer | None = None
    render_args: tuple[Any, ...] = ()
    subgroups: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageOptions:
    """How every image of a build is stored."""

    size: int | None = 96  # None keeps the source size
    fit: str = "squash"
    grayscale: bool = False
    png_compress: int = 1


def check_size(size: int, what: str = "size") -> None:
    """Refuse a square side outside :data:`MIN_SIZE`..:data:`MAX_SIZE` before any work starts."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError(f"{what} {size} out of range ({MIN_SIZE}..{MAX_SIZE})")


@dataclass
class Skip:
    id: str
    reason: str
    message: str


def default_workers() -> int:
    """Both cores of the reference machine (all cores elsewhere)."""
    return max(1, os.cpu_count() or 1)


# -- worker side ---------------------------------------------------------------------
def _process(job: Job, opts: ImageOptions, out_root: str) -> dict[str, Any] | Skip:
    found: list[str] = []
    label = job.label
    extra: dict[str, Any] = {}
    if job.renderer is not None:
        img, label, extra = job.renderer(*job.render_args)
        gray_source = img.mode == "L"
    else:
        assert job.src_path is not None
        if not os.path.isfile(job.src_path):
            return Skip(job.id, "missing image", f"{job.src_path}: not found")
        try:
            with open_image(Path(job.src_path)) as src:
                found = privacy.audit_image(src)
                gray_source = _is_gray(src)
                img = to_rgb_image(src)
                img.load()
        except DataError as exc:
            reason = "not an image" if "not an image" in str(exc) else "corrupt image"
            return Skip(job.id, reason, str(exc))
        if job.crop is not None:
            img = img.crop(job.crop)
    if label not in (0, 1):
        return Skip(job.id, "bad label", f"{job.id}: label {label!r}")
    if opts.size is not None and img.size != (opts.size, opts.size):
        img = fit_to_square(img.convert("RGB"), opts.size, opts.fit)
    img = img.convert("L") if opts.grayscale else img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=opts.png_compress)
    data = buf.getvalue()
    rel = f"{mf.IMAGES_DIR}/{job.split}/{job.id}.png"
    dest = os.path.join(out_root, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as fh:
        fh.write(data)
    lic = LICENSES.get(job.license, LICENSES["unknown"])
    sg: dict[str, Any] = {
        "person_size": subgroups.SIZE_NONE if label == 0 else None,
        "n_persons": 0 if label == 0 else None,
        **dict(job.subgroups),
        **extra,
        "grayscale_source": bool(gray_source or (extra.get("grayscale_source", False))),
        "brightness": subgroups.brightness_bucket(luminance_mean(np.asarray(img))),
    }
    row: dict[str, Any] = {
        "id": job.id,
        "path": rel,
        "label": int(label),
        "label_name": mf.label_name(int(label)),
        "split": job.split,
        "source": job.source,
        "license": lic.id,
        "license_url": lic.url,
        "attribution": job.attribution,
        "sha256": hashlib.sha256(data).hexdigest(),
        "width": img.width,
        "height": img.height,
        "privacy": privacy.encode_findings(found),
    }
    row.update({mf.SUBGROUP_PREFIX + k: v for k, v in sg.items()})
    return row


def _is_gray(img: Image.Image) -> bool:
    """A one-channel source, or a colour file whose three channels are identical."""
    if is_grayscale_mode(img):
        return True
    if img.mode in {"RGB", "RGBA"}:
        small = np.asarray(img.convert("RGB").resize((32, 32)), dtype=np.int16)
        return bool(
            np.abs(small[..., 0] - small[..., 1]).max() <= 2
            and np.abs(small[..., 1] - small[..., 2]).max() <= 2
        )
    return False


def process_chunk(chunk: list[Job], opts: ImageOptions, out_root: str) -> list[dict[str, Any] | Skip]:
    """Run in a worker: build a chunk of jobs, never raising for one bad image."""
    out: list[dict[str, Any] | Skip] = []
    for job in chunk:
        try:
            out.append(_process(job, opts, out_root))
        except DataError as exc:
            out.append(Skip(job.id, "bad input", str(exc)))
        except (OSError, ValueError) as exc:
            out.append(Skip(job.id, "corrupt image", f"{job.src_path or job.id}: {exc}"))
    return out


# -- parent side ---------------------------------------------------------------------
def _chunks(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    chunk: list[Job] = []
    for job in jobs:
        chunk.append(job)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_jobs(
    jobs: Iterable[Job], opts: ImageOptions, out_root: Path, workers: int
) -> Iterator[dict[str, Any] | Skip]:
    """Yield job outcomes in job order, with at most ``4 * workers`` chunks in flight."""
    it = iter(jobs)
    head = list(itertools.islice(it, IN_PROCESS_MAX))
    if workers <= 1 or len(head) < IN_PROCESS_MAX:
        # Starting worker processes costs about a second: not worth it for a few images.
        for chunk in _chunks(itertools.chain(head, it), CHUNK):
            yield from process_chunk(chunk, opts, str(out_root))
        return
    ctx: mp.context.BaseContext
    if "forkserver" in mp.get_all_start_methods():
        fs = mp.get_context("forkserver")
        # Workers fork from a server that has already imported the heavy modules.
        fs.set_forkserver_preload(["harness.data.build", "harness.data.synth"])
        ctx = fs
    else:
        ctx = mp.get_context("spawn")
    with ctx.Pool(processes=workers) as pool:
        pending: deque[AsyncResult[list[dict[str, Any] | Skip]]] = deque()
        for chunk in _chunks(itertools.chain(head, it), CHUNK):
            pending.append(pool.apply_async(process_chunk, (chunk, opts, str(out_root))))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                yield from pending.popleft().get(timeout=RESULT_TIMEOUT_S)
        while pending:
            yield from pending.popleft().get(timeout=RESULT_TIMEOUT_S)


class Stats:
    """Counts for the card, kept as counters so memory does not grow with the set."""

    def __init__(self) -> None:
        self.by_split: dict[str, Counter[str]] = {}
        self.licenses: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.subgroups: dict[str, Counter[str]] = {}
        self.privacy_found: Counter[str] = Counter()
        self.privacy_images = 0
        self.skipped: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.attributions: Counter[str] = Counter()
        self.total = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self.total += 1
        self.by_split.setdefault(row["split"], Counter())[row["label_name"]] += 1
        self.licenses[row["license"]] += 1
        self.sources[str(row["source"]).split(":", 1)[0]] += 1
        if row["attribution"]:
            self.attributions[row["attribution"]] += 1
        found = privacy.decode_findings(row["privacy"])
        if found:
            self.privacy_images += 1
            self.privacy_found.update(found)
        for k, v in row.items():
            if k.startswith(mf.SUBGROUP_PREFIX) and v is not None:
                c = self.subgroups.setdefault(k[len(mf.SUBGROUP_PREFIX) :], Counter())
                if len(c) < MAX_DISTINCT_LISTED or str(v) in c:
                    c[str(v)] += 1
                else:
                    c["(other values)"] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "splits": {s: dict(sorted(c.items())) for s, c in sorted(self.by_split.items())},
            "licenses": dict(self.licenses.most_common()),
            "sources": dict(self.sources.most_common()),
            "subgroups": {k: dict(c.most_common()) for k, c in sorted(self.subgroups.items())},
            "privacy": {
                "images_with_metadata": self.privacy_images,
                "found": dict(self.privacy_found.most_common()),
                "removed": dict(self.privacy_found.most_common()),
            },
            "skipped": dict(self.skipped.most_common()),
            "dropped_by_license": dict(self.dropped.most_common()),
            "attributions": (
                sorted(self.attributions)
                if len(self.attributions) <= MAX_DISTINCT_LISTED
                else f"{len(self.attributions)} distinct; see the manifest attribution column"
            ),
        }


_OUR_FILES = (mf.MANIFEST_NAME, mf.MANIFEST_NAME + ".partial", mf.CARD_NAME, mf.META_NAME)


def _command_line() -> str:
    """The ``hil`` command that is running, or a note that the Python API was used."""
    if Path(sys.argv[0]).name == "hil":
        return " ".join(["hil", *sys.argv[1:]])
    return "Python API (see parameters)"


def prepare_out(out: Path, force: bool) -> Path:
    """Create the output folder; refuse to mix with earlier content unless ``force``.

    With ``force`` only what a build writes is removed, never other files a user keeps
    in that folder.
    """
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        ours = [out / n for n in _OUR_FILES] + [out / mf.IMAGES_DIR]
        if not force:
            raise DataError(f"{out}: folder is not empty (use --force to rebuild)")
        for p in ours:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out.resolve()


def _checked(jobs: Iterable[Job], policy: LicensePolicy, stats: Stats) -> Iterator[Job]:
    """Drop jobs the licence policy refuses and ids that are unsafe or repeated."""
    seen: set[str] = set()
    for job in jobs:
        if not ID_RE.fullmatch(job.id) or not SPLIT_RE.fullmatch(job.split):
            stats.skipped["unsafe id or split name"] += 1
            log.warning("skipped %r: id/split must match %s", job.id, ID_RE.pattern)
            continue
        if job.id in seen:
            stats.skipped["duplicate id"] += 1
            continue
        seen.add(job.id)
        refusal = policy.refusal(job.license)
        if refusal:
            stats.dropped[refusal] += 1
            continue
        yield job


def build(
    out: Path,
    jobs: Iterable[Job],
    *,
    name: str,
    synthetic: bool,
    description: str,
    parameters: Mapping[str, Any],
    source_hashes: Mapping[str, str],
    subgroup_schema: Mapping[str, type],
    opts: ImageOptions,
    policy: LicensePolicy | None = None,
    workers: int | None = None,
    force: bool = False,
    pre_skipped: Mapping[str, int] | None = None,  # read after all jobs were consumed
    command: str | None = None,
) -> Path:
    """Build a data set folder at ``out`` from ``jobs``; returns ``out``."""
    out = prepare_out(out, force)
    policy = policy or LicensePolicy()
    workers = workers or default_workers()
    stats = Stats()
    started = time.monotonic()
    # Written under a temporary name: a build that dies half way leaves no manifest
    # that looks complete.
    manifest_path = out / (mf.MANIFEST_NAME + ".partial")
    total = len(jobs) if isinstance(jobs, Sized) else None  # generators: a bar without an end
    try:
        with (
            mf.ManifestWriter(manifest_path, subgroup_schema) as writer,
            console.progress(f"build {name}", total, unit="img") as bar,
        ):
            for outcome in run_jobs(_checked(jobs, policy, stats), opts, out, workers):
                if isinstance(outcome, Skip):
                    stats.skipped[outcome.reason] += 1
                    log.warning("skipped %s: %s", outcome.id, outcome.message)
                    bar.advance(1, skipped=sum(stats.skipped.values()))
                    continue
                writer.add(outcome)
                stats.add(outcome)
                bar.advance(1)
    except BaseException:
        # A failed or interrupted build leaves no half-written manifest behind.
        manifest_path.unlink(missing_ok=True)
        raise
    elapsed = time.monotonic() - started
    # Builders count what they skip while their job generator runs, so merge at the end.
    stats.skipped.update(pre_skipped or {})
    if stats.total == 0:
        manifest_path.unlink(missing_ok=True)
        why = ", ".join(f"{n} {r}" for r, n in (stats.skipped + stats.dropped).items()) or "no input"
        raise DataError(f"no images were built ({why})")
    meta = {
        "format": 1,
        "name": name,
        "synthetic": synthetic,
        "description": description,
        "build_command": command or _command_line(),
        "parameters": dict(parameters),
        "image": {"size": opts.size, "fit": opts.fit, "grayscale": opts.grayscale, "format": "png"},
        "license_policy": policy.describe(),
        "source_hashes": dict(source_hashes),
        "content_sha256": mf.manifest_content_hash(manifest_path),
        "build_seconds": round(elapsed, 2),
        "workers": workers,
        **stats.as_dict(),
    }
    (out / mf.META_NAME).write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n", "utf-8")
    write_card(out / mf.CARD_NAME, meta)
    os.replace(manifest_path, out / mf.MANIFEST_NAME)
    log.info("built %s: %d images in %.1fs at %s", name, stats.total, elapsed, out)
    return out
