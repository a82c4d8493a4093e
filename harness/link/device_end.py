"""The device end of protocol v1, in Python, for any engine.

The simulated board, the link benchmarks and the unit tests need a device that speaks
exactly what docs/protocol.md says a board speaks: the hello with the device's facts,
windowed input upload with go-back-N rules, inference with warm-ups and repeats, the
per-layer profile, memory statistics, log frames, an error frame with a code for every
bad thing a host (or a noisy line) can send, and a one-entry answer cache so that a
resent request is answered again rather than run twice. Keeping this apart from what
runs the model (the :class:`Engine`) lets the same state machine serve the real TFLM
interpreter and a test double.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import struct
from dataclasses import dataclass, field
from typing import Protocol

from harness.link.framing import CRC_SIZE, HEADER_SIZE, Frame, FrameDecoder, FrameError
from harness.link.messages import (
    NO_SEQ,
    PROTOCOL_VERSION,
    Ack,
    Capability,
    Error,
    ErrorCode,
    GetProfile,
    HelloResp,
    Infer,
    InferFlags,
    LayerTime,
    Log,
    LogLevel,
    Memory,
    MsgType,
    PayloadError,
    Profile,
    Result,
    TensorSpec,
    TimerKind,
)

log = logging.getLogger(__name__)

#: Requests a host may send; every other type is answered with UNKNOWN_TYPE.
HOST_REQUESTS = frozenset(
    {
        MsgType.HELLO,
        MsgType.INPUT_CHUNK,
        MsgType.INFER,
        MsgType.GET_PROFILE,
        MsgType.GET_MEMORY,
        MsgType.CAPTURE,
        MsgType.PING,
    }
)
#: Requests answered even before a model is ready, so that the host can learn why.
ALWAYS_ANSWERED = frozenset({MsgType.HELLO, MsgType.PING, MsgType.GET_MEMORY})
DEFAULT_MAX_PAYLOAD = 4096
DEFAULT_CREDITS = 8
_RESULT_HEAD = 8
_PROFILE_HEAD = 6


class ByteLink(Protocol):
    """A full-duplex byte pipe as the device sees it."""

    def read(self, timeout: float) -> bytes:
        """Bytes that arrived within ``timeout`` (b"" if none); EOFError once the pipe is gone."""
        ...

    def write(self, data: bytes) -> None:
        """Send all of ``data``."""
        ...


class FdLink:
    """A :class:`ByteLink` over file descriptors (a pty master, a pipe pair, a socket's fd)."""

    def __init__(self, read_fd: int, write_fd: int | None = None, block: int = 65536) -> None:
        self.read_fd = read_fd
        self.write_fd = read_fd if write_fd is None else write_fd
        self.block = block

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.read_fd], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            data = os.read(self.read_fd, self.block)
        except OSError as exc:
            # A pty master reads EIO once no slave is open: the peer is gone.
            if exc.errno in (errno.EIO, errno.EBADF, errno.ECONNRESET):
                raise EOFError(str(exc)) from None
            raise
        if not data:
            raise EOFError("peer closed the link")
        return data

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.write_fd, view)
            except BlockingIOError:
                select.select([], [self.write_fd], [], 1.0)
                continue
            view = view[n:]


class PortLink:
    """A :class:`ByteLink` over an open pyserial port (a device end on a real serial line)."""

    def __init__(self, port: object) -> None:
        self.port = port

    def read(self, timeout: float) -> bytes:
        port = self.port
        port.timeout = timeout  # type: ignore[attr-defined]
        waiting = int(getattr(port, "in_waiting", 0) or 0)
        data: bytes = port.read(max(1, waiting))  # type: ignore[attr-defined]
        return data

    def write(self, data: bytes) -> None:
        self.port.write(data)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EngineFacts:
    """What the device says about itself in HELLO_RESP."""

    board: str
    firmware_version: str
    engine: str
    clock_hz: int
    timer: TimerKind
    model_sha256: bytes
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    arena_size: int
    arena_used: int
    capabilities: Capability
    status: int = 0
    status_text: str = ""

    @property
    def ready(self) -> bool:
        return self.status == 0


@dataclass(frozen=True)
class Invocation:
    """One run of the model: all outputs concatenated and the cycles it took."""

    output: bytes
    cycles: int


class EngineError(Exception):
    """The engine could not do what was asked; ``code`` is the protocol error to answer with."""

    def __init__(self, code: ErrorCode, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class Engine(Protocol):
    """What runs the model behind a :class:`DeviceEnd`."""

    def facts(self) -> EngineFacts: ...

    def set_input(self, data: bytes) -> None:
        """Copy one whole input tensor (all inputs concatenated) into the model."""
        ...

    def invoke(self, profile: bool) -> Invocation:
        """Run the model once; with ``profile`` keep per-layer cycles for :meth:`profile`."""
        ...

    def profile(self) -> list[LayerTime]:
        """Per-layer cycles of the last profiled invocation (empty if there was none)."""
        ...

    def memory(self) -> Memory: ...


@dataclass
class DeviceStats:
    """What the device end did, for tests and diagnostics."""

    frames: int = 0
    invokes: int = 0
    cache_hits: int = 0
    errors_sent: dict[int, int] = field(default_factory=dict)


@dataclass
class _Cached:
    key: tuple[int, int, bytes]
    answer: bytes


class DeviceEnd:
    """Serves protocol v1 on a :class:`ByteLink` with an :class:`Engine`."""

    def __init__(
        self,
        link: ByteLink,
        engine: Engine,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        credits: int = DEFAULT_CREDITS,
    ) -> None:
        self.link = link
        self.engine = engine
        self.max_payload = max_payload
        self.credits = credits
        self.facts = engine.facts()
        # A frame may carry max_payload bytes; COBS adds one byte per 254 plus one.
        body = max_payload + HEADER_SIZE + CRC_SIZE
        self.decoder = FrameDecoder(max_encoded=body + body // 254 + 2, max_payload=max_payload)
        self.stats = DeviceStats()
        self.hello_done = False
        self.input_size = sum(spec.nbytes for spec in self.facts.inputs)
        self._input = bytearray(self.input_size)
        self._expected = 0
        self._cache: _Cached | None = None
        self._outbox: list[bytes] = []
        self._feeding = False

    # -- the loop ----------------------------------------------------------------------------

    def serve(self, should_stop: _StopFlag | None = None, poll: float = 0.2) -> None:
        """Answer frames until the link closes or ``should_stop`` is set."""
        while should_stop is None or not should_stop.is_set():
            try:
                data = self.link.read(poll)
            except EOFError:
                log.debug("link closed, device end stops")
                return
            if data:
                self.feed(data)

    def feed(self, data: bytes) -> None:
        """Handle received bytes: answer every whole frame and every damaged one."""
        frames, errors = self.decoder.feed(data)
        self._feeding = True
        try:
            for err in errors:
                self._frame_error(err)
            for frame in frames:
                self.stats.frames += 1
                self.handle(frame)
        finally:
            self._feeding = False
            self.flush()

    def log(self, level: LogLevel, text: str) -> None:
        """Send device log text to the host in a LOG frame (seq 0)."""
        room = self.max_payload - 1
        data = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
        self._send(Log(level, data).frame(0).encode())
        if not self._feeding:
            self.flush()

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, frame: Frame) -> None:
        ftype = frame.type
        if ftype == MsgType.INPUT_CHUNK and self.hello_done and self.facts.ready:
            self._cache = None  # chunks are idempotent by offset; the cache holds requests only
            self._send(self._on_chunk(frame))
            return
        if ftype not in HOST_REQUESTS:
            self._send(self._error(ErrorCode.UNKNOWN_TYPE, frame.seq, f"type 0x{ftype:02x}"))
            return
        if ftype == MsgType.HELLO:
            self._cache = None
            self._send(self._on_hello(frame))
            self._log_ready()
            return
        key = (frame.seq, ftype, frame.payload)
        if self._cache is not None and self._cache.key == key:
            self.stats.cache_hits += 1
            self._send(self._cache.answer)
            return
        answer = self._dispatch(frame)
        self._cache = _Cached(key, answer)
        self._send(answer)

    def _dispatch(self, frame: Frame) -> bytes:
        ftype = frame.type
        if ftype == MsgType.PING:
            return Frame(int(MsgType.PONG), frame.seq, frame.payload).encode()
        if not self.hello_done:
            return self._error(ErrorCode.NOT_READY, frame.seq, "hello first")
        if not self.facts.ready and ftype not in ALWAYS_ANSWERED:
            return self._error(
                ErrorCode.NOT_READY, frame.seq, self.facts.status_text or "no model loaded"
            )
        try:
            if ftype == MsgType.INFER:
                return self._on_infer(frame)
            if ftype == MsgType.GET_PROFILE:
                return self._on_profile(frame)
            if ftype == MsgType.GET_MEMORY:
                return self.engine.memory().frame(frame.seq).encode()
            return self._error(ErrorCode.UNSUPPORTED, frame.seq, "this device has no camera")
        except PayloadError as exc:
            return self._error(ErrorCode.BAD_ARGUMENT, frame.seq, str(exc))
        except EngineError as exc:
            return self._error(exc.code, frame.seq, exc.text)

    # -- commands ----------------------------------------------------------------------------

    def _on_hello(self, frame: Frame) -> bytes:
        if len(frame.payload) < 1:
            return self._error(ErrorCode.BAD_ARGUMENT, frame.seq, "hello without a version")
        self.hello_done = True
        self._expected = 0
        f = self.facts
        resp = HelloResp(
            protocol_version=PROTOCOL_VERSION,
            status=f.status,
            max_payload=self.max_payload,
            credits=self.credits,
            capabilities=f.capabilities,
            clock_hz=f.clock_hz,
            timer=f.timer,
            arena_size=f.arena_size,
            arena_used=f.arena_used,
            model_sha256=f.model_sha256,
            board=f.board,
            firmware_version=f.firmware_version,
            engine=f.engine,
            status_text=f.status_text,
            inputs=f.inputs,
            outputs=f.outputs,
        )
        return resp.frame(frame.seq).encode()

    def _log_ready(self) -> None:
        f = self.facts
        if f.ready:
            self.log(
                LogLevel.INFO,
                f"{f.engine} on {f.board}: model {f.model_sha256.hex()[:12]}, "
                f"arena {f.arena_used} of {f.arena_size} B",
            )
        else:
            self.log(LogLevel.ERROR, f"no model loaded: {f.status_text}")

    def _on_chunk(self, frame: Frame) -> bytes:
        payload = frame.payload
        if len(payload) < 8:
            return self._error(ErrorCode.BAD_ARGUMENT, frame.seq, "input chunk shorter than its header")
        offset, total = struct.unpack_from("<II", payload, 0)
        n = len(payload) - 8
        if total != self.input_size or offset + n > total:
            return self._error(
                ErrorCode.INPUT_TOO_LARGE,
                frame.seq,
                f"chunk {offset}+{n} of {total} B; the input tensor has {self.input_size} B",
                detail=self.input_size,
            )
        if offset == 0:
            self._expected = 0
        if offset == self._expected:
            self._input[offset : offset + n] = memoryview(payload)[8:]
            self._expected += n
        elif offset > self._expected:
            return self._error(
                ErrorCode.OUT_OF_ORDER, frame.seq, f"expected offset {self._expected}",
                detail=self._expected,
            )
        return Ack(self._expected, self.credits).frame(frame.seq).encode()

    def _on_infer(self, frame: Frame) -> bytes:
        req = Infer.from_payload(frame.payload)
        if req.repeats == 0:
            return self._error(ErrorCode.BAD_ARGUMENT, frame.seq, "repeats must be at least 1")
        out_len = sum(spec.nbytes for spec in self.facts.outputs)
        if _RESULT_HEAD + 8 * req.repeats + out_len > self.max_payload:
            most = (self.max_payload - _RESULT_HEAD - out_len) // 8
            return self._error(
                ErrorCode.BAD_ARGUMENT, frame.seq, f"at most {most} repeats fit one result"
            )
        if self._expected != self.input_size:
            return self._error(
                ErrorCode.INPUT_INCOMPLETE, frame.seq,
                f"{self._expected} of {self.input_size} input bytes received",
                detail=self._expected,
            )
        self.flush()  # acknowledgements queued before this request go out before the model runs
        self.engine.set_input(bytes(self._input))
        profile = InferFlags.PROFILE in req.flags
        for _ in range(req.warmups):
            self.engine.invoke(False)
            self.stats.invokes += 1
        cycles = []
        run = Invocation(b"", 0)
        for i in range(req.repeats):
            run = self.engine.invoke(profile and i == req.repeats - 1)
            self.stats.invokes += 1
            cycles.append(run.cycles)
        return Result(0, tuple(cycles), run.output).frame(frame.seq).encode()

    def _on_profile(self, frame: Frame) -> bytes:
        if Capability.PROFILE not in self.facts.capabilities:
            return self._error(ErrorCode.UNSUPPORTED, frame.seq, "no per-layer profile on this device")
        start = GetProfile.from_payload(frame.payload).start
        layers = self.engine.profile()
        if not layers:
            return self._error(ErrorCode.NOT_READY, frame.seq, "no profiled inference yet")
        if start > len(layers):
            return self._error(ErrorCode.BAD_ARGUMENT, frame.seq, f"profile has {len(layers)} layers")
        page: list[LayerTime] = []
        size = _PROFILE_HEAD
        for layer in layers[start:]:
            entry = 2 + 8 + 1 + min(255, len(layer.op.encode("utf-8")))
            if size + entry > self.max_payload:
                break
            page.append(layer)
            size += entry
        return Profile(len(layers), start, tuple(page)).frame(frame.seq).encode()

    # -- errors ------------------------------------------------------------------------------

    def _frame_error(self, err: FrameError) -> None:
        ref = NO_SEQ if err.seq is None or err.code == ErrorCode.BAD_CRC else err.seq
        log.debug("damaged frame: %s", err)
        self._send(self._error(ErrorCode(err.code), ref, str(err)))

    def _error(self, code: ErrorCode, ref_seq: int, text: str, detail: int = 0) -> bytes:
        self.stats.errors_sent[int(code)] = self.stats.errors_sent.get(int(code), 0) + 1
        room = self.max_payload - 8
        msg = Error(int(code), ref_seq, detail, text.encode("utf-8")[:room].decode("utf-8", "ignore"))
        return msg.frame(ref_seq if ref_seq != NO_SEQ else 0).encode()

    def _send(self, data: bytes) -> None:
        self._outbox.append(data)

    def flush(self) -> None:
        """Write every queued answer in one go: one write and one wake-up of the host per read."""
        if self._outbox:
            data = b"".join(self._outbox)
            self._outbox.clear()
            self.link.write(data)


class _StopFlag(Protocol):
    def is_set(self) -> bool: ...

