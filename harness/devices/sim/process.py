"""The host's handle on a simulated board's child process.

Starting, watching and always stopping the child lives here, apart from the Device
wrapper, because the conformance suite and the benchmarks also start a bare child and
talk to its pseudo-terminal through the ``serial`` backend, exactly as they would to a
board. The host never imports TFLM or TensorFlow for this: the child loads the model.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from harness.boards import Board
from harness.errors import DeviceError
from harness.paths import PROJECT_ROOT

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0


class SimChild:
    """One ``harness.devices.sim.child`` process; use as a context manager or call stop()."""

    def __init__(
        self,
        model: Path,
        board: Board,
        *,
        baud: int | None = None,
        max_payload: int | None = None,
        credits: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        protocol: str = "v1",
        name: str | None = None,
    ) -> None:
        self.model = Path(model)
        self.board = board
        self.baud = baud
        self.max_payload = max_payload
        self.credits = credits
        self.startup_timeout = startup_timeout
        self.protocol = protocol
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: str | None = None
        #: the child's one line when the model is too large for the board (it still serves,
        #: answering "not ready", as a board flashed with that model would)
        self.fit_refusal: str | None = None
        self._stderr: IO[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "harness.devices.sim.child", "--model", str(self.model.resolve())]
        cmd += ["--board-file", str(Path(self.board.path).resolve())]
        if self.baud:
            cmd += ["--baud", str(int(self.baud))]
        if self.max_payload:
            cmd += ["--max-payload", str(int(self.max_payload))]
        if self.credits:
            cmd += ["--credits", str(int(self.credits))]
        if self.protocol != "v1":
            cmd += ["--protocol", self.protocol]
        if self.name:
            cmd += ["--name", self.name]
        return cmd

    def start(self) -> str:
        """Start the child and return its pty path; a child that dies early is a one-line error."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        self._stderr = tempfile.TemporaryFile(prefix="sim_child_stderr_")
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal goes to the host, which stops us
        )
        try:
            line = self._read_line(self.startup_timeout)
            hello = json.loads(line)
            self.port = str(hello["port"])
            self.fit_refusal = hello.get("fit_refusal")
        except (ValueError, KeyError, TimeoutError) as exc:
            reason = self.death_reason() or f"no port announced ({exc})"
            self.stop()
            raise DeviceError(f"simulated {self.board.id} board did not start: {reason}") from None
        log.debug("sim child %d serves %s", self.proc.pid, self.port)
        return self.port

    def _read_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"nothing within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise ValueError("the child closed its output")
                buf += chunk
        return buf.split(b"\n", 1)[0].decode("utf-8", errors="replace")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self) -> str:
        """The last meaningful line the child wrote to stderr (TFLM writes its errors there)."""
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read()[-8192:].decode("utf-8", errors="replace")
        except (OSError, ValueError):
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def death_reason(self, wait: float = 0.5) -> str | None:
        """Why the child is gone, in one line, or None while it runs."""
        if self.proc is None:
            return None
        try:
            rc = self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
        if rc < 0:
            try:
                what = f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                what = f"killed by signal {-rc}"
        else:
            what = f"exited with status {rc}"
        tail = self.stderr_tail()
        return f"the simulated board's process {what}" + (f": {tail}" if tail else "")

    def stop(self) -> None:
        """Kill the child and reap it; safe to call twice, never waits without a timeout."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("sim child %d did not exit within %.0f s after SIGKILL", proc.pid, STOP_TIMEOUT_S)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> SimChild:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
