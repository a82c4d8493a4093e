"""The ``native`` backend: the firmware's portable core compiled for the host.

The native runner (firmware/native, CMake + g++) serves protocol v1 with the test-double
engine on a pseudo-terminal. It runs the same C++ framing, dispatch and benchmark loop
as the boards, so the device conformance suite can hold the core to the protocol in
every CI run without hardware or an emulator. Its cycles are host nanoseconds
(TimerKind.HOST_CLOCK) and its engine is "test-double": never a benchmark result.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.boards import Board
from harness.devices.base import SessionDevice, register_backend
from harness.errors import DeviceError, ToolMissing
from harness.paths import firmware_dir

log = logging.getLogger(__name__)

RUNNER_NAME = "vww_native_runner"
BUILD_TIMEOUT_S = 300.0
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0

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
        raise DeviceError(f"{what} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
        log.error("%s failed:\n%s", what, "\n".join(tail))
        first = next((line for line in tail if "error" in line.lower()), tail[-1] if tail else "")
        raise DeviceError(f"{what} failed: {first.strip()}")


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
        if not (build / "CMakeCache.txt").is_file():
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
        raise DeviceError(f"the native build did not produce {exe}")
    _built[build / target] = exe
    return exe


def read_line(proc: subprocess.Popen[bytes], timeout: float, what: str) -> str:
    """The first line a child prints on stdout, within ``timeout`` (else DeviceError)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeviceError(f"{what} printed nothing within {timeout:.0f} s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 256)
            if not chunk:
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise DeviceError(f"{what} exited before it was ready: {err or 'no message'}")
            buf += chunk
    return buf.split(b"\n", 1)[0].decode().strip()


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = STOP_TIMEOUT_S) -> None:
    """Terminate, then kill, a child we started; never waits without a deadline."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


@register_backend("native")
class NativeDevice(SessionDevice):
    """The native runner behind a pseudo-terminal; started on open, stopped on close."""

    backend = "native"

    def __init__(
        self,
        board: Board,
        *,
        input_shape: Sequence[int] | None = None,
        ops: Sequence[str] | None = None,
        fail_model: bool = False,
        max_payload: int = 1024,
        credits: int = 4,
        runner: Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(board, **options)
        self.input_shape = tuple(input_shape) if input_shape else None
        self.ops = tuple(ops) if ops else None
        self.fail_model = fail_model
        self.max_payload = max_payload
        self.credits = credits
        self.runner = runner
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self, runner: Path) -> list[str]:
        cmd = [str(runner), "--board", self.board.id, "--max-payload", str(self.max_payload),
               "--credits", str(self.credits)]
        if self.input_shape:
            cmd += ["--input-shape", "x".join(str(d) for d in self.input_shape)]
        if self.ops:
            cmd += ["--ops", ",".join(self.ops)]
        if self.fail_model:
            cmd.append("--fail-model")
        return cmd

    def _start(self) -> tuple[str, int | None]:
        runner = self.runner or build_native()
        self._proc = subprocess.Popen(
            self.command(runner), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        pty = read_line(self._proc, START_TIMEOUT_S, "the native runner")
        if not pty.startswith("/dev/"):
            raise DeviceError(f"the native runner printed {pty!r} instead of its terminal")
        log.debug("native runner pid %d on %s", self._proc.pid, pty)
        return pty, None  # an unthrottled pseudo-terminal has no link rate

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc)
        for stream in (proc.stdout, proc.stderr) if proc else ():
            if stream is not None:
                stream.close()
