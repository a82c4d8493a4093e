"""Conformance: every device backend answers protocol v1 the same way.

Runs for each factory in device_factories.FACTORIES (sim; serial pointed at a simulated
board's pty; others add themselves there). The model is the MLPerf Tiny VWW int8
reference when the shared reference folder is present, else the project's shipped
default model, else a tiny int8 model built with TensorFlow; without any, it skips.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from device_factories import FACTORIES, DeviceFactory, DroppingPort, build_tiny_int8_model

from harness.boards import Board, load_board
from harness.devices import Device
from harness.devices.base import SessionDevice
from harness.devices.sim import default_model
from harness.errors import DeviceError
from harness.link.framing import HEADER, Frame, cobs_encode, crc32
from harness.link.messages import (
    NO_SEQ,
    UNKNOWN_U32,
    Ack,
    Capability,
    Capture,
    Error,
    ErrorCode,
    Hello,
    HelloResp,
    Infer,
    InputChunk,
    Message,
    MsgType,
    Ping,
    Pong,
    Result,
)
from harness.link.session import Session
from harness.link.transport import open_port
from harness.models.tflite_file import ModelInfo
from harness.paths import reference_models_dir

REFERENCE_FILE = "mlperf_tiny_vww_96_int8.tflite"


@pytest.fixture(scope="session")
def conformance_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ref = reference_models_dir()
    if ref is not None and (ref / REFERENCE_FILE).is_file():
        return ref / REFERENCE_FILE
    shipped = default_model()
    if shipped is not None:
        return shipped
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pytest.skip("no conformance model: reference models absent, no shipped model, no TensorFlow")
    path = tmp_path_factory.mktemp("conformance") / "tiny_int8.tflite"
    build_tiny_int8_model(path)
    return path


@pytest.fixture(scope="session")
def model_info(conformance_model: Path) -> ModelInfo:
    return ModelInfo.from_file(conformance_model)


@pytest.fixture(scope="session")
def board() -> Board:
    return load_board("nano33")


def _factory_param(f: DeviceFactory) -> Any:
    return pytest.param(f, id=f.name)


@pytest.fixture(scope="module", params=[_factory_param(f) for f in FACTORIES])
def factory(request: pytest.FixtureRequest) -> DeviceFactory:
    f: DeviceFactory = request.param
    reason = f.skip_reason()
    if reason:
        pytest.skip(reason)
    return f


@pytest.fixture(scope="module")
def device(factory: DeviceFactory, conformance_model: Path, board: Board) -> Iterator[Device]:
    """One open device per backend, shared by the checks that leave it as they found it."""
    with factory.make(conformance_model, board) as dev:
        dev.open()
        yield dev


@pytest.fixture
def fresh_device(factory: DeviceFactory, conformance_model: Path, board: Board) -> Iterator[Device]:
    """A device started for one test and not yet opened."""
    with factory.make(conformance_model, board) as dev:
        yield dev


def needs_model(factory: DeviceFactory) -> None:
    if not factory.runs_model:
        pytest.skip(f"{factory.name} runs a test-double engine, not the model")


def inputs_for(info: ModelInfo, n: int = 4) -> list[np.ndarray]:
    spec = info.inputs[0]
    rng = np.random.default_rng(2024)
    lo, hi = np.iinfo(spec.dtype.numpy_name).min, np.iinfo(spec.dtype.numpy_name).max
    out = [np.zeros(spec.shape, spec.dtype.numpy_name), np.full(spec.shape, hi, spec.dtype.numpy_name)]
    while len(out) < n:
        out.append(rng.integers(lo, hi, spec.shape, dtype=spec.dtype.numpy_name, endpoint=True))
    return out


def tflm_outputs(model: Path, tensors: list[np.ndarray]) -> list[list[np.ndarray]]:
    """What the TFLM interpreter in this process answers for each input."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model.read_bytes())
    n_out = len(ModelInfo.from_file(model).outputs)
    results = []
    for tensor in tensors:
        interp.set_input(tensor, 0)
        interp.invoke()
        results.append([np.array(interp.get_output(i)) for i in range(n_out)])
    return results


def session_of(dev: Device) -> Session:
    assert isinstance(dev, SessionDevice) and dev.session is not None
    return dev.session


def wait_for(session: Session, want: type[Message], seq: int | None = None, timeout: float = 3.0) -> Message:
    """The first message of type ``want`` (and ``seq``, if given) within ``timeout``."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        for frame, msg in session.poll(deadline - time.monotonic()):
            if isinstance(msg, want) and (seq is None or frame.seq == seq):
                return msg
            seen.append(type(msg).__name__)
    raise AssertionError(f"no {want.__name__} within {timeout} s; saw {seen}")


def wait_error(session: Session, code: ErrorCode, timeout: float = 3.0) -> Error:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        for _frame, msg in session.poll(deadline - time.monotonic()):
            if isinstance(msg, Error) and msg.code == code:
                return msg
            seen.append(msg.code_name if isinstance(msg, Error) else type(msg).__name__)
    raise AssertionError(f"no {code.name} error within {timeout} s; saw {seen}")


def drain(session: Session, quiet: float = 0.2) -> None:
    """Let late answers to junk arrive and drop them, so the next check starts clean."""
    while session.poll(quiet):
        pass


# -- facts ------------------------------------------------------------------------------------


def test_hello_reports_the_models_facts(device: Device, factory: DeviceFactory, model_info: ModelInfo,
                                        board: Board) -> None:
    info = device.info
    assert info.protocol_version == 1 and info.ready
    assert info.board == board.id and info.clock_hz > 0
    assert info.max_payload >= 256 and info.credits >= 1
    assert 0 < info.arena_used <= info.arena_size
    if factory.runs_model:
        assert info.model_sha256 == model_info.sha256
        assert info.inputs == model_info.inputs and info.outputs == model_info.outputs


def test_outputs_equal_the_tflm_interpreter(device: Device, factory: DeviceFactory,
                                            conformance_model: Path, model_info: ModelInfo) -> None:
    needs_model(factory)
    tensors = inputs_for(model_info)
    expected = tflm_outputs(conformance_model, tensors)
    for tensor, want in zip(tensors, expected, strict=True):
        got = device.infer(tensor)
        assert len(got.outputs) == len(want)
        for g, w in zip(got.outputs, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_warmups_and_repeats_give_one_cycle_count_per_repeat(device: Device, model_info: ModelInfo) -> None:
    tensor = inputs_for(model_info, 3)[2]
    first = device.infer(tensor, warmups=0, repeats=1)
    again = device.infer(tensor, warmups=2, repeats=3)
    assert len(first.cycles) == 1 and len(again.cycles) == 3
    assert all(c > 0 for c in first.cycles + again.cycles)
    assert again.latency_us > 0
    for a, b in zip(first.outputs, again.outputs, strict=True):  # repeats run on the same input
        np.testing.assert_array_equal(a, b)


def test_profile_has_one_entry_per_layer(device: Device, model_info: ModelInfo) -> None:
    if Capability.PROFILE not in device.info.capabilities:
        pytest.skip("device does not announce per-layer profiles")
    device.infer(inputs_for(model_info, 3)[2], profile=True)
    layers = device.profile()
    assert [layer.index for layer in layers] == list(range(len(model_info.layers)))
    assert [layer.op for layer in layers] == [layer.op for layer in model_info.layers]
    assert all(layer.cycles > 0 for layer in layers)


def test_memory_statistics(device: Device, factory: DeviceFactory, model_info: ModelInfo) -> None:
    if Capability.MEMORY not in device.info.capabilities:
        pytest.skip("device does not announce memory statistics")
    mem = device.memory()
    assert mem.arena_size == device.info.arena_size and mem.arena_used == device.info.arena_used
    if factory.runs_model and mem.model_bytes != UNKNOWN_U32:
        assert mem.model_bytes == model_info.size
    if mem.ram_total != UNKNOWN_U32 and mem.ram_free != UNKNOWN_U32:
        assert mem.ram_free <= mem.ram_total


# -- robustness -------------------------------------------------------------------------------


def test_resynchronises_after_garbage_and_torn_frames(device: Device, model_info: ModelInfo) -> None:
    session = session_of(device)
    torn = Ping(b"torn" * 10).frame(0x1234).encode()[:-12]
    # A delimiter after the junk: the next frame arrives whole and is answered.
    session.port.write(b"\x13\x37 not a frame \xff\xfe" + b"\x00" + torn + b"\x00")
    session.port.write(Ping(b"after").frame(0x1235).encode())
    pong = wait_for(session, Pong, seq=0x1235)
    assert isinstance(pong, Pong) and pong.data == b"after"
    drain(session)
    # No delimiter: the torn frame swallows the next request, whose resend gets through.
    session.port.write(torn)
    assert session.ping(b"still here") == b"still here"
    drain(session)
    device.infer(inputs_for(model_info, 1)[0])


def _raw_frame(ftype: int, seq: int, payload: bytes, length: int | None = None) -> bytes:
    body = HEADER.pack(ftype, 0, seq, len(payload) if length is None else length) + payload
    return cobs_encode(body + crc32(body).to_bytes(4, "little")) + b"\x00"


def _bad_crc(seq: int) -> bytes:
    body = HEADER.pack(int(MsgType.PING), 0, seq, 3) + b"crc"
    return cobs_encode(body + (crc32(body) ^ 0x00010000).to_bytes(4, "little")) + b"\x00"


FRAME_ERRORS = {
    ErrorCode.BAD_CRC: (_bad_crc, False),
    ErrorCode.BAD_LENGTH: (lambda seq: _raw_frame(int(MsgType.PING), seq, b"abc", length=9), True),
    ErrorCode.UNKNOWN_TYPE: (lambda seq: _raw_frame(0x42, seq, b""), True),
    ErrorCode.BAD_FRAME: (lambda seq: b"\x05\x01\x02\x00", False),
}


@pytest.mark.parametrize("code", list(FRAME_ERRORS), ids=[c.name for c in FRAME_ERRORS])
def test_damaged_frames_get_their_error_code(device: Device, code: ErrorCode) -> None:
    session = session_of(device)
    make, names_seq = FRAME_ERRORS[code]
    seq = session.next_seq()
    session.port.write(make(seq))
    err = wait_error(session, code)
    assert err.ref_seq == (seq if names_seq else NO_SEQ)
    drain(session)
    assert session.ping(b"ok") == b"ok"


def test_payload_over_max_payload_is_too_long(device: Device) -> None:
    session = session_of(device)
    session.send(Frame(int(MsgType.PING), session.next_seq(), bytes(device.info.max_payload + 1)))
    wait_error(session, ErrorCode.TOO_LONG)
    drain(session)
    assert session.ping(b"ok") == b"ok"


def _request_error(session: Session, msg: Message) -> Error:
    seq = session.next_seq()
    session.send(msg.frame(seq))
    reply = wait_for(session, Error, seq=seq)
    assert isinstance(reply, Error)
    return reply


def test_upload_errors(device: Device) -> None:
    session = session_of(device)
    total = device.info.inputs[0].nbytes
    err = _request_error(session, InputChunk(0, total + 1, b"x"))
    assert err.code == ErrorCode.INPUT_TOO_LARGE
    err = _request_error(session, InputChunk(total - 4, total, bytes(8)))
    assert err.code == ErrorCode.INPUT_TOO_LARGE
    session.request(InputChunk(0, total, bytes(16)), Ack)
    drain(session)
    err = _request_error(session, InputChunk(64, total, bytes(16)))
    assert err.code == ErrorCode.OUT_OF_ORDER and err.detail == 16
    err = _request_error(session, Infer(0, 1))
    assert err.code == ErrorCode.INPUT_INCOMPLETE
    err = _request_error(session, Infer(0, 0))
    assert err.code == ErrorCode.BAD_ARGUMENT
    if Capability.CAMERA not in device.info.capabilities:
        assert _request_error(session, Capture()).code == ErrorCode.UNSUPPORTED
    with pytest.raises(DeviceError, match="INPUT_INCOMPLETE"):
        session.infer(0, 1)


def test_lost_result_is_retried_and_answered_from_the_cache(device: Device, model_info: ModelInfo,
                                                            factory: DeviceFactory,
                                                            conformance_model: Path) -> None:
    session = session_of(device)
    tensor = inputs_for(model_info, 4)[3]
    dropper = DroppingPort(session.port, MsgType.RESULT)
    original, session.port = session.port, dropper  # type: ignore[assignment]
    retries = session.stats.retries
    try:
        session.upload(tensor.tobytes())
        result = session.infer(0, 1, timeout=1.0)  # a short deadline, so the resend comes soon
    finally:
        session.port = original
    assert dropper.dropped == 1 and session.stats.retries == retries + 1
    assert result.status == 0 and len(result.cycles) == 1
    if factory.runs_model:
        want = tflm_outputs(conformance_model, [tensor])[0]
        assert result.output == b"".join(w.tobytes() for w in want)


def test_commands_before_hello_are_not_ready_and_logs_reach_the_host(
    fresh_device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(fresh_device, SessionDevice)
    url, baud = fresh_device._start()
    port = open_port(url, baud)
    try:
        session = Session(port, timeout=2.0)
        session.send_break_frame()
        for msg in (Infer(0, 1), InputChunk(0, 16, bytes(16))):
            err = _request_error(session, msg)
            assert err.code == ErrorCode.NOT_READY
        assert session.ping(b"alive") == b"alive"  # PING needs no hello
        with caplog.at_level(logging.DEBUG, logger="harness.device"):
            assert isinstance(session.request(Hello(1), HelloResp), HelloResp)
            drain(session, 0.3)
        assert session.stats.logs, "the device sent no LOG frame after its hello"
        assert any(r.name == "harness.device" for r in caplog.records)
        err = _request_error(session, Result(0, (), b""))  # a device-to-host type
        assert err.code == ErrorCode.UNKNOWN_TYPE
    finally:
        port.close()
        fresh_device.close()


def test_reopening_gives_the_same_facts(fresh_device: Device, model_info: ModelInfo) -> None:
    first = fresh_device.open()
    fresh_device.close()
    fresh_device.close()  # closing twice is harmless
    again = fresh_device.open()
    try:
        assert again == first
        fresh_device.infer(inputs_for(model_info, 1)[0])
    finally:
        fresh_device.close()
