"""Frames on the wire: header, payload and CRC-32, COBS-encoded, ended by a zero byte.

COBS removes every zero byte from the encoded frame, so a zero always means "end of
frame": after garbage or a torn frame the receiver drops bytes up to the next zero and
is back in step. The CRC catches what COBS cannot (flipped bits). See docs/protocol.md.
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

log = logging.getLogger(__name__)

HEADER = struct.Struct("<BBHH")  # type, flags, seq, payload length
HEADER_SIZE = HEADER.size
CRC_SIZE = 4
DELIMITER = b"\x00"
#: Largest payload any peer may send before the hello has told the host the device's limit.
HELLO_MAX_PAYLOAD = 256
#: Hard upper bound of the protocol (payload length is a u16, buffers are sized by the device).
ABS_MAX_PAYLOAD = 65535


class ErrorCode(IntEnum):
    """Why a frame or request was refused (ERROR frames; also what the decoder reports)."""

    BAD_CRC = 1
    BAD_LENGTH = 2
    TOO_LONG = 3
    UNKNOWN_TYPE = 4
    NOT_READY = 5
    OUT_OF_ORDER = 6
    INPUT_TOO_LARGE = 7
    INPUT_INCOMPLETE = 8
    INVOKE_FAILED = 9
    UNSUPPORTED = 10
    MODEL_ERROR = 11
    BAD_ARGUMENT = 12
    BUSY = 13
    BAD_FRAME = 14


def crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, reflected, init and xorout 0xFFFFFFFF), as zlib computes it."""
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: no zero byte in the output, at most 1 byte per 254 added.

    Works on the zero-free runs that ``bytes.split`` finds, so the cost is per run, not
    per byte: a 4 KiB chunk encodes in microseconds, which keeps a pty link near its rate.
    """
    out = bytearray()
    for run in bytes(data).split(b"\x00"):
        start = 0
        while len(run) - start >= 254:
            out.append(0xFF)
            out += run[start : start + 254]
            start += 254
        out.append(len(run) - start + 1)
        out += run[start:]
    return bytes(out)


class CobsError(ValueError):
    """The bytes between two delimiters are not a valid COBS block."""


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises :class:`CobsError` on a malformed block."""
    if 0 in data:
        raise CobsError("zero byte inside a COBS block")
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        end = i + code
        if end > n:
            raise CobsError("COBS block runs past the end of the frame")
        out += data[i + 1 : end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: a message type, flags, sequence number and payload bytes."""

    type: int
    seq: int
    payload: bytes = b""
    flags: int = 0

    def encode(self) -> bytes:
        """Bytes on the wire, delimiter included."""
        if len(self.payload) > ABS_MAX_PAYLOAD:
            raise ValueError(f"payload of {len(self.payload)} B exceeds the protocol maximum")
        body = HEADER.pack(self.type, self.flags, self.seq & 0xFFFF, len(self.payload)) + self.payload
        body += struct.pack("<I", crc32(body))
        return cobs_encode(body) + DELIMITER


class FrameError(ValueError):
    """A received frame is malformed; ``code`` is the protocol error code that describes it."""

    def __init__(self, code: int, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.seq = seq


def decode_frame(encoded: bytes, max_payload: int = ABS_MAX_PAYLOAD) -> Frame:
    """Decode one frame (without its delimiter) or raise :class:`FrameError`."""
    try:
        body = cobs_decode(encoded)
    except CobsError as exc:
        raise FrameError(ErrorCode.BAD_FRAME, str(exc)) from None
    if len(body) < HEADER_SIZE + CRC_SIZE:
        raise FrameError(ErrorCode.BAD_LENGTH, f"frame of {len(body)} B is shorter than a header")
    (crc,) = struct.unpack_from("<I", body, len(body) - CRC_SIZE)
    if crc32(body[:-CRC_SIZE]) != crc:
        raise FrameError(ErrorCode.BAD_CRC, "CRC mismatch")
    ftype, flags, seq, length = HEADER.unpack_from(body, 0)
    if length != len(body) - HEADER_SIZE - CRC_SIZE:
        raise FrameError(
            ErrorCode.BAD_LENGTH,
            f"length field says {length} B, frame carries {len(body) - HEADER_SIZE - CRC_SIZE} B",
            seq,
        )
    if length > max_payload:
        raise FrameError(ErrorCode.TOO_LONG, f"payload of {length} B exceeds {max_payload} B", seq)
    return Frame(type=ftype, seq=seq, payload=bytes(body[HEADER_SIZE:-CRC_SIZE]), flags=flags)


@dataclass
class FrameStats:
    """Counters of what the decoder threw away, for diagnostics and tests."""

    frames: int = 0
    bad_frames: int = 0
    overflows: int = 0
    discarded_bytes: int = 0


@dataclass
class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole frames back.

    Bad frames are counted and reported through ``errors`` (as :class:`FrameError`), never
    raised, so that a caller can answer them with an error frame and carry on.
    """

    max_encoded: int = ABS_MAX_PAYLOAD + HEADER_SIZE + CRC_SIZE + 300
    max_payload: int = ABS_MAX_PAYLOAD
    stats: FrameStats = field(default_factory=FrameStats)
    _buf: bytearray = field(default_factory=bytearray)
    _overflow: bool = False

    def feed(self, data: bytes) -> tuple[list[Frame], list[FrameError]]:
        frames: list[Frame] = []
        errors: list[FrameError] = []
        start = 0
        while True:
            idx = data.find(0, start)
            if idx < 0:
                self._append(data[start:])
                break
            self._append(data[start:idx])
            start = idx + 1
            chunk, overflow = bytes(self._buf), self._overflow
            self._buf.clear()
            self._overflow = False
            if overflow:
                self.stats.overflows += 1
                errors.append(FrameError(ErrorCode.TOO_LONG, "frame longer than the receive buffer"))
                continue
            if not chunk:
                continue  # back-to-back delimiters are harmless padding
            try:
                frames.append(decode_frame(chunk, self.max_payload))
                self.stats.frames += 1
            except FrameError as exc:
                self.stats.bad_frames += 1
                self.stats.discarded_bytes += len(chunk)
                errors.append(exc)
        return frames, errors

    @property
    def pending_bytes(self) -> int:
        """Bytes received since the last delimiter (text from other firmware has no zero bytes)."""
        return len(self._buf)

    def _append(self, data: bytes) -> None:
        if self._overflow:
            self.stats.discarded_bytes += len(data)
            return
        self._buf += data
        if len(self._buf) > self.max_encoded:
            self.stats.discarded_bytes += len(self._buf)
            self._buf.clear()
            self._overflow = True
