"""The EEMBC / MLPerf Tiny DUT protocol: its constants, commands and line formats.

MLPerf Tiny's runner (mlcommons/tiny ``benchmark/runner/``) and its reference firmware
talk ASCII over a serial line: the host writes a command ended by ``%`` (no CR/LF, at most
80 characters), the device answers with lines ended ``\\r\\n``, the last of which contains
``m-ready``. Both ends of the harness (:mod:`harness.link.eembc_session` drives any such
device, :mod:`harness.link.eembc_device` is one) share this module so that the framing
rules, limits and message shapes are written once; docs/protocol.md ("EEMBC") says which
runner source each figure comes from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from harness.errors import ConfigError

#: Link rate the runner uses in performance and accuracy modes (its devices yaml).
BAUD = 115200
#: Link rate of energy mode, through EEMBC's interface board (out of scope, kept ready).
ENERGY_BAUD = 9600
#: Prefix the interface board needs in front of every command meant for the DUT (energy mode).
ENERGY_PREFIX = "dut "

COMMAND_END = "%"
MAX_COMMAND = 80  # characters before the `%`
MAX_LINE = 80  # characters of a device line before its CR/LF
READY = "m-ready"

#: How long the runner waits for each line of an answer (serial_device.py) and for the
#: lines of an ``infer`` answer (device_under_test.py).
LINE_TIMEOUT_S = 5.0
INFER_TIMEOUT_S = 30.0
#: Bytes per ``db`` command the runner sends (device_under_test.py, without a power board).
RUNNER_DB_BYTES = 31

PROFILE = "ULPMark for tinyML Firmware V0.0.1"
VWW_MODEL = "vww01"
#: 96 x 96 x 3 uint8 RGB: what the runner sends for one VWW image.
VWW_INPUT_BYTES = 96 * 96 * 3

_HEX = re.compile(r"^[0-9a-fA-F]*$")
_LAP = re.compile(r"^m-lap-us-([0-9]+)$")
_RESULTS = re.compile(r"^m-results-\[([^\]]*)\]$")
_NAME = re.compile(r"^m-name-dut-\[([^\]]+)\]$")
_PROFILE = re.compile(r"^m-(profile|model)-\[([^\]]+)\]$")
_ERROR = re.compile(r"^e-\[(.*)\]$")
_TIMER = re.compile(r"^m-timer-\[([a-z_]+)\]$")

#: The timer kinds a device end may announce: protocol v1's TimerKind names, lower case.
TIMER_KINDS = ("dwt", "ccount", "systick", "instructions", "estimated", "host_clock")


def max_db_bytes(prefix: str = "") -> int:
    """The most payload bytes one ``db`` command carries within the 80-character limit."""
    return (MAX_COMMAND - len(prefix) - len("db ")) // 2


def command(text: str, prefix: str = "") -> bytes:
    """One command as written to the line: prefix, text, ``%``; refuses what a DUT would reject."""
    full = prefix + text
    if len(full) > MAX_COMMAND:
        raise ConfigError(f"EEMBC command of {len(full)} characters (at most {MAX_COMMAND}): {full[:40]}...")
    if any(c in full for c in "%\r\n\0"):
        raise ConfigError(f"EEMBC command {full!r} contains a delimiter")
    return (full + COMMAND_END).encode("ascii")


def db_commands(data: bytes, chunk: int = RUNNER_DB_BYTES) -> Iterable[str]:
    """``db <hex>`` commands carrying ``data`` in ``chunk``-byte pieces, lower-case hex."""
    for off in range(0, len(data), chunk):
        yield "db " + data[off : off + chunk].hex()


def is_hex_payload(text: str) -> bool:
    """Whole bytes of hex digits (either case), at least one."""
    return bool(text) and len(text) % 2 == 0 and bool(_HEX.match(text))


def format_results(scores: Sequence[float]) -> str:
    """The ``m-results-[...]`` line: enough digits that an int8 score survives the round trip."""
    return "m-results-[" + ",".join(f"{s:.6f}" for s in scores) + "]"


def parse_results(line: str) -> list[float] | None:
    """The floats of an ``m-results-[...]`` line, None for any other line (ValueError if garbled)."""
    m = _RESULTS.match(line)
    if m is None:
        return None
    parts = [p.strip() for p in m.group(1).split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"unreadable scores in {line!r}") from None


def parse_lap(line: str) -> int | None:
    """The microseconds of an ``m-lap-us-N`` line, None for any other line."""
    m = _LAP.match(line)
    return int(m.group(1)) if m else None


def parse_name(line: str) -> str | None:
    m = _NAME.match(line)
    return m.group(1) if m else None


def parse_profile(line: str) -> tuple[str, str] | None:
    """``("profile", text)`` or ``("model", name)`` from the answer to ``profile``."""
    m = _PROFILE.match(line)
    return (m.group(1), m.group(2)) if m else None


def format_timer(kind: str) -> str:
    """The extra line of the project's device ends' ``name`` answer: what ``m-lap-us`` counts.

    The EEMBC protocol has no way to say whether a lap time is measured; the official
    runner reads only the ``m-name-dut-[...]`` line of the ``name`` answer and skips every
    other line up to ``m-ready`` (device_under_test.py, ``_get_name``), and its
    ``check_name`` pre-check (device_manager.py) searches ``m-name-dut-\\[(.*)\\]``, which
    stops at the end of that line; so this line costs it nothing. A device without it (the
    reference firmware) leaves the host calling its lap times "reported by the device".
    """
    if kind not in TIMER_KINDS:
        raise ValueError(f"unknown timer kind {kind!r} (one of {', '.join(TIMER_KINDS)})")
    return f"m-timer-[{kind}]"


def parse_timer(line: str) -> str | None:
    """The timer kind of an ``m-timer-[...]`` line, None for any other line or an unknown kind."""
    m = _TIMER.match(line)
    return m.group(1) if m and m.group(1) in TIMER_KINDS else None


def parse_error(line: str) -> str | None:
    """The text of an ``e-[...]`` line, None for any other line."""
    m = _ERROR.match(line)
    return m.group(1) if m else None


def to_eembc_input(data: bytes, signed: bool) -> bytes:
    """Bench input bytes -> what an EEMBC DUT takes: uint8 RGB.

    The bench quantises images to the model's input dtype; for an int8 input that is
    ``pixel - 128`` for the MLPerf Tiny model, and the reference firmware subtracts 128
    on the device. Adding 128 (flipping the top bit) makes the round trip exact for any
    int8 input, whatever its scale.
    """
    return bytes(b ^ 0x80 for b in data) if signed else bytes(data)


def from_eembc_input(data: bytes, signed: bool) -> bytes:
    """What a DUT received (uint8) -> the model's input bytes (int8 when ``signed``)."""
    return to_eembc_input(data, signed)


class LineSplitter:
    """Device bytes -> lines, as the runner reads them.

    The runner drops CR and NUL and ends a line at LF (serial_device.py); so does this.
    A line longer than :data:`MAX_LINE` is returned whole and flagged by the caller.
    """

    def __init__(self, limit: int = 4 * MAX_LINE) -> None:
        self._buf = bytearray()
        self.limit = limit

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        for b in data:
            if b == 0x0A:
                lines.append(self._buf.decode("ascii", errors="replace"))
                self._buf.clear()
            elif b not in (0x0D, 0x00) and len(self._buf) < self.limit:
                self._buf.append(b)
        return lines

    @property
    def pending(self) -> str:
        return self._buf.decode("ascii", errors="replace")


class CommandSplitter:
    """Host bytes -> commands, as a DUT reads them: up to ``%``, CR/LF/NUL ignored.

    Never holds more than :data:`MAX_COMMAND` characters: a longer command is discarded up
    to its ``%`` and comes out as ``None`` so that the device answers it with an error.
    """

    def __init__(self, limit: int = MAX_COMMAND) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._overlong = False

    def feed(self, data: bytes) -> list[str | None]:
        out: list[str | None] = []
        for b in data:
            if b == 0x25:  # '%'
                out.append(None if self._overlong else self._buf.decode("ascii", errors="replace"))
                self._buf.clear()
                self._overlong = False
            elif b in (0x0D, 0x0A, 0x00):
                continue
            elif len(self._buf) >= self.limit:
                self._overlong = True
            else:
                self._buf.append(b)
        return out
