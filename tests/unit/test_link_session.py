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
    """Do ``action`` to the ``nth`` (1-based) frame of ``mtype`` going ``way``.

    "drop" loses it, "corrupt" damages it, "replay-first" delivers the first such frame
    again just before it (a late duplicate, as a relay that repeats bytes makes).
    """

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
    first: dict[tuple[str, int], bytes] = field(default_factory=dict)

    def _fate(self, way: str, encoded: bytes) -> bytes:
        try:
            ftype = decode_frame(encoded[:-1]).type
        except ValueError:
            return encoded
        key = (way, ftype)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.first.setdefault(key, encoded)
        for fault in self.faults:
            if fault.way == way and fault.mtype == ftype and fault.nth == self.counts[key]:
                self.applied.append(fault)
                if fault.action == "drop":
                    return b""
                if fault.action == "replay-first":
                    return self.first[key] + encoded
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


# -- defects found by the fault-injection suite (tests/faults) ------------------------------

OTHER = bytes((i * 13 + 5) % 256 for i in range(INPUT))


@pytest.mark.parametrize("max_payload", [1024, 8192], ids=["acknowledged-upload", "pipelined"])
def test_a_lost_first_chunk_never_runs_the_previous_input(
    rig_factory: Callable[..., Rig], max_payload: int
) -> None:
    """Chunk 0 of the second input is lost: the device, still holding the first input complete,
    acknowledges the later chunks as duplicates; the host must send offset 0 again, not INFER."""
    chunks = -(-INPUT // (max_payload - 8))
    rig = rig_factory([Fault("rx", MsgType.INPUT_CHUNK, chunks + 1, "drop")], max_payload=max_payload)
    rig.session.hello()
    assert rig.session.run(DATA, 0, 1, False, 2.0).output == expected_output(DATA, 2)
    assert rig.session.run(OTHER, 0, 1, False, 2.0).output == expected_output(OTHER, 2)
    assert rig.link.applied and rig.engine.inputs_set[-1] == OTHER
    assert rig.session.stats.resends >= 1


def test_a_device_reset_between_hello_and_input_is_greeted_again(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.session.hello()
    assert rig.session.run(DATA, 0, 1, False, 2.0).output == expected_output(DATA, 2)
    rig.device.hello_done = False  # what a reset leaves: a device that has not been greeted
    assert rig.session.run(OTHER, 0, 1, False, 2.0).output == expected_output(OTHER, 2)
    assert rig.session.stats.device_resets == 1


def test_an_echoing_port_is_named_an_echo_not_silence() -> None:
    """pyserial's loop:// returns every byte written: the hello comes back as a HELLO frame."""
    port = open_port("loop://")
    try:
        session = Session(port, timeout=0.2, retries=1)
        with pytest.raises(LinkError) as err:
            session.hello()
    finally:
        port.close()
    message = str(err.value)
    assert "nothing was received" not in message
    assert "came back" in message and "echoes" in message and "\n" not in message


def test_an_input_past_its_resend_budget_is_given_up(rig_factory: Callable[..., Rig]) -> None:
    from harness.link.protocol import ResendBudgetExceeded

    faults = [Fault("rx", MsgType.INPUT_CHUNK, n, "corrupt") for n in range(2, 60, 2)]
    rig = rig_factory(faults)
    rig.session.hello()
    rig.session.resend_budget = 3
    with pytest.raises(ResendBudgetExceeded, match="over its budget of 3"):
        rig.session.run(DATA, 0, 1, False, 2.0)
    rig.session.resend_budget = None
    rig.link.faults.clear()
    assert rig.session.run(OTHER, 0, 1, False, 2.0).output == expected_output(OTHER, 2)


def test_the_watchdog_ends_every_wait_and_names_the_last_request(rig_factory: Callable[..., Rig]) -> None:
    from harness.link.protocol import LinkStalled, Watchdog

    faults = [Fault("rx", MsgType.INPUT_CHUNK, n) for n in range(1, 400)]
    rig = rig_factory(faults, timeout=5.0, retries=3)  # alone, the upload would wait 4 x 5 s
    rig.session.hello()
    rig.session.watchdog = Watchdog(0.5)
    start = time.monotonic()
    with pytest.raises(LinkStalled) as err:
        rig.session.run(DATA, 0, 1, False, 30.0)
    assert time.monotonic() - start < 1.5
    assert "watchdog 0.5 s" in str(err.value) and "last request INPUT_CHUNK seq" in str(err.value)
    assert "B in flight unacknowledged" in str(err.value)


def test_link_statistics_count_what_the_link_did(rig_factory: Callable[..., Rig]) -> None:
    faults = [Fault("rx", MsgType.INPUT_CHUNK, 3, "corrupt"), Fault("tx", MsgType.ACK, 9, "corrupt")]
    rig = rig_factory(faults)
    rig.session.hello()
    out = rig.session.run(DATA, 0, 1, False, 2.0).output
    stats = rig.session.stats
    # the device reports the damaged chunk; the damaged ack fails the host's CRC or COBS check
    assert stats.crc_failures >= 1 and stats.resyncs >= 2 and stats.resends >= 1
    assert stats.payload_bytes == INPUT + len(out) and stats.inputs_sent == 1
    assert stats.bytes_sent > INPUT and stats.bytes_received > 0
    assert set(stats.counters()) >= {"resends", "crc_failures", "resyncs", "timeouts", "payload_bytes"}


def test_a_late_duplicate_of_the_first_chunk_does_not_stall_the_upload(
    rig_factory: Callable[..., Rig],
) -> None:
    """The duplicate restarts the device's input at 1,016 B while the host has had acks far
    beyond; the host must follow the device's offset down, not resend from its own for ever."""
    rig = rig_factory([Fault("rx", MsgType.INPUT_CHUNK, 9, "replay-first")])
    rig.session.hello()
    rig.session.resend_budget = 40  # the thrash this guards against ran into any budget
    start = time.monotonic()
    assert rig.session.run(DATA, 0, 1, False, 2.0).output == expected_output(DATA, 2)
    assert rig.link.applied and rig.engine.inputs_set[-1] == DATA
    assert time.monotonic() - start < 3.0
