"""The host end of a protocol session: requests, retries, windowed uploads.

Everything here waits with a deadline. A request is resent with the same sequence
number when its answer does not come in time (the device answers a repeated sequence
number from its cache instead of running the command again); an input upload keeps as
many chunks in flight as the device has announced credits, and goes back to the last
acknowledged offset when a chunk is lost (go-back-N), so a noisy link costs time, not
results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import ClassVar, TypeVar
from typing import Protocol as TypingProtocol

from harness.errors import DeviceError, LinkError
from harness.link.eembc import COMMAND_END as EEMBC_COMMAND_END
from harness.link.eembc import READY as EEMBC_READY
from harness.link.framing import HELLO_MAX_PAYLOAD, Frame, FrameDecoder
from harness.link.messages import (
    NO_SEQ,
    PROTOCOL_VERSION,
    Ack,
    Capture,
    CaptureFlags,
    Error,
    ErrorCode,
    FrameChunk,
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
    PayloadError,
    Ping,
    Pong,
    Profile,
    Result,
    parse,
)
from harness.link.protocol import (
    DeviceInfo,
    LinkStats,
    Protocol,
    RawResult,
    ResendBudgetExceeded,
    SessionOptions,
    Watchdog,
)

log = logging.getLogger(__name__)
device_log = logging.getLogger("harness.device")

T = TypeVar("T", bound=Message)

#: Error codes that mean "your frame was damaged on the way": resend, do not give up.
CORRUPTION_CODES = frozenset(
    {ErrorCode.BAD_CRC, ErrorCode.BAD_LENGTH, ErrorCode.TOO_LONG, ErrorCode.BAD_FRAME}
)
CHUNK_HEADER = 8  # offset and total in front of every input chunk's data
#: Message types below this are requests, which only the host sends: one received is an echo.
FIRST_ANSWER_TYPE = 0x80
#: What both device ends say to a request before the hello: after a reset, they say it again.
HELLO_FIRST = "hello first"
#: The EEMBC command sent to a peer that did not answer the hello, and how long its answer
#: may take: an EEMBC device answers ``name`` at once, with ``m-name-dut-[...]`` and ``m-ready``.
EEMBC_NAME_COMMAND = "name"
EEMBC_PROBE_S = 1.0


class DeviceWasReset(DeviceError):
    """The device answered as one that has not been greeted: it was reset since the hello."""


class PortLike(TypingProtocol):
    """What the session needs of a pyserial port."""

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes, /) -> int | None: ...


class Session:
    """Speaks protocol v1 to one device over an open port (a :class:`HostSession`)."""

    protocol: ClassVar[Protocol] = Protocol.V1

    def __init__(
        self,
        port: PortLike,
        options: SessionOptions | None = None,
        *,
        timeout: float = 2.0,
        retries: int = 3,
        on_log: Callable[[Log], None] | None = None,
        baud: int | None = None,
    ) -> None:
        if options is not None:
            timeout, retries, on_log, baud = options.timeout, options.retries, options.on_log, options.baud
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.on_log = on_log
        self.baud = baud
        self.decoder = FrameDecoder()
        self.stats = LinkStats()
        self.info: HelloResp | None = None
        self.max_payload = HELLO_MAX_PAYLOAD
        self.credits = 1
        self._seq = 0
        self._inbox: list[tuple[Frame, Message]] = []
        #: The run-level bound over every wait (set by the bench); None: only per-wait deadlines.
        self.watchdog: Watchdog | None = None
        #: Resends allowed per input in :meth:`run` (set by the bench); None: unbounded.
        self.resend_budget: int | None = None
        #: Request frames that came back from the port: it echoes what the host writes.
        self.echoed_frames = 0
        self._resends_at_input = 0
        #: The longest INFER round trip seen so far, which bounds how long a lost answer is awaited.
        self._slowest_infer_s: float | None = None
        self._bound_writes()

    # -- low level -------------------------------------------------------------------------

    def next_seq(self) -> int:
        """Sequence numbers run 1..0xFFFE; 0 is for unsolicited frames, 0xFFFF means none."""
        self._seq = self._seq % 0xFFFE + 1
        return self._seq

    def _bound_writes(self) -> None:
        """Let no single write wait longer than one request's deadline.

        A device that stops reading fills the OS buffer and then blocks every write; a
        write timeout longer than the request deadline (pyserial's default here is 10 s per
        write) would let that stall outlast every deadline the session keeps. Ports
        without a write timeout (RFC 2217, test doubles) are left alone.
        """
        current = getattr(self.port, "write_timeout", None)
        if isinstance(current, int | float) and current > self.timeout:
            try:
                self.port.write_timeout = self.timeout  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - a port that refuses keeps its own bound
                log.debug("could not shorten the write timeout: %s", exc)

    def _write(self, data: bytes, what: str, in_flight: int) -> None:
        if self.watchdog is not None:
            self.watchdog.check()
            self.watchdog.sending(what, in_flight + len(data))
        try:
            self.port.write(data)
        except Exception as exc:  # pyserial raises several types, all fatal for the link
            if type(exc).__name__ == "SerialTimeoutException":
                limit = getattr(self.port, "write_timeout", None)
                within = f" within {limit:.1f} s" if isinstance(limit, int | float) else ""
                raise LinkError(
                    f"the device stopped reading: {what} could not be written{within} "
                    f"({len(data)} B frame, {in_flight + len(data)} B in flight unacknowledged)"
                ) from None
            raise LinkError(f"write to the device failed while sending {what}: {exc}") from None

    def send(self, frame: Frame, what: str | None = None, in_flight: int = 0) -> None:
        """Write one frame; ``what`` and ``in_flight`` (unacknowledged bytes) name it in errors."""
        data = frame.encode()
        self._write(data, what or f"frame type 0x{frame.type:02x} seq {frame.seq}", in_flight)
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(data)

    def _read_some(self) -> bytes:
        try:
            waiting = getattr(self.port, "in_waiting", 0) or 0
            data = self.port.read(max(1, min(int(waiting), 65536)))
        except Exception as exc:
            raise LinkError(f"read from the device failed: {exc}") from None
        self.stats.bytes_received += len(data)
        return data

    def _resent(self, frames: int, what: str) -> None:
        """Count frames sent again; past the input's budget the input is given up."""
        self.stats.resends += frames
        used = self.stats.resends - self._resends_at_input
        if self.resend_budget is not None and used > self.resend_budget:
            raise ResendBudgetExceeded(
                f"{what}: {used} resends for one input, over its budget of {self.resend_budget}"
            )

    def _progress(self) -> None:
        if self.watchdog is not None:
            self.watchdog.progress()

    def poll(self, timeout: float) -> list[tuple[Frame, Message]]:
        """Frames that arrive within ``timeout`` (returns as soon as at least one did).

        Log frames are handed to the log sink and not returned; frames whose payload does
        not parse are counted as garbage and dropped.
        """
        if self._inbox:
            pending, self._inbox = self._inbox, []
            return pending
        deadline = time.monotonic() + timeout
        out: list[tuple[Frame, Message]] = []
        while True:
            if self.watchdog is not None:
                self.watchdog.check()
            data = self._read_some()
            if data:
                frames, errors = self.decoder.feed(data)
                self.stats.garbage_frames += len(errors)
                self.stats.resyncs += len(errors)
                self.stats.crc_failures += sum(1 for e in errors if e.code == ErrorCode.BAD_CRC)
                for frame in frames:
                    self.stats.frames_received += 1
                    if frame.type < FIRST_ANSWER_TYPE:
                        self.echoed_frames += 1
                    try:
                        msg = parse(frame)
                    except (PayloadError, ValueError) as exc:
                        self.stats.garbage_frames += 1
                        log.debug("dropped an unparsable frame of type 0x%02x: %s", frame.type, exc)
                        continue
                    if isinstance(msg, Log):
                        self._handle_log(msg)
                        continue
                    out.append((frame, msg))
            if out or time.monotonic() >= deadline:
                return out

    def _handle_log(self, msg: Log) -> None:
        self.stats.logs.append(msg.text)
        device_log.log(10 + 10 * int(msg.level), "%s", msg.text)
        if self.on_log is not None:
            self.on_log(msg)

    def request(
        self, msg: Message, expect: type[T], timeout: float | None = None, retry_wait: float | None = None
    ) -> T:
        """Send ``msg`` and wait for its answer of type ``expect``, resending on silence.

        The first attempt waits ``timeout``, each resend ``retry_wait`` (default: the same).
        """
        seq = self.next_seq()
        frame = msg.frame(seq)
        first_wait = self.timeout if timeout is None else timeout
        wait = first_wait
        for attempt in range(self.retries + 1):
            if attempt:
                wait = first_wait if retry_wait is None else retry_wait
                self.stats.retries += 1
                log.debug("resending %s seq %d (attempt %d)", msg.TYPE.name, seq, attempt + 1)
                self._resent(1, f"{msg.TYPE.name} seq {seq}")
            self.send(frame, f"{msg.TYPE.name} seq {seq}")
            deadline = time.monotonic() + wait
            resend = False
            while not resend:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.stats.timeouts += 1
                    break
                for rframe, reply in self.poll(remaining):
                    if isinstance(reply, Error) and reply.ref_seq in (seq, NO_SEQ):
                        if reply.code in CORRUPTION_CODES:
                            self._count_device_corruption(reply)
                            resend = True  # our frame arrived damaged: send it again now
                            continue
                        if reply.ref_seq == seq:
                            raise self._refused(reply, f"device refused {msg.TYPE.name}")
                        continue
                    if rframe.seq == seq and isinstance(reply, expect):
                        self._progress()
                        return reply
                    log.debug("ignored stale %s seq %d", type(reply).__name__, rframe.seq)
        echo = self._echo_hint()
        raise LinkError(
            f"device did not answer {msg.TYPE.name} within {wait:.1f} s "
            f"after {self.retries + 1} attempts{echo}"
        )

    def _refused(self, reply: Error, what: str) -> DeviceError:
        """The error for a refusal; "hello first" means the device was reset since the hello."""
        text = f"{what}: {reply.code_name}" + (f" ({reply.text})" if reply.text else "")
        if reply.code == ErrorCode.NOT_READY and reply.text == HELLO_FIRST:
            return DeviceWasReset(text)
        self.stats.device_errors += 1
        return DeviceError(text)

    def _count_device_corruption(self, reply: Error) -> None:
        if reply.code == ErrorCode.BAD_CRC:
            self.stats.crc_failures += 1
        self.stats.resyncs += 1  # the device threw the damaged frame away and waits for the next

    def _echo_hint(self) -> str:
        if not self.echoed_frames:
            return ""
        return (
            f"; {self.echoed_frames} of the host's own request frames came back instead: the port "
            "echoes what it is sent (a loopback, an echoing terminal or a bridge in echo mode?)"
        )

    # -- commands --------------------------------------------------------------------------

    def hello(self, timeout: float | None = None) -> HelloResp:
        """Say hello and adopt the device's payload size and credits."""
        self.send_break_frame()
        try:
            info = self.request(Hello(PROTOCOL_VERSION), HelloResp, timeout)
        except LinkError as exc:
            if type(exc) is not LinkError:
                raise  # the watchdog or a budget: its own message says more
            garbage = self.decoder.stats.discarded_bytes + self.decoder.pending_bytes
            if self.echoed_frames:
                hint = self._echo_hint()
            elif self._answers_eembc():
                hint = (
                    "; this looks like an EEMBC/MLPerf Tiny device (it answered the EEMBC 'name' "
                    "command): add --protocol eembc"
                )
            elif garbage:
                hint = (
                    f"; received {garbage} B that were not protocol frames (another program or "
                    "firmware on this port?)"
                )
            elif self.stats.frames_received:
                hint = f"; {self.stats.frames_received} frames came back, none of them a hello answer"
            else:
                hint = "; nothing was received"
            raise LinkError(f"no VWW harness firmware answered the hello{hint}") from None
        if info.protocol_version != PROTOCOL_VERSION:
            raise DeviceError(
                f"device speaks protocol v{info.protocol_version}, host speaks v{PROTOCOL_VERSION}"
            )
        self.info = info
        self.max_payload = max(CHUNK_HEADER + 1, info.max_payload)
        self.credits = max(1, info.credits)
        return info

    def _answers_eembc(self) -> bool:
        """Whether the silent or garbled peer answers EEMBC's ``name%`` with ``m-`` lines.

        An EEMBC/MLPerf Tiny DUT ignores binary frames (it waits for a ``%``), so a v1
        hello to it meets silence; one short text command tells it apart from a dead port.
        """
        try:
            self._write(f"{EEMBC_NAME_COMMAND}{EEMBC_COMMAND_END}".encode(), "the EEMBC probe", 0)
        except LinkError:
            return False
        seen = b""
        deadline = time.monotonic() + min(self.timeout, EEMBC_PROBE_S)
        while time.monotonic() < deadline and EEMBC_READY.encode() not in seen:
            try:
                seen = (seen + self._read_some())[-4096:]
            except LinkError:
                return False
        return EEMBC_READY.encode() in seen or b"m-name-dut-" in seen

    def send_break_frame(self) -> None:
        """A lone delimiter ends whatever partial frame the device holds, so it resynchronises."""
        self._write(b"\x00", "the resynchronising delimiter", 0)

    def ping(self, data: bytes = b"", timeout: float | None = None) -> bytes:
        return self.request(Ping(data), Pong, timeout).data

    def ack_timeout(self, window_bytes: int) -> float:
        """How long to wait for progress on an upload, from the link rate when it is known."""
        if self.baud:
            return 0.5 + 3.0 * window_bytes * 10 / self.baud
        return self.timeout

    def upload(self, data: bytes, already_sent: int = 0) -> None:
        """Send an input tensor in chunks, keeping up to ``credits`` chunks unacknowledged.

        ``already_sent`` is how far an earlier attempt got, so that chunks sent a second
        time count as resends.

        Nothing the device says counts until it has acknowledged the chunk at offset 0: that
        chunk restarts its input, and until then its offset is the previous input's. Were the
        first chunk lost, the device would acknowledge the later ones as duplicates of the
        previous (complete) input and the host would run the model on that input's bytes; so
        an acknowledgement or an out-of-order error before it means "send offset 0 again".
        """
        total = len(data)
        sent_to = already_sent
        step = self.max_payload - CHUNK_HEADER
        confirmed = 0
        next_off = 0
        inflight: dict[int, int] = {}
        sent_in_upload: set[int] = set()
        zero_seqs: set[int] = set()  # the chunks sent at offset 0
        restarted = False  # whether the device has acknowledged one of them
        retries_left = self.retries
        # Sized by what can really be unacknowledged: the whole window only when the input
        # fills it. A window of credits x max_payload at a board's nominal baud (8 x 32 KiB at
        # 115200 baud is 68 s) would let a stalled upload wait minutes per retry.
        window = min(self.credits * (step + 16), total + 16 * max(1, -(-total // step)))
        ack_wait = self.ack_timeout(window)
        last_progress = time.monotonic()
        while confirmed < total or (total == 0 and not sent_in_upload):
            while len(inflight) < self.credits and (next_off < total or not sent_in_upload):
                end = min(next_off + step, total)
                if next_off < sent_to:
                    self._resent(1, f"input bytes {next_off}-{end} of {total}")
                sent_to = max(sent_to, end)
                seq = self.next_seq()
                self.send(
                    InputChunk(next_off, total, data[next_off:end]).frame(seq),
                    f"INPUT_CHUNK seq {seq} (input bytes {next_off}-{end} of {total})",
                    in_flight=next_off - confirmed,
                )
                inflight[seq] = end
                sent_in_upload.add(seq)
                if next_off == 0:
                    zero_seqs.add(seq)
                next_off = end
                if total == 0:
                    break
            for rframe, reply in self.poll(0.02):
                if isinstance(reply, Ack) and rframe.seq in sent_in_upload:
                    restarted = restarted or rframe.seq in zero_seqs
                    if not restarted:
                        if rframe.seq in inflight:  # offset 0 was lost: this ack is the old input's
                            self._go_back_to_start(inflight)
                            next_off = confirmed = 0
                        continue
                    inflight.pop(rframe.seq, None)
                    if reply.next_offset > confirmed:
                        confirmed = reply.next_offset
                        last_progress = time.monotonic()
                        retries_left = self.retries
                        self._progress()
                    if total == 0:
                        return
                elif isinstance(reply, Error) and (
                    reply.ref_seq in sent_in_upload or reply.ref_seq == NO_SEQ
                ):
                    if reply.code == ErrorCode.OUT_OF_ORDER:
                        if reply.ref_seq in inflight and not restarted:
                            self._go_back_to_start(inflight)
                            next_off = confirmed = 0
                        elif reply.ref_seq in inflight:
                            # the device's offset, even below ours: a late duplicate of chunk 0
                            # restarts its input, and sending from our offset would be refused
                            # for ever
                            confirmed = min(reply.detail, total)
                            log.debug("device expects offset %d: going back", reply.detail)
                            next_off = confirmed
                            inflight.clear()
                            self.stats.go_backs += 1
                    elif reply.code in CORRUPTION_CODES:
                        self._count_device_corruption(reply)
                        log.debug("device saw a damaged frame (%s, seq %d): going back to %d",
                                  reply.code_name, reply.ref_seq, confirmed)
                        next_off = confirmed
                        inflight.clear()
                        self.stats.go_backs += 1
                    else:
                        raise self._refused(reply, f"device refused the input at offset {confirmed}")
            if time.monotonic() - last_progress > ack_wait and confirmed < total:
                retries_left -= 1
                self.stats.retries += 1
                self.stats.timeouts += 1
                if retries_left < 0:
                    raise LinkError(
                        f"device stopped acknowledging input at byte {confirmed} of {total} "
                        f"({self.retries + 1} waits of {ack_wait:.1f} s, {next_off - confirmed} B "
                        f"in flight){self._echo_hint()}"
                    )
                log.debug("upload stalled at %d/%d, going back", confirmed, total)
                next_off = confirmed
                inflight.clear()
                self.stats.go_backs += 1
                last_progress = time.monotonic()

    def _go_back_to_start(self, inflight: dict[int, int]) -> None:
        log.debug("the device acknowledged input before its offset 0; sending from offset 0 again")
        inflight.clear()
        self.stats.go_backs += 1

    def upload_and_infer(
        self,
        data: bytes,
        warmups: int = 0,
        repeats: int = 1,
        profile: bool = False,
        timeout: float | None = None,
    ) -> Result:
        """Upload an input and run it, sending INFER right behind the chunks when they fit the window.

        The device handles frames in order, so when the whole input fits in its credits the
        host need not wait for the acknowledgements before asking for the inference: one
        round trip per image instead of two. Anything unexpected on that fast path (a lost
        chunk, an error, silence) falls back to the acknowledged upload and a plain INFER,
        which carry the retries; frames left over from the fast path are told apart by seq.
        A RESULT counts only after the first chunk's acknowledgement: without it the device
        may have run the previous input (see :meth:`upload`).
        """
        step = self.max_payload - CHUNK_HEADER
        chunks = [data[off : off + step] for off in range(0, len(data), step)]
        if not chunks or len(chunks) > self.credits:
            self.upload(data)
            return self.infer(warmups, repeats, profile, timeout)
        chunk_seqs: set[int] = set()
        for index, chunk in enumerate(chunks):
            seq, off = self.next_seq(), index * step
            self.send(
                InputChunk(off, len(data), chunk).frame(seq),
                f"INPUT_CHUNK seq {seq} (input bytes {off}-{off + len(chunk)} of {len(data)})",
                in_flight=off,
            )
            chunk_seqs.add(seq)
        first_seq, first_acked = min(chunk_seqs), False
        flags = InferFlags.PROFILE if profile else InferFlags(0)
        infer_seq = self.next_seq()
        self.send(Infer(warmups, repeats, flags).frame(infer_seq), f"INFER seq {infer_seq}")
        started = time.monotonic()
        deadline = started + self._infer_waits(timeout)[0]
        while (remaining := deadline - time.monotonic()) > 0:
            for rframe, reply in self.poll(remaining):
                if isinstance(reply, Result) and rframe.seq == infer_seq:
                    if not first_acked:
                        return self._careful_infer(data, warmups, repeats, profile, timeout)
                    if reply.status != 0:
                        raise DeviceError(f"inference failed on the device (status {reply.status})")
                    self._progress()
                    self._observe_infer(time.monotonic() - started)
                    return reply
                if isinstance(reply, Ack) and rframe.seq in chunk_seqs:
                    first_acked = first_acked or rframe.seq == first_seq
                    self._progress()  # the chunks arrive; the answer is on its way
                if isinstance(reply, Error) and (
                    reply.ref_seq in chunk_seqs or reply.ref_seq in (infer_seq, NO_SEQ)
                ):
                    if reply.ref_seq == infer_seq and reply.code not in (
                        ErrorCode.INPUT_INCOMPLETE, *CORRUPTION_CODES
                    ):
                        raise self._refused(reply, "device refused INFER")
                    if reply.code == ErrorCode.NOT_READY and reply.text == HELLO_FIRST:
                        raise self._refused(reply, "device refused an input chunk")
                    return self._careful_infer(data, warmups, repeats, profile, timeout)
        self.stats.timeouts += 1
        return self._careful_infer(data, warmups, repeats, profile, timeout)

    def _careful_infer(
        self, data: bytes, warmups: int, repeats: int, profile: bool, timeout: float | None
    ) -> Result:
        self.stats.retries += 1
        log.debug("pipelined upload did not go through; uploading with acknowledgements")
        self.upload(data, already_sent=len(data))
        return self.infer(warmups, repeats, profile, timeout)

    def _infer_waits(self, budget: float | None) -> tuple[float, float | None]:
        """How long to await an INFER's answer: first attempt, then each resend.

        Until one inference has been seen, the caller's whole budget (the device may be
        slow); afterwards a few times the slowest round trip seen, so that a lost answer or a
        device that stopped costs seconds, not the budget once per resend. A resent INFER is
        answered from the device's cache, so a resend after a short wait is harmless.
        """
        wait = self.timeout if budget is None else budget
        if self._slowest_infer_s is None:
            return wait, None
        return min(wait, self.timeout + 4 * self._slowest_infer_s), self.timeout + 2 * self._slowest_infer_s

    def _observe_infer(self, seconds: float) -> None:
        self._slowest_infer_s = max(self._slowest_infer_s or 0.0, seconds)

    def infer(
        self, warmups: int = 0, repeats: int = 1, profile: bool = False, timeout: float | None = None
    ) -> Result:
        flags = InferFlags.PROFILE if profile else InferFlags(0)
        first, retry = self._infer_waits(timeout)
        started, resends = time.monotonic(), self.stats.resends
        result = self.request(Infer(warmups, repeats, flags), Result, first, retry)
        if result.status != 0:
            raise DeviceError(f"inference failed on the device (status {result.status})")
        if self.stats.resends == resends:  # a resent request's time says nothing of the device
            self._observe_infer(time.monotonic() - started)
        return result

    def _greet_again(self) -> None:
        before = self.info
        self.stats.device_resets += 1
        log.warning("the device was reset during an input; greeting it again")
        after = self.hello()
        if before is not None and after.model_sha256 != before.model_sha256:
            raise DeviceError(
                f"the device came back from a reset with model sha256 {after.model_sha256.hex()}, "
                f"not the {before.model_sha256.hex()} it ran before"
            )

    # -- HostSession ------------------------------------------------------------------------

    def start(self) -> DeviceInfo:
        """HELLO, as the protocol-neutral facts devices and the bench read."""
        return DeviceInfo.from_hello(self.hello())

    def run(self, data: bytes, warmups: int, repeats: int, profile: bool, timeout: float) -> RawResult:
        """One input, measured; a device that was reset meanwhile is greeted again and the input resent.

        The device must come back with the model it had (same sha256), or the run's numbers
        would mix two models; it may be reset up to ``retries`` times for one input.
        """
        self._resends_at_input = self.stats.resends
        for resets in range(self.retries + 1):
            try:
                result = self.upload_and_infer(data, warmups, repeats, profile, timeout=timeout)
                break
            except DeviceWasReset as exc:
                if resets == self.retries:
                    raise DeviceError(f"{exc}; the device was reset {resets + 1} times") from None
                self._greet_again()
        self.stats.inputs_sent += 1
        self.stats.payload_bytes += len(data) + len(result.output)
        return RawResult(result.output, result.cycles)

    def profile(self, timeout: float | None = None) -> list[LayerTime]:
        """The per-layer times of the last profiled inference, fetched page by page."""
        layers: list[LayerTime] = []
        start = 0
        while True:
            page = self.request(GetProfile(start), Profile, timeout)
            layers.extend(page.layers)
            if page.start + len(page.layers) <= start and page.layers:
                # a page that does not move on would be asked for again for ever
                raise DeviceError(f"device sent profile page {page.start} again when asked for {start}")
            start = page.start + len(page.layers)
            if start >= page.total or not page.layers:
                return layers

    def memory(self, timeout: float | None = None) -> Memory:
        return self.request(GetMemory(), Memory, timeout)

    def capture(
        self, send_frame: bool = True, timeout: float | None = None
    ) -> tuple[Result, FrameChunk | None, bytes]:
        """Camera mode: one capture and inference; with ``send_frame`` also the frame's pixels."""
        flags = CaptureFlags.SEND_FRAME if send_frame else CaptureFlags(0)
        result = self.request(Capture(flags), Result, timeout)
        if not send_frame:
            return result, None, b""
        pixels = bytearray()
        first: FrameChunk | None = None
        deadline = time.monotonic() + (timeout or self.timeout) * 4
        while time.monotonic() < deadline:
            for _rframe, reply in self.poll(deadline - time.monotonic()):
                if isinstance(reply, FrameChunk):
                    first = first or reply
                    if reply.offset == len(pixels):
                        pixels += reply.data
                    if len(pixels) >= reply.total:
                        return result, first, bytes(pixels)
        raise LinkError(f"camera frame incomplete: {len(pixels)} B received before the deadline")
