"""Protocol v1 messages: their type codes, payload layouts and codecs.

Both ends must agree byte for byte; docs/protocol.md is the specification and
tests/golden/frames.json holds the bytes each message puts on the wire, shared
with the firmware's own tests. All integers are little-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import ClassVar, TypeVar

from harness.link.framing import ErrorCode, Frame

PROTOCOL_VERSION = 1


class MsgType(IntEnum):
    HELLO = 0x01
    INPUT_CHUNK = 0x02
    INFER = 0x03
    GET_PROFILE = 0x04
    GET_MEMORY = 0x05
    CAPTURE = 0x07
    PING = 0x09
    ACK = 0x80
    HELLO_RESP = 0x81
    RESULT = 0x83
    PROFILE = 0x84
    MEMORY = 0x85
    LOG = 0x86
    FRAME = 0x88
    PONG = 0x89
    ERROR = 0xFF


class TimerKind(IntEnum):
    """What the device's cycle counts count."""

    DWT = 0  # Cortex-M DWT cycle counter: real core cycles
    CCOUNT = 1  # Xtensa CCOUNT register: real core cycles
    SYSTICK = 2  # SysTick-derived cycles, coarser
    INSTRUCTIONS = 3  # QEMU -icount: instructions executed, deterministic
    ESTIMATED = 4  # sim backend: cycles estimated from MACs and the board's cost model
    HOST_CLOCK = 5  # native runner: host nanoseconds (clock_hz = 1e9)

    @property
    def latency_source(self) -> str:
        if self is TimerKind.ESTIMATED:
            return "estimated"
        if self is TimerKind.INSTRUCTIONS:
            return "instructions"
        return "measured"


class Capability(IntFlag):
    PROFILE = 1
    MEMORY = 2
    CAMERA = 4
    FRAME = 8


class DType(IntEnum):
    """TFLite TensorType codes, so that specs read the same as the model file."""

    FLOAT32 = 0
    INT32 = 2
    UINT8 = 3
    INT16 = 7
    INT8 = 9

    @property
    def itemsize(self) -> int:
        return {0: 4, 2: 4, 3: 1, 7: 2, 9: 1}[int(self)]

    @property
    def numpy_name(self) -> str:
        return {0: "float32", 2: "int32", 3: "uint8", 7: "int16", 9: "int8"}[int(self)]


UNKNOWN_U32 = 0xFFFFFFFF


class PayloadError(ValueError):
    """A payload does not match its message's layout."""


class _Reader:
    """Cursor over a payload that raises :class:`PayloadError` instead of struct.error."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise PayloadError(f"payload ends after {len(self.data)} B, needed {self.pos + size}")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def one(self, fmt: str) -> int | float:
        return self.take(fmt)[0]

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PayloadError(f"payload ends after {len(self.data)} B, needed {self.pos + n}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def string(self) -> str:
        n = int(self.one("<B"))
        return self.raw(n).decode("utf-8", errors="replace")

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


def _string(text: str) -> bytes:
    data = text.encode("utf-8")[:255]
    return struct.pack("<B", len(data)) + data


@dataclass(frozen=True)
class TensorSpec:
    """Shape, type and quantisation of one model input or output."""

    dtype: DType
    shape: tuple[int, ...]
    scale: float = 0.0
    zero_point: int = 0

    @property
    def elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.elements * self.dtype.itemsize

    def pack(self) -> bytes:
        out = struct.pack("<BB", int(self.dtype), len(self.shape))
        out += struct.pack(f"<{len(self.shape)}I", *self.shape)
        return out + struct.pack("<fi", self.scale, self.zero_point)

    @classmethod
    def unpack(cls, r: _Reader) -> TensorSpec:
        dtype, ndims = r.take("<BB")
        shape = r.take(f"<{ndims}I")
        scale, zp = r.take("<fi")
        try:
            dt = DType(dtype)
        except ValueError as exc:
            raise PayloadError(f"unknown tensor type {dtype}") from exc
        return cls(dt, tuple(int(s) for s in shape), float(scale), int(zp))

    def to_dict(self) -> dict:
        return {
            "dtype": self.dtype.numpy_name,
            "shape": list(self.shape),
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


M = TypeVar("M", bound="Message")


class Message:
    """Base of all messages: a type code and a payload codec."""

    TYPE: ClassVar[MsgType]

    def to_payload(self) -> bytes:
        return b""

    @classmethod
    def from_payload(cls: type[M], payload: bytes) -> M:
        return cls()

    def frame(self, seq: int) -> Frame:
        return Frame(type=int(self.TYPE), seq=seq, payload=self.to_payload())


REGISTRY: dict[int, type[Message]] = {}


def _register(cls: type[M]) -> type[M]:
    if cls.TYPE in REGISTRY:
        raise ValueError(f"message type {cls.TYPE!r} registered twice")
    REGISTRY[int(cls.TYPE)] = cls
    return cls


def parse(frame: Frame) -> Message:
    """Decode a frame's payload into its message, or raise :class:`PayloadError`."""
    cls = REGISTRY.get(frame.type)
    if cls is None:
        raise PayloadError(f"unknown message type 0x{frame.type:02x}")
    return cls.from_payload(frame.payload)


@_register
@dataclass(frozen=True)
class Hello(Message):
    TYPE: ClassVar[MsgType] = MsgType.HELLO
    host_version: int = PROTOCOL_VERSION

    def to_payload(self) -> bytes:
        return struct.pack("<BBH", self.host_version, 0, 0)

    @classmethod
    def from_payload(cls, payload: bytes) -> Hello:
        r = _Reader(payload)
        return cls(int(r.one("<B")))


@_register
@dataclass(frozen=True)
class HelloResp(Message):
    """The device's facts; everything the host needs before it sends an input."""

    TYPE: ClassVar[MsgType] = MsgType.HELLO_RESP
    protocol_version: int
    status: int
    max_payload: int
    credits: int
    capabilities: Capability
    clock_hz: int
    timer: TimerKind
    arena_size: int
    arena_used: int
    model_sha256: bytes
    board: str
    firmware_version: str
    engine: str
    status_text: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    _HEAD: ClassVar[struct.Struct] = struct.Struct("<BBHHHIBBBBII32s")

    def to_payload(self) -> bytes:
        out = self._HEAD.pack(
            self.protocol_version,
            self.status,
            self.max_payload,
            self.credits,
            int(self.capabilities),
            self.clock_hz,
            int(self.timer),
            len(self.inputs),
            len(self.outputs),
            0,
            self.arena_size,
            self.arena_used,
            self.model_sha256,
        )
        out += _string(self.board) + _string(self.firmware_version)
        out += _string(self.engine) + _string(self.status_text)
        for spec in self.inputs + self.outputs:
            out += spec.pack()
        return out

    @classmethod
    def from_payload(cls, payload: bytes) -> HelloResp:
        r = _Reader(payload)
        (ver, status, max_payload, credits, caps, clock, timer, n_in, n_out, _res,
         arena_size, arena_used, sha) = r.take(cls._HEAD.format)
        board, fw, engine, text = r.string(), r.string(), r.string(), r.string()
        specs = [TensorSpec.unpack(r) for _ in range(n_in + n_out)]
        try:
            timer_kind = TimerKind(timer)
        except ValueError as exc:
            raise PayloadError(f"unknown timer kind {timer}") from exc
        return cls(
            protocol_version=ver, status=status, max_payload=max_payload, credits=credits,
            capabilities=Capability(caps), clock_hz=clock, timer=timer_kind,
            arena_size=arena_size, arena_used=arena_used, model_sha256=sha, board=board,
            firmware_version=fw, engine=engine, status_text=text,
            inputs=tuple(specs[:n_in]), outputs=tuple(specs[n_in:]),
        )


@_register
@dataclass(frozen=True)
class InputChunk(Message):
    """A slice of the input tensor; ``total`` is the whole tensor's size in bytes."""

    TYPE: ClassVar[MsgType] = MsgType.INPUT_CHUNK
    offset: int
    total: int
    data: bytes

    def to_payload(self) -> bytes:
        return struct.pack("<II", self.offset, self.total) + self.data

    @classmethod
    def from_payload(cls, payload: bytes) -> InputChunk:
        r = _Reader(payload)
        offset, total = r.take("<II")
        return cls(int(offset), int(total), r.rest())


@_register
@dataclass(frozen=True)
class Ack(Message):
    """Acknowledges the request with the frame's seq; returns one credit."""

    TYPE: ClassVar[MsgType] = MsgType.ACK
    next_offset: int = 0
    credits: int = 0

    def to_payload(self) -> bytes:
        return struct.pack("<IH", self.next_offset, self.credits)

    @classmethod
    def from_payload(cls, payload: bytes) -> Ack:
        r = _Reader(payload)
        off, credits = r.take("<IH")
        return cls(int(off), int(credits))


class InferFlags(IntFlag):
    PROFILE = 1


@_register
@dataclass(frozen=True)
class Infer(Message):
    TYPE: ClassVar[MsgType] = MsgType.INFER
    warmups: int = 0
    repeats: int = 1
    flags: InferFlags = InferFlags(0)

    def to_payload(self) -> bytes:
        return struct.pack("<HHBB", self.warmups, self.repeats, int(self.flags), 0)

    @classmethod
    def from_payload(cls, payload: bytes) -> Infer:
        r = _Reader(payload)
        w, n, flags, _ = r.take("<HHBB")
        return cls(int(w), int(n), InferFlags(flags))


@_register
@dataclass(frozen=True)
class Result(Message):
    """Outputs of the last repeat (all outputs concatenated) and the cycles of every repeat."""

    TYPE: ClassVar[MsgType] = MsgType.RESULT
    status: int
    cycles: tuple[int, ...]
    output: bytes

    def to_payload(self) -> bytes:
        out = struct.pack("<BBHHH", self.status, 0, len(self.cycles), len(self.output), 0)
        out += struct.pack(f"<{len(self.cycles)}Q", *self.cycles)
        return out + self.output

    @classmethod
    def from_payload(cls, payload: bytes) -> Result:
        r = _Reader(payload)
        status, _, n, out_len, _ = r.take("<BBHHH")
        cycles = r.take(f"<{n}Q")
        return cls(int(status), tuple(int(c) for c in cycles), r.raw(int(out_len)))


@_register
@dataclass(frozen=True)
class GetProfile(Message):
    TYPE: ClassVar[MsgType] = MsgType.GET_PROFILE
    start: int = 0

    def to_payload(self) -> bytes:
        return struct.pack("<H", self.start)

    @classmethod
    def from_payload(cls, payload: bytes) -> GetProfile:
        return cls(int(_Reader(payload).one("<H")))


@dataclass(frozen=True)
class LayerTime:
    index: int
    op: str
    cycles: int


@_register
@dataclass(frozen=True)
class Profile(Message):
    """One page of the per-layer profile of the last profiled inference."""

    TYPE: ClassVar[MsgType] = MsgType.PROFILE
    total: int
    start: int
    layers: tuple[LayerTime, ...]

    def to_payload(self) -> bytes:
        out = struct.pack("<HHH", self.total, self.start, len(self.layers))
        for layer in self.layers:
            out += struct.pack("<HQ", layer.index, layer.cycles) + _string(layer.op)
        return out

    @classmethod
    def from_payload(cls, payload: bytes) -> Profile:
        r = _Reader(payload)
        total, start, count = r.take("<HHH")
        layers = []
        for _ in range(count):
            index, cycles = r.take("<HQ")
            layers.append(LayerTime(int(index), r.string(), int(cycles)))
        return cls(int(total), int(start), tuple(layers))


@_register
@dataclass(frozen=True)
class GetMemory(Message):
    TYPE: ClassVar[MsgType] = MsgType.GET_MEMORY


@_register
@dataclass(frozen=True)
class Memory(Message):
    """Memory facts; :data:`UNKNOWN_U32` where the device cannot tell."""

    TYPE: ClassVar[MsgType] = MsgType.MEMORY
    arena_size: int = UNKNOWN_U32
    arena_used: int = UNKNOWN_U32
    ram_total: int = UNKNOWN_U32
    ram_free: int = UNKNOWN_U32
    stack_used: int = UNKNOWN_U32
    flash_total: int = UNKNOWN_U32
    flash_used: int = UNKNOWN_U32
    model_bytes: int = UNKNOWN_U32

    _FMT: ClassVar[str] = "<8I"

    def to_payload(self) -> bytes:
        return struct.pack(
            self._FMT, self.arena_size, self.arena_used, self.ram_total, self.ram_free,
            self.stack_used, self.flash_total, self.flash_used, self.model_bytes,
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> Memory:
        return cls(*(int(v) for v in _Reader(payload).take(cls._FMT)))


class LogLevel(IntEnum):
    DEBUG = 0
    INFO = 1
    WARNING = 2
    ERROR = 3


@_register
@dataclass(frozen=True)
class Log(Message):
    """Device log text, unsolicited (seq 0)."""

    TYPE: ClassVar[MsgType] = MsgType.LOG
    level: LogLevel
    text: str

    def to_payload(self) -> bytes:
        return struct.pack("<B", int(self.level)) + self.text.encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> Log:
        r = _Reader(payload)
        level = int(r.one("<B"))
        return cls(LogLevel(min(level, 3)), r.rest().decode("utf-8", errors="replace"))


class CaptureFlags(IntFlag):
    SEND_FRAME = 1


@_register
@dataclass(frozen=True)
class Capture(Message):
    """Camera mode: capture, scale to the input, infer once; RESULT then FRAME pages."""

    TYPE: ClassVar[MsgType] = MsgType.CAPTURE
    flags: CaptureFlags = CaptureFlags(0)

    def to_payload(self) -> bytes:
        return struct.pack("<BB", int(self.flags), 0)

    @classmethod
    def from_payload(cls, payload: bytes) -> Capture:
        flags, _ = _Reader(payload).take("<BB")
        return cls(CaptureFlags(flags))


class PixelFormat(IntEnum):
    GRAY8 = 0
    RGB888 = 1
    RGB565 = 2


@_register
@dataclass(frozen=True)
class FrameChunk(Message):
    """A slice of a captured camera frame."""

    TYPE: ClassVar[MsgType] = MsgType.FRAME
    offset: int
    total: int
    width: int
    height: int
    pixel_format: PixelFormat
    data: bytes

    def to_payload(self) -> bytes:
        head = struct.pack(
            "<IIHHBB", self.offset, self.total, self.width, self.height, int(self.pixel_format), 0
        )
        return head + self.data

    @classmethod
    def from_payload(cls, payload: bytes) -> FrameChunk:
        r = _Reader(payload)
        off, total, w, h, fmt, _ = r.take("<IIHHBB")
        return cls(int(off), int(total), int(w), int(h), PixelFormat(fmt), r.rest())


@dataclass(frozen=True)
class _Echo(Message):
    """Payload carried as is: PING's bytes come back in PONG."""

    data: bytes = b""

    def to_payload(self) -> bytes:
        return self.data

    @classmethod
    def from_payload(cls: type[E], payload: bytes) -> E:
        return cls(bytes(payload))


E = TypeVar("E", bound=_Echo)


@_register
@dataclass(frozen=True)
class Ping(_Echo):
    TYPE: ClassVar[MsgType] = MsgType.PING


@_register
@dataclass(frozen=True)
class Pong(_Echo):
    TYPE: ClassVar[MsgType] = MsgType.PONG


NO_SEQ = 0xFFFF


@_register
@dataclass(frozen=True)
class Error(Message):
    """An error the device reports; ``ref_seq`` is the request it refers to (NO_SEQ if unknown)."""

    TYPE: ClassVar[MsgType] = MsgType.ERROR
    code: int
    ref_seq: int = NO_SEQ
    detail: int = 0
    text: str = field(default="")

    def to_payload(self) -> bytes:
        return struct.pack("<HHI", self.code, self.ref_seq, self.detail) + self.text.encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> Error:
        r = _Reader(payload)
        code, ref, detail = r.take("<HHI")
        return cls(int(code), int(ref), int(detail), r.rest().decode("utf-8", errors="replace"))

    @property
    def code_name(self) -> str:
        try:
            return ErrorCode(self.code).name
        except ValueError:
            return f"code {self.code}"
