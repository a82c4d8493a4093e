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
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ModelError
from harness.paths import model_cache_dir, reference_models_dir, zoo_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

DEFAULT_MODEL = "vww-default"
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


def _entry_from_toml(path: Path) -> ZooEntry:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"zoo entry {path} is not valid TOML: {exc}") from None
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


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.endswith(MODEL_SUFFIXES) or Path(spec).exists()


def resolve_model(spec: str | None) -> Path:
    """Turn a model given by the user into a file.

    None means the model the project ships; a zoo name is looked up and verified by
    sha256; anything that looks like a path must exist.
    """
    if spec is None:
        return entry_file(get_entry(DEFAULT_MODEL))
    if not _looks_like_path(spec):
        return entry_file(get_entry(spec))
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    if path.is_dir():
        raise ModelError(f"model path {path} is a folder, not a model file")
    return path
