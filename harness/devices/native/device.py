"""The ``native`` backend: the real firmware compiled for the host.

For a model, deploy builds (or takes from its cache) the firmware the boards run, the
portable core, the TFLM engine and TFLM + CMSIS-NN (their portable C paths) with the
model compiled in, with the host's g++ (firmware/native/tflm). It serves the same
protocol on a pseudo-terminal at full host speed: the fast, bit-exact way to run a whole
data set through the firmware's own code. Its ticks are host nanoseconds
(TimerKind.HOST_CLOCK): a host time, not a board's.

``test_double=True`` runs the protocol test double instead (firmware/native/runner), for
protocol tests only; the bench refuses its results. There is no silent fallback.
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
    """A prebuilt runner, the TFLM tree to build with, or the test double and its shape and limits."""

    tflm_dir: Path | None = None
    test_double: bool | None = None
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
        tflm_dir: Path | None = None,
        test_double: bool = False,
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
        self.tflm_dir = tflm_dir
        self.test_double = test_double
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self, runner: Path) -> list[str]:
        if not self.test_double and self.runner is None:
            return [str(runner), "--board", self.board.id]
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
        if self.runner is not None:
            runner = self.runner
        else:
            image = build_emulator_image("native", self.model, self.board, protocol=self.protocol.value,
                                         tflm_dir=self.tflm_dir, test_double=self.test_double)
            self.firmware = image.firmware
            runner = image.path
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
