"""What other parts of the harness call to put a model on a board or an emulator.

This module is deploy's public face: the bench and the device backends use these
functions and never reach into the build modules behind them.

``hil bench --board B --flash`` builds and flashes before it benchmarks; it then checks
that the device reports ``BuildResult.model_sha256`` in its hello and refuses the device
otherwise (that check belongs to the bench).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.boards import Board
from harness.deploy.build import BuildResult, build, elf_path, env_for
from harness.deploy.flash import flash
from harness.deploy.renode_script import render_script
from harness.errors import ConfigError
from harness.paths import firmware_dir

#: Emulator targets :func:`build_emulator_image` knows.
EMULATOR_TARGETS = ("native", "qemu")


def build_and_flash(board: Board, model: Path, port: str | None = None,
                    arena_bytes: int | None = None) -> BuildResult:
    """Build the firmware for ``model`` and upload it to the board on ``port`` (or found by USB id)."""
    result = build(board, model, arena_bytes=arena_bytes)
    used = flash(board, port)
    return BuildResult(
        result.board, result.env, result.model, result.model_sha256, result.generated,
        result.elf, result.size, result.notes + (f"flashed on {used}",),
    )


@dataclass(frozen=True)
class EmulatorImage:
    """A firmware image an emulated board runs: the native runner or a QEMU ELF."""

    target: str
    path: Path
    engine: str


def build_emulator_image(target: str) -> EmulatorImage:
    """Build (or reuse) the firmware image for an emulated board.

    ``native``: the host build of the firmware core (CMake + g++), a runner serving
    protocol v1 on a pseudo-terminal. ``qemu``: the Cortex-M4 build for mps2-an386.
    """
    from harness.deploy import emulators

    if target == "native":
        return EmulatorImage("native", emulators.build_native(), "test-double")
    if target == "qemu":
        return EmulatorImage("qemu", emulators.build_qemu_firmware(), "test-double")
    raise ConfigError(f"unknown emulator target {target!r} (known: {', '.join(EMULATOR_TARGETS)})")


def renode_elf(board: Board, firmware: Path | None = None) -> Path:
    """Where PlatformIO puts the board's Renode build (it may not be built yet)."""
    return elf_path(firmware or firmware_dir(), env_for(board, renode=True))


def renode_script(board: Board, elf: Path, port: int) -> str:
    """The Renode script that loads ``elf`` on the board's platform with its UART on ``port``."""
    return render_script(board, elf, port)
