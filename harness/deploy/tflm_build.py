"""Builds of the real firmware for the emulated boards: TFLM + CMSIS-NN on QEMU's Cortex-M4
(arm-none-eabi-gcc) and on the host (g++), from the same sources the boards run.

A build has two parts, both cached under ``<cache>/firmware/`` by what goes into them:

- the **TFLM library** (``libvww_tflm_lib.a``): every kernel, CMSIS-NN and flatbuffers,
  compiled once per (TFLM tree checksum, compiler, flags, build files). This is the slow
  part (minutes) and does not depend on the model;
- the **image** for one model: the portable core, the TFLM engine, ``src/vww_app.h`` and
  the generated model sources, linked against that library (seconds). Its key adds the
  model's sha256, the arena, the board it was fitted for, the protocol and a hash of the
  project's own firmware sources, so a cached image is never used for another model or
  after the firmware changed.

A file lock per cache folder serialises builds when tests run in parallel or two
``hil bench`` processes start at once; the second one waits and then reuses the result.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import harness
from harness import console
from harness.boards import Board
from harness.deploy import codegen
from harness.deploy.elf_size import ElfSize, elf_size
from harness.deploy.tflm_ops import resolver_methods
from harness.deploy.tflm_tree import TflmTree, find_tree
from harness.errors import BuildError, FitError, ToolMissing
from harness.models.tflite_file import ModelInfo
from harness.paths import cache_dir, firmware_dir

log = logging.getLogger(__name__)

#: A cold TFLM library build took 2.5-3.5 minutes on a 2-core machine here (up to 9 while other
#: jobs ran); an image takes seconds.
LIBRARY_TIMEOUT_S = 2400.0
IMAGE_TIMEOUT_S = 600.0
CONFIGURE_TIMEOUT_S = 120.0
#: Protocol v1 payload the emulator images accept: larger chunks, fewer acknowledgements
#: (the boards keep 1024 for their RAM).
EMULATOR_MAX_PAYLOAD = 4096
#: mps2-an386's code and data memories (4 MiB each, firmware/qemu/mps2_an386.ld) and what
#: the firmware itself takes of them at most (its text is about 0.1 MiB without the model).
QEMU_MEMORY_BYTES = 4 << 20
QEMU_FIRMWARE_BYTES = 512 << 10


@dataclass(frozen=True)
class Toolchain:
    """How one emulated target is compiled."""

    target: str  # "qemu" or "native"
    project: str  # CMake project folder, relative to firmware/
    binary: str  # what the image build produces
    compilers: tuple[str, ...]
    toolchain_file: str | None  # relative to firmware/
    install_hint: str

    @property
    def source_dir(self) -> Path:
        return firmware_dir() / self.project


TOOLCHAINS = {
    "qemu": Toolchain(
        "qemu", "qemu", "vww_qemu_tflm.elf", ("arm-none-eabi-gcc", "arm-none-eabi-g++"),
        "qemu/arm-none-eabi.cmake",
        "install Debian's gcc-arm-none-eabi, libnewlib-arm-none-eabi and "
        "libstdc++-arm-none-eabi-newlib",
    ),
    "native": Toolchain(
        "native", "native/tflm", "vww_native_tflm", ("gcc", "g++"), None,
        "install gcc and g++ (Debian's build-essential)",
    ),
}


@dataclass(frozen=True)
class TflmImage:
    """One model's real-TFLM firmware for an emulated target."""

    target: str
    path: Path
    model_sha256: str
    protocol: str
    board: str
    arena_size: int
    tree: TflmTree
    key: str
    cached: bool
    size: ElfSize | None

    def to_dict(self) -> dict[str, object]:
        """What run.json records about the firmware a result came from."""
        out: dict[str, object] = {
            "target": self.target, "image": str(self.path), "model_sha256": self.model_sha256,
            "protocol": self.protocol, "board": self.board, "arena_size": self.arena_size,
            "cache_key": self.key, "cached": self.cached,
            "tflm": {"version": self.tree.version, "checksum": self.tree.checksum,
                     "found_by": self.tree.source},
        }
        if self.size is not None:
            out["elf"] = {"flash": self.size.flash, "ram": self.size.ram, "text": self.size.text,
                          "data": self.size.data, "bss": self.size.bss}
        return out


def _check_tools(chain: Toolchain) -> None:
    for tool in ("cmake", *chain.compilers):
        if shutil.which(tool) is None:
            raise ToolMissing(f"{tool} is not installed: the {chain.target} firmware build needs it; "
                              f"{chain.install_hint}")


def _compiler_id(chain: Toolchain) -> str:
    """The C++ compiler's version line: a different compiler is a different library."""
    try:
        out = subprocess.run([chain.compilers[-1], "--version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissing(f"{chain.compilers[-1]} does not run: {exc}") from None
    return out.splitlines()[0] if out else chain.compilers[-1]


def _hash_files(h: hashlib._Hash, paths: Sequence[Path]) -> None:
    fw = firmware_dir()
    for path in sorted(paths):
        h.update(str(path.relative_to(fw)).encode() + b"\0")
        h.update(path.read_bytes())


def _library_inputs(chain: Toolchain) -> list[Path]:
    fw = firmware_dir()
    files = [fw / "lib/vww_tflm/cmake/tflm_library.cmake", chain.source_dir / "CMakeLists.txt"]
    if chain.toolchain_file:
        files.append(fw / chain.toolchain_file)
    return files


def _image_inputs(chain: Toolchain) -> list[Path]:
    """The project's own sources an image is built from (a change means a new image)."""
    fw = firmware_dir()
    found: list[Path] = []
    for folder in (fw / "lib/vww_core", fw / "lib/vww_tflm", chain.source_dir):
        found += [p for p in folder.rglob("*") if p.is_file() and p.suffix in {
            ".h", ".hpp", ".cpp", ".c", ".ld", ".cmake", ".txt"} and "build" not in p.parts]
    found += [fw / "src/vww_app.h", fw / "src/board.h", fw / "native/tflm_target.cpp"]
    if chain.target == "native":
        found.append(fw / "native/host_io.h")
    return sorted(set(found))


def library_key(chain: Toolchain, tree: TflmTree) -> str:
    h = hashlib.sha256()
    h.update(f"{chain.target}\0{tree.checksum}\0{_compiler_id(chain)}\0".encode())
    _hash_files(h, _library_inputs(chain))
    return h.hexdigest()


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(cmd: Sequence[str], what: str, timeout: float, cwd: Path, log_file: Path) -> None:
    """Run one build step; its whole output goes to ``log_file``, its failure to one line."""
    started = time.monotonic()
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what} did not finish within {timeout:.0f} s") from None
    log_file.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        lines = (proc.stderr + "\n" + proc.stdout).strip().splitlines()
        first = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
        raise BuildError(f"{what} failed: {first.strip()[:300]} (full log: {log_file})")
    log.info("%s took %.1f s", what, time.monotonic() - started)


def _forget_other_source(build: Path, source: Path) -> None:
    """Drop CMake's cache in ``build`` when another checkout configured it.

    Cache folders are keyed by file contents, not by where the sources live, so two
    worktrees share them; CMake refuses a build folder configured from another source
    folder, and an unfinished build (interrupted, timed out) would block every other
    checkout until someone deleted it by hand.
    """
    cache = build / "CMakeCache.txt"
    if not cache.is_file():
        return
    home = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", cache.read_text(errors="replace"), re.M)
    if home is not None and Path(home.group(1).strip()) != source.resolve():
        log.info("%s was configured from %s; reconfiguring from %s", build, home.group(1), source)
        cache.unlink()
        shutil.rmtree(build / "CMakeFiles", ignore_errors=True)


def _cmake(chain: Toolchain, build: Path, defines: dict[str, str], target: str, what: str,
           timeout: float) -> None:
    build.mkdir(parents=True, exist_ok=True)
    _forget_other_source(build, chain.source_dir)
    args = ["cmake", "-S", str(chain.source_dir), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"]
    if chain.toolchain_file:
        args.append(f"-DCMAKE_TOOLCHAIN_FILE={firmware_dir() / chain.toolchain_file}")
    args += [f"-D{k}={v}" for k, v in defines.items()]
    _run(args, f"configuring {what}", CONFIGURE_TIMEOUT_S, build, build / "configure.log")
    jobs = str(max(1, os.cpu_count() or 1))
    _run(["cmake", "--build", str(build), "--target", target, "-j", jobs], f"building {what}",
         timeout, build, build / "build.log")


def build_library(chain: Toolchain, tree: TflmTree) -> Path:
    """TFLM, CMSIS-NN and flatbuffers for ``chain`` as a static library, built once per key."""
    key = library_key(chain, tree)
    folder = cache_dir() / "firmware" / f"tflm-{chain.target}-{key[:16]}"
    lib = folder / "libvww_tflm_lib.a"
    with _locked(folder):
        if lib.is_file() and (folder / "ok").is_file():
            return lib
        what = f"compiling TFLM + CMSIS-NN for {chain.target} (once per TFLM tree and compiler; minutes)"
        with console.status(what) as shown:
            if not shown.drawing:  # no live line (a pipe, CI): say why nothing happens for minutes
                log.warning("%s from %s", what, tree.root)
            _cmake(chain, folder, {"VWW_PART": "tflm", "VWW_TFLM_DIR": str(tree.root)}, "vww_tflm_lib",
                   f"TFLM for {chain.target}", LIBRARY_TIMEOUT_S)
        if not lib.is_file():
            raise BuildError(f"the TFLM build for {chain.target} did not produce {lib}")
        (folder / "ok").write_text(json.dumps({"key": key, "tree": tree.to_dict()}, indent=1))
    return lib


def memory_map_board(board: Board, target: str) -> Board:
    """``board`` with the emulator's memory instead of its own, for builds that only count work.

    ``hil calibrate`` measures instruction counts of models that need not fit the board
    (a wider depth multiplier, say); the image must then fit only what the emulated
    machine has (mps2-an386: 4 MiB code, 4 MiB data) or the host.
    """
    size = QEMU_MEMORY_BYTES if target == "qemu" else 1 << 30
    return dataclasses.replace(
        board, id=f"the {target} memory map", ram_bytes=size, flash_bytes=size, psram_bytes=0,
        bootloader_bytes=0, arena_in_psram=False,
        flash_reserved_bytes=QEMU_FIRMWARE_BYTES, ram_reserved_bytes=QEMU_FIRMWARE_BYTES,
    )


def eembc_ticks_per_s(board: Board) -> int:
    """QEMU's instructions per second of ``board`` (clock / CPI), 0 when the profile has no CPI.

    An EEMBC build on QEMU reports ``m-lap-us`` with this rate, so that the runner reads the
    board's estimated microseconds rather than instructions at mps2-an386's nominal 25 MHz.
    """
    cpi = (board.raw.get("cost_model") or {}).get("cpi")
    if not isinstance(cpi, int | float) or cpi <= 0:
        return 0
    return int(round(board.clock_hz / float(cpi)))


def build_image(target: str, model_path: Path, board: Board, *, protocol: str = "v1",
                tflm_dir: Path | str | None = None, fit_board: bool = True) -> TflmImage:
    """The real firmware for ``model_path`` on an emulated ``target`` (built or reused).

    Refuses, in one line each: a model whose ops the TFLM tree has no kernel for, a model
    that does not fit ``board`` (or, with ``fit_board=False``, the emulator's memory
    map), a missing compiler or TFLM tree, a failed build.
    """
    chain = TOOLCHAINS.get(target)
    if chain is None:
        raise BuildError(f"no real-TFLM build for {target!r} (known: {', '.join(TOOLCHAINS)})")
    if protocol not in ("v1", "eembc"):
        raise BuildError(f"unknown firmware protocol {protocol!r}")
    _check_tools(chain)
    tree = find_tree(tflm_dir)
    model = ModelInfo.from_file(model_path)
    model.require_int8_io()
    tree.check_ops(resolver_methods(model.ops_used), model.label)
    arena = codegen.measure_arena(model)
    fitted = board if fit_board else memory_map_board(board, target)
    codegen.check_model_fits(fitted, model, arena)  # before minutes of compiling, not after
    lib = build_library(chain, tree)

    h = hashlib.sha256()
    h.update(f"{lib}\0{model.sha256}\0{arena.size}\0{board.id}\0{fit_board}\0{protocol}\0"
             f"{eembc_ticks_per_s(board)}\0"
             f"{EMULATOR_MAX_PAYLOAD}\0{harness.__version__}\0".encode())
    _hash_files(h, _image_inputs(chain))
    key = h.hexdigest()
    folder = cache_dir() / "firmware" / f"{target}-image-{key[:16]}"
    binary = folder / chain.binary
    with _locked(folder):
        cached = binary.is_file() and (folder / "ok").is_file()
        if not cached:
            log.info("building the %s firmware for %s (%s)", target, model.label, protocol)
            codegen.generate(model, fitted, folder, arena)  # folder/src/generated
            defines = {
                "VWW_PART": "image", "VWW_TFLM_DIR": str(tree.root), "VWW_TFLM_LIB": str(lib),
                "VWW_GENERATED_ROOT": str(folder / "src"),
                "VWW_PROTOCOL_EEMBC": "1" if protocol == "eembc" else "0",
                "VWW_MAX_PAYLOAD": str(EMULATOR_MAX_PAYLOAD),
                "VWW_FIRMWARE_VERSION": harness.__version__,
                "VWW_EEMBC_TICKS_PER_S": str(eembc_ticks_per_s(board) if target == "qemu" else 0),
            }
            try:
                with console.status(f"building the {target} firmware for {model_path.name} ({protocol})"):
                    _cmake(chain, folder / "build", defines, chain.binary,
                           f"the {target} firmware for {model.label}", IMAGE_TIMEOUT_S)
            except BuildError as exc:
                if "overflowed" in str(exc) or "will not fit" in str(exc):
                    raise FitError(f"{model.label} does not fit the {target} memory map: {exc}") from None
                raise
            shutil.copy2(folder / "build" / chain.binary, binary)
            (folder / "ok").write_text(json.dumps({"model_sha256": model.sha256, "key": key}))
    size = elf_size(binary) if target == "qemu" else None
    return TflmImage(target, binary, model.sha256, protocol, board.id, arena.size, tree, key,
                     cached, size)
