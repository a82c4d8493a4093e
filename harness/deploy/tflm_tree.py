"""Finding the TFLM Arduino-library tree every firmware build compiles against.

The boards, QEMU and the native runner all use one copy of TensorFlow Lite Micro: the
Chirale_TensorFLowLite 2.0.0 Arduino library that ``firmware/platformio.ini`` pins. It is
third-party source and never copied into this repository, so it is looked up where a
user has it, in order:

1. ``--tflm-dir`` (the ``tflm_dir`` argument) or the ``HIL_TFLM_DIR`` environment variable
   (a checkout of github.com/spaziochirale/Chirale_TensorFlowLite at tag v2.0.0);
2. where PlatformIO installs the pinned library: the firmware project's library folders
   (``firmware/.pio/libdeps/<env>/``, moved by ``PLATFORMIO_WORKSPACE_DIR`` or
   ``PLATFORMIO_LIBDEPS_DIR``), after any ``pio run`` or ``pio pkg install -d firmware``,
   and PlatformIO's global library folder (``~/.platformio/lib``, moved by
   ``PLATFORMIO_CORE_DIR`` or ``PLATFORMIO_GLOBALLIB_DIR``), after ``pio pkg install -g``;
3. when none is found and PlatformIO is installed: PlatformIO itself installs the pinned
   library into ``firmware/.pio/libdeps/<env>/`` (one bounded step with a status line).
   PlatformIO retries an unreachable registry for about a minute, so its registry is
   first probed with a TCP connect of a few seconds; offline, the lookup fails at once
   in one line naming ``HIL_TFLM_DIR``, and does not probe again in the same process.

A tree's version (from ``library.properties``/``library.json``) and a checksum of every
file go into the build's cache key and into run.json, so a result always names the exact
TFLM it ran. The checksum is that of ``sha256sum`` over every file of the tree (``.git``
left out), one ``DIGEST  ./PATH`` line each, sorted by path, then the sha256 of that list:
``find . -type f -not -path './.git/*' -exec sha256sum {} + | LC_ALL=C sort -k2 | sha256sum``
in the tree gives the same figure. It is cached per tree on disk keyed by the files' sizes and
modification times, so it is computed once, not on every call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness import console
from harness.deploy import pio
from harness.errors import ConfigError, ModelError, ToolMissing
from harness.paths import cache_dir, firmware_dir

log = logging.getLogger(__name__)

ENV_VAR = "HIL_TFLM_DIR"
LIBRARY_NAME = "Chirale_TensorFLowLite"
PINNED_VERSION = "2.0.0"
#: the PlatformIO registry spec firmware/platformio.ini pins (its ``[vww] tflm``)
PIO_SPEC = f"spaziochirale/{LIBRARY_NAME}@{PINNED_VERSION}"
#: the environment whose library folder an automatic install fills (platformio.ini's default)
PIO_INSTALL_ENV = "nano33ble"
PIO_INSTALL_TIMEOUT_S = 600.0
WHERE_TO_GET = (
    f"get the {LIBRARY_NAME} {PINNED_VERSION} Arduino library (github.com/spaziochirale/"
    f"Chirale_TensorFlowLite, tag v2.0.0, or `pio pkg install -d firmware -l {PIO_SPEC}`) and "
    f"pass --tflm-dir DIR or set {ENV_VAR}"
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


def _is_library_folder(path: Path) -> bool:
    # PlatformIO names the folder after library.properties (Chirale_TensorFLowLite), a
    # GitHub tarball after the repository (Chirale_TensorFlowLite-2.0.0): match either
    return path.is_dir() and path.name.lower().startswith(LIBRARY_NAME.lower())


def platformio_library_dirs() -> list[tuple[Path, str]]:
    """PlatformIO's library folders for this project, each with how it is named in messages.

    The firmware project's ``libdeps`` folder, whose ``<env>/`` subfolders hold what ``pio
    run`` and ``pio pkg install -d firmware`` installed, and the global library folder
    (``pio pkg install -g``), each as PlatformIO's own environment variables move them.
    """
    libdeps_env = os.environ.get("PLATFORMIO_LIBDEPS_DIR")
    workspace = os.environ.get("PLATFORMIO_WORKSPACE_DIR")
    if libdeps_env:
        libdeps = Path(libdeps_env).expanduser()
    else:
        libdeps = (Path(workspace).expanduser() if workspace else firmware_dir() / ".pio") / "libdeps"
    globallib_env = os.environ.get("PLATFORMIO_GLOBALLIB_DIR")
    globallib = Path(globallib_env).expanduser() if globallib_env else pio.core_dir() / "lib"
    return [(libdeps, "PlatformIO libdeps"), (globallib, "PlatformIO global lib")]


def candidates(tflm_dir: Path | str | None = None) -> list[tuple[Path, str]]:
    """Where a tree is looked for, in order, each with how it was named."""
    if tflm_dir:
        return [(Path(tflm_dir).expanduser(), "--tflm-dir")]
    env = os.environ.get(ENV_VAR)
    if env:
        return [(Path(env).expanduser(), ENV_VAR)]
    (libdeps, libdeps_named), (globallib, global_named) = platformio_library_dirs()
    found: list[tuple[Path, str]] = []
    if libdeps.is_dir():
        for env_dir in sorted(p for p in libdeps.iterdir() if p.is_dir()):
            found += [(p, f"{libdeps_named} {env_dir.name}") for p in sorted(env_dir.iterdir())
                      if _is_library_folder(p)]
    if globallib.is_dir():
        found += [(p, global_named) for p in sorted(globallib.iterdir()) if _is_library_folder(p)]
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
    """sha256 of the sorted ``sha256sum``-style list of every file (see the module docstring)."""
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


def _searched() -> str:
    (libdeps, _), (globallib, _) = platformio_library_dirs()
    return f"{libdeps}/*/ or {globallib}"


def registry_answers(timeout: float = pio.PROBE_TIMEOUT_S) -> bool:
    """Whether PlatformIO's registry takes a TCP connect, decided within ``timeout`` (+1 s).

    The socket's timeout does not bound the name lookup, which a machine with a DNS
    server that drops queries can spend many seconds on; the probe therefore runs in a
    thread that is waited for at most ``timeout`` + 1 s and abandoned after.
    """
    answer: list[bool] = []
    probe = threading.Thread(target=lambda: answer.append(pio.registry_reachable(timeout=timeout)),
                             name="pio-registry-probe", daemon=True)
    probe.start()
    probe.join(timeout + 1.0)
    return bool(answer and answer[0])


#: why PlatformIO could not install the tree, once per process (a second probe would only
#: wait again for the same answer)
_install_refused: str | None = None


def install_with_platformio() -> Path:
    """Install the pinned library with PlatformIO into the firmware's libdeps, or one-line ToolMissing.

    Only after a few-second TCP probe of PlatformIO's registry: offline, ``pio pkg
    install`` would retry for about a minute before failing with a page of traceback.
    """
    global _install_refused
    if _install_refused is not None:
        raise ToolMissing(_install_refused)
    nothing = f"no TFLM tree found ({ENV_VAR} unset; none in {_searched()})"
    try:
        exe = pio.pio_executable()
    except ToolMissing:
        _install_refused = f"{nothing}; PlatformIO is not installed to fetch it: {WHERE_TO_GET}"
        raise ToolMissing(_install_refused) from None
    t0 = time.monotonic()
    if not registry_answers():
        _install_refused = (
            f"{nothing}; PlatformIO's registry ({pio.registry_address()[0]}) did not answer within "
            f"{pio.PROBE_TIMEOUT_S:g} s, so {PIO_SPEC} cannot be installed: set {ENV_VAR} to a "
            f"{LIBRARY_NAME} {PINNED_VERSION} tree (github.com/spaziochirale/Chirale_TensorFlowLite, "
            "tag v2.0.0)"
        )
        log.debug("registry probe failed after %.1f s", time.monotonic() - t0)
        raise ToolMissing(_install_refused)
    cmd = [exe, "pkg", "install", "-d", str(firmware_dir()), "-e", PIO_INSTALL_ENV, "-l", PIO_SPEC,
           "--no-save", "--skip-dependencies", "-s"]
    what = f"installing {PIO_SPEC} with PlatformIO (no TFLM tree found; once)"
    with console.status(what) as shown:
        if not shown.drawing:
            log.warning("%s", what)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIO_INSTALL_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            _install_refused = (f"`pio pkg install -l {PIO_SPEC}` did not finish within "
                                f"{PIO_INSTALL_TIMEOUT_S:.0f} s; set {ENV_VAR} to a TFLM tree")
            raise ToolMissing(_install_refused) from None
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        _install_refused = f"`pio pkg install -l {PIO_SPEC}` failed ({last}); {WHERE_TO_GET}"
        raise ToolMissing(_install_refused)
    for root, _named in candidates():
        return root
    _install_refused = (f"`pio pkg install -l {PIO_SPEC}` succeeded but no {LIBRARY_NAME} folder is in "
                        f"{_searched()}; {WHERE_TO_GET}")
    raise ToolMissing(_install_refused)


def _tree_at(root: Path, named_by: str) -> TflmTree:
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


def find_tree(tflm_dir: Path | str | None = None) -> TflmTree:
    """The TFLM tree to build with (see the module docstring for the order)."""
    options = candidates(tflm_dir)
    if options:  # a named folder is checked even when absent; PlatformIO's only when present
        root, named_by = options[0]
        return _tree_at(root.resolve(), named_by)
    root = install_with_platformio()
    return _tree_at(root.resolve(), "pio pkg install")
