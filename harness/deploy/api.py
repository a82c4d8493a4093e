"""What other parts of the harness call to put a model on a board or an emulator.

This module is deploy's public face: the bench and the device backends use these
functions and never reach into the build modules behind them.

``hil bench --board B --flash`` builds and flashes before it benchmarks; it then checks
that the device reports ``BuildResult.model_sha256`` in its hello and refuses the device
otherwise (that check belongs to the bench).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.boards import Board
from harness.deploy.build import BuildResult, build, elf_path, env_for
from harness.deploy.flash import flash
from harness.deploy.renode_script import render_platform, render_script
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
    """A firmware image an emulated board runs: the native runner or a QEMU ELF.

    ``engine`` is "tflm" for the real firmware (``firmware`` then says what it was built
    from: model, TFLM tree, cache key, ELF sizes) and "test-double" for the protocol
    double, which exists for protocol tests only and is never a benchmark result.
    """

    target: str
    path: Path
    engine: str
    firmware: dict[str, object] = field(default_factory=dict)


def build_emulator_image(target: str, model: Path | None = None, board: Board | None = None, *,
                         protocol: str = "v1", tflm_dir: Path | str | None = None,
                         test_double: bool = False, fit_board: bool = True) -> EmulatorImage:
    """Build (or reuse from the cache) the firmware image an emulated board runs.

    With ``model`` (and the ``board`` it is fitted for): the real firmware, TFLM +
    CMSIS-NN with the model compiled in, for ``native`` (host g++) or ``qemu``
    (Cortex-M4, mps2-an386); ``fit_board=False`` checks the model against the emulator's
    memory instead of the board's (for counting work, as ``hil calibrate`` does). With
    ``test_double=True``: the protocol test double. There is no silent fallback.
    """
    from harness.deploy import emulators, tflm_build

    if target not in EMULATOR_TARGETS:
        raise ConfigError(f"unknown emulator target {target!r} (known: {', '.join(EMULATOR_TARGETS)})")
    if test_double:
        if target == "native":
            return EmulatorImage("native", emulators.build_native(), "test-double")
        return EmulatorImage("qemu", emulators.build_qemu_firmware(), "test-double")
    if model is None or board is None:
        raise ConfigError(f"the {target} backend runs the real firmware built for a model: give --model")
    image = tflm_build.build_image(target, Path(model), board, protocol=protocol, tflm_dir=tflm_dir,
                                   fit_board=fit_board)
    return EmulatorImage(target, image.path, "tflm", image.to_dict())


def renode_elf(board: Board, firmware: Path | None = None) -> Path:
    """Where PlatformIO puts the board's Renode build (it may not be built yet)."""
    return elf_path(firmware or firmware_dir(), env_for(board, renode=True))


def renode_script(board: Board, elf: Path, port: int, platform: Path) -> str:
    """The Renode script loading ``elf`` on ``platform`` (render_platform's text), UART on ``port``."""
    return render_script(board, elf, port, platform)


def renode_platform(board: Board) -> str:
    """The platform description (.repl) for ``board`` that renode_script's script loads."""
    return render_platform(board)
