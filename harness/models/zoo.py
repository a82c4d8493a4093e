"""The model zoo: ``models/*.toml`` entries and how a model name becomes a file.

Each entry says what a model is (architecture parameters, input specification,
licence) and where its file comes from: trained by this project and shipped under
``models/``, or published elsewhere at a URL with a sha256. Published files are never
fetched behind the user's back: they are looked for in the model cache (and in the
team's shared reference folder, where tests find them) and checked against the hash;
when absent, the error says where to download them and where to put them. This module
imports no TensorFlow so that ``hil bench`` can resolve models cheaply.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ModelError
from harness.models.default import DEFAULT_MODEL, NO_REFERENCE_ENV, REFERENCE_MODEL
from harness.paths import model_cache_dir, reference_models_dir, zoo_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

#: ``hil models fetch <bundle>``: the zoo entries each bundle name downloads.
FETCH_BUNDLES = {"mlperf-vww": ("mlperf-vww-96", "mlperf-vww-96-float")}
FETCH_TIMEOUT_S = 60.0
MODEL_SUFFIXES = (".tflite", ".h5", ".keras")


@dataclass(frozen=True)
class ZooEntry:
    """One ``models/<name>.toml`` file."""

    name: str
    description: str
    format: str  # "tflite-int8", "tflite-float" or "keras"
    architecture: dict[str, Any]
    input: dict[str, Any]
    licence: str
    origin: str  # "project" (trained here, shipped in the repo) or "url"
    filename: str
    sha256: str
    url: str | None
    path: Path  # the TOML file
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def shipped_path(self) -> Path | None:
        """Where a project-trained model lives in the repository (None for downloads)."""
        if self.origin != "project":
            return None
        return (self.path.parent / self.filename).resolve()

    def candidates(self) -> list[Path]:
        """Places the file may be, in the order they are tried."""
        if self.origin == "project":
            shipped = self.shipped_path
            return [shipped] if shipped else []
        out = [model_cache_dir() / Path(self.filename).name]
        ref = reference_models_dir()
        if ref is not None:
            out.append(ref / Path(self.filename).name)
        return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- the model card schema: checked before an entry is used ---------------------------------
# A card is read by `hil bench`, `hil models` and the pytest plugin; a wrong type there
# would surface as a traceback far from the card (or a model silently described wrong),
# so every key the harness reads is checked here, each mistake one line naming the file,
# the key and what was expected.
FORMATS = ("tflite-int8", "tflite-float", "keras")
ORIGINS = ("project", "url")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _text(v: Any) -> bool:
    return isinstance(v, str) and v.strip() != ""


#: key -> (check, what it expects, required); dotted keys are inside a table
CARD_SCHEMA: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "name": (_text, "a non-empty string", True),
    "description": (lambda v: isinstance(v, str), "a string", False),
    "format": (lambda v: v in FORMATS, f"one of {', '.join(FORMATS)}", True),
    "licence": (_text, "a non-empty string (an SPDX id such as Apache-2.0)", True),
    "published_accuracy": (lambda v: isinstance(v, str), "a string", False),
    "architecture": (lambda v: isinstance(v, dict), "a table", False),
    "architecture.family": (_text, "a non-empty string", False),
    "architecture.alpha": (lambda v: _number(v) and 0 < v <= 4, "a number > 0 and <= 4", False),
    "architecture.resolution": (lambda v: _int(v) and v > 0, "an integer > 0", False),
    "architecture.channels": (lambda v: v in (1, 3), "1 (grayscale) or 3 (RGB)", False),
    "architecture.num_classes": (lambda v: _int(v) and v >= 1, "an integer >= 1", False),
    "architecture.head": (lambda v: isinstance(v, str), "a string", False),
    "input": (lambda v: isinstance(v, dict), "a table", False),
    "input.dtype": (lambda v: v in ("int8", "uint8", "float32"), "one of int8, uint8, float32", False),
    "input.shape": (
        lambda v: isinstance(v, list) and bool(v) and all(_int(x) and x > 0 for x in v),
        "a list of integers > 0 such as [1, 96, 96, 3]", False,
    ),
    "input.colour": (lambda v: v in ("rgb", "grayscale"), "rgb or grayscale", False),
    "input.pixel": (lambda v: isinstance(v, str), "a string", False),
    "input.labels": (
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings", False,
    ),
    "source": (lambda v: isinstance(v, dict), "a table", True),
    "source.origin": (lambda v: v in ORIGINS, "project or url", True),
    "source.file": (_text, "a non-empty file name", True),
    "source.sha256": (lambda v: isinstance(v, str) and bool(_SHA256.match(v)), "64 hex digits", True),
    "source.url": (
        lambda v: isinstance(v, str) and v.startswith(("https://", "http://")), "an http(s) URL", False,
    ),
    "training": (lambda v: isinstance(v, dict), "a table", False),
}  # fmt: skip


def validate_card(data: dict[str, Any], path: Path) -> None:
    """Raise one :class:`ConfigError` line for the first key of a card that breaks the schema."""
    for key, (check, expected, required) in CARD_SCHEMA.items():
        table, _, inner = key.rpartition(".")
        holder = data.get(table) if table else data
        if not isinstance(holder, dict):
            continue  # the table itself is reported by its own rule
        if inner not in holder:
            if required:
                raise ConfigError(f"zoo entry {path} lacks the field {key!r} ({expected})")
            continue
        value = holder[inner]
        if not check(value):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise ConfigError(f"zoo entry {path}: {key} = {shown} is wrong: expected {expected}")
    source = data["source"]
    if source["origin"] == "url" and "url" not in source:
        raise ConfigError(f"zoo entry {path} lacks the field 'source.url' (a downloaded model needs it)")
    shape, channels = (data.get("input") or {}).get("shape"), (data.get("architecture") or {}).get("channels")
    if shape and channels and shape[-1] != channels:
        raise ConfigError(
            f"zoo entry {path}: input.shape = {shape} is wrong: expected its last dimension to be "
            f"architecture.channels = {channels}"
        )


def _entry_from_toml(path: Path) -> ZooEntry:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"zoo entry {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"zoo entry {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read zoo entry {path}: {exc.strerror}") from None
    validate_card(data, path)
    try:
        source = data["source"]
        origin = str(source["origin"])
        if origin not in ("project", "url"):
            raise ConfigError(f"zoo entry {path}: source.origin must be 'project' or 'url'")
        url = source.get("url")
        if origin == "url" and not url:
            raise ConfigError(f"zoo entry {path}: a downloaded model needs source.url")
        return ZooEntry(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            format=str(data["format"]),
            architecture=dict(data.get("architecture", {})),
            input=dict(data.get("input", {})),
            licence=str(data["licence"]),
            origin=origin,
            filename=str(source["file"]),
            sha256=str(source["sha256"]).lower(),
            url=str(url) if url else None,
            path=path,
            extra={k: v for k, v in data.items() if k not in ("source",)},
        )
    except KeyError as exc:
        raise ConfigError(f"zoo entry {path} lacks the field {exc.args[0]!r}") from None


def list_zoo() -> list[ZooEntry]:
    """All zoo entries, sorted by name."""
    folder = zoo_dir()
    if not folder.is_dir():
        return []
    return sorted((_entry_from_toml(p) for p in folder.glob("*.toml")), key=lambda e: e.name)


def get_entry(name: str) -> ZooEntry:
    for entry in list_zoo():
        if entry.name == name:
            return entry
    names = ", ".join(e.name for e in list_zoo()) or "none"
    raise ModelError(f"no model {name!r} in the zoo ({zoo_dir()}); known: {names}")


def entry_file(entry: ZooEntry, verify: bool = True) -> Path:
    """The verified local file of a zoo entry, or ModelError saying how to get it."""
    mismatched: list[Path] = []
    for cand in entry.candidates():
        if not cand.is_file():
            continue
        if not verify or _sha256(cand) == entry.sha256:
            return cand
        mismatched.append(cand)
    if entry.origin == "project":
        where = entry.shipped_path
        if mismatched:
            raise ModelError(
                f"{where} does not match the sha256 in {entry.path.name}; retrain it or update the entry"
            )
        raise ModelError(f"model {entry.name!r}: shipped file {where} is missing")
    target = model_cache_dir() / Path(entry.filename).name
    if mismatched:
        raise ModelError(
            f"model {entry.name!r}: {mismatched[0]} has the wrong sha256 (expected "
            f"{entry.sha256}); download it again from {entry.url}"
        )
    raise ModelError(
        f"model {entry.name!r} is not in the model cache: download {entry.url} to {target} "
        f"(sha256 {entry.sha256})"
    )


def looks_like_path(spec: str) -> bool:
    """Whether a model given by the user is a file rather than a zoo name."""
    return "/" in spec or "\\" in spec or spec.endswith(MODEL_SUFFIXES) or Path(spec).exists()


def resolve_model(spec: str | None) -> Path:
    """Turn a model given by the user into a file.

    None means the default (:func:`default_model_file`); a zoo name is looked up and verified by
    sha256; anything that looks like a path must exist.
    """
    if spec is None:
        return default_model_file()
    if not looks_like_path(spec):
        return entry_file(get_entry(spec))
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    if path.is_dir():
        raise ModelError(f"model path {path} is a folder, not a model file")
    return path


def reference_model_file() -> Path | None:
    """The verified MLPerf Tiny int8 reference model, if present (model cache or ../shared).

    The one lookup that the bench default, tests and benchmarks share.
    """
    try:
        return entry_file(get_entry(REFERENCE_MODEL))
    except ModelError:
        return None


def name_of_file(path: Path) -> str | None:
    """The zoo entry whose sha256 this file has (None: no entry), as run.json names models."""
    digest = _sha256(path)
    return next((e.name for e in list_zoo() if e.sha256 == digest), None)


def default_model_file(warn: bool = True) -> Path:
    """The reference model when present, else the shipped synthetic-data model (saying so once).

    ``HIL_NO_REFERENCE=1`` skips the reference, for tests and CI jobs whose expected
    figures belong to the shipped model. ``warn=False`` only looks (nightly names its
    cells with it before any of them runs).
    """
    if os.environ.get(NO_REFERENCE_ENV, "").strip() not in ("", "0"):
        return entry_file(get_entry(DEFAULT_MODEL))
    ref = reference_model_file()
    if ref is not None:
        return ref
    if warn:
        log.warning(
            "using the shipped model %r, trained on synthetic data only (near chance on real photos); "
            "run `hil models fetch mlperf-vww` for the MLPerf Tiny reference", DEFAULT_MODEL,
        )
    return entry_file(get_entry(DEFAULT_MODEL))


def _download_url(entry: ZooEntry) -> str:
    """The entry's URL; ``HIL_MODEL_URL_BASE`` replaces its folder (mirrors, offline tests)."""
    assert entry.url is not None
    base = os.environ.get("HIL_MODEL_URL_BASE")
    if not base:
        return entry.url
    return base.rstrip("/") + "/" + entry.url.rsplit("/", 1)[-1]


def fetch_entry(entry: ZooEntry, timeout_s: float = FETCH_TIMEOUT_S) -> Path:
    """Download a published zoo model into the model cache, verified, atomically.

    The file is written to a temporary name in the cache folder, checked against the
    pinned sha256 and only then renamed, so a failed or corrupt download leaves nothing.
    The licence, source, hash and date are written beside it (``<file>.source.json``).
    """
    if entry.origin != "url" or entry.url is None:
        raise ModelError(f"model {entry.name!r} is shipped with the project; nothing to fetch")
    cache = model_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / Path(entry.filename).name
    if target.is_file() and _sha256(target) == entry.sha256:
        return target
    url = _download_url(entry)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=cache)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - pinned hash
                    for chunk in iter(lambda: resp.read(1 << 16), b""):
                        h.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise ModelError(f"cannot download {entry.name!r} from {url}: {reason}") from None
        if h.hexdigest() != entry.sha256:
            raise ModelError(
                f"download of {entry.name!r} from {url} has sha256 {h.hexdigest()}, expected "
                f"{entry.sha256}; nothing stored"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_provenance(target, entry, url)
    log.info("stored %s (%s, %s)", target, entry.licence, entry.url)
    return target


def provenance_path(model_file: Path) -> Path:
    """Where the provenance record of a downloaded model sits: ``<file>.source.json``."""
    return model_file.with_name(f"{model_file.name}.source.json")


def _write_provenance(target: Path, entry: ZooEntry, fetched_from: str) -> None:
    """Licence, source and hash beside the file, so a cache copied elsewhere still says them."""
    record = {
        "model": entry.name, "file": target.name, "source": entry.url, "fetched_from": fetched_from,
        "licence": entry.licence, "sha256": entry.sha256,
        "fetched_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip
    path = provenance_path(target)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def fetch_bundle(name: str) -> list[Path]:
    """``hil models fetch``: a bundle name (``mlperf-vww``) or a single downloadable zoo name."""
    names = FETCH_BUNDLES.get(name, (name,))
    return [fetch_entry(get_entry(n)) for n in names]
