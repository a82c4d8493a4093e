"""What other parts of the harness call to put a model on a board.

``hil bench --board B --flash`` builds and flashes before it benchmarks; it then checks
that the device reports ``BuildResult.model_sha256`` in its hello and refuses the device
otherwise (that check belongs to the bench).
"""

from __future__ import annotations

from pathlib import Path

from harness.boards import Board
from harness.deploy.build import BuildResult, build
from harness.deploy.flash import flash


def build_and_flash(board: Board, model: Path, port: str | None = None,
                    arena_bytes: int | None = None) -> BuildResult:
    """Build the firmware for ``model`` and upload it to the board on ``port`` (or found by USB id)."""
    result = build(board, model, arena_bytes=arena_bytes)
    used = flash(board, port)
    return BuildResult(
        result.board, result.env, result.model, result.model_sha256, result.generated,
        result.elf, result.size, result.notes + (f"flashed on {used}",),
    )
