"""Builds of the firmware for emulated boards: the native runner (CMake + g++) and the
QEMU mps2-an386 image (make + arm-none-eabi-gcc).

Devices ask for an image through :func:`harness.deploy.api.build_emulator_image`; the
functions here are that function's internals, and the tests that need a specific CMake
target (unit tests, fuzzers) call :func:`build_native` directly.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.errors import BuildError, ToolMissing
from harness.paths import firmware_dir

log = logging.getLogger(__name__)

RUNNER_NAME = "vww_native_runner"
QEMU_ELF_NAME = "vww_qemu.elf"
BUILD_TIMEOUT_S = 300.0

_built: dict[Path, Path] = {}


def native_source_dir() -> Path:
    return firmware_dir() / "native"


def native_build_dir() -> Path:
    """Where CMake builds the runner (``HIL_NATIVE_BUILD_DIR``, default firmware/native/build)."""
    value = os.environ.get("HIL_NATIVE_BUILD_DIR")
    return Path(value) if value else native_source_dir() / "build"


def _run(cmd: Sequence[str], what: str, timeout: float) -> None:
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
        log.error("%s failed:\n%s", what, "\n".join(tail))
        first = next((line for line in tail if "error" in line.lower()), tail[-1] if tail else "")
        raise BuildError(f"{what} failed: {first.strip()}")


def build_native(
    target: str = RUNNER_NAME, build_dir: Path | None = None, cmake_args: Sequence[str] = ()
) -> Path:
    """Configure and build a target of firmware/native with CMake; return the executable.

    Built once per process (CMake itself skips up-to-date work); a file lock keeps two
    processes from building into the same folder at once.
    """
    build = build_dir or native_build_dir()
    exe = build / target
    if build / target in _built:
        return _built[build / target]
    for tool in ("cmake", "g++"):
        if shutil.which(tool) is None:
            raise ToolMissing(f"{tool} is not installed: the native firmware build needs cmake and g++")
    source = native_source_dir()
    if not (source / "CMakeLists.txt").is_file():
        raise ToolMissing(f"no native firmware project at {source}")
    build.mkdir(parents=True, exist_ok=True)
    with open(build / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # configure every time (well under a second): a folder configured before a target
        # was added to CMakeLists.txt would otherwise not know that target
        _run(
            ["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
             *cmake_args],
            "configuring the native firmware (cmake)",
            BUILD_TIMEOUT_S,
        )
        _run(
            ["cmake", "--build", str(build), "--target", target, "-j", "2"],
            f"building {target}",
            BUILD_TIMEOUT_S,
        )
    if not exe.is_file():
        raise BuildError(f"the native build did not produce {exe}")
    _built[build / target] = exe
    return exe


def qemu_source_dir() -> Path:
    return firmware_dir() / "qemu"


def qemu_build_dir() -> Path:
    """Where make puts the ELF (``HIL_QEMU_BUILD_DIR``, default firmware/qemu/build)."""
    value = os.environ.get("HIL_QEMU_BUILD_DIR")
    return Path(value) if value else qemu_source_dir() / "build"


def build_qemu_firmware(build_dir: Path | None = None) -> Path:
    """Cross-compile the core for mps2-an386 (once per process); return the ELF."""
    build = (build_dir or qemu_build_dir()).resolve()
    if build in _built:
        return _built[build]
    for tool in ("arm-none-eabi-g++", "make"):
        if shutil.which(tool) is None:
            raise ToolMissing(
                f"{tool} is not installed: the QEMU firmware needs gcc-arm-none-eabi, "
                "libnewlib-arm-none-eabi and make"
            )
    source = qemu_source_dir()
    if not (source / "Makefile").is_file():
        raise ToolMissing(f"no QEMU firmware project at {source}")
    build.mkdir(parents=True, exist_ok=True)
    with open(build / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            proc = subprocess.run(
                ["make", "-C", str(source), f"BUILD={build}", "-j2"],
                capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False,
            )
        except subprocess.TimeoutExpired:
            raise BuildError(f"building the QEMU firmware took over {BUILD_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        log.error("QEMU firmware build failed:\n%s", "\n".join(lines[-20:]))
        first = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
        raise BuildError(f"building the QEMU firmware failed: {first.strip()}")
    elf = build / QEMU_ELF_NAME
    if not elf.is_file():
        raise BuildError(f"the QEMU firmware build did not produce {elf}")
    _built[build] = elf
    return elf


