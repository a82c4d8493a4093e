"""The firmware core's EEMBC command loop, built natively and spoken to over a real pty.

firmware/native builds ``vww_eembc_runner`` (vww::EembcServer with the test-double engine
and the host's clock); each golden transcript case (tests/golden/eembc_transcripts.txt,
the contract shared with the Python ends) starts a fresh runner, sends the case's
commands as the MLPerf Tiny runner would (bytes, ``%``, no CR/LF) and reads lines with the
runner's own limits: 5 s per line, 30 s for ``infer``. The C++ unit tests
(vww_eembc_tests) replay the same file in memory; here the bytes cross a tty, the way the
official runner and ``hil serve`` reach the device. The harness's own EEMBC host session
then drives a full VWW-sized upload at the runner's 31 bytes per ``db``.
"""

from __future__ import annotations

import operator
import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

import numpy as np
import pytest
import serial

from harness.deploy import pio
from harness.deploy.emulators import build_native, native_build_dir
from harness.devices.process import read_line, stop_process
from harness.errors import DeviceError
from harness.link import eembc
from harness.link.eembc_device import EembcDevice, EembcOutcome, WallClock
from harness.link.eembc_session import EembcSession
from harness.paths import firmware_dir
from harness.skip_groups import PLATFORMIO, needs, tools_missing

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "eembc_transcripts.txt"
START_TIMEOUT_S = 10.0
_FLOAT = r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?"
_PLACEHOLDERS = {"{int}": "[0-9]+", "{floats}": f"{_FLOAT}(,{_FLOAT})*", "{timer}": "[a-z_]+"}


@dataclass
class Exchange:
    command: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Case:
    name: str
    input_bytes: int = 0  # 0: the runner's default, 96 x 96 x 3
    dut_name: str = "vww-hil"
    host_only: bool = False
    exchanges: list[Exchange] = field(default_factory=list)


def parse_golden(text: str) -> list[Case]:
    """The cases of the transcript file (format in its header)."""
    cases: list[Case] = []
    for line in text.splitlines():
        if line.startswith("## "):
            cases.append(Case(line[3:].strip()))
        elif not line.strip() or line.startswith("#"):
            continue
        elif line.startswith("> "):
            cases[-1].exchanges.append(Exchange(line[2:]))
        elif line.startswith("< "):
            cases[-1].exchanges[-1].lines.append(line[2:])
        elif line.startswith("!input_bytes "):
            cases[-1].input_bytes = int(line.split()[1])
        elif line.startswith("!dut_name "):
            cases[-1].dut_name = line.split(maxsplit=1)[1]
        elif line == "!host_only":
            cases[-1].host_only = True
        elif not line.startswith("!host_error "):
            raise AssertionError(f"unreadable golden line: {line!r}")
    return cases


def pattern(line: str) -> re.Pattern[str]:
    parts = re.split(r"(\{int\}|\{floats\}|\{timer\})", line)
    return re.compile("^" + "".join(_PLACEHOLDERS.get(p, re.escape(p)) for p in parts) + "$")


DEVICE_CASES = [c for c in parse_golden(GOLDEN.read_text(encoding="utf-8")) if not c.host_only]


def build(target: str) -> Path:
    """A target of firmware/native, in a build folder of its own: a folder configured
    before the EEMBC targets existed has no rule for them (CMake's Makefiles only learn
    new targets at configure time)."""
    if shutil.which("cmake") is None or shutil.which("g++") is None:
        pytest.skip(tools_missing(t for t in ("cmake", "g++") if shutil.which(t) is None))
    return build_native(target, build_dir=native_build_dir() / "variants" / "eembc")


@pytest.fixture(scope="module")
def runner() -> Path:
    return build("vww_eembc_runner")


def test_core_unit_tests_pass_against_the_golden_transcripts(tmp_path: Path) -> None:
    """vww_eembc_tests replays the transcripts in memory (whole and byte by byte) and checks
    the figures they leave open; a changed golden line must make it fail."""
    exe = build("vww_eembc_tests")
    proc = subprocess.run([str(exe), str(GOLDEN)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "checks passed" in proc.stdout
    changed = tmp_path / "transcripts.txt"
    changed.write_text(GOLDEN.read_text(encoding="utf-8").replace(
        "< m-[Expecting 8 bytes]", "< m-[Expecting 8 byte]"), encoding="utf-8")
    proc = subprocess.run([str(exe), str(changed)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Expecting 8 byte]" in proc.stderr


@contextmanager
def serve(runner: Path, *args: str) -> Iterator[serial.Serial]:
    """A fresh runner on a pty, opened like a board's serial port at the runner's baud."""
    proc = subprocess.Popen([str(runner), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        path = read_line(proc, START_TIMEOUT_S, "vww_eembc_runner")
        with serial.Serial(path, eembc.BAUD, timeout=0.05) as port:
            yield port
    finally:
        stop_process(proc)


class Lines:
    """Reads CR/LF-ended lines from the port the way the MLPerf Tiny runner does."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self.buf = b""

    def next(self, timeout: float, waiting_for: str) -> str:
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise AssertionError(f"no line within {timeout:g} s while waiting for {waiting_for}")
            self.buf += self.port.read(max(1, self.port.in_waiting))
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("ascii")

    def answer(self, command: str) -> list[str]:
        """Sends one command and returns its lines, m-ready included."""
        self.port.write(command.encode("ascii"))
        timeout = eembc.INFER_TIMEOUT_S if command.startswith("infer") else eembc.LINE_TIMEOUT_S
        lines = [self.next(timeout, f"the answer to {command!r}")]
        while eembc.READY not in lines[-1]:
            lines.append(self.next(timeout, f"m-ready after {command!r}"))
        return lines


@pytest.mark.parametrize("case", DEVICE_CASES, ids=[c.name for c in DEVICE_CASES])
def test_runner_prints_the_golden_lines_over_a_pty(runner: Path, case: Case) -> None:
    args = ["--name", case.dut_name]
    if case.input_bytes:
        args += ["--input-bytes", str(case.input_bytes)]
    with serve(runner, *args) as port:
        lines = Lines(port)
        for ex in case.exchanges:
            got = lines.answer(ex.command)
            assert len(got) == len(ex.lines), f"{ex.command}: {got}"
            for want, line in zip(ex.lines, got, strict=True):
                assert pattern(want).match(line), f"{ex.command}: {line!r} does not match {want!r}"
                assert len(line) <= eembc.MAX_LINE
        time.sleep(0.05)
        assert port.read(4096) == b"", "the device sent something unasked"


def test_commands_split_across_writes_and_stray_line_endings(runner: Path) -> None:
    """A serial link cuts commands anywhere, and terminals add CR/LF; neither changes the answer."""
    with serve(runner, "--input-bytes", "4") as port:
        lines = Lines(port)
        for piece in (b"db lo", b"ad 4", b"%\r\ndb 80", b"ff", b"007f%"):
            port.write(piece)
            time.sleep(0.01)
        got = [lines.next(eembc.LINE_TIMEOUT_S, "db answers") for _ in range(4)]
        assert got == ["m-[Expecting 4 bytes]", eembc.READY, "m-load-done", eembc.READY]
        # The test double: sum and XOR of 80 ff 00 7f minus 128 (00 7f 80 ff) as int8, scaled
        # by 1/256 around -128: sum 0x1fe -> -2 -> 126/256, XOR 0 -> 128/256.
        assert lines.answer("infer 1 0%")[6] == "m-results-[0.492188,0.500000]"


def test_host_session_uploads_a_vww_input_and_reads_the_test_doubles_scores(runner: Path) -> None:
    """The harness's EEMBC host session against the C++ device end: 27,648 B at 31 B per db."""
    rng = np.random.default_rng(14)
    image = rng.integers(0, 255, eembc.VWW_INPUT_BYTES, dtype=np.uint8, endpoint=True)
    signed = (image.astype(np.int16) - 128).astype(np.int8).view(np.uint8)  # what the device stores
    total = int(signed.sum(dtype=np.uint64)) % 256
    xor = int(np.bitwise_xor.reduce(signed))
    expected = [((v - 256 if v >= 128 else v) + 128) / 256 for v in (total, xor)]  # int8, dequantised
    with serve(runner, "--name", "vww-native") as port:
        session = EembcSession(port)
        assert session.hello() == ("vww-native", eembc.PROFILE, eembc.VWW_MODEL)
        session.load(image.tobytes())
        answer = session.infer(runs=20, warmups=2)
        assert answer.scores == pytest.approx(expected, abs=1e-6)
        assert answer.elapsed_us > 0 and answer.throughput > 0
        assert session.results() == answer.scores
        # The device's clock: a timestamp taken after the inference comes after its laps.
        assert session.timestamp() >= answer.t1_us


def test_host_session_names_what_the_device_refused(runner: Path) -> None:
    with serve(runner, "--input-bytes", "8") as port:
        session = EembcSession(port)
        session.hello()
        with pytest.raises(DeviceError, match=r"infer before a full load: 0 of 8 bytes"):
            session.infer(runs=1, warmups=0)
        with pytest.raises(DeviceError, match=r"db load needs 1 to 8 bytes, got 9"):
            session.load(bytes(9))


def test_a_model_that_did_not_load_is_an_error_not_a_hang(runner: Path) -> None:
    with serve(runner, "--fail-model") as port:
        lines = Lines(port)
        # the native runner's lap times are host time, and it says so
        assert lines.answer("name%") == ["m-name-dut-[vww-hil]", "m-timer-[host_clock]", eembc.READY]
        assert lines.answer("db load 4%") == [
            "e-[model not ready: test double told to fail loading its model]", eembc.READY]


class TestDoubleScores:
    """The C++ test double's function, for the Python device end: int8 sum and XOR of the
    input minus 128, dequantised with scale 1/256 around -128."""

    def infer(self, data: bytes) -> EembcOutcome:
        signed = bytes(b ^ 0x80 for b in data)
        scores = []
        for q in (sum(signed) % 256, reduce(operator.xor, signed, 0)):
            scores.append(((q - 256 if q >= 128 else q) + 128) / 256)
        return EembcOutcome(tuple(scores), elapsed_us=100)


def random_stream(rng: random.Random, n: int) -> bytes:
    """Printable text in the protocol's words: whole commands, broken ones, overlong ones."""
    words = ["db", "load", "16", "8", "0", "3", "infer", "1", "2", "results", "name", "profile",
             "timestamp", "00ff", "0A1b2c3D", "zz", "0011223344556677", "%", " ", "   "]
    commands = ["db load 16%", "db 0011223344556677%", "db 8899aabbccddeeff%", "infer 2 1%",
                "results%", "db load 8%", "infer 1%"]
    out: list[str] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.15:
            out.append(chr(rng.randint(0x21, 0x7E)))
        elif r < 0.35:
            out.append(rng.choice(commands))
        elif r < 0.37:
            out.append("x" * rng.randint(60, 120) + "%")
        else:
            out.append(rng.choice(words) + " ")
    return "".join(out).encode("ascii")


def test_both_device_ends_print_the_same_lines(runner: Path) -> None:
    """Beyond the golden cases: the C++ end and the Python end (the sim's) answer the same
    random stream with the same lines, lap times aside."""
    stream = random_stream(random.Random(14), 20_000)
    proc = subprocess.run([str(runner), "--stdio", "--input-shape", "16", "--input-bytes", "16"],
                          input=stream, capture_output=True, timeout=60, check=True)
    cpp = proc.stdout.decode("ascii").split("\r\n")
    assert cpp[-1] == ""
    # host time on both ends, so that their m-timer-[host_clock] lines agree too
    py = EembcDevice(None, TestDoubleScores(), input_bytes=16, clock=WallClock()).feed(stream)
    laps = re.compile(r"^m-lap-us-[0-9]+$")
    cpp_lines = ["m-lap-us-N" if laps.match(x) else x for x in cpp[:-1]]
    py_lines = ["m-lap-us-N" if laps.match(x) else x for x in py]
    assert cpp_lines.count(eembc.READY) == stream.count(b"%")
    assert sum(x == "m-infer-done" for x in cpp_lines) > 10  # the stream reaches inference
    for i, (a, b) in enumerate(zip(cpp_lines, py_lines, strict=True)):
        assert a == b, f"line {i}: C++ {a!r}, Python {b!r}"


def test_runner_refuses_bad_options(runner: Path) -> None:
    for args in (["--input-bytes", "0"], ["--input-bytes", "x"], ["--decimals", "9"],
                 ["--input-shape", "1x4", "--input-bytes", "5"], ["--bogus"]):
        proc = subprocess.run([str(runner), "--stdio", *args], capture_output=True, text=True,
                              timeout=10, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, args
        assert proc.stderr.strip(), args


@pytest.mark.skipif(shutil.which("pio") is None,
                    reason=needs(PLATFORMIO, "PlatformIO (pio) is not installed"))
def test_board_eembc_environments_are_their_board_plus_the_protocol_switch() -> None:
    """`nano33ble_eembc` and `esp32cam_eembc` build what their board builds, with EEMBC on."""
    envs = pio.project_config(firmware_dir())
    # the ESP32-CAM's EEMBC build also moves its UART to the runner's default 115200
    extra = {"nano33ble": [], "esp32cam": ["-DVWW_LINK_BAUD=115200u"]}
    for board in ("nano33ble", "esp32cam"):
        base, eembc_env = envs[board].options, envs[f"{board}_eembc"].options
        want = [*base["build_flags"], "-DVWW_PROTOCOL_EEMBC=1", *extra[board]]
        assert eembc_env["build_flags"] == want, board
        for key in ("platform", "board", "lib_deps"):
            assert eembc_env.get(key) == base.get(key), (board, key)
        assert int(eembc_env.get("monitor_speed", 0)) == 115200, board
    assert not any("EEMBC" in f for f in envs["nano33ble"].options["build_flags"])
