"""Both Python ends of the EEMBC protocol against the golden transcripts.

tests/golden/eembc_transcripts.txt is the contract the C++ device end is held to as
well: the device end must print exactly its device lines for its host commands, and the
host session must send exactly its host commands and accept (or refuse, where the case
says so) its device lines.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.link import eembc
from harness.link.eembc_device import EembcDevice, EembcOutcome, EstimateClock
from harness.link.eembc_session import EembcSession

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "eembc_transcripts.txt"
_FLOAT = r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?"
_PLACEHOLDERS = {"{int}": "[0-9]+", "{floats}": f"{_FLOAT}(,{_FLOAT})*", "{timer}": "[a-z_]+"}


@dataclass
class Exchange:
    command: str  # as sent, `%` included
    lines: list[str] = field(default_factory=list)


@dataclass
class Case:
    name: str
    input_bytes: int = eembc.VWW_INPUT_BYTES
    dut_name: str = "vww-hil"
    host_only: bool = False
    host_error: str | None = None
    exchanges: list[Exchange] = field(default_factory=list)


def parse_golden(text: str) -> list[Case]:
    cases: list[Case] = []
    for raw in text.splitlines():
        line = raw.rstrip("\n")
        if not line.strip() or (line.startswith("#")):
            if line.startswith("## "):
                cases.append(Case(line[3:].strip()))
            continue
        case = cases[-1]
        if line.startswith("> "):
            case.exchanges.append(Exchange(line[2:]))
        elif line.startswith("< "):
            case.exchanges[-1].lines.append(line[2:])
        elif line.startswith("!input_bytes "):
            case.input_bytes = int(line.split()[1])
        elif line.startswith("!dut_name "):
            case.dut_name = line.split(maxsplit=1)[1]
        elif line == "!host_only":
            case.host_only = True
        elif line.startswith("!host_error "):
            case.host_error = line.split(maxsplit=1)[1]
        else:
            raise AssertionError(f"unreadable golden line: {line!r}")
    return cases


CASES = parse_golden(GOLDEN.read_text(encoding="utf-8"))
DEVICE_CASES = [c for c in CASES if not c.host_only]


def pattern(line: str) -> re.Pattern[str]:
    parts = re.split(r"(\{int\}|\{floats\}|\{timer\})", line)
    return re.compile("^" + "".join(_PLACEHOLDERS.get(p, re.escape(p)) for p in parts) + "$")


class FakeEngine:
    """Scores from the input's first byte, so that a test can tell inputs apart."""

    def __init__(self) -> None:
        self.inputs: list[bytes] = []

    def infer(self, data: bytes) -> EembcOutcome:
        self.inputs.append(data)
        p = data[0] / 255
        return EembcOutcome((round(1 - p, 6), round(p, 6)), elapsed_us=1500)


def test_the_golden_file_has_every_case_the_brief_names() -> None:
    names = {c.name for c in CASES}
    for command in ("name", "profile", "db load", "timestamp", "unknown command", "results before infer",
                    "full flow", "db non-hex payload", "db past the buffer",
                    "command longer than 80 characters", "infer before a full load", "host: missing m-ready",
                    "host: DUT answers e-[...]", "host: DUT line longer than 80 characters"):
        assert command in names
    for case in CASES:
        for ex in case.exchanges:
            assert ex.command.endswith("%")
            assert ex.lines, f"{case.name}: {ex.command} has no device lines"
            if not case.host_only:
                assert ex.lines[-1] == "m-ready" and sum("m-ready" in ln for ln in ex.lines) == 1


@pytest.mark.parametrize("case", DEVICE_CASES, ids=[c.name for c in DEVICE_CASES])
def test_device_end_prints_the_golden_lines(case: Case) -> None:
    dev = EembcDevice(None, FakeEngine(), input_bytes=case.input_bytes, name=case.dut_name,
                      clock=EstimateClock())
    for ex in case.exchanges:
        got = dev.feed(ex.command.encode("ascii"))
        assert len(got) == len(ex.lines), f"{ex.command}: {got}"
        for want, line in zip(ex.lines, got, strict=True):
            assert pattern(want).match(line), f"{ex.command}: {line!r} does not match {want!r}"
            assert len(line) <= eembc.MAX_LINE


def test_device_end_gives_the_same_lines_however_the_bytes_arrive() -> None:
    """A serial line delivers commands in arbitrary pieces; answers must not depend on them."""
    rng = random.Random(14)
    for case in DEVICE_CASES:
        stream = b"".join(ex.command.encode() for ex in case.exchanges)
        whole = EembcDevice(None, FakeEngine(), input_bytes=case.input_bytes, name=case.dut_name,
                            clock=EstimateClock()).feed(stream)
        pieces = EembcDevice(None, FakeEngine(), input_bytes=case.input_bytes, name=case.dut_name,
                             clock=EstimateClock())
        got: list[str] = []
        pos = 0
        while pos < len(stream):
            step = rng.randint(1, 7)
            got += pieces.feed(b"\r\n" + stream[pos : pos + step])  # stray CR/LF are ignored
            pos += step
        assert got == whole, case.name


def test_lap_times_and_results_of_the_full_flow_mean_what_they_say() -> None:
    engine = FakeEngine()
    dev = EembcDevice(None, engine, input_bytes=4, clock=EstimateClock())
    dev.feed(b"db load 4%db 80ff007f%")
    lines = dev.feed(b"infer 3 2%")
    laps = [eembc.parse_lap(x) for x in lines if eembc.parse_lap(x) is not None]
    assert laps[1] - laps[0] == 3 * 1500  # the warm-ups are outside the laps
    assert len(engine.inputs) == 5 and engine.inputs[0] == bytes.fromhex("80ff007f")
    scores = next(eembc.parse_results(x) for x in lines if x.startswith("m-results"))
    assert scores == pytest.approx([1 - 0x80 / 255, 0x80 / 255], abs=1e-6)
    assert dev.feed(b"results%")[0] == eembc.format_results(scores)


def test_device_never_holds_more_than_its_buffer_or_one_command() -> None:
    dev = EembcDevice(None, FakeEngine(), input_bytes=8)
    flood = b"x" * 100_000 + b"%"
    lines = dev.feed(flood)
    assert lines == ["e-[Command longer than 80 characters]", "m-ready"]
    assert len(dev.splitter._buf) == 0 and len(dev._buffer) == 8
    assert dev.feed(b"db load 8%db " + b"00" * 38 + b"%")[2] == "e-[db past the buffer: 38 bytes, 8 left]"
    assert len(dev._buffer) == 8


# -- host side ------------------------------------------------------------------------------


class ScriptedPort:
    """A port that checks each command the host writes and answers with the case's lines."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        self.script = list(exchanges)
        self.sent: list[str] = []
        self._inbuf = b""
        self._out = b""
        self._tick = 0

    def _concrete(self, line: str) -> str:
        def lap(_m: re.Match[str]) -> str:
            self._tick += 1000
            return str(self._tick)

        return (re.sub(r"\{int\}", lap, line).replace("{floats}", "0.250000,0.750000")
                .replace("{timer}", "estimated"))

    def write(self, data: bytes) -> int:
        self._inbuf += data
        while b"%" in self._inbuf:
            cmd, self._inbuf = self._inbuf.split(b"%", 1)
            text = cmd.decode() + "%"
            self.sent.append(text)
            assert self.script, f"host sent {text!r} after the case ended"
            ex = self.script.pop(0)
            assert text == ex.command, f"host sent {text!r}, the case expects {ex.command!r}"
            self._out += b"".join(self._concrete(ln).encode() + b"\r\n" for ln in ex.lines)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self._out:
            time.sleep(0.005)
            return b""
        out, self._out = self._out[:size], self._out[size:]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self._out)


def _load_plan(exchanges: list[Exchange], i: int) -> tuple[bytes, int, int] | None:
    """(data, chunk, commands used) when exchanges[i:] is a whole load the host would send."""
    m = re.fullmatch(r"db load (\d+)%", exchanges[i].command)
    if not m:
        return None
    n = int(m.group(1))
    if n == 0:
        return None
    data = b""
    chunks = []
    j = i + 1
    while len(data) < n and j < len(exchanges):
        hm = re.fullmatch(r"db ([0-9a-f]+)%", exchanges[j].command)
        if not hm or len(hm.group(1)) % 2:
            return None
        chunks.append(len(hm.group(1)) // 2)
        data += bytes.fromhex(hm.group(1))
        j += 1
    if len(data) != n or len(set(chunks[:-1])) > 1 or chunks[-1] > chunks[0]:
        return None
    return data, chunks[0], j - i


def drive_host(case: Case) -> None:
    """Replay a case through the host session's own calls (raw commands where it has none)."""
    port = ScriptedPort(case.exchanges)
    exchanges = case.exchanges
    i = 0
    while i < len(exchanges):
        text = exchanges[i].command[:-1]
        plan = _load_plan(exchanges, i)
        if plan is not None:
            data, chunk, used = plan
            session = EembcSession(port, chunk_bytes=chunk, line_timeout=0.3, settle_s=0)
            session.load(data)
            i += used
            continue
        session = EembcSession(port, line_timeout=0.3, settle_s=0)
        if m := re.fullmatch(r"infer (\d+) (\d+)", text):
            answer = session.infer(int(m.group(1)), int(m.group(2)))
            assert answer.elapsed_us > 0 and len(answer.scores) == 2
        elif text == "results":
            assert session.results() == (0.25, 0.75)
        elif text == "timestamp":
            assert session.timestamp() > 0
        elif text == "name":
            lines = session.command("name")
            assert eembc.parse_name(lines[0]) == case.dut_name
        else:
            session.command(text)
        i += 1
    assert not port.script, "the host stopped before the case's end"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_host_session_against_the_golden_lines(case: Case) -> None:
    refused = [ln for ex in case.exchanges for ln in ex.lines if ln.startswith("e-[")]
    if case.host_error is None and not refused:
        drive_host(case)
        return
    want = case.host_error or refused[0]
    if any(len(ex.command) > eembc.MAX_COMMAND + 1 for ex in case.exchanges):
        want = "at most 80"  # the host refuses to send it at all
    with pytest.raises(HarnessError) as info:
        drive_host(case)
    msg = str(info.value)
    assert want in msg and "\n" not in msg


def test_host_run_converts_input_and_quantises_scores() -> None:
    """The full flow through the HostSession calls the bench makes: start, run, results."""
    from harness.link.messages import DType, TensorSpec
    from harness.link.protocol import SessionOptions

    case = next(c for c in CASES if c.name == "full flow")
    port = ScriptedPort(case.exchanges)
    opts = SessionOptions(inputs=(TensorSpec(DType.INT8, (1, 4), 1 / 255, -128),),
                          outputs=(TensorSpec(DType.INT8, (1, 2), 1 / 256, -128),))
    session = EembcSession(port, opts, chunk_bytes=4, settle_s=0)
    info = session.start()
    assert (info.protocol, info.board, info.model_sha256, info.engine) == ("eembc", "vww-hil", "", "")
    raw = session.run(bytes([0x00, 0x7F, 0x80, 0xFF]), warmups=0, repeats=1, profile=False, timeout=1.0)
    assert raw.output == bytes([0xC0, 0x40])  # 0.25 -> -64, 0.75 -> 64 with scale 1/256, zp -128
    assert raw.cycles == (1000,)  # laps 3000 and 4000 us
    assert session.results() == (0.25, 0.75)
    assert session.stats.frames_sent == 6 and not port.script
    with pytest.raises(HarnessError, match="unavailable"):
        session.profile()
    with pytest.raises(HarnessError, match="unavailable"):
        session.memory()


def test_host_refuses_a_device_without_tensors_and_oversized_chunks() -> None:
    with pytest.raises(HarnessError, match="--model"):
        EembcSession(ScriptedPort([]), settle_s=0).start()
    with pytest.raises(HarnessError, match="1 to 38"):
        EembcSession(ScriptedPort([]), chunk_bytes=39)
    assert eembc.max_db_bytes(eembc.ENERGY_PREFIX) == 36
