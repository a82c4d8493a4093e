"""Child processes the device backends start (runners, emulators): read their first line
with a deadline, and stop them without waiting forever."""

from __future__ import annotations

import os
import select
import subprocess
import time
from typing import Any

from harness.errors import DeviceError

STOP_TIMEOUT_S = 3.0


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
                err = _stderr_tail(proc, max(0.5, deadline - time.monotonic()))
                raise DeviceError(f"{what} exited before it was ready: {err or 'no message'}")
            buf += chunk
    return buf.split(b"\n", 1)[0].decode().strip()


def _stderr_tail(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """What the child wrote on stderr, read with a deadline: a child that closed stdout but
    still runs (and holds stderr open) must not block the caller."""
    if proc.stderr is None:
        return ""
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + min(timeout, 2.0)
    data = b""
    while len(data) < 65536:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[-1].strip() if lines else ""


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


