"""The device end of the EEMBC / MLPerf Tiny DUT protocol, in Python, for any engine.

The simulated board answers the official MLPerf Tiny runner through this: bytes from the
host become commands (:class:`~harness.link.eembc.CommandSplitter`), each command becomes
lines ending with exactly one ``m-ready``, and every bad input (a command longer than 80
characters, a non-hex ``db`` payload, ``db`` past the buffer, ``infer`` before a full
load, an unknown command) is one ``e-[...]`` line and leaves the state as it was. The
input buffer is allocated once at its configured size and never grows, so no host can
make the device hold more than one input. What runs the model is an :class:`EembcEngine`
callback; what the lap times count is a :class:`Clock`, so the same loop serves a real
timer and the sim's cost-model estimate. The golden transcripts
(tests/golden/eembc_transcripts.txt) hold this end and the C++ one to the same lines.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from harness.link import eembc
from harness.link.device_end import ByteLink

log = logging.getLogger(__name__)

DEFAULT_NAME = "vww-hil"


@dataclass(frozen=True)
class EembcOutcome:
    """One inference: the class scores as floats, and the microseconds it took (None: not known)."""

    scores: tuple[float, ...]
    elapsed_us: int | None = None


class EembcEngine(Protocol):
    """Runs the model on one input as the DUT received it (uint8 bytes, the buffer's size)."""

    def infer(self, data: bytes) -> EembcOutcome: ...


class Clock(Protocol):
    """The DUT's microsecond timer, as ``m-lap-us`` and ``timestamp`` report it.

    ``kind`` is what it counts (:data:`eembc.TIMER_KINDS`), announced in the ``name``
    answer so that the host labels the lap times truthfully.
    """

    kind: str

    def now_us(self) -> int: ...

    def spend(self, us: int | None) -> None:
        """An inference reported taking ``us``; a clock that runs by itself ignores it."""
        ...


class WallClock:
    """Microseconds of the host's monotonic clock: lap times are what the engine really took."""

    kind = "host_clock"

    def __init__(self) -> None:
        self._origin = time.monotonic_ns()

    def now_us(self) -> int:
        return (time.monotonic_ns() - self._origin) // 1000

    def spend(self, us: int | None) -> None:
        return None


class EstimateClock:
    """A clock that advances only by the engines' estimates (the sim's cost model).

    The host's wall clock says nothing about a Cortex-M4, so on the sim ``m-lap-us`` is
    the sum of the estimated inference times, labelled as an estimate by ``hil serve`` and
    announced as one to the host.
    """

    kind = "estimated"

    def __init__(self) -> None:
        self._us = 0

    def now_us(self) -> int:
        return self._us

    def spend(self, us: int | None) -> None:
        if us:
            self._us += int(us)


@dataclass
class EembcDeviceStats:
    commands: int = 0
    errors: int = 0
    inferences: int = 0
    errors_by_text: dict[str, int] = field(default_factory=dict)


class _Refused(Exception):
    """A command the device answers with one ``e-[...]`` line."""


class EembcDevice:
    """Serves the EEMBC DUT protocol on a :class:`ByteLink` with an :class:`EembcEngine`."""

    def __init__(
        self,
        link: ByteLink | None,
        engine: EembcEngine,
        *,
        input_bytes: int = eembc.VWW_INPUT_BYTES,
        name: str = DEFAULT_NAME,
        model: str = eembc.VWW_MODEL,
        clock: Clock | None = None,
    ) -> None:
        if input_bytes < 1:
            raise ValueError("the input buffer needs at least one byte")
        self.link = link
        self.engine = engine
        self.input_bytes = input_bytes
        self.name = name
        self.model = model
        self.clock: Clock = clock if clock is not None else WallClock()
        self.splitter = eembc.CommandSplitter()
        self.stats = EembcDeviceStats()
        self._buffer = bytearray(input_bytes)  # fixed: the only input memory the device has
        self._expected = 0  # bytes announced by the last `db load`, 0 before any
        self._loaded = 0
        self._results: tuple[float, ...] | None = None

    # -- the loop ----------------------------------------------------------------------------

    def serve(self, should_stop: _StopFlag | None = None, poll: float = 0.2) -> None:
        """Answer commands until the link closes or ``should_stop`` is set."""
        assert self.link is not None, "serve() needs a link"
        while should_stop is None or not should_stop.is_set():
            try:
                data = self.link.read(poll)
            except EOFError:
                log.debug("link closed, EEMBC device end stops")
                return
            if data:
                self.feed(data)

    def feed(self, data: bytes) -> list[str]:
        """Handle received bytes; write (and return) the lines of every complete command."""
        out: list[str] = []
        for cmd in self.splitter.feed(data):
            lines = self.handle(cmd)
            out.extend(lines)
            if self.link is not None:
                self.link.write(b"".join(line.encode("ascii", "replace") + b"\r\n" for line in lines))
        return out

    # -- commands ----------------------------------------------------------------------------

    def handle(self, text: str | None) -> list[str]:
        """The lines answering one command (``None``: a command longer than 80 characters)."""
        self.stats.commands += 1
        try:
            lines = self._dispatch(text)
        except _Refused as exc:
            why = str(exc)
            self.stats.errors += 1
            self.stats.errors_by_text[why] = self.stats.errors_by_text.get(why, 0) + 1
            lines = [_fit(f"e-[{why}", "]")]
        return [*lines, eembc.READY]

    def _dispatch(self, text: str | None) -> list[str]:
        if text is None:
            raise _Refused(f"Command longer than {eembc.MAX_COMMAND} characters")
        words = text.split()
        if not words:
            return []
        head, args = words[0], words[1:]
        if head == "name" and not args:
            return [_fit(f"m-name-dut-[{self.name}", "]"), eembc.format_timer(self.clock.kind)]
        if head == "profile" and not args:
            return [f"m-profile-[{eembc.PROFILE}]", f"m-model-[{self.model}]"]
        if head == "timestamp" and not args:
            return [f"m-lap-us-{self.clock.now_us()}"]
        if head == "db" and args and args[0] == "load" and len(args) <= 2:
            return self._db_load(args[1] if len(args) == 2 else "")
        if head == "db" and len(args) == 1:
            return self._db_data(args[0])
        if head == "infer" and len(args) <= 2:
            return self._infer(args)
        if head == "results" and not args:
            if self._results is None:
                raise _Refused("results before infer")
            return [eembc.format_results(self._results)]
        raise _Refused(f"Unknown command: {' '.join(words)}")

    def _db_load(self, arg: str) -> list[str]:
        n = int(arg) if arg.isdigit() else -1
        if not 1 <= n <= self.input_bytes:
            raise _Refused(f"db load needs 1 to {self.input_bytes} bytes, got {arg or 'nothing'}")
        self._expected = n
        self._loaded = 0
        return [f"m-[Expecting {n} bytes]"]

    def _db_data(self, payload: str) -> list[str]:
        if not self._expected:
            raise _Refused("db before db load")
        if not eembc.is_hex_payload(payload):
            raise _Refused("db payload is not hex")
        n = len(payload) // 2
        left = self._expected - self._loaded
        if n > left:
            raise _Refused(f"db past the buffer: {n} bytes, {left} left")
        self._buffer[self._loaded : self._loaded + n] = bytes.fromhex(payload)
        self._loaded += n
        return ["m-load-done"] if self._loaded == self._expected else []

    def _infer(self, args: list[str]) -> list[str]:
        if not args or not all(a.isdigit() for a in args) or int(args[0]) < 1:
            raise _Refused("infer needs N >= 1 and W >= 0")
        n = int(args[0])
        w = int(args[1]) if len(args) == 2 else 0
        if self._loaded != self.input_bytes:
            raise _Refused(f"infer before a full load: {self._loaded} of {self.input_bytes} bytes")
        data = bytes(self._buffer)
        lines = [f"m-warmup-start-{w}"]
        try:
            for _ in range(w):
                self.clock.spend(self.engine.infer(data).elapsed_us)
            lines += ["m-warmup-done", f"m-infer-start-{n}", f"m-lap-us-{self.clock.now_us()}"]
            outcome = EembcOutcome(())
            for _ in range(n):
                outcome = self.engine.infer(data)
                self.clock.spend(outcome.elapsed_us)
                self.stats.inferences += 1
        except _Refused:
            raise
        except Exception as exc:  # the engine's failure is the command's error line, not a crash
            log.warning("inference failed: %s", exc)
            raise _Refused(f"infer failed: {exc}") from None
        lines.append(f"m-lap-us-{self.clock.now_us()}")
        self._results = tuple(outcome.scores)
        lines += ["m-infer-done", eembc.format_results(self._results)]
        return lines


def _fit(body: str, end: str) -> str:
    """``body + end`` cut so that the line stays within the 80 characters a host accepts."""
    room = eembc.MAX_LINE - len(end)
    return body[:room] + end


class _StopFlag(Protocol):
    def is_set(self) -> bool: ...
