"""Framing and messages against the golden frames, COBS properties, decoder resynchronisation."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.link.framing import (
    CobsError,
    Frame,
    FrameDecoder,
    cobs_decode,
    cobs_encode,
    decode_frame,
)
from harness.link.messages import ErrorCode, parse

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"


def _load_make_golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _golden() -> dict[str, tuple[int, bytes]]:
    out = {}
    for line in (GOLDEN_DIR / "frames.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, seq, hexdata = line.split()
        out[name] = (int(seq), bytes.fromhex(hexdata))
    return out


GOLDEN = _golden()
MAKE_GOLDEN = _load_make_golden()


def reference_cobs_encode(data: bytes) -> bytes:
    """COBS byte by byte, straight from the definition, to check the fast encoder against."""
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(0xFF)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


@pytest.mark.parametrize(
    ("name", "seq", "msg"), MAKE_GOLDEN.MESSAGES, ids=[m[0] for m in MAKE_GOLDEN.MESSAGES]
)
def test_golden_frames_encode_and_decode(name: str, seq: int, msg: object) -> None:
    gseq, wire = GOLDEN[name]
    assert gseq == seq
    assert msg.frame(seq).encode() == wire  # type: ignore[attr-defined]
    frames, errors = FrameDecoder().feed(wire)
    assert not errors and len(frames) == 1 and frames[0].seq == seq
    assert parse(frames[0]) == msg


@pytest.mark.parametrize(
    ("name", "code"),
    [("bad_crc", ErrorCode.BAD_CRC), ("bad_length", ErrorCode.BAD_LENGTH), ("garbage", ErrorCode.BAD_FRAME)],
)
def test_golden_damaged_frames_give_their_error(name: str, code: ErrorCode) -> None:
    _seq, wire = GOLDEN[name]
    frames, errors = FrameDecoder().feed(wire)
    assert not frames and [e.code for e in errors] == [code]


def test_golden_unknown_type_decodes_as_a_frame_but_not_a_message() -> None:
    _seq, wire = GOLDEN["unknown_type"]
    (frame,), errors = FrameDecoder().feed(wire)
    assert not errors and frame.type == 0x42
    with pytest.raises(ValueError):
        parse(frame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_cobs_round_trip_without_zeros_and_bounded_overhead(data: bytes) -> None:
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(enc) == data
    assert enc == reference_cobs_encode(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 255]), max_size=1200).map(bytes))
def test_cobs_matches_reference_on_runs_and_zeros(data: bytes) -> None:
    assert cobs_encode(data) == reference_cobs_encode(data)
    assert cobs_decode(cobs_encode(data)) == data


@pytest.mark.parametrize("bad", [b"\x05\x01", b"\x02\x00\x01", b"\x03\x01\x00"])
def test_cobs_rejects_malformed_blocks(bad: bytes) -> None:
    with pytest.raises(CobsError):
        cobs_decode(bad)


def _frames() -> list[Frame]:
    return [Frame(0x09, i + 1, bytes(random.Random(i).randbytes(i * 37 % 600))) for i in range(12)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=40))
def test_decoder_gives_the_same_frames_whatever_the_read_sizes(cuts: list[int]) -> None:
    frames = _frames()
    stream = b"".join(f.encode() for f in frames)
    dec = FrameDecoder()
    got: list[Frame] = []
    pos = 0
    i = 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out, errors = dec.feed(stream[pos : pos + step])
        assert not errors
        got += out
        pos += step
        i += 1
    assert got == frames


def test_decoder_resynchronises_after_garbage_and_torn_frames() -> None:
    frames = _frames()
    torn = frames[3].encode()[:-9]  # the rest of this frame never arrives
    stream = (
        b"\xff\xfe garbage \x13\x37" + b"\x00" + frames[0].encode() + torn + b"\x00"
        + frames[1].encode() + b"\x00\x00" + bytes(range(1, 200)) + b"\x00" + frames[2].encode()
    )
    dec = FrameDecoder()
    got, errors = dec.feed(stream)
    assert got == frames[:3]
    assert len(errors) == 3 and dec.stats.bad_frames == 3


def test_decoder_drops_an_overlong_frame_and_carries_on() -> None:
    dec = FrameDecoder(max_encoded=300, max_payload=256)
    good = Frame(0x09, 5, b"hello").encode()
    got, errors = dec.feed(b"\x01" * 1000 + b"\x00" + good)
    assert got == [Frame(0x09, 5, b"hello")]
    assert [e.code for e in errors] == [ErrorCode.TOO_LONG]


def test_decode_frame_reports_seq_of_a_length_mismatch() -> None:
    _seq, wire = GOLDEN["bad_length"]
    with pytest.raises(ValueError) as info:
        decode_frame(wire[:-1])
    assert getattr(info.value, "code", None) == ErrorCode.BAD_LENGTH
    assert getattr(info.value, "seq", None) == 12
