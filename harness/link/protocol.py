"""The protocol axis: which language the host speaks to a device, behind one small interface.

A device is reached by a backend (sim, serial, qemu, ...) *and* spoken to in a protocol:
this project's binary protocol v1 (``harness.link.session``) or MLPerf Tiny's EEMBC text
protocol (``harness.link.eembc_session``). Devices and the bench runner talk to a
:class:`HostSession`, never to one protocol's messages, so that every backend can be
driven in either protocol and every figure the bench derives means the same thing.
"""

from __future__ import annotations

import enum
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar
from typing import Protocol as TypingProtocol

from harness.errors import ConfigError, LinkError
from harness.link.messages import (
    UNKNOWN_U32,
    Capability,
    DType,
    HelloResp,
    LayerTime,
    Log,
    Memory,
    TensorSpec,
    TimerKind,
)

#: The records every protocol shares, so that devices and the bench import them from here
#: and never from one protocol's message module.
__all__ = [
    "UNKNOWN_U32", "Capability", "DType", "DeviceInfo", "HostSession", "LayerTime", "LinkStalled",
    "LinkStats", "Log", "Memory", "Protocol", "RawResult", "ResendBudgetExceeded", "SessionOptions",
    "TensorSpec", "TimerKind", "Watchdog", "open_session",
]


class Protocol(str, enum.Enum):
    """The host-device protocols the harness speaks."""

    V1 = "v1"
    EEMBC = "eembc"

    @classmethod
    def parse(cls, value: str | Protocol) -> Protocol:
        """``"v1"``/``"eembc"`` (any case) as a Protocol; anything else is a one-line error."""
        if isinstance(value, Protocol):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            known = ", ".join(p.value for p in cls)
            raise ConfigError(f"unknown protocol {value!r} (known: {known})") from None


@dataclass
class LinkStats:
    """What the link did, for reports and benchmarks (run.json ``link``, the summary).

    Every protocol's session fills the same counters, so that a noisy link reads the same
    in v1 and EEMBC runs: ``resends`` are frames or commands sent again, ``crc_failures``
    frames that failed their check at either end, ``resyncs`` the times a receiver threw
    bytes away to find the next frame start, ``timeouts`` deadlines that passed without an
    answer, and ``payload_bytes`` the tensor bytes delivered (inputs sent, outputs received),
    the useful part of ``bytes_sent + bytes_received``.
    """

    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    retries: int = 0
    go_backs: int = 0
    device_errors: int = 0
    garbage_frames: int = 0
    logs: list[str] = field(default_factory=list)
    resends: int = 0
    crc_failures: int = 0
    resyncs: int = 0
    timeouts: int = 0
    bytes_received: int = 0
    payload_bytes: int = 0
    inputs_sent: int = 0
    device_resets: int = 0

    #: the counters run.json keeps: every integer field (``logs`` go to device.log instead);
    #: filled in below the class, from the fields themselves
    COUNTERS: ClassVar[tuple[str, ...]] = ()

    def counters(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in self.COUNTERS}


LinkStats.COUNTERS = tuple(f.name for f in fields(LinkStats) if f.name != "logs")


class LinkStalled(LinkError):
    """The run-level watchdog saw no progress on the link for longer than its limit."""


class ResendBudgetExceeded(LinkError):
    """One input needed more resends than its budget: the image becomes an error row."""


class Watchdog:
    """Fails a run that has made no progress for ``limit_s`` seconds, whatever it waits for.

    Sessions call :meth:`sending` before every write (what it is, how many bytes are
    unacknowledged), :meth:`progress` when an answer moves the exchange on, and
    :meth:`check` in every wait; the bench also calls :meth:`progress` per stored row. Each
    wait keeps its own short deadline; this is the one bound over all of them together,
    so that no combination of retries can keep a run silent for longer than the limit.
    """

    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = float(limit_s)
        self.clock = clock
        self.last_progress = clock()
        self.last_request = "nothing yet"
        self.in_flight = 0

    def progress(self) -> None:
        self.last_progress = self.clock()
        self.in_flight = 0

    def sending(self, what: str, in_flight: int) -> None:
        self.last_request = what
        self.in_flight = in_flight

    def check(self) -> None:
        idle = self.clock() - self.last_progress
        if idle > self.limit_s:
            raise LinkStalled(
                f"no progress on the link for {idle:.1f} s (watchdog {self.limit_s:g} s): last request "
                f"{self.last_request}, {self.in_flight} B in flight unacknowledged"
            )


@dataclass(frozen=True)
class DeviceInfo:
    """What a device says about itself when a session starts (protocol-neutral).

    Fields a protocol cannot report (EEMBC has no model hash, arena or tensor specs) hold
    their "unknown" value: an empty string, 0, or specs the host supplied itself.
    """

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
    protocol: str = Protocol.V1.value
    #: False when the device did not say what its timer is (an EEMBC device without the
    #: ``m-timer-[...]`` line): ``timer`` is then a placeholder and its figures are only
    #: "reported by the device"
    timer_announced: bool = True

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
        return self.timer.latency_source if self.timer_announced else "reported"

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "protocol_version": self.protocol_version,
            "board": self.board,
            "firmware_version": self.firmware_version,
            "engine": self.engine,
            "model_sha256": self.model_sha256,
            "clock_hz": self.clock_hz,
            "timer": self.timer.name.lower() if self.timer_announced else "unannounced",
            "arena_size": self.arena_size,
            "arena_used": self.arena_used,
            "max_payload": self.max_payload,
            "credits": self.credits,
            "capabilities": [str(c.name).lower() for c in Capability if c in self.capabilities],
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }


@dataclass(frozen=True)
class RawResult:
    """One measured input: output bytes of the last repeat, device ticks of every repeat."""

    output: bytes
    cycles: tuple[int, ...]


@dataclass(frozen=True)
class SessionOptions:
    """How a host session waits, retries and what it expects of the device.

    ``inputs``/``outputs`` are the tensor specs of the model the host means to run; a
    protocol whose device does not announce them (EEMBC) uses these instead.
    """

    timeout: float = 2.0
    retries: int = 3
    on_log: Callable[[Log], None] | None = None
    baud: int | None = None
    inputs: tuple[TensorSpec, ...] | None = None
    outputs: tuple[TensorSpec, ...] | None = None


class HostSession(TypingProtocol):
    """The host end of one protocol over an open port: what devices and the bench use.

    A session may also have the attributes ``watchdog`` (a :class:`Watchdog` or None) and
    ``resend_budget`` (resends allowed per :meth:`run`, or None); the bench sets them when
    present and a session that honours them raises :class:`LinkStalled` and
    :class:`ResendBudgetExceeded`.
    """

    protocol: ClassVar[Protocol]
    stats: LinkStats

    def start(self) -> DeviceInfo:
        """Greet the device and return its facts."""

    def run(self, data: bytes, warmups: int, repeats: int, profile: bool, timeout: float) -> RawResult:
        """Send one input tensor's bytes, run it, and return the outputs and ticks."""

    def profile(self) -> list[LayerTime]:
        """Per-layer ticks of the last run with ``profile=True``."""

    def memory(self) -> Memory:
        """Arena and RAM statistics."""


#: protocol -> "module:class" of its host session; imported on first use.
SESSION_CLASSES: dict[Protocol, str] = {
    Protocol.V1: "harness.link.session:Session",
    Protocol.EEMBC: "harness.link.eembc_session:EembcSession",
}


def open_session(protocol: Protocol | str, port: Any, options: SessionOptions) -> HostSession:
    """The host session of ``protocol`` over ``port`` (not yet started)."""
    proto = Protocol.parse(protocol)
    module_name, _, cls_name = SESSION_CLASSES[proto].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ConfigError(f"protocol {proto.value!r} is not available in this build") from None
        raise
    cls = getattr(module, cls_name)
    session: HostSession = cls(port, options)
    return session
