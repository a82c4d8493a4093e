"""The Python device end against protocol v1: every error code, chunk rules, the answer cache."""

from __future__ import annotations

import struct

import pytest

from harness.devices.sim.double import TestDoubleEngine, expected_output
from harness.link.device_end import DeviceEnd
from harness.link.framing import HEADER, Frame, FrameDecoder, cobs_encode, crc32
from harness.link.messages import (
    NO_SEQ,
    Ack,
    Capture,
    Error,
    ErrorCode,
    GetMemory,
    GetProfile,
    Hello,
    HelloResp,
    Infer,
    InferFlags,
    InputChunk,
    LayerTime,
    Log,
    Memory,
    Message,
    MsgType,
    Ping,
    Pong,
    Profile,
    Result,
    parse,
)


class MemoryLink:
    """Captures what the device writes; the test feeds it bytes directly."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.out: list[Message] = []
        self.frames: list[Frame] = []

    def read(self, timeout: float) -> bytes:
        raise EOFError

    def write(self, data: bytes) -> None:
        frames, errors = self.decoder.feed(data)
        assert not errors
        for f in frames:
            self.frames.append(f)
            self.out.append(parse(f))

    def take(self) -> list[Message]:
        out, self.out = self.out, []
        return [m for m in out if not isinstance(m, Log)]


INPUT = 96 * 96 * 3


def make(
    max_payload: int = 1024, credits: int = 4, **kw: object
) -> tuple[DeviceEnd, MemoryLink, TestDoubleEngine]:
    link = MemoryLink()
    engine = TestDoubleEngine(**kw)  # type: ignore[arg-type]
    return DeviceEnd(link, engine, max_payload=max_payload, credits=credits), link, engine


def send(dev: DeviceEnd, link: MemoryLink, msg: Message, seq: int) -> list[Message]:
    dev.feed(msg.frame(seq).encode())
    return link.take()


def hello(dev: DeviceEnd, link: MemoryLink) -> HelloResp:
    (resp,) = send(dev, link, Hello(1), 1)
    assert isinstance(resp, HelloResp)
    return resp


def upload(dev: DeviceEnd, link: MemoryLink, data: bytes, seq: int = 10, step: int = 1000) -> int:
    for off in range(0, len(data), step):
        (ack,) = send(dev, link, InputChunk(off, len(data), data[off : off + step]), seq)
        assert isinstance(ack, Ack) and ack.next_offset == min(off + step, len(data))
        seq += 1
    return seq


def error_of(msgs: list[Message]) -> Error:
    (err,) = msgs
    assert isinstance(err, Error), err
    return err


def test_hello_announces_facts_and_logs() -> None:
    dev, link, engine = make(max_payload=2048, credits=6)
    dev.feed(Hello(1).frame(1).encode())
    resp, log_msg = link.out
    assert isinstance(resp, HelloResp) and isinstance(log_msg, Log)
    assert resp.max_payload == 2048 and resp.credits == 6 and resp.engine == "test-double"
    assert resp.inputs == engine.facts().inputs and link.frames[1].seq == 0


def test_ping_before_hello_other_commands_not_ready() -> None:
    dev, link, _ = make()
    (pong,) = send(dev, link, Ping(b"\x00\x01"), 3)
    assert isinstance(pong, Pong) and pong.data == b"\x00\x01"
    for i, msg in enumerate([Infer(0, 1), GetMemory(), InputChunk(0, INPUT, b"x")]):
        err = error_of(send(dev, link, msg, 4 + i))
        assert err.code == ErrorCode.NOT_READY and err.ref_seq == 4 + i


def test_full_inference_and_profile_pages() -> None:
    dev, link, engine = make(max_payload=64)
    hello(dev, link)
    data = bytes(i % 251 for i in range(INPUT))
    seq = upload(dev, link, data, step=56)
    (res,) = send(dev, link, Infer(2, 3, InferFlags.PROFILE), seq)
    assert isinstance(res, Result) and res.status == 0 and len(res.cycles) == 3
    assert res.output == expected_output(data, 2) and engine.invokes == 5
    layers: list[LayerTime] = []
    start = 0
    while True:
        seq += 1
        (page,) = send(dev, link, GetProfile(start), seq)
        assert isinstance(page, Profile)
        layers += page.layers
        start += len(page.layers)
        if start >= page.total:
            break
    assert [layer.index for layer in layers] == list(range(5)) and seq > 13  # several pages
    (mem,) = send(dev, link, GetMemory(), seq + 1)
    assert isinstance(mem, Memory) and mem.arena_size == 4096


def test_chunk_rules_duplicate_out_of_order_restart() -> None:
    dev, link, engine = make()
    hello(dev, link)
    data = bytes(range(256)) * (INPUT // 256)
    (ack,) = send(dev, link, InputChunk(0, INPUT, data[:500]), 2)
    assert isinstance(ack, Ack) and ack.next_offset == 500 and ack.credits == 4
    (ack,) = send(dev, link, InputChunk(0 + 100, INPUT, data[100:300]), 3)  # a resend: nothing stored
    assert isinstance(ack, Ack) and ack.next_offset == 500
    err = error_of(send(dev, link, InputChunk(900, INPUT, data[900:1000]), 4))
    assert err.code == ErrorCode.OUT_OF_ORDER and err.detail == 500 and err.ref_seq == 4
    err = error_of(send(dev, link, Infer(0, 1), 5))
    assert err.code == ErrorCode.INPUT_INCOMPLETE and err.detail == 500
    upload(dev, link, data, seq=6)
    (res,) = send(dev, link, Infer(0, 1), 100)
    assert isinstance(res, Result) and res.output == expected_output(data, 2)
    (ack,) = send(dev, link, InputChunk(0, INPUT, data[:10]), 101)  # offset 0 starts a new input
    assert isinstance(ack, Ack) and ack.next_offset == 10
    assert error_of(send(dev, link, Infer(0, 1), 102)).code == ErrorCode.INPUT_INCOMPLETE


@pytest.mark.parametrize(
    ("offset", "total", "n"), [(0, INPUT + 1, 10), (INPUT - 5, INPUT, 10), (0, 100, 10)]
)
def test_input_too_large(offset: int, total: int, n: int) -> None:
    dev, link, _ = make()
    hello(dev, link)
    err = error_of(send(dev, link, InputChunk(offset, total, bytes(n)), 2))
    assert err.code == ErrorCode.INPUT_TOO_LARGE and err.detail == INPUT


def test_answer_cache_replays_without_running_again() -> None:
    dev, link, engine = make()
    hello(dev, link)
    seq = upload(dev, link, bytes(INPUT), step=1000)
    first = send(dev, link, Infer(0, 2), seq)
    again = send(dev, link, Infer(0, 2), seq)
    assert first == again and engine.invokes == 2 and dev.stats.cache_hits == 1
    send(dev, link, Infer(0, 2), seq + 1)  # a new seq runs again
    assert engine.invokes == 4


def test_damaged_frames_answer_errors_and_device_stays_responsive() -> None:
    dev, link, _ = make(max_payload=256)
    hello(dev, link)
    good = bytearray(Ping(b"abc").frame(7).encode())
    good[-3] ^= 0x40
    dev.feed(bytes(good))
    err = error_of(link.take())
    assert err.code == ErrorCode.BAD_CRC and err.ref_seq == NO_SEQ
    body = HEADER.pack(0x09, 0, 12, 10) + b"abc"
    body += struct.pack("<I", crc32(body))
    dev.feed(cobs_encode(body) + b"\x00")
    assert error_of(link.take()).code == ErrorCode.BAD_LENGTH
    dev.feed(b"\x05\x01\x00")  # a COBS block that runs past its frame
    assert error_of(link.take()).code == ErrorCode.BAD_FRAME
    dev.feed(Frame(int(MsgType.PING), 8, bytes(300)).encode())  # over max_payload, fits the buffer
    assert error_of(link.take()).code == ErrorCode.TOO_LONG
    dev.feed(b"\x01" * 5000 + b"\x00")  # longer than the receive buffer
    assert error_of(link.take()).code == ErrorCode.TOO_LONG
    dev.feed(Frame(0x42, 9, b"").encode())
    err = error_of(link.take())
    assert err.code == ErrorCode.UNKNOWN_TYPE and err.ref_seq == 9
    dev.feed(Frame(int(MsgType.ACK), 10, b"").encode())  # a device-to-host type
    assert error_of(link.take()).code == ErrorCode.UNKNOWN_TYPE
    (pong,) = send(dev, link, Ping(b"ok"), 11)
    assert isinstance(pong, Pong) and pong.data == b"ok"


def test_bad_arguments_unsupported_and_invoke_failure() -> None:
    dev, link, _ = make()
    hello(dev, link)
    assert error_of(send(dev, link, Infer(0, 0), 2)).code == ErrorCode.BAD_ARGUMENT
    assert error_of(send(dev, link, Infer(0, 5000), 3)).code == ErrorCode.BAD_ARGUMENT
    dev.feed(Frame(int(MsgType.INFER), 4, b"\x01").encode())
    assert error_of(link.take()).code == ErrorCode.BAD_ARGUMENT
    dev.feed(Frame(int(MsgType.INPUT_CHUNK), 5, b"\x01").encode())
    assert error_of(link.take()).code == ErrorCode.BAD_ARGUMENT
    assert error_of(send(dev, link, Capture(), 6)).code == ErrorCode.UNSUPPORTED
    assert error_of(send(dev, link, GetProfile(0), 7)).code == ErrorCode.NOT_READY
    dev2, link2, _ = make(fail_invoke=True)
    hello(dev2, link2)
    seq = upload(dev2, link2, bytes(INPUT), step=1000)
    assert error_of(send(dev2, link2, Infer(0, 1), seq)).code == ErrorCode.INVOKE_FAILED


def test_model_error_hello_then_not_ready() -> None:
    dev, link, _ = make(status=int(ErrorCode.MODEL_ERROR), status_text="arena too small")
    dev.feed(Hello(1).frame(1).encode())
    resp, log_msg = link.out
    link.out = []
    assert isinstance(resp, HelloResp) and resp.status == ErrorCode.MODEL_ERROR
    assert resp.status_text == "arena too small" and isinstance(log_msg, Log)
    assert isinstance(send(dev, link, GetMemory(), 2)[0], Memory)
    err = error_of(send(dev, link, InputChunk(0, INPUT, b"x"), 3))
    assert err.code == ErrorCode.NOT_READY and "arena" in err.text
