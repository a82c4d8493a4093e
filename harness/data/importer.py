"""Import a user's labelled images into the built format.

Sources are what :class:`~harness.data.dataset.Dataset` reads in place (a folder with
``labels.csv``, or ``person/`` + ``non_person/`` folders) or a ``.zip`` / ``.tar*``
archive of either. Archives are unpacked inside the output folder only, member by
member, refusing absolute paths, ``..``, links and devices, so a hostile archive
cannot write anywhere else; the unpacked copy is removed after the build.
"""

from __future__ import annotations

import logging
import re
import shutil
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from harness.data import subgroups
from harness.data.build import ImageOptions, Job, build, prepare_out
from harness.data.dataset import IN_PLACE_SPLIT, Dataset, Sample
from harness.data.licenses import LicensePolicy, get_license
from harness.data.manifest import MANIFEST_NAME, file_sha256, hash_split
from harness.errors import DataError

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
EXTRACT_DIR = ".import-source"
MAX_MEMBER_BYTES = 200 * 1024 * 1024
RESERVED = {"license", "license_url", "attribution", "source"}


def is_archive(path: Path) -> bool:
    return path.is_file() and any(path.name.lower().endswith(s) for s in ARCHIVE_SUFFIXES)


def _safe_member(name: str) -> PurePosixPath | None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts or re.match(r"^[A-Za-z]:", name):
        return None
    return p


def extract_archive(archive: Path, dest: Path, skipped: Counter[str]) -> Path:
    """Unpack regular files of ``archive`` under ``dest``; unsafe members are skipped."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()

    def target(name: str) -> Path | None:
        rel = _safe_member(name)
        if rel is None:
            skipped["unsafe archive member (path escapes)"] += 1
            log.warning("%s: member %r escapes the target folder, skipped", archive, name)
            return None
        out = (root / rel).resolve()
        if not out.is_relative_to(root):
            skipped["unsafe archive member (path escapes)"] += 1
            return None
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    if info.file_size > MAX_MEMBER_BYTES:
                        skipped["archive member too large"] += 1
                        continue
                    out = target(info.filename)
                    if out is not None:
                        with zf.open(info) as src, out.open("wb") as dst:
                            shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(archive) as tf:
                for member in tf:
                    if member.isdir():
                        continue
                    if not member.isfile():
                        skipped["archive member not a regular file (link/device)"] += 1
                        continue
                    if member.size > MAX_MEMBER_BYTES:
                        skipped["archive member too large"] += 1
                        continue
                    out = target(member.name)
                    fobj = tf.extractfile(member) if out is not None else None
                    if out is not None and fobj is not None:
                        with fobj, out.open("wb") as dst:
                            shutil.copyfileobj(fobj, dst)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{archive}: unreadable archive ({exc})") from None
    return _data_root(dest)


def _data_root(folder: Path) -> Path:
    """The folder inside an unpacked archive that holds labels.csv or person/."""
    for cand in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        if (cand / "labels.csv").is_file() or (cand / "person").is_dir():
            return cand
    raise DataError("archive holds neither labels.csv nor person/ and non_person/ folders")


def _sanitize_id(rel_path: str) -> str:
    stem = PurePosixPath(rel_path).with_suffix("").as_posix().replace("/", "__")
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip("._-") or "img"
    return clean[:200]


def _subgroup_name(key: str, value: object) -> str:
    """Keep a user column under its own name unless it would clash with ours.

    A column that means what our subgroup of that name means (same type) is kept, so
    ``person_size`` from a user's CSV or an earlier build stays ``person_size``;
    ``brightness`` and ``grayscale_source`` are always measured again.
    """
    if key in ("brightness", "grayscale_source"):
        return f"user_{key}"
    expected = subgroups.COCO_SCHEMA.get(key)
    if expected is None:
        return key
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return key
    return f"user_{key}"


def _passed_through(s: Sample, built: bool) -> dict[str, object]:
    """User subgroups of ``s`` under their output names (a built source's measured
    columns are measured again, not copied)."""
    out: dict[str, object] = {}
    for k, v in s.subgroups.items():
        if k in RESERVED or (built and k in ("brightness", "grayscale_source")):
            continue
        out[_subgroup_name(k, v)] = v
    return out


def _user_schema(samples: Iterable[Sample], built: bool) -> dict[str, type]:
    schema: dict[str, type] = {}
    for s in samples:
        for k, v in _passed_through(s, built).items():
            schema.setdefault(k, type(v))
    return schema


def import_jobs(
    ds: Dataset, default_license: str, default_attribution: str, fractions: tuple[float, ...] | None
) -> Iterator[Job]:
    built = (ds.root / MANIFEST_NAME).is_file()
    for s in ds.iter_samples():
        sg: dict[str, Any] = _passed_through(s, built)
        split = s.split.lower()
        if split == IN_PLACE_SPLIT and fractions:
            split = hash_split(s.rel_path, fractions)
        yield Job(
            id=_sanitize_id(s.rel_path),
            split=split,
            label=s.label,
            source=f"import:{s.rel_path}",
            license=str(s.subgroups.get("license") or default_license),
            attribution=str(s.subgroups.get("attribution") or default_attribution),
            src_path=str(s.path),
            subgroups=sg,
        )


def import_dataset(
    src: Path,
    out: Path,
    *,
    license_id: str = "unknown",
    attribution: str = "",
    fractions: tuple[float, ...] | None = None,
    opts: ImageOptions | None = None,
    policy: LicensePolicy | None = None,
    workers: int | None = None,
    force: bool = False,
) -> Path:
    """Build ``out`` from a labelled folder or archive at ``src``."""
    get_license(license_id)
    src = src.expanduser()
    if not src.exists():
        raise DataError(f"{src}: not found")
    if src.resolve() == out.expanduser().resolve():
        raise DataError(f"{out}: output folder must differ from the source folder")
    if not (src.is_dir() or is_archive(src)):
        raise DataError(f"{src}: not a folder or a .zip/.tar archive")
    out = prepare_out(out, force)
    skipped: Counter[str] = Counter()
    extracted: Path | None = None
    try:
        if is_archive(src):
            extracted = out / EXTRACT_DIR
            data_root = extract_archive(src, extracted, skipped)
            source_hash = {src.name: file_sha256(src)}
        else:
            data_root = src
            labels = src / "labels.csv"
            source_hash = {"labels.csv": file_sha256(labels)} if labels.is_file() else {}
        ds = Dataset.open(data_root)
        skipped.update(ds.skipped)
        built = (ds.root / MANIFEST_NAME).is_file()
        schema = {**subgroups.BASE_SCHEMA, **_user_schema(ds.iter_samples(), built)}
        return build(
            out,
            import_jobs(ds, license_id, attribution, fractions),
            name=f"{'synthetic-' if ds.synthetic else ''}import-{src.name.split('.')[0]}",
            synthetic=ds.synthetic,
            description=f"Imported from {src} ({len(ds)} labelled images).",
            parameters={
                "source": str(src),
                "license": license_id,
                "attribution": attribution,
                "fractions": list(fractions) if fractions else None,
            },  # fmt: skip
            source_hashes=source_hash,
            subgroup_schema=schema,
            opts=opts or ImageOptions(),
            policy=policy,
            workers=workers,
            force=True,
            pre_skipped=skipped,
        )
    finally:
        if extracted is not None and extracted.exists():
            shutil.rmtree(extracted)
