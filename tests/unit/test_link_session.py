"""The host session against the Python device end over a pty, with frames lost and damaged on purpose."""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from harness.devices.sim.double import TestDoubleEngine, expected_output
from harness.errors import DeviceError, LinkError
from harness.link.device_end import DeviceEnd, FdLink
from harness.link.framing import Frame, decode_frame
from harness.link.messages import MsgType
from harness.link.session import Session
from harness.link.transport import open_port

INPUT = 96 * 96 * 3
DATA = bytes((i * 7 + 3) % 256 for i in range(INPUT))


@dataclass
class Fault:
    """Do ``action`` ("drop" or "corrupt") to the ``nth`` (1-based) frame of ``mtype`` going ``way``."""

    way: str
    mtype: MsgType
    nth: int
    action: str = "drop"


@dataclass
class FaultyLink:
    """A device-side link that loses or damages chosen frames, to exercise the host's recovery."""

    inner: FdLink
    faults: list[Fault] = field(default_factory=list)
    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    applied: list[Fault] = field(default_factory=list)
    _buf: bytes = b""

    def _fate(self, way: str, encoded: bytes) -> bytes:
        try:
            ftype = decode_frame(encoded[:-1]).type
        except ValueError:
            return encoded
        key = (way, ftype)
        self.counts[key] = self.counts.get(key, 0) + 1
        for fault in self.faults:
            if fault.way == way and fault.mtype == ftype and fault.nth == self.counts[key]:
                self.applied.append(fault)
                if fault.action == "drop":
                    return b""
                damaged = bytearray(encoded)
                mid = len(damaged) // 2
                damaged[mid] = damaged[mid] ^ 0x5A or 0x01
                return bytes(damaged)
        return encoded

    def read(self, timeout: float) -> bytes:
        self._buf += self.inner.read(timeout)
        *whole, self._buf = self._buf.split(b"\x00")
        return b"".join(self._fate("rx", part + b"\x00") for part in whole)

    def write(self, data: bytes) -> None:
        frames = data.split(b"\x00")[:-1]  # the device may write several frames at once
        self.inner.write(b"".join(self._fate("tx", part + b"\x00") for part in frames))


@dataclass
class Rig:
    session: Session
    engine: TestDoubleEngine
    device: DeviceEnd
    link: FaultyLink


@pytest.fixture
def rig_factory() -> Iterator[Callable[..., Rig]]:
    cleanups: list[Callable[[], None]] = []

    def make(
        faults: list[Fault] | None = None, *, max_payload: int = 1024, credits: int = 4,
        timeout: float = 0.5, retries: int = 3, serve: bool = True,
    ) -> Rig:
        master, slave = os.openpty()
        tty.setraw(slave)
        link = FaultyLink(FdLink(master), faults or [])
        engine = TestDoubleEngine()
        device = DeviceEnd(link, engine, max_payload=max_payload, credits=credits)
        stop = threading.Event()
        thread = threading.Thread(target=device.serve, args=(stop, 0.05), daemon=True)
        if serve:
            thread.start()
        port = open_port(os.ttyname(slave))
        session = Session(port, timeout=timeout, retries=retries)

        def cleanup() -> None:
            stop.set()
            port.close()
            if serve:
                thread.join(timeout=5)
            os.close(slave)
            os.close(master)

        cleanups.append(cleanup)
        return Rig(session, engine, device, link)

    yield make
    for cleanup in cleanups:
        cleanup()


def run_once(rig: Rig) -> bytes:
    rig.session.hello()
    rig.session.upload(DATA)
    return rig.session.infer(0, 1).output


def test_clean_link_upload_and_infer(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    assert run_once(rig) == expected_output(DATA, 2)
    assert rig.session.stats.retries == 0 and rig.session.stats.go_backs == 0
    assert rig.engine.inputs_set[-1] == DATA
    assert rig.session.stats.logs  # the device's hello log reached the host


@pytest.mark.parametrize(
    "fault",
    [
        Fault("rx", MsgType.INPUT_CHUNK, 2, "drop"),
        Fault("rx", MsgType.INPUT_CHUNK, 3, "corrupt"),
        Fault("tx", MsgType.ACK, 28, "drop"),
        Fault("rx", MsgType.INPUT_CHUNK, 28, "drop"),
    ],
    ids=["lost-chunk", "damaged-chunk", "lost-last-ack", "lost-last-chunk"],
)
def test_upload_recovers_with_go_back_n(rig_factory: Callable[..., Rig], fault: Fault) -> None:
    rig = rig_factory([fault])
    start = time.monotonic()
    assert run_once(rig) == expected_output(DATA, 2)
    assert rig.link.applied == [fault]
    assert rig.engine.inputs_set[-1] == DATA
    assert rig.session.stats.go_backs >= 1 or rig.session.stats.retries >= 1
    assert time.monotonic() - start < 5


def test_lost_result_is_resent_from_the_cache_not_rerun(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([Fault("tx", MsgType.RESULT, 1, "drop")])
    assert run_once(rig) == expected_output(DATA, 2)
    assert rig.session.stats.retries == 1
    assert rig.engine.invokes == 1 and rig.device.stats.cache_hits == 1


def test_damaged_request_is_resent_at_once(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory([Fault("rx", MsgType.INFER, 1, "corrupt")], timeout=5.0)
    start = time.monotonic()
    assert run_once(rig) == expected_output(DATA, 2)
    assert time.monotonic() - start < 2.0  # answered by BAD_CRC, not by the 5 s timeout
    assert rig.engine.invokes == 1


def test_silent_device_fails_with_link_error_in_bounded_time(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(timeout=0.2, retries=2, serve=False)
    start = time.monotonic()
    with pytest.raises(LinkError, match="nothing was received"):
        rig.session.hello()
    assert time.monotonic() - start < 0.2 * 3 + 1.0


def test_device_that_stops_acknowledging_fails_the_upload(rig_factory: Callable[..., Rig]) -> None:
    faults = [Fault("rx", MsgType.INPUT_CHUNK, n) for n in range(1, 200)]
    rig = rig_factory(faults, timeout=0.2, retries=2)
    rig.session.hello()
    start = time.monotonic()
    with pytest.raises(LinkError, match="stopped acknowledging"):
        rig.session.upload(DATA)
    assert time.monotonic() - start < 3.0


def test_device_errors_become_device_error(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.session.hello()
    with pytest.raises(DeviceError, match="INPUT_INCOMPLETE"):
        rig.session.infer(0, 1)
    with pytest.raises(DeviceError, match="INPUT_TOO_LARGE"):
        rig.session.upload(DATA + b"x")


def test_profile_is_fetched_page_by_page(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(max_payload=48)
    rig.session.hello()
    rig.session.upload(DATA)
    rig.session.infer(1, 2, profile=True)
    layers = rig.session.profile()
    assert [layer.index for layer in layers] == list(range(5))
    assert rig.session.stats.frames_sent > 5 + INPUT // 40  # chunks of 40 B and several pages
    assert rig.session.memory().arena_used == 1024


def test_seq_wraps_and_old_answers_are_ignored(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.session.hello()
    rig.session._seq = 0xFFFC
    for i in range(5):
        assert rig.session.ping(bytes([i])) == bytes([i])
    assert rig.session._seq == 3  # 0xFFFD, 0xFFFE, then 1, 2, 3: never 0 or 0xFFFF
    # An unrelated stale frame in the pipe does not confuse the next request.
    rig.device.link.write(Frame(int(MsgType.PONG), 1, b"stale").encode())
    assert rig.session.ping(b"fresh") == b"fresh"


def test_pipelined_infer_needs_no_acknowledgement_wait(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(max_payload=8192, credits=4)  # 27,648 B in 4 chunks: fits the window
    rig.session.hello()
    result = rig.session.upload_and_infer(DATA, 0, 1, timeout=2.0)
    assert result.output == expected_output(DATA, 2)
    assert rig.engine.inputs_set[-1] == DATA and rig.engine.invokes == 1
    assert rig.session.stats.retries == 0


@pytest.mark.parametrize(
    "fault",
    [
        Fault("rx", MsgType.INPUT_CHUNK, 2, "drop"),
        Fault("rx", MsgType.INPUT_CHUNK, 1, "corrupt"),
        Fault("rx", MsgType.INFER, 1, "corrupt"),
    ],
    ids=["lost-chunk", "damaged-chunk", "damaged-infer"],
)
def test_pipelined_infer_falls_back_to_acknowledged_upload(
    rig_factory: Callable[..., Rig], fault: Fault
) -> None:
    rig = rig_factory([fault], max_payload=8192, credits=4)
    rig.session.hello()
    start = time.monotonic()
    result = rig.session.upload_and_infer(DATA, 0, 1, timeout=2.0)
    assert result.output == expected_output(DATA, 2)
    assert rig.link.applied == [fault]
    assert rig.engine.inputs_set[-1] == DATA
    assert rig.session.stats.retries >= 1
    assert time.monotonic() - start < 5


def test_pipelined_infer_reports_a_real_device_error(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(max_payload=8192, credits=4)
    rig.session.hello()
    with pytest.raises(DeviceError, match="BAD_ARGUMENT"):
        rig.session.upload_and_infer(DATA, 0, 0, timeout=2.0)  # zero repeats is refused


def _fill_until_blocked(fd: int) -> int:
    """Write to the (non-blocking) pty end ``fd`` until the kernel buffer is full; returns bytes written."""
    was_blocking = os.get_blocking(fd)  # pyserial keeps its fd non-blocking: leave it as found
    os.set_blocking(fd, False)
    written = 0
    try:
        for size in (4096, 256, 16, 1):  # the tty layer frees room in steps: fill down to the last byte
            for _ in range(3):
                try:
                    while True:
                        written += os.write(fd, b"\x55" * size)
                except BlockingIOError:
                    time.sleep(0.02)
    finally:
        os.set_blocking(fd, was_blocking)
    return written


def test_a_device_that_stops_reading_fails_within_the_request_deadline() -> None:
    master, slave = os.openpty()  # the device end (master) is never read
    tty.setraw(slave)
    port = open_port(os.ttyname(slave))
    try:
        assert port.write_timeout is not None and port.write_timeout > 1.0  # the transport's own bound
        session = Session(port, timeout=0.5, retries=3)
        assert port.write_timeout == 0.5, "writes must not outlast one request's deadline"
        assert _fill_until_blocked(port.fileno()) > 0
        started = time.monotonic()
        with pytest.raises(LinkError) as err:
            session.ping(b"x" * 32)
        elapsed = time.monotonic() - started
    finally:
        port.close()
        os.close(master)
        os.close(slave)
    message = str(err.value)
    assert message.startswith("the device stopped reading: PING seq 1 could not be written within 0.5 s (")
    assert "B frame, " in message and "B in flight unacknowledged)" in message and "\n" not in message
    assert elapsed < 0.5 * 4, f"the stalled write took {elapsed:.1f} s, more than the request deadline"


def test_a_stalled_upload_names_the_chunk_and_the_bytes_in_flight() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    port = open_port(os.ttyname(slave))
    try:
        session = Session(port, timeout=0.3, retries=1)
        session.max_payload, session.credits = 1024, 4
        _fill_until_blocked(port.fileno())
        with pytest.raises(LinkError, match=r"could not be written within 0\.3 s") as err:
            session.upload(DATA)
    finally:
        port.close()
        os.close(master)
        os.close(slave)
    assert "INPUT_CHUNK seq 1 (input bytes 0-1016 of 27648)" in str(err.value)
