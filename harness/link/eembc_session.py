"""The host end of the EEMBC / MLPerf Tiny DUT protocol: drive any EEMBC device.

With this the bench measures a board running MLPerf Tiny's reference firmware (or the
project's own EEMBC build, or the sim answering EEMBC) the way the official runner does:
``name`` and ``profile`` on start, ``db load N`` then ``db <hex>`` at 31 bytes per command
(the runner's figure; up to 38 fit the 80-character limit), ``infer N W``, the two
``m-lap-us`` lap times and the ``m-results`` scores. Every wait has the runner's limits
(5 s per line, 30 s per line of an ``infer`` answer) and an error says what it waited for.

What EEMBC cannot tell, this session does not invent. The protocol does not say what the
``m-lap-us`` times count: the project's device ends add an ``m-timer-[kind]`` line to their
``name`` answer (which the official runner skips), and a device without it (MLPerf Tiny's
reference firmware) gets its lap times labelled "reported by the device", never
"measured". The device announces no tensors
(the host's :class:`SessionOptions` supply them), no model hash, arena or engine, and no
per-layer profile or memory figures (:meth:`profile` and :meth:`memory` refuse).

Two conversions make the bench's code work unchanged:

- **input**: the bench quantises to the model's dtype (int8 for VWW); an EEMBC DUT takes
  uint8 RGB and subtracts 128 itself, so int8 bytes get 128 added (:func:`eembc.to_eembc_input`);
- **output**: the DUT reports dequantised float scores; they are quantised back with the
  output spec's scale and zero point, which is exact for scores the DUT computed from int8
  (the device prints 6 decimals; one int8 step of the VWW output is 1/256). The floats
  themselves are kept in :attr:`last_scores` for AUC.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from harness.errors import ConfigError, DeviceError, LinkError
from harness.link import eembc
from harness.link.messages import Capability, DType, LayerTime, Memory, TensorSpec, TimerKind
from harness.link.protocol import DeviceInfo, LinkStats, Protocol, RawResult, SessionOptions, Watchdog
from harness.link.session import PortLike

log = logging.getLogger(__name__)

#: The lap times count microseconds: a "clock" of 1 MHz turns them into the bench's cycles.
EEMBC_CLOCK_HZ = 1_000_000
_INT_RANGES = {DType.INT8: (-128, 127), DType.UINT8: (0, 255), DType.INT16: (-32768, 32767)}


@dataclass(frozen=True)
class InferAnswer:
    """What one ``infer N W`` returned: the two lap times, the scores, every line."""

    runs: int
    warmups: int
    t0_us: int
    t1_us: int
    scores: tuple[float, ...]
    lines: tuple[str, ...]

    @property
    def elapsed_us(self) -> int:
        return self.t1_us - self.t0_us

    @property
    def throughput(self) -> float:
        """Inferences per second, as the runner computes it: N / (t1 - t0)."""
        return self.runs * 1e6 / self.elapsed_us if self.elapsed_us > 0 else float("nan")


def quantise_scores(scores: list[float] | tuple[float, ...], specs: tuple[TensorSpec, ...]) -> bytes:
    """Float scores -> the output tensors' bytes, with each spec's scale and zero point."""
    want = sum(s.elements for s in specs)
    if len(scores) != want:
        raise DeviceError(f"DUT reported {len(scores)} scores, the model has {want} outputs")
    out = bytearray()
    pos = 0
    for spec in specs:
        values = np.asarray(scores[pos : pos + spec.elements], dtype=np.float64)
        pos += spec.elements
        if spec.dtype == DType.FLOAT32:
            out += values.astype("<f4").tobytes()
            continue
        if spec.dtype not in _INT_RANGES or not spec.scale > 0:
            raise ConfigError(f"cannot quantise scores to a {spec.dtype.numpy_name} output without a scale")
        x = values / spec.scale
        q = np.sign(x) * np.floor(np.abs(x) + 0.5) + spec.zero_point
        lo, hi = _INT_RANGES[spec.dtype]
        out += np.clip(q, lo, hi).astype(spec.dtype.numpy_name).tobytes()
    return bytes(out)


class EembcSession:
    """Speaks the EEMBC DUT protocol to one device over an open port (a :class:`HostSession`)."""

    protocol: ClassVar[Protocol] = Protocol.EEMBC

    def __init__(
        self,
        port: PortLike,
        options: SessionOptions | None = None,
        *,
        chunk_bytes: int = eembc.RUNNER_DB_BYTES,
        prefix: str = "",
        line_timeout: float = eembc.LINE_TIMEOUT_S,
        infer_timeout: float = eembc.INFER_TIMEOUT_S,
        settle_s: float = 0.05,
    ) -> None:
        options = options or SessionOptions()
        most = eembc.max_db_bytes(prefix)
        if not 1 <= chunk_bytes <= most:
            raise ConfigError(f"db chunks of {chunk_bytes} B: 1 to {most} fit an 80-character command")
        self.port = port
        self.options = options
        self.chunk_bytes = chunk_bytes
        self.prefix = prefix
        self.line_timeout = line_timeout
        self.infer_timeout = infer_timeout
        self.settle_s = settle_s
        self.stats = LinkStats()
        self.splitter = eembc.LineSplitter()
        self.name = ""
        #: what the device's lap times count, when it says (:func:`eembc.parse_timer`)
        self.timer: str | None = None
        self.model = ""
        self.profile_text = ""
        self.last: InferAnswer | None = None
        #: the bench's run-level watchdog, when it gives one (see protocol.Watchdog)
        self.watchdog: Watchdog | None = None
        self._lines: list[str] = []

    # -- low level -------------------------------------------------------------------------

    def _read_some(self) -> bytes:
        try:
            waiting = getattr(self.port, "in_waiting", 0) or 0
            return self.port.read(max(1, min(int(waiting), 65536)))
        except Exception as exc:
            raise LinkError(f"read from the EEMBC device failed: {exc}") from None

    def read_line(self, timeout: float, waiting_for: str) -> str:
        """The next line from the device within ``timeout`` s, or a LinkError naming what was awaited."""
        deadline = time.monotonic() + timeout
        while not self._lines:
            if self.watchdog is not None:
                self.watchdog.check()
            if time.monotonic() >= deadline:
                self.stats.timeouts += 1
                got = self.splitter.pending
                tail = f" (partial line {got[:40]!r})" if got else ""
                raise LinkError(
                    f"EEMBC device sent no line within {timeout:g} s while waiting for {waiting_for}{tail}"
                )
            data = self._read_some()
            if data:
                self.stats.bytes_received += len(data)
                self._lines.extend(self.splitter.feed(data))
        line = self._lines.pop(0)
        self.stats.frames_received += 1
        if self.watchdog is not None:
            self.watchdog.progress()
        if len(line) > eembc.MAX_LINE:
            raise LinkError(
                f"EEMBC device sent a line longer than {eembc.MAX_LINE} characters "
                f"({len(line)}: {line[:40]!r}...) while waiting for {waiting_for}"
            )
        return line

    def drain(self) -> None:
        """Drop whatever the device sent unasked (a boot banner) before talking to it."""
        deadline = time.monotonic() + self.settle_s
        while time.monotonic() < deadline:
            data = self._read_some()
            if data:
                dropped = self.splitter.feed(data)
                for line in dropped:
                    log.debug("EEMBC device said before the first command: %s", line)
        self._lines.clear()

    def command(self, text: str, timeout: float | None = None) -> list[str]:
        """Send one command and collect its lines up to ``m-ready`` (not included).

        An ``e-[...]`` line is the device refusing the command: a DeviceError naming both.
        """
        raw = eembc.command(text, self.prefix)
        if self.watchdog is not None:
            self.watchdog.check()
            self.watchdog.sending(f"EEMBC {text[:24]!r}", len(raw))
        try:
            self.port.write(raw)
        except Exception as exc:
            raise LinkError(f"write to the EEMBC device failed while sending {text!r}: {exc}") from None
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(raw)
        wait = self.line_timeout if timeout is None else timeout
        lines: list[str] = []
        while True:
            line = self.read_line(wait, f"m-ready after {text[:24]!r}")
            if eembc.READY in line:
                break
            if line:
                lines.append(line)
        for line in lines:
            why = eembc.parse_error(line)
            if why is not None:
                self.stats.device_errors += 1
                raise DeviceError(f"EEMBC device refused {text[:24]!r}: {line}")
        return lines

    # -- commands --------------------------------------------------------------------------

    def hello(self) -> tuple[str, str, str]:
        """``name`` and ``profile``: (DUT name, profile text, model name)."""
        self.drain()
        answer = self.command("name")
        names = [n for n in map(eembc.parse_name, answer) if n]
        if not names:
            raise DeviceError("EEMBC device answered 'name' without an m-name-dut-[...] line")
        timers = [t for t in map(eembc.parse_timer, answer) if t]
        self.timer = timers[0] if timers else None
        profile: dict[str, str] = {}
        for line in self.command("profile"):
            found = eembc.parse_profile(line)
            if found:
                profile[found[0]] = found[1]
        if "model" not in profile:
            raise DeviceError("EEMBC device answered 'profile' without an m-model-[...] line")
        self.name, self.profile_text, self.model = names[0], profile.get("profile", ""), profile["model"]
        return self.name, self.profile_text, self.model

    def load(self, data: bytes) -> None:
        """``db load N`` then the bytes in ``db <hex>`` commands; the last must bring m-load-done."""
        self.command(f"db load {len(data)}")
        lines: list[str] = []
        for cmd in eembc.db_commands(data, self.chunk_bytes):
            lines = self.command(cmd)
        if "m-load-done" not in lines:
            raise DeviceError(
                f"EEMBC device did not confirm the load (no m-load-done after {len(data)} B)"
            )

    def infer(self, runs: int, warmups: int, timeout: float | None = None) -> InferAnswer:
        """``infer N W``: the lap times around the N timed runs and the scores of the last."""
        wait = max(self.infer_timeout, timeout or 0.0)
        lines = self.command(f"infer {runs} {warmups}", timeout=wait)
        laps = [t for t in map(eembc.parse_lap, lines) if t is not None]
        if len(laps) < 2:
            raise DeviceError(f"EEMBC device answered 'infer' with {len(laps)} m-lap-us lines, not 2")
        scores: list[float] | None = None
        for line in lines:
            try:
                got = eembc.parse_results(line)
            except ValueError as exc:
                raise DeviceError(f"EEMBC device: {exc}") from None
            if got is not None:
                scores = got
        if not scores:
            raise DeviceError("EEMBC device answered 'infer' without m-results scores")
        answer = InferAnswer(runs, warmups, laps[0], laps[1], tuple(scores), tuple(lines))
        if answer.elapsed_us < 0:
            raise DeviceError(f"EEMBC device's lap times run backwards ({laps[0]} then {laps[1]} us)")
        self.last = answer
        return answer

    def results(self) -> tuple[float, ...]:
        for line in self.command("results"):
            got = eembc.parse_results(line)
            if got is not None:
                return tuple(got)
        raise DeviceError("EEMBC device answered 'results' without m-results scores")

    def timestamp(self) -> int:
        for line in self.command("timestamp"):
            t = eembc.parse_lap(line)
            if t is not None:
                return t
        raise DeviceError("EEMBC device answered 'timestamp' without an m-lap-us line")

    @property
    def last_scores(self) -> tuple[float, ...]:
        return self.last.scores if self.last else ()

    # -- HostSession ------------------------------------------------------------------------

    def start(self) -> DeviceInfo:
        """``name`` and ``profile``; the tensors are the host's, everything else unknown."""
        inputs, outputs = self.options.inputs, self.options.outputs
        if not inputs or not outputs:
            raise ConfigError(
                "an EEMBC device does not announce its tensors: give the model it runs (--model)"
            )
        name, profile, model = self.hello()
        if model != eembc.VWW_MODEL:
            raise DeviceError(
                f"EEMBC device runs MLPerf Tiny model {model!r}; the harness benchmarks {eembc.VWW_MODEL!r}"
            )
        if self.timer is None:
            log.info("EEMBC device %r does not say what its timer is: its lap times are "
                     "'reported by the device', not known to be measured", name)
        return DeviceInfo(
            protocol_version=0, board=name, firmware_version=profile, engine="",
            model_sha256="", inputs=tuple(inputs), outputs=tuple(outputs),
            arena_size=0, arena_used=0, clock_hz=EEMBC_CLOCK_HZ,
            timer=TimerKind[self.timer.upper()] if self.timer else TimerKind.SYSTICK,
            max_payload=self.chunk_bytes, credits=1,
            capabilities=Capability(0), status=0, status_text="", protocol=Protocol.EEMBC.value,
            timer_announced=self.timer is not None,
        )

    def run(self, data: bytes, warmups: int, repeats: int, profile: bool, timeout: float) -> RawResult:
        """One input: load it, ``infer repeats warmups``, scores back to output bytes.

        EEMBC reports one lap for all N runs, so each of the N "cycles" is the mean
        microseconds per run, (t1 - t0) / N.
        """
        inputs, outputs = self.options.inputs or (), self.options.outputs or ()
        signed = bool(inputs) and inputs[0].dtype == DType.INT8
        self.load(eembc.to_eembc_input(data, signed))
        answer = self.infer(repeats, warmups, timeout)
        per_run = round(answer.elapsed_us / max(1, repeats))
        output = quantise_scores(answer.scores, tuple(outputs))
        self.stats.inputs_sent += 1
        self.stats.payload_bytes += len(data) + len(output)
        return RawResult(output, (per_run,) * repeats)

    def profile(self) -> list[LayerTime]:
        raise DeviceError("per-layer profile: unavailable over EEMBC (the protocol has no such command)")

    def memory(self) -> Memory:
        raise DeviceError("arena and memory figures: unavailable over EEMBC (no such command)")
