"""The real-image smoke set, built offline from images that installed packages ship.

``smoke_manifest.csv`` (committed beside this module) names each source file, the
package it comes from, an optional crop, its label, its licence with the evidence
for it, and why the label holds. Only licences in :data:`SMOKE_LICENSES` are kept;
entries whose licence could not be confirmed are listed but dropped, and the card
says so. It is the default data set of ``hil bench``, so it builds in about a second.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from harness import paths
from harness.data import subgroups
from harness.data.build import ImageOptions, Job, build, check_size
from harness.data.licenses import SHIPPABLE, LicensePolicy
from harness.data.manifest import MANIFEST_NAME, file_sha256
from harness.errors import DataError

log = logging.getLogger(__name__)

SMOKE_MANIFEST = Path(__file__).with_name("smoke_manifest.csv")
SMOKE_LICENSES = frozenset(SHIPPABLE)
SMOKE_SIZE = 96
FIELDS = ("id", "package", "file", "crop", "label", "n_persons", "person_size", "license",
          "attribution", "license_evidence", "label_reason")  # fmt: skip


def package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (imports are slow)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def read_smoke_manifest(path: Path = SMOKE_MANIFEST) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise DataError(f"{path}: cannot read smoke manifest ({exc})") from None
    if not rows or any(f not in rows[0] for f in FIELDS):
        raise DataError(f"{path}: smoke manifest needs columns {', '.join(FIELDS)}")
    return rows


def _crop(text: str) -> tuple[int, int, int, int] | None:
    if not text.strip():
        return None
    x0, y0, x1, y1 = (int(v) for v in text.split())
    return (x0, y0, x1, y1)


def smoke_jobs(rows: list[dict[str, str]], missing: Counter[str], hashes: dict[str, str]) -> Iterator[Job]:
    for r in rows:
        base = package_dir(r["package"])
        src = base / r["file"] if base else None
        if src is None or not src.is_file():
            missing["source not installed"] += 1
            log.warning("smoke: %s/%s not found, skipped", r["package"], r["file"])
            continue
        key = f"{r['package']}/{r['file']}"
        if key not in hashes:
            hashes[key] = file_sha256(src)
        yield Job(
            id=r["id"],
            split="test",
            label=int(r["label"]),
            source=f"{r['package']}:{r['file']}",
            license=r["license"],
            attribution=r["attribution"],
            src_path=str(src),
            crop=_crop(r["crop"]),
            # Counted and bucketed by eye (no boxes exist for these images).
            subgroups={"n_persons": int(r["n_persons"]), "person_size": r["person_size"]},
        )


def build_smoke(out: Path, size: int = SMOKE_SIZE, grayscale: bool = False, force: bool = True) -> Path:
    """Build the smoke set into ``out`` from the committed manifest."""
    check_size(size)
    rows = read_smoke_manifest()
    missing: Counter[str] = Counter()
    hashes: dict[str, str] = {"smoke_manifest.csv": file_sha256(SMOKE_MANIFEST)}
    jobs = list(smoke_jobs(rows, missing, hashes))
    return build(
        out,
        jobs,
        name="smoke",
        synthetic=False,
        description=(
            "Real photographs and images shipped by installed Python packages "
            "(scikit-image, scikit-learn, matplotlib), labelled person / no person by hand; "
            "why each label holds is written in harness/data/smoke_manifest.csv. "
            "Tiny (about twenty images): a smoke test of the pipeline on real pixels, "
            "not an accuracy benchmark."
        ),
        parameters={"size": size, "grayscale": grayscale, "manifest": str(SMOKE_MANIFEST.name)},
        source_hashes=hashes,
        subgroup_schema=subgroups.BASE_SCHEMA,
        opts=ImageOptions(size=size, grayscale=grayscale),
        policy=LicensePolicy(allow=SMOKE_LICENSES, derivative=True, commercial=False),
        workers=1,
        force=force,
        pre_skipped=missing,
        command=f"hil data smoke --size {size}" + (" --grayscale" if grayscale else ""),
    )


def default_dataset(rebuild: bool = False) -> Path:
    """The smoke set in the user cache, built on first use; the default of ``hil bench``.

    It is built in a private folder and renamed into place, so two processes that ask
    at the same time (a bench and a test run) never see a half-built set.
    """
    out = paths.cache_dir() / "datasets" / "smoke"
    manifest = out / MANIFEST_NAME
    if not rebuild and manifest.is_file() and manifest.stat().st_mtime >= SMOKE_MANIFEST.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".smoke-build-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    build_smoke(tmp, force=True)
    old = out.parent / f".smoke-old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except OSError:
        log.info("another process installed the smoke set first; using theirs")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out
