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


