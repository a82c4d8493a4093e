"""The Device interface every backend implements, and the shared protocol-speaking base.

Tests and the bench runner ask for a :class:`Device`, never a concrete backend: a real
board on a serial port, Renode, QEMU, the native runner and the simulated board all
answer the same calls, and the same conformance suite (tests/integration/
test_device_conformance.py) holds each of them to it.
"""

from __future__ import annotations

import enum
import logging
import statistics
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from harness.boards import Board
from harness.errors import DeviceError
from harness.link.messages import (
    Capability,
    HelloResp,
    LayerTime,
    Log,
    Memory,
    TensorSpec,
    TimerKind,
)
from harness.link.session import LinkStats, Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    """What a device says about itself in its hello."""

    protocol_version: int
    board: str
    firmware_version: str
    engine: str
    model_sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    arena_size: int
    arena_used: int
    clock_hz: int
    timer: TimerKind
    max_payload: int
    credits: int
    capabilities: Capability
    status: int
    status_text: str

    @classmethod
    def from_hello(cls, h: HelloResp) -> DeviceInfo:
        return cls(
            protocol_version=h.protocol_version, board=h.board,
            firmware_version=h.firmware_version, engine=h.engine,
            model_sha256=h.model_sha256.hex(), inputs=h.inputs, outputs=h.outputs,
            arena_size=h.arena_size, arena_used=h.arena_used, clock_hz=h.clock_hz,
            timer=h.timer, max_payload=h.max_payload, credits=h.credits,
            capabilities=h.capabilities, status=h.status, status_text=h.status_text,
        )

    @property
    def ready(self) -> bool:
        return self.status == 0

    @property
    def latency_source(self) -> str:
        return self.timer.latency_source

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol_version": self.protocol_version,
            "board": self.board,
            "firmware_version": self.firmware_version,
            "engine": self.engine,
            "model_sha256": self.model_sha256,
            "clock_hz": self.clock_hz,
            "timer": self.timer.name.lower(),
            "arena_size": self.arena_size,
            "arena_used": self.arena_used,
            "max_payload": self.max_payload,
            "credits": self.credits,
            "capabilities": [str(c.name).lower() for c in Capability if c in self.capabilities],
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }


@dataclass(frozen=True)
class Inference:
    """Outputs of one input (last repeat) and the device-side cycles of each repeat."""

    outputs: tuple[np.ndarray, ...]
    cycles: tuple[int, ...]
    clock_hz: int

    @property
    def cycles_median(self) -> int:
        return int(statistics.median(self.cycles)) if self.cycles else 0

    @property
    def latency_us(self) -> float:
        return self.cycles_median * 1e6 / self.clock_hz if self.clock_hz else float("nan")


def split_outputs(data: bytes, specs: tuple[TensorSpec, ...]) -> tuple[np.ndarray, ...]:
    """Cut the concatenated output bytes of a RESULT into one array per output tensor."""
    arrays = []
    pos = 0
    for spec in specs:
        n = spec.nbytes
        if pos + n > len(data):
            raise DeviceError(f"device returned {len(data)} B of output, the model needs more")
        arr = np.frombuffer(data[pos : pos + n], dtype=spec.dtype.numpy_name).reshape(spec.shape)
        arrays.append(arr.copy())
        pos += n
    if pos != len(data):
        raise DeviceError(f"device returned {len(data)} B of output, the model has {pos} B")
    return tuple(arrays)


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"


class Device(ABC):
    """One device under test. Use as a context manager: ``with create_device(...) as dev:``."""

    backend: ClassVar[str] = "abstract"

    def __init__(self) -> None:
        self.state = State.CLOSED
        self._info: DeviceInfo | None = None

    # lifecycle -----------------------------------------------------------------------------
    @abstractmethod
    def open(self) -> DeviceInfo:
        """Connect, say hello, and return the device's facts."""

    @abstractmethod
    def close(self) -> None:
        """Release the port and stop any process this device started. Safe to call twice."""

    def __enter__(self) -> Device:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _require_open(self) -> DeviceInfo:
        if self.state is not State.OPEN or self._info is None:
            raise DeviceError(f"{self.backend} device is not open")
        return self._info

    @property
    def info(self) -> DeviceInfo:
        return self._require_open()

    # measurement ---------------------------------------------------------------------------
    @abstractmethod
    def infer(
        self, tensor: np.ndarray, warmups: int = 0, repeats: int = 1, profile: bool = False
    ) -> Inference:
        """Run the model on one input tensor (already quantised to the input's dtype)."""

    @abstractmethod
    def profile(self) -> list[LayerTime]:
        """Per-layer cycles of the last inference run with ``profile=True``."""

    @abstractmethod
    def memory(self) -> Memory:
        """Arena and RAM statistics."""

    @property
    def port_url(self) -> str | None:
        return None

    @property
    def link_stats(self) -> LinkStats | None:
        return None


class SessionDevice(Device):
    """A device reached through protocol v1 over a pyserial URL.

    Subclasses start whatever stands behind the port (a child process, an emulator) in
    :meth:`_start` and return the URL; this class does the talking.
    """

    #: Seconds per inference a device may take before the host gives up on it.
    infer_budget_s: float = 30.0

    def __init__(
        self,
        board: Board,
        *,
        timeout: float = 2.0,
        retries: int = 3,
        on_log: Callable[[Log], None] | None = None,
    ) -> None:
        super().__init__()
        self.board = board
        self.timeout = timeout
        self.retries = retries
        self.on_log = on_log
        self.session: Session | None = None
        self._url: str | None = None
        self._port: Any = None

    @abstractmethod
    def _start(self) -> tuple[str, int | None]:
        """Start what stands behind the port; return (pyserial URL, link rate in baud).

        The rate sizes the upload's acknowledgement timeout; None means the link has no
        meaningful rate (a pseudo-terminal or socket that is not throttled).
        """

    def _stop(self) -> None:
        """Stop what :meth:`_start` started (default: nothing)."""

    def open(self) -> DeviceInfo:
        from harness.link.transport import open_port

        if self.state is State.OPEN and self._info is not None:
            return self._info
        try:
            url, baud = self._start()
            self._url = url
            self._port = open_port(url, baud)
            self.session = Session(
                self._port, timeout=self.timeout, retries=self.retries, on_log=self.on_log, baud=baud
            )
            hello = self.session.hello()
        except BaseException:
            self.close()
            raise
        info = DeviceInfo.from_hello(hello)
        self._info = info
        self.state = State.OPEN
        if not info.ready:
            msg = info.status_text or f"status {info.status}"
            self.close()
            raise DeviceError(f"{self.backend} device on {url} has no usable model: {msg}")
        log.info(
            "%s device %s: board %s, firmware %s, engine %s, model %s",
            self.backend, url, info.board, info.firmware_version, info.engine, info.model_sha256[:12],
        )
        return info

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # closing a dead port must not hide the original error
                log.debug("closing the port failed", exc_info=True)
        self._stop()
        self.session = None
        self.state = State.CLOSED

    def _session(self) -> Session:
        self._require_open()
        assert self.session is not None
        return self.session

    def infer(
        self, tensor: np.ndarray, warmups: int = 0, repeats: int = 1, profile: bool = False
    ) -> Inference:
        info = self._require_open()
        spec = info.inputs[0]
        data = np.ascontiguousarray(tensor, dtype=spec.dtype.numpy_name).tobytes()
        if len(data) != spec.nbytes:
            raise DeviceError(
                f"input of {len(data)} B does not match the device's input tensor "
                f"{list(spec.shape)} {spec.dtype.numpy_name} ({spec.nbytes} B)"
            )
        session = self._session()
        budget = self.timeout + self.infer_budget_s * max(1, warmups + repeats)
        result = session.upload_and_infer(data, warmups, repeats, profile, timeout=budget)
        return Inference(split_outputs(result.output, info.outputs), result.cycles, info.clock_hz)

    def profile(self) -> list[LayerTime]:
        info = self._require_open()
        if Capability.PROFILE not in info.capabilities:
            raise DeviceError(f"{self.backend} device does not report per-layer profiles")
        return self._session().profile()

    def memory(self) -> Memory:
        info = self._require_open()
        if Capability.MEMORY not in info.capabilities:
            raise DeviceError(f"{self.backend} device does not report memory statistics")
        return self._session().memory()

    @property
    def port_url(self) -> str | None:
        return self._url

    @property
    def link_stats(self) -> LinkStats | None:
        return self.session.stats if self.session else None


DeviceFactory = Callable[..., Device]
_BACKENDS: dict[str, DeviceFactory] = {}


def register_backend(name: str) -> Callable[[DeviceFactory], DeviceFactory]:
    """Class decorator: make a backend available to :func:`create_device` under ``name``."""

    def deco(factory: DeviceFactory) -> DeviceFactory:
        if name in _BACKENDS:
            raise ValueError(f"device backend {name!r} registered twice")
        _BACKENDS[name] = factory
        return factory

    return deco
