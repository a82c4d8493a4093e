"""The ``sim`` backend: a simulated board that runs the real TFLM interpreter.

The board is a child process (:mod:`harness.devices.sim.child`) behind a pseudo-terminal,
speaking protocol v1, so the host talks to it through the same port, link and session
code as to a real board. It stands in for a board profile: it refuses a model that does
not fit that board, reports the arena TFLM allocated, and estimates latency in cycles
from the board's cost model (reported as estimated). ``baud=`` slows its link to a
serial line's rate. Whatever happens, :meth:`close` kills and reaps the child.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from harness.boards import Board
from harness.devices.base import DeviceInfo, DeviceOptions, Inference, SessionDevice, register_backend
from harness.devices.sim.process import SimChild
from harness.errors import ConfigError, DeviceError, FitError, LinkError, ModelError
from harness.link.messages import LayerTime, Log, Memory
from harness.link.protocol import Protocol
from harness.paths import zoo_dir

log = logging.getLogger(__name__)


def default_model() -> Path | None:
    """The small model the project ships for the default bench, when it is there."""
    found = sorted((zoo_dir() / "vww_default").glob("*.tflite"))
    return found[0] if found else None


@dataclass(frozen=True)
class SimOptions(DeviceOptions):
    """The sim's own options: a link throttled to ``baud``, and the protocol v1 limits it announces."""

    baud: int | None = None
    max_payload: int | None = None
    credits: int | None = None

    takes_baud: ClassVar[bool] = True


@register_backend("sim", SimOptions)
class SimDevice(SessionDevice):
    """A simulated ``board`` running ``model`` in TFLM in a child process."""

    backend = "sim"
    #: The sim runs a VWW model in milliseconds; a lost answer should cost seconds, not minutes.
    infer_budget_s = 5.0

    def __init__(
        self,
        board: Board,
        *,
        model: str | Path | None = None,
        baud: int | None = None,
        max_payload: int | None = None,
        credits: int | None = None,
        timeout: float = 2.0,
        retries: int = 3,
        on_log: Callable[[Log], None] | None = None,
        protocol: Protocol | str = Protocol.V1,
    ) -> None:
        super().__init__(board, timeout=timeout, retries=retries, on_log=on_log, protocol=protocol)
        path = Path(model) if model is not None else default_model()
        if path is None:
            raise ConfigError("the sim backend needs a model: give --model PATH.tflite")
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        if baud is not None and baud <= 0:
            raise ConfigError(f"baud must be a positive rate, not {baud}")
        self.model = path
        self.baud = baud
        self.max_payload = max_payload
        self.credits = credits
        self.child: SimChild | None = None
        #: Why the last child ended, when it ended on its own (an abort in TFLM, a kill).
        self.exit_reason: str | None = None

    def _start(self) -> tuple[str, int | None]:
        self.child = SimChild(
            self.model, self.board, baud=self.baud, max_payload=self.max_payload, credits=self.credits,
            protocol=self.protocol.value,
        )
        port = self.child.start()
        if self.child.fit_refusal is not None:
            # the same error, and exit status, as the backends that refuse before building
            raise FitError(self.child.fit_refusal)
        return port, self.baud

    def _stop(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            if not child.alive():
                self.exit_reason = child.death_reason(wait=0.0)
            child.stop()

    def _child_died(self, exc: LinkError) -> DeviceError | LinkError:
        """A link failure caused by the child's death becomes one line saying how it died."""
        reason = self.child.death_reason(wait=1.0) if self.child is not None else self.exit_reason
        if reason is None:
            return exc
        self.close()
        return DeviceError(reason)

    def open(self) -> DeviceInfo:
        try:
            return super().open()
        except LinkError as exc:
            raise self._child_died(exc) from None

    def infer(
        self, tensor: np.ndarray, warmups: int = 0, repeats: int = 1, profile: bool = False
    ) -> Inference:
        try:
            return super().infer(tensor, warmups, repeats, profile)
        except LinkError as exc:
            raise self._child_died(exc) from None

    def profile(self) -> list[LayerTime]:
        try:
            return super().profile()
        except LinkError as exc:
            raise self._child_died(exc) from None

    def memory(self) -> Memory:
        try:
            return super().memory()
        except LinkError as exc:
            raise self._child_died(exc) from None
