"""What a latency figure is: a measured time, a count of instructions, or an estimate.

Every surface that shows latency (console summary, run.json, HTML report, compare,
JUnit/OpenMetrics/Markdown) takes its wording from here, so that the same run is labelled
the same way everywhere and a count of QEMU instructions never reads like a time.

- Cycle counters on a board (DWT, CCOUNT, SysTick) and the host clock are *measured* times.
- QEMU's ``-icount shift=0`` counter *counts instructions*. The harness reports them as
  instructions, and derives an *estimated* time as instructions x the board profile's
  cycles-per-instruction figure (``[cost_model] cpi``, with its source) / the board's clock.
  A board without a CPI figure gets no time estimate at all.
- The sim backend's cycles are *estimated* from the board's cost model.
- An EEMBC device's ``m-lap-us`` times are what its timer says; the project's device ends
  announce which timer that is, any other device's times are *reported by the device*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.boards import Board

MEASURED_TIMERS = {
    "dwt": "DWT cycle counter",
    "ccount": "Xtensa CCOUNT cycle counter",
    "systick": "SysTick timer",
    "host_clock": "host clock",
}


@dataclass(frozen=True)
class LatencyBasis:
    """How one run's latency figures were obtained, as run.json's ``latency`` block stores it."""

    timer: str  # the device's timer kind, lower case ("dwt", "instructions", "estimated", ...)
    # "measured" | "estimated" | "counted" (instructions, no time estimate possible) |
    # "reported" (an EEMBC device's lap times, its timer unknown: never called measured)
    kind: str
    count_unit: str  # what the device's raw counts count: "cycles" | "instructions" | "ns"
    time_unit: str | None  # "us" when latency_us_* hold a time (measured or estimated), else None
    source: str  # one line: where the time figure comes from
    cpi: float | None = None  # cycles per instruction used for an instructions-based estimate

    @property
    def estimated(self) -> bool:
        return self.kind != "measured"

    @property
    def label(self) -> str:
        """The words shown next to every latency figure."""
        if self.kind == "measured":
            return f"measured ({self.source})"
        if self.kind == "counted":
            return f"counted instructions, no time estimate ({self.source})"
        return self.source

    def to_dict(self) -> dict[str, Any]:
        return {
            "timer": self.timer,
            "kind": self.kind,
            "estimated": self.estimated,
            "count_unit": self.count_unit,
            "time_unit": self.time_unit,
            "source": self.source,
            "label": self.label,
            "cpi": self.cpi,
        }


def board_cpi(board: Board) -> tuple[float | None, str]:
    """The profile's cycles-per-instruction figure and its source (None where it has none)."""
    cm = board.raw.get("cost_model", {}) if isinstance(board.raw, dict) else {}
    cpi = cm.get("cpi")
    src = str(cm.get("cpi_source", "board profile"))
    return (float(cpi) if isinstance(cpi, int | float) and cpi > 0 else None), src


def cost_model_source(board: Board) -> str:
    """How the sim's estimate is labelled: calibrated from QEMU, or the profile's prior figures."""
    return f"estimated from the {board.id} cost model (source: {board.cost_model.source or 'board profile'})"


#: Who counts the instructions of an emulated run, by backend (QEMU unless named here).
INSTRUCTION_COUNTERS = {
    "renode": ("Renode", "Renode virtual time, one DWT tick per instruction"),
}


def latency_basis(timer: str, board: Board, backend: str = "qemu") -> LatencyBasis:
    """The basis of a run's latency from the device's timer kind and the board profile.

    ``backend`` names the emulator whose instruction counts an ``instructions`` timer
    holds (QEMU's -icount, or Renode's virtual time), so the label says which one.
    """
    timer = timer.lower()
    if timer in MEASURED_TIMERS:
        unit = "ns" if timer == "host_clock" else "cycles"
        return LatencyBasis(timer, "measured", unit, "us", MEASURED_TIMERS[timer])
    if timer == "instructions":
        name, how = INSTRUCTION_COUNTERS.get(backend, ("QEMU", "QEMU -icount"))
        cpi, src = board_cpi(board)
        if cpi is None:
            return LatencyBasis(timer, "counted", "instructions", None,
                                f"{how}; the {board.id} profile has no CPI figure")
        mhz = board.clock_hz / 1e6
        return LatencyBasis(
            timer, "estimated", "instructions", "us",
            f"estimated from {name} instruction counts x CPI {cpi:g} ({src}) at {mhz:g} MHz", cpi,
        )
    return LatencyBasis(timer, "estimated", "cycles", "us", cost_model_source(board))


def eembc_lap_basis(timer: str | None) -> LatencyBasis:
    """The basis of an EEMBC device's ``m-lap-us`` times, from the timer kind it announced.

    Only the project's own device ends announce one (``m-timer-[kind]`` in the ``name``
    answer); without it the times are "reported by the device": the host cannot tell a
    cycle counter from an estimate, so it never calls them measured.
    """
    if timer in MEASURED_TIMERS:
        what = "host time, not a board's" if timer == "host_clock" else MEASURED_TIMERS[timer]
        return LatencyBasis(timer, "measured", "us", "us",
                            f"the DUT's EEMBC m-lap-us timer ({what}, as the device announced)")
    if timer == "instructions":
        return LatencyBasis(timer, "estimated", "us", "us",
                            "EEMBC m-lap-us of an emulator: time derived from QEMU instruction counts "
                            "by the firmware (as the device announced), not measured")
    if timer == "estimated":
        return LatencyBasis(timer, "estimated", "us", "us",
                            "EEMBC m-lap-us of a simulated device: its cost model's estimate "
                            "(as the device announced), not measured")
    return LatencyBasis("eembc_lap_us", "reported", "us", "us",
                        "reported by the device (EEMBC m-lap-us; the device does not say what its "
                        "timer is)")


def estimated_us(instructions: float, basis: LatencyBasis, clock_hz: int) -> float | None:
    """Instructions x CPI / clock, in microseconds; None where no CPI is known."""
    if basis.cpi is None or clock_hz <= 0:
        return None
    return instructions * basis.cpi * 1e6 / clock_hz


def basis_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """run.json's ``latency`` block; runs written before it existed get one from latency_source."""
    block = manifest.get("latency")
    if isinstance(block, dict) and block.get("label"):
        return block
    src = str(manifest.get("latency_source") or "unknown")
    if src == "instructions":  # an old run: latency_us_* hold instructions / the device's clock
        return {"timer": "instructions", "kind": "counted", "estimated": True, "count_unit": "instructions",
                "time_unit": None, "source": "QEMU -icount", "label": "counted instructions (old run)",
                "cpi": None}
    if src == "estimated":
        return {"timer": "estimated", "kind": "estimated", "estimated": True, "count_unit": "cycles",
                "time_unit": "us", "source": "sim cost model",
                "label": "estimated by the simulator's cost model",
                "cpi": None}
    if src == "reported":
        return {"timer": "eembc_lap_us", "kind": "reported", "estimated": True, "count_unit": "us",
                "time_unit": "us", "source": "EEMBC m-lap-us", "label": "reported by the device",
                "cpi": None}
    kind = "measured" if src == "measured" else "unknown"
    return {"timer": src, "kind": kind, "estimated": kind != "measured", "count_unit": "cycles",
            "time_unit": "us", "source": src, "label": src, "cpi": None}


#: what :func:`latency_kind` calls each kind of latency figure; figures of two kinds are
#: never ranked against each other (a QEMU count is not slower than a sim estimate)
LATENCY_KINDS = ("measured", "host clock", "counted", "estimated", "reported by the device", "unknown")


def latency_kind(manifest: dict[str, Any]) -> str:
    """Which kind of figure a run's latency is, for deciding what it may be compared with.

    ``measured`` (a board's cycle counter), ``host clock`` (the native runner: a PC's time,
    not a board's), ``counted`` (QEMU instruction counts, with or without a CPI-based
    time), ``estimated`` (the sim's cost model), ``reported by the device`` (an EEMBC
    device that does not say what its timer is), else ``unknown``.
    """
    basis = basis_of(manifest)
    kind, timer = str(basis.get("kind") or ""), str(basis.get("timer") or "")
    backend = str(manifest.get("backend") or "")
    if kind == "reported":
        return "reported by the device"
    if kind == "counted" or timer == "instructions" or (timer == "eembc_lap_us" and backend == "qemu"):
        return "counted"
    if timer == "host_clock" or (timer == "eembc_lap_us" and backend == "native"):
        return "host clock"
    if kind in ("measured", "estimated"):
        return kind
    return "unknown"


def latency_label(manifest: dict[str, Any]) -> str:
    """The label for a run's latency figures, e.g. "measured (DWT cycle counter)"."""
    return str(basis_of(manifest).get("label") or "unknown")


def shows_time(manifest: dict[str, Any]) -> bool:
    """Whether the run's latency_us_* figures are a time (measured or estimated)."""
    return basis_of(manifest).get("time_unit") == "us"


def format_instructions(n: Any) -> str:
    """A count of instructions, e.g. "24.96 M instr"."""
    if not isinstance(n, int | float):
        return "n/a"
    if abs(n) >= 1e6:
        return f"{n / 1e6:.2f} M instr"
    if abs(n) >= 1e3:
        return f"{n / 1e3:.1f} k instr"
    return f"{n:.0f} instr"
