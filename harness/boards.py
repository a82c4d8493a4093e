"""Board profiles, loaded from ``boards/<id>.toml``.

A profile holds the facts about a board that every part of the harness needs:
memory limits for fit checks, the PlatformIO environments that build for it, how to
find it on USB, how to emulate it, and the cost model the ``sim`` backend uses to
estimate latency. Keeping them in data files lets users add a board without code.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.paths import boards_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class CostModel:
    """Per-op coefficients for estimating cycles from MACs and output sizes."""

    source: str
    cycles_per_mac: dict[str, float]
    cycles_per_output_element: dict[str, float]
    default_cycles_per_output_element: float
    per_op_overhead_cycles: float

    def op_cycles(self, op: str, macs: int, output_elements: int) -> float:
        """Estimated cycles for one op: MAC-bound ops by MACs (plus a per-output term when the
        profile gives one, as calibrated profiles do), the rest by output size."""
        if op in self.cycles_per_mac and macs > 0:
            per_out = self.cycles_per_output_element.get(op, 0.0)
            work = self.cycles_per_mac[op] * macs + per_out * output_elements
        else:
            per = self.cycles_per_output_element.get(op, self.default_cycles_per_output_element)
            work = per * output_elements
        return work + self.per_op_overhead_cycles


#: Share of the measured arena the firmware allocates on top: the host measures with TFLM's
#: reference kernels, while CMSIS-NN and ESP-NN kernels ask for scratch buffers of their own.
ARENA_MARGIN_FRACTION = 0.15
#: Minimum headroom in bytes, for small models where a fraction is only a few bytes.
ARENA_MARGIN_MIN = 4096
ARENA_ALIGN = 16


def allocated_arena(measured: int, margin_fraction: float = ARENA_MARGIN_FRACTION,
                    margin_min: int = ARENA_MARGIN_MIN) -> int:
    """The arena the firmware allocates for a measured one: headroom added, 16-byte aligned.

    One rule for ``hil build`` (which allocates it) and ``hil analyze`` (which predicts it),
    so that the analysis checks the fit of the arena the build will really place in RAM.
    """
    margin = max(int(measured * margin_fraction), margin_min)
    return -(-(measured + margin) // ARENA_ALIGN) * ARENA_ALIGN


@dataclass(frozen=True)
class RamBudget:
    """What the firmware itself takes from the board's RAM, measured from a real build.

    A model fits only if its arena and input stage fit beside all of this: comparing the
    arena with the whole RAM says "fits" for models that then fail to start (the Nano's
    firmware with the reference model leaves under 18 KB of heap). ``static_bytes`` is the
    build's data + bss without the arena, the input stage, the camera frame buffer and the
    heap; ``heap_margin_bytes`` is what must stay free for what the core allocates at run time.
    """

    static_bytes: int
    camera_frame_bytes: int
    heap_margin_bytes: int
    source: str

    @property
    def total(self) -> int:
        return self.static_bytes + self.camera_frame_bytes + self.heap_margin_bytes

    def parts(self) -> tuple[tuple[str, int], ...]:
        """The budget's parts with the names every message uses, zero-sized ones left out."""
        named = (("camera frame", self.camera_frame_bytes), ("firmware static RAM", self.static_bytes),
                 ("heap margin", self.heap_margin_bytes))
        return tuple((name, n) for name, n in named if n)


@dataclass(frozen=True)
class Board:
    """One board profile; see ``boards/*.toml`` for the meaning and source of each figure."""

    id: str
    name: str
    mcu: str
    core: str
    arch: str
    clock_hz: int
    ram_bytes: int
    flash_bytes: int
    psram_bytes: int
    source: str
    flash_reserved_bytes: int
    ram_reserved_bytes: int
    bootloader_bytes: int
    arena_in_psram: bool
    timer: str
    pio_env: str
    pio_renode_env: str | None
    usb_ids: tuple[tuple[int, int], ...]
    baud: int
    serial_transport: str
    camera: dict[str, Any]
    emulator: dict[str, Any]
    cost_model: CostModel
    min_accuracy: float
    max_latency_ms: float
    path: Path
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    #: the measured breakdown behind ``ram_reserved_bytes`` (``[firmware.ram]``), when known
    ram_budget: RamBudget | None = None

    @property
    def flash_for_model(self) -> int:
        """Flash left for the model once the bootloader and firmware code are placed."""
        return self.flash_bytes - self.bootloader_bytes - self.flash_reserved_bytes

    @property
    def ram_for_arena(self) -> int:
        """RAM left for the tensor arena and the input buffer."""
        if self.arena_in_psram and self.psram_bytes:
            return self.psram_bytes
        return self.ram_bytes - self.ram_reserved_bytes

    def cycles_to_us(self, cycles: float) -> float:
        return cycles * 1e6 / self.clock_hz


@dataclass(frozen=True)
class FitReport:
    """Whether a model fits a board, with the numbers behind the answer."""

    board: str
    model_bytes: int
    arena_bytes: int
    input_bytes: int
    flash_available: int
    ram_available: int
    #: the firmware's own RAM beside the arena (``RamBudget.parts``) and the board's RAM size,
    #: when the board profile has a measured budget; the messages then show the whole sum
    reserved_parts: tuple[tuple[str, int], ...] = ()
    ram_bytes: int = 0
    #: False when ``arena_bytes`` is only a lower bound (the peak activations): the arena was
    #: not measured, so a model within the bound may still not fit
    arena_measured: bool = True

    @property
    def flash_ok(self) -> bool:
        return self.model_bytes <= self.flash_available

    @property
    def ram_ok(self) -> bool:
        return self.arena_bytes + self.input_bytes <= self.ram_available

    @property
    def fits(self) -> bool:
        return self.flash_ok and self.ram_ok

    @property
    def verdict(self) -> bool | None:
        """True or False when known; None when only the lower bound was checked and it passed."""
        if not self.fits:
            return False
        return True if self.arena_measured else None

    @property
    def ram_spare(self) -> int:
        """RAM left after the arena, the input and the firmware's own budget (negative: short)."""
        return self.ram_available - self.arena_bytes - self.input_bytes

    def _arena_words(self) -> str:
        return (f"arena {self.arena_bytes:,} B" if self.arena_measured
                else f"peak activations {self.arena_bytes:,} B (the arena's lower bound)")

    def ram_line(self) -> str:
        """The RAM sum the verdict rests on, for ``hil analyze`` and ``hil build``."""
        terms = [self._arena_words(), f"input {self.input_bytes:,} B"]
        terms += [f"{name} {n:,} B" for name, n in self.reserved_parts]
        used = self.arena_bytes + self.input_bytes + sum(n for _, n in self.reserved_parts)
        if self.reserved_parts:
            tail = f"= {used:,} B of {self.ram_bytes:,} B RAM"
        else:
            tail = f"= {self.arena_bytes + self.input_bytes:,} B of {self.ram_available:,} B left for them"
        left = self.ram_spare
        spare = f"{left:,} B spare" if left >= 0 else f"{-left:,} B short"
        return f"{' + '.join(terms)} {tail} ({spare})"

    def reason(self) -> str:
        """One line saying why the model does not fit (empty when it does)."""
        parts = []
        if not self.flash_ok:
            parts.append(
                f"model needs {self.model_bytes:,} B of flash, {self.board} has "
                f"{self.flash_available:,} B left for it"
            )
        if not self.ram_ok:
            if self.reserved_parts:
                parts.append(f"RAM: {self.ram_line()} on {self.board}")
            else:
                parts.append(
                    f"{self._arena_words()} + input {self.input_bytes:,} B exceed the "
                    f"{self.ram_available:,} B of RAM {self.board} has left for them"
                )
        return "; ".join(parts)


def check_fit(board: Board, model_bytes: int, arena_bytes: int, input_bytes: int = 0,
              arena_measured: bool = True) -> FitReport:
    """Compare a model's flash size and arena with what the board leaves for them.

    With a measured RAM budget (``[firmware.ram]``) the arena and input must fit beside the
    camera frame, the firmware's static RAM and a heap margin; the report carries those parts.
    """
    budget = None if board.arena_in_psram and board.psram_bytes else board.ram_budget
    return FitReport(
        board=board.id,
        model_bytes=model_bytes,
        arena_bytes=arena_bytes,
        input_bytes=input_bytes,
        flash_available=board.flash_for_model,
        ram_available=board.ram_for_arena,
        reserved_parts=budget.parts() if budget else (),
        ram_bytes=board.ram_bytes,
        arena_measured=arena_measured,
    )


def _parse_usb_id(text: str) -> tuple[int, int]:
    vid, _, pid = text.partition(":")
    try:
        return int(vid, 16), int(pid, 16)
    except ValueError as exc:
        raise ConfigError(f"bad USB id {text!r}: expected VID:PID in hex") from exc


def _ram_budget(table: dict[str, Any] | None) -> RamBudget | None:
    if table is None:
        return None
    return RamBudget(
        static_bytes=int(table["static_bytes"]),
        camera_frame_bytes=int(table.get("camera_frame_bytes", 0)),
        heap_margin_bytes=int(table.get("heap_margin_bytes", 0)),
        source=str(table["source"]),
    )


def _board_from_dict(data: dict[str, Any], path: Path) -> Board:
    try:
        fw = data.get("firmware", {})
        pio = data.get("platformio", {})
        ser = data.get("serial", {})
        cm = data["cost_model"]
        if isinstance(cm.get("calibration"), str):  # fitted by `hil calibrate`; see docs/boards.md
            from harness.calibration_file import apply_calibration

            cm = apply_calibration(cm, path)
        bench = data.get("bench", {})
        budget = _ram_budget(fw.get("ram"))
        return Board(
            id=data["id"],
            name=data["name"],
            mcu=data["mcu"],
            core=data["core"],
            arch=data["arch"],
            clock_hz=int(data["clock_hz"]),
            ram_bytes=int(data["ram_bytes"]),
            flash_bytes=int(data["flash_bytes"]),
            psram_bytes=int(data.get("psram_bytes", 0)),
            source=data.get("source", ""),
            flash_reserved_bytes=int(fw.get("flash_reserved_bytes", 0)),
            ram_reserved_bytes=budget.total if budget else int(fw.get("ram_reserved_bytes", 0)),
            bootloader_bytes=int(fw.get("bootloader_bytes", 0)),
            arena_in_psram=bool(fw.get("arena_in_psram", False)),
            timer=str(fw.get("timer", "dwt")),
            pio_env=pio["env"],
            pio_renode_env=pio.get("renode_env"),
            usb_ids=tuple(_parse_usb_id(u) for u in ser.get("usb_ids", [])),
            baud=int(ser.get("baud", 115200)),
            serial_transport=str(ser.get("transport", "uart")),
            camera=dict(data.get("camera", {})),
            emulator=dict(data.get("emulator", {})),
            cost_model=CostModel(
                source=cm.get("source", ""),
                cycles_per_mac={k: float(v) for k, v in cm.get("cycles_per_mac", {}).items()},
                cycles_per_output_element={
                    k: float(v) for k, v in cm.get("cycles_per_output_element", {}).items()
                },
                default_cycles_per_output_element=float(
                    cm.get("default_cycles_per_output_element", 10.0)
                ),
                per_op_overhead_cycles=float(cm.get("per_op_overhead_cycles", 0.0)),
            ),
            min_accuracy=float(bench.get("min_accuracy", 0.0)),
            max_latency_ms=float(bench.get("max_latency_ms", float("inf"))),
            path=path,
            raw=data,
            ram_budget=budget,
        )
    except KeyError as exc:
        raise ConfigError(f"board profile {path} lacks the field {exc.args[0]!r}") from exc


# -- the profile schema: checked before a profile is used ----------------------------------
# A clock of 0 would turn every latency into "n/a" and a negative RAM size into "exceeds
# -65,541 B", silently; so every key the harness reads is checked for type and range, and each
# mistake is one line naming the file, the key and what was expected.
@dataclass(frozen=True)
class Rule:
    """What one key must hold: a check and the words that say what it expects."""

    check: Callable[[Any], bool]
    expected: str
    required: bool = False


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def _number_table(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and _is_number(x) and x >= 0 for k, x in v.items()
    )


STR = Rule(lambda v: isinstance(v, str), "a string")
REQUIRED_STR = Rule(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string", required=True)
POSITIVE_INT = Rule(lambda v: _is_int(v) and v > 0, "an integer > 0", required=True)
NON_NEGATIVE_INT = Rule(lambda v: _is_int(v) and v >= 0, "an integer >= 0")
NON_NEGATIVE_NUMBER = Rule(lambda v: _is_number(v) and v >= 0, "a number >= 0")
POSITIVE_NUMBER = Rule(lambda v: _is_number(v) and v > 0, "a number > 0")
BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
TABLE = Rule(lambda v: isinstance(v, dict), "a table")
OP_TABLE = Rule(_number_table, "a table of op name = number >= 0")
USB_IDS = Rule(
    lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), 'a list of "VID:PID" strings'
)

TOP_LEVEL: dict[str, Rule] = {
    "id": REQUIRED_STR,
    "name": REQUIRED_STR,
    "mcu": REQUIRED_STR,
    "core": REQUIRED_STR,
    "arch": REQUIRED_STR,
    "clock_hz": POSITIVE_INT,
    "ram_bytes": POSITIVE_INT,
    "flash_bytes": POSITIVE_INT,
    "psram_bytes": NON_NEGATIVE_INT,
    "source": STR,
}

TABLES: dict[str, dict[str, Rule]] = {
    "firmware": {
        "flash_reserved_bytes": NON_NEGATIVE_INT,
        "ram_reserved_bytes": NON_NEGATIVE_INT,
        "bootloader_bytes": NON_NEGATIVE_INT,
        "arena_in_psram": BOOL,
        "timer": STR,
        "ram": TABLE,
    },
    "platformio": {"env": REQUIRED_STR, "renode_env": STR},
    "serial": {
        "usb_ids": USB_IDS,
        "baud": Rule(lambda v: _is_int(v) and v > 0, "an integer > 0"),
        "transport": STR,
    },
    "bench": {
        "min_accuracy": Rule(lambda v: _is_number(v) and 0 <= v <= 1, "a number from 0 to 1"),
        "max_latency_ms": POSITIVE_NUMBER,
    },
}

#: the measured RAM budget, ``[firmware.ram]`` (RamBudget); it replaces ram_reserved_bytes
FIRMWARE_RAM: dict[str, Rule] = {
    "static_bytes": POSITIVE_INT,
    "camera_frame_bytes": NON_NEGATIVE_INT,
    "heap_margin_bytes": NON_NEGATIVE_INT,
    "source": REQUIRED_STR,
}

#: every key a ``[cost_model]`` table may have (the sim's estimate, QEMU's CPI, a calibration)
COST_MODEL: dict[str, Rule] = {
    "source": STR,
    "cycles_per_mac": OP_TABLE,
    "cycles_per_output_element": OP_TABLE,
    "default_cycles_per_output_element": NON_NEGATIVE_NUMBER,
    "per_op_overhead_cycles": NON_NEGATIVE_NUMBER,
    "cpi": POSITIVE_NUMBER,
    "cpi_source": STR,
    "calibration": Rule(lambda v: isinstance(v, str) and v.strip() != "", "a file path (a string)"),
}

#: tables whose contents are free-form (described in docs/boards.md), checked only for being tables
FREE_TABLES = ("camera", "emulator")


def _fail(path: Path, key: str, value: Any, expected: str) -> ConfigError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ConfigError(f"board profile {path}: {key} = {shown} is wrong: expected {expected}")


def _check_table(data: dict[str, Any], rules: dict[str, Rule], path: Path, prefix: str) -> None:
    for key, rule in rules.items():
        name = f"{prefix}{key}"
        if key not in data:
            if rule.required:
                raise ConfigError(f"board profile {path} lacks the field {name!r} ({rule.expected})")
            continue
        if not rule.check(data[key]):
            raise _fail(path, name, data[key], rule.expected)


def validate_board_data(data: dict[str, Any], path: Path) -> None:
    """Raise one :class:`ConfigError` line for the first key of ``data`` that breaks the schema."""
    _check_table(data, TOP_LEVEL, path, "")
    for table, rules in TABLES.items():
        section = data.get(table, {})
        if not isinstance(section, dict):
            raise _fail(path, f"[{table}]", section, "a table")
        _check_table(section, rules, path, f"{table}.")
    for table in FREE_TABLES:
        if not isinstance(data.get(table, {}), dict):
            raise _fail(path, f"[{table}]", data[table], "a table")
    if "platformio" not in data:
        raise ConfigError(f"board profile {path} lacks the field 'platformio.env' (a non-empty string)")
    cm = data.get("cost_model")
    if cm is None:
        raise ConfigError(f"board profile {path} lacks the field 'cost_model' (a table)")
    if not isinstance(cm, dict):
        raise _fail(path, "[cost_model]", cm, "a table")
    unknown = sorted(set(cm) - set(COST_MODEL))
    if unknown:
        raise ConfigError(
            f"board profile {path}: unknown key cost_model.{unknown[0]} "
            f"(known keys: {', '.join(COST_MODEL)})"
        )
    _check_table(cm, COST_MODEL, path, "cost_model.")
    ram = data.get("firmware", {}).get("ram")
    if ram is not None:
        _check_table(ram, FIRMWARE_RAM, path, "firmware.ram.")
        unknown = sorted(set(ram) - set(FIRMWARE_RAM))
        if unknown:
            raise ConfigError(
                f"board profile {path}: unknown key firmware.ram.{unknown[0]} "
                f"(known keys: {', '.join(FIRMWARE_RAM)})"
            )
        if "ram_reserved_bytes" in data["firmware"]:
            raise ConfigError(
                f"board profile {path}: firmware.ram_reserved_bytes and [firmware.ram] both say what "
                "the firmware takes from RAM; keep one ([firmware.ram], measured, replaces it)"
            )
    _check_budgets(data, path)


def _check_budgets(data: dict[str, Any], path: Path) -> None:
    """The firmware's reserved flash and RAM must leave room for a model and an arena."""
    fw = data.get("firmware", {})
    flash_used = fw.get("flash_reserved_bytes", 0) + fw.get("bootloader_bytes", 0)
    if flash_used >= data["flash_bytes"]:
        raise ConfigError(
            f"board profile {path}: flash_bytes = {data['flash_bytes']} is wrong: expected more than "
            f"firmware.flash_reserved_bytes + firmware.bootloader_bytes = {flash_used}"
        )
    arena_elsewhere = bool(fw.get("arena_in_psram", False)) and data.get("psram_bytes", 0) > 0
    budget = _ram_budget(fw.get("ram"))
    reserved = budget.total if budget else fw.get("ram_reserved_bytes", 0)
    if not arena_elsewhere and reserved >= data["ram_bytes"]:
        what = "[firmware.ram]'s parts" if budget else "firmware.ram_reserved_bytes"
        raise ConfigError(
            f"board profile {path}: ram_bytes = {data['ram_bytes']} is wrong: expected more than "
            f"{what} = {reserved}"
        )


def load_board_file(path: Path) -> Board:
    """Load one profile from a TOML file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"no board profile at {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"board profile {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"board profile {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read board profile {path}: {exc.strerror}") from None
    validate_board_data(data, path)
    return _board_from_dict(data, path)


def list_boards(directory: Path | None = None) -> list[Board]:
    """All profiles in the boards folder, sorted by id."""
    folder = directory or boards_dir()
    return sorted((load_board_file(p) for p in folder.glob("*.toml")), key=lambda b: b.id)


def load_board(board_id: str, directory: Path | None = None) -> Board:
    """The profile with this id; the error names the ids that exist."""
    folder = directory or boards_dir()
    path = folder / f"{board_id}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.toml"))) or "none"
        raise ConfigError(f"unknown board {board_id!r} (known boards: {known})")
    return load_board_file(path)
