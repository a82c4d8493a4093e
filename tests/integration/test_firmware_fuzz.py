"""Fuzz the firmware core's frame parser and dispatch through the native runner.

The runner (built with AddressSanitizer and UBSan when the compiler supports them) serves
protocol v1 on stdin/stdout. Each case is a byte string made from the golden frames and
from valid requests with random fields: mutated (bit flips, inserted, deleted and
repeated bytes, truncation, splices), re-framed with a good CRC so that random payloads
reach the dispatcher, or plain garbage. After every case the fuzzer sends a delimiter and
a PING with a fresh seq and requires the PONG within a deadline: a crash, a sanitizer
report or a missing PONG (a hang or a lost resync) fails the test with the case's bytes.

``HIL_FUZZ_CASES`` sets the number of cases (default 400, a few seconds); the long run
quoted in docs/firmware.md used ``HIL_FUZZ_CASES=20000``.
"""

from __future__ import annotations

import logging
import os
import random
import select
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.deploy.emulators import build_native, native_build_dir
from harness.devices.process import stop_process
from harness.errors import HarnessError
from harness.link.framing import HEADER, Frame, FrameDecoder, cobs_encode, crc32
from harness.link.messages import MsgType, Ping, Pong, parse
from harness.skip_groups import tools_missing

log = logging.getLogger(__name__)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frames.txt"
PONG_TIMEOUT_S = 3.0
INPUT_BYTES = 3 * 16 * 16  # a small input keeps uploads quick


@pytest.fixture(scope="module")
def fuzz_runner() -> Path:
    if shutil.which("cmake") is None or shutil.which("g++") is None:
        pytest.skip(tools_missing(t for t in ("cmake", "g++") if shutil.which(t) is None))
    build = native_build_dir() / "variants" / "asan"
    try:
        return build_native(build_dir=build, cmake_args=["-DVWW_SANITIZE=ON"])
    except HarnessError as exc:
        log.warning("sanitizer build failed (%s); fuzzing the plain build", exc)
        return build_native()


def golden_frames() -> list[bytes]:
    frames = []
    for line in GOLDEN.read_text().splitlines():
        if line and not line.startswith("#"):
            frames.append(bytes.fromhex(line.split()[2]))
    return frames


def raw_frame(ftype: int, seq: int, payload: bytes, length: int | None = None) -> bytes:
    body = HEADER.pack(ftype & 0xFF, 0, seq & 0xFFFF, len(payload) if length is None else length)
    body += payload
    return cobs_encode(body + struct.pack("<I", crc32(body))) + b"\x00"


def random_request(rng: random.Random) -> bytes:
    """A well-framed request with random (often out-of-range) fields."""
    seq = rng.randrange(0, 0x10000)
    kind = rng.randrange(9)
    if kind == 8:  # a whole upload in random-sized chunks, then an INFER with random fields
        frames: list[bytes] = []
        off = 0
        while off < INPUT_BYTES:
            n = min(rng.randrange(1, 400), INPUT_BYTES - off)
            payload = struct.pack("<II", off, INPUT_BYTES) + rng.randbytes(n)
            frames.append(raw_frame(MsgType.INPUT_CHUNK, (seq + len(frames)) & 0xFFFF, payload))
            off += n
        infer = struct.pack("<HHBB", rng.randrange(0, 3), rng.randrange(0, 35), rng.randrange(4), 0)
        frames.append(raw_frame(MsgType.INFER, (seq + len(frames)) & 0xFFFF, infer))
        if rng.random() < 0.5:
            frames.append(raw_frame(MsgType.GET_PROFILE, (seq + len(frames)) & 0xFFFF,
                                    struct.pack("<H", rng.randrange(0, 8))))
        return b"".join(frames)
    if kind == 0:
        off = rng.choice([0, rng.randrange(0, INPUT_BYTES + 64), INPUT_BYTES, 0xFFFFFFFF])
        total = rng.choice([INPUT_BYTES, INPUT_BYTES + 1, 0, rng.randrange(0, 1 << 32)])
        data = rng.randbytes(rng.choice([0, 1, 16, 200, 1016]))
        payload = struct.pack("<II", off & 0xFFFFFFFF, total) + data
        return raw_frame(MsgType.INPUT_CHUNK, seq, payload)
    if kind == 1:
        payload = struct.pack("<HHBB", rng.randrange(0, 4), rng.randrange(0, 40), rng.randrange(256), 0)
        return raw_frame(MsgType.INFER, seq, payload[: rng.randrange(0, 7)])
    if kind == 2:
        start = struct.pack("<H", rng.randrange(0, 80))
        return raw_frame(MsgType.GET_PROFILE, seq, start[: rng.randrange(3)])
    if kind == 3:
        return raw_frame(MsgType.HELLO, seq, rng.randbytes(rng.randrange(0, 6)))
    if kind == 4:
        return raw_frame(rng.randrange(256), seq, rng.randbytes(rng.randrange(0, 64)))
    if kind == 5:
        return raw_frame(MsgType.CAPTURE, seq, rng.randbytes(rng.randrange(0, 3)))
    if kind == 6:
        return raw_frame(MsgType.GET_MEMORY, seq, rng.randbytes(rng.randrange(0, 3)))
    payload = rng.randbytes(rng.randrange(0, 40))
    return raw_frame(MsgType.PING, seq, payload, length=rng.randrange(0, 60))


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        op = rng.randrange(6)
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf.insert(rng.randrange(len(buf) + 1), rng.randrange(256))
        elif op == 2 and buf:
            del buf[rng.randrange(len(buf))]
        elif op == 3 and buf:
            buf = buf[: rng.randrange(len(buf))]
        elif op == 4 and buf:
            i = rng.randrange(len(buf))
            buf[i:i] = buf[i : i + rng.randrange(1, 300)]
        elif op == 5 and buf:
            buf[rng.randrange(len(buf))] = rng.choice([0, 1, 0xFE, 0xFF])
    return bytes(buf)


def cases(rng: random.Random, count: int) -> Iterator[bytes]:
    golden = golden_frames()
    for _ in range(count):
        pick = rng.randrange(6)
        if pick == 0:
            yield mutate(rng, rng.choice(golden))
        elif pick == 1:
            yield random_request(rng)
        elif pick == 2:
            yield mutate(rng, random_request(rng))
        elif pick == 3:
            yield rng.randbytes(rng.randrange(1, 3000))
        elif pick == 4:
            yield rng.choice(golden)[: rng.randrange(1, 40)] + rng.choice(golden)
        else:
            yield b"".join(random_request(rng) for _ in range(rng.randrange(1, 6)))


class StdioRunner:
    """The native runner on pipes, with a decoder for what it sends back."""

    def __init__(self, exe: Path) -> None:
        env = dict(os.environ, ASAN_OPTIONS="abort_on_error=1:detect_leaks=0",
                   UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1")
        self.proc = subprocess.Popen(
            [str(exe), "--stdio", "--input-shape", "1x16x16x3", "--max-payload", "1024"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        self.decoder = FrameDecoder()
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_pong(self, seq: int, data: bytes, timeout: float) -> bool:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            frames, _errors = self.decoder.feed(chunk)
            for frame in frames:
                if frame.seq == seq and frame.type == MsgType.PONG:
                    msg = parse(frame)
                    return isinstance(msg, Pong) and msg.data == data
        return False

    def stderr_text(self) -> str:
        stop_process(self.proc)
        return self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""


def run_fuzz(exe: Path, count: int, seed: int) -> int:
    """Run ``count`` cases; return how many passed (all, or the test fails on the first bad one)."""
    rng = random.Random(seed)
    runner = StdioRunner(exe)
    passed = 0
    try:
        for i, case in enumerate(cases(rng, count)):
            if i % 50 == 0:  # alternate between states before and after a hello
                runner.send(b"\x00" + raw_frame(MsgType.HELLO, 0xFFFE, bytes(4)))
            probe_seq = 0x8000 + (i % 0x7000)
            probe = Ping(struct.pack("<I", i)).frame(probe_seq).encode()
            runner.send(case + b"\x00" + probe)
            if not runner.wait_pong(probe_seq, struct.pack("<I", i), PONG_TIMEOUT_S):
                try:  # a sanitizer report takes a moment to end the process
                    runner.proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    pass
                alive = runner.proc.poll() is None
                err = runner.stderr_text()
                pytest.fail(
                    f"case {i} ({'hang or lost resync' if alive else 'crash'}): {case[:200].hex()}"
                    f"\n{err[-3000:]}"
                )
            passed += 1
    finally:
        err = runner.stderr_text()
    assert "runtime error" not in err and "Sanitizer" not in err, err[-3000:]
    return passed


def test_fuzzed_frames_never_crash_hang_or_desynchronise(fuzz_runner: Path) -> None:
    count = int(os.environ.get("HIL_FUZZ_CASES", "400"))
    seed = int(os.environ.get("HIL_FUZZ_SEED", "5"))
    t0 = time.monotonic()
    passed = run_fuzz(fuzz_runner, count, seed)
    log.info("fuzz: %d cases passed in %.1f s (seed %d)", passed, time.monotonic() - t0, seed)
    assert passed == count


def test_fuzz_cases_reach_the_dispatcher() -> None:
    """The generator makes well-framed requests too, not only garbage the CRC rejects."""
    rng = random.Random(1)
    good = 0
    for case in cases(rng, 300):
        frames, _ = FrameDecoder().feed(case)
        good += sum(1 for f in frames if isinstance(f, Frame))
    assert good > 100


def libfuzzer_seeds() -> list[bytes]:
    """Seeds for firmware/native/fuzz: the golden frames (raw) and a structured session.

    A structured input starts with an odd byte, then records ``type seq:u16 flags n
    payload[n]`` that the target frames properly; this session uploads the target's
    192-byte input, infers with a profile, and asks for the profile, memory and a capture.
    """

    def rec(mtype: int, seq: int, payload: bytes) -> bytes:
        return struct.pack("<BHBB", mtype, seq, 0, len(payload)) + payload

    data = bytes(range(192))
    session = b"\x01" + b"".join([
        rec(MsgType.HELLO, 1, bytes(4)),
        rec(MsgType.INPUT_CHUNK, 2, struct.pack("<II", 0, 192) + data[:120]),
        rec(MsgType.INPUT_CHUNK, 3, struct.pack("<II", 120, 192) + data[120:]),
        rec(MsgType.INFER, 4, struct.pack("<HHBB", 1, 3, 1, 0)),
        rec(MsgType.GET_PROFILE, 5, struct.pack("<H", 0)),
        rec(MsgType.GET_MEMORY, 6, b""),
        rec(MsgType.CAPTURE, 7, b"\x01\x00"),
        rec(MsgType.INFER, 4, struct.pack("<HHBB", 1, 3, 1, 0)),
    ])
    return [*golden_frames(), session]


@pytest.mark.skipif(shutil.which("clang++") is None, reason=tools_missing(["clang++"], " (libFuzzer target)"))
def test_libfuzzer_target_builds_and_survives_a_short_run(tmp_path: Path) -> None:
    """The coverage-guided target (firmware/native/fuzz) for long runs; here a short smoke run."""
    build = native_build_dir() / "variants" / "libfuzzer"
    exe = build_native("vww_fuzz_server", build_dir=build,
                       cmake_args=["-DCMAKE_CXX_COMPILER=clang++", "-DVWW_LIBFUZZER=ON"])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(libfuzzer_seeds()):
        (corpus / f"seed{i}").write_bytes(seed)
    proc = subprocess.run([str(exe), "-runs=3000", "-seed=5", str(corpus)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 3000 runs" in proc.stderr
