"""The ``native`` backend: the firmware's portable core compiled for the host.

The native runner (firmware/native, CMake + g++) serves protocol v1 with the test-double
engine on a pseudo-terminal. It runs the same C++ framing, dispatch and benchmark loop
as the boards, so the device conformance suite can hold the core to the protocol in
every CI run without hardware or an emulator. Its cycles are host nanoseconds
(TimerKind.HOST_CLOCK) and its engine is "test-double": never a benchmark result.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.boards import Board
from harness.deploy.api import build_emulator_image
from harness.devices.base import DeviceOptions, SessionDevice, register_backend
from harness.devices.process import read_line, stop_process
from harness.errors import DeviceError
from harness.link.messages import Log
from harness.link.protocol import Protocol

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class NativeOptions(DeviceOptions):
    """The runner's announced shape, layers and limits (test double), or a prebuilt runner."""

    input_shape: Sequence[int] | None = None
    ops: Sequence[str] | None = None
    fail_model: bool | None = None
    max_payload: int | None = None
    credits: int | None = None
    runner: Path | None = None


@register_backend("native", NativeOptions)
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
        model: Path | None = None,
        timeout: float = 2.0,
        retries: int = 3,
        on_log: Callable[[Log], None] | None = None,
        protocol: Protocol | str = Protocol.V1,
    ) -> None:
        super().__init__(board, timeout=timeout, retries=retries, on_log=on_log, protocol=protocol)
        self.model = model
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
        runner = self.runner or build_emulator_image("native").path
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
