"""Finding the TFLM Arduino-library tree every firmware build compiles against.

The boards, QEMU and the native runner all use one copy of TensorFlow Lite Micro: the
Chirale_TensorFLowLite 2.0.0 Arduino library that ``firmware/platformio.ini`` pins. It is
third-party source and never copied into this repository, so it is looked up in order:

1. ``--tflm-dir`` (the ``tflm_dir`` argument) or the ``HIL_TFLM_DIR`` environment variable;
2. ``../shared/vendor/Chirale_TensorFlowLite-2.0.0`` next to the project (what CI has);
3. PlatformIO's copy after ``pio pkg install``: ``firmware/.pio/libdeps/*/`` or
   ``~/.platformio/lib``.

A tree's version (from ``library.properties``/``library.json``) and a checksum of every
file go into the build's cache key and into run.json, so a result always names the exact
TFLM it ran. The checksum is the one ``../shared/vendor/README.md`` documents (sorted
``sha256sum`` of every file, then the sha256 of that list), cached per tree on disk keyed by
the files' sizes and modification times, so it is computed once, not on every call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, ModelError, ToolMissing
from harness.paths import PROJECT_ROOT, cache_dir, firmware_dir

log = logging.getLogger(__name__)

ENV_VAR = "HIL_TFLM_DIR"
LIBRARY_NAME = "Chirale_TensorFLowLite"
PINNED_VERSION = "2.0.0"
VENDOR_FOLDER = "Chirale_TensorFlowLite-2.0.0"
WHERE_TO_GET = (
    f"get the {LIBRARY_NAME} {PINNED_VERSION} Arduino library (github.com/spaziochirale/"
    "Chirale_TensorFlowLite, tag v2.0.0, or `pio pkg install -d firmware`) and pass --tflm-dir "
    f"DIR or set {ENV_VAR}"
)
#: Files a usable tree must have (relative to the tree): the interpreter, the mutable op
#: resolver the generated sources use, and CMSIS-NN.
REQUIRED = (
    "src/tensorflow/lite/micro/micro_interpreter.cpp",
    "src/tensorflow/lite/micro/micro_mutable_op_resolver.h",
    "src/tensorflow/lite/schema/schema_generated.h",
    "src/third_party/cmsis_nn/Include/arm_nnfunctions.h",
    "src/third_party/flatbuffers/include/flatbuffers/flatbuffers.h",
)
RESOLVER_HEADER = "src/tensorflow/lite/micro/micro_mutable_op_resolver.h"


@dataclass(frozen=True)
class TflmTree:
    """One TFLM Arduino-library tree: where it is, what version, and its content checksum."""

    root: Path
    version: str
    checksum: str
    source: str

    @property
    def src(self) -> Path:
        return self.root / "src"

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.root), "version": self.version, "checksum": self.checksum,
                "found_by": self.source}

    def resolver_methods(self) -> frozenset[str]:
        """The ``Add*`` methods this tree's MicroMutableOpResolver has."""
        text = (self.root / RESOLVER_HEADER).read_text(errors="replace")
        return frozenset(re.findall(r"TfLiteStatus\s+(Add[A-Za-z0-9]+)\s*\(", text))

    def check_ops(self, methods: list[str], model_label: str) -> None:
        """Refuse a model whose ops this tree's op resolver cannot register."""
        have = self.resolver_methods()
        missing = [m for m in methods if m not in have]
        if missing:
            raise ModelError(
                f"{model_label} needs {', '.join(missing)}, which the TFLM tree at {self.root} "
                f"({LIBRARY_NAME} {self.version}) does not have; use a TFLM tree with those kernels "
                "or a model without those ops"
            )


def candidates(tflm_dir: Path | str | None = None) -> list[tuple[Path, str]]:
    """Where a tree is looked for, in order, each with how it was named."""
    if tflm_dir:
        return [(Path(tflm_dir).expanduser(), "--tflm-dir")]
    env = os.environ.get(ENV_VAR)
    if env:
        return [(Path(env).expanduser(), ENV_VAR)]
    found = [(PROJECT_ROOT.parent / "shared" / "vendor" / VENDOR_FOLDER, "../shared/vendor")]
    libdeps = firmware_dir() / ".pio" / "libdeps"
    if libdeps.is_dir():
        found += [(p, "PlatformIO libdeps") for p in sorted(libdeps.glob(f"*/{LIBRARY_NAME}*"))]
    pio_lib = Path.home() / ".platformio" / "lib"
    if pio_lib.is_dir():
        found += [(p, "~/.platformio/lib") for p in sorted(pio_lib.glob(f"{LIBRARY_NAME}*"))]
    return found


def read_version(root: Path) -> str:
    """The library's version from library.properties or library.json ("unknown" if neither)."""
    props = root / "library.properties"
    if props.is_file():
        for line in props.read_text(errors="replace").splitlines():
            if line.startswith("version="):
                return line.split("=", 1)[1].strip()
    manifest = root / "library.json"
    if manifest.is_file():
        try:
            return str(json.loads(manifest.read_text()).get("version") or "unknown")
        except (OSError, ValueError):
            pass
    return "unknown"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.relative_to(root).parts)


def tree_checksum(root: Path) -> str:
    """sha256 of the sorted ``sha256sum``-style list of every file (as vendor/README.md says)."""
    lines = []
    for path in _files(root):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  ./{path.relative_to(root).as_posix()}\n")
    lines.sort(key=lambda line: line[66:])
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _stamp(root: Path) -> str:
    """A cheap fingerprint (paths, sizes, mtimes) that says when the checksum must be redone."""
    h = hashlib.sha256()
    for path in _files(root):
        st = path.stat()
        h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


_memo: dict[Path, TflmTree] = {}


def _cached_checksum(root: Path) -> str:
    stamp = _stamp(root)
    store = cache_dir() / "tflm-trees.json"
    try:
        known = json.loads(store.read_text()) if store.is_file() else {}
    except (OSError, ValueError):
        known = {}
    entry = known.get(str(root))
    if isinstance(entry, dict) and entry.get("stamp") == stamp and entry.get("checksum"):
        return str(entry["checksum"])
    checksum = tree_checksum(root)
    known[str(root)] = {"stamp": stamp, "checksum": checksum}
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(store)
    except OSError as exc:  # a read-only cache only costs recomputing next time
        log.debug("cannot store the TFLM tree checksum: %s", exc)
    return checksum


def check_tree(root: Path, named_by: str) -> None:
    """A named folder that is not a complete TFLM tree is one line naming what is missing."""
    if not root.is_dir():
        raise ToolMissing(f"no TFLM tree at {root} (from {named_by}); {WHERE_TO_GET}")
    missing = [rel for rel in REQUIRED if not (root / rel).is_file()]
    if missing:
        raise ToolMissing(
            f"the TFLM tree at {root} (from {named_by}) is incomplete: no {missing[0]}"
            f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}; {WHERE_TO_GET}"
        )


def find_tree(tflm_dir: Path | str | None = None) -> TflmTree:
    """The TFLM tree to build with (see the module docstring for the order)."""
    options = candidates(tflm_dir)
    explicit = bool(tflm_dir) or bool(os.environ.get(ENV_VAR))
    for root, named_by in options:
        root = root.resolve()
        if explicit:
            check_tree(root, named_by)
        elif not root.is_dir():
            continue
        else:
            check_tree(root, named_by)
        if root not in _memo:
            version = read_version(root)
            if version == "unknown":
                raise ConfigError(
                    f"the TFLM tree at {root} has no library.properties or library.json version"
                )
            _memo[root] = TflmTree(root, version, _cached_checksum(root), named_by)
            log.info("TFLM tree %s (%s %s, checksum %s, from %s)", root, LIBRARY_NAME, version,
                     _memo[root].checksum[:12], named_by)
        return _memo[root]
    raise ToolMissing(f"no TFLM tree found ({ENV_VAR} unset, no ../shared/vendor/{VENDOR_FOLDER}, "
                      f"no PlatformIO copy); {WHERE_TO_GET}")
