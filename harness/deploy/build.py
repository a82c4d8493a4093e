"""``hil build``: model in, firmware out, with its flash and RAM use.

The stages run in the order that fails cheapest first: read the model, measure its arena
with the real TFLM allocator, check that it fits the board, write the generated sources,
check that PlatformIO can build without waiting on an unreachable registry, build, and
read the ELF. Each stage that can fail says why in one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from harness.boards import Board
from harness.deploy import codegen, pio
from harness.deploy.elf_size import ElfSize, elf_size
from harness.errors import ConfigError
from harness.models.tflite_file import ModelInfo
from harness.paths import firmware_dir as default_firmware_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """What a build produced; ``size`` is None when only the sources were generated."""

    board: str
    env: str
    model: Path
    model_sha256: str
    generated: codegen.GeneratedSources
    elf: Path | None = None
    size: ElfSize | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        g = self.generated
        lines = [
            f"board {self.board}, env {self.env}, model {self.model.name} "
            f"(sha256 {self.model_sha256[:16]}...)",
            f"ops: {', '.join(g.ops)}",
            f"arena {g.arena.size:,} B ({g.arena.measured:,} B measured + headroom), "
            f"model {g.model_bytes:,} B, input {g.input_bytes:,} B",
            f"RAM budget: {g.fit.ram_line()}",
            f"generated: {g.directory}",
        ]
        if self.size is not None and self.elf is not None:
            lines.append(
                f"ELF {self.elf}: flash {self.size.flash:,} B (text {self.size.text:,} + data "
                f"{self.size.data:,}), static RAM {self.size.ram:,} B (data {self.size.data:,} + "
                f"bss {self.size.bss:,})"
            )
        lines.extend(self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "board": self.board, "env": self.env, "model": str(self.model),
            "model_sha256": self.model_sha256, "ops": list(self.generated.ops),
            "arena_size": self.generated.arena.size, "arena_measured": self.generated.arena.measured,
            "model_bytes": self.generated.model_bytes,
            "ram_budget": self.generated.fit.ram_line(), "ram_spare_bytes": self.generated.fit.ram_spare,
            "elf": str(self.elf) if self.elf else None,
            "size": self.size.to_dict() if self.size else None,
        }


def env_for(board: Board, renode: bool = False) -> str:
    if not renode:
        return board.pio_env
    if not board.pio_renode_env:
        raise ConfigError(f"board {board.id} has no Renode build (no platformio.renode_env)")
    return board.pio_renode_env


def elf_path(firmware: Path, env: str) -> Path:
    return firmware / ".pio" / "build" / env / "firmware.elf"


def generate_sources(board: Board, model_path: Path, firmware: Path | None = None,
                     arena_bytes: int | None = None) -> codegen.GeneratedSources:
    """Stages up to the generated sources: model, arena, fit, codegen."""
    fw = firmware or default_firmware_dir()
    model = ModelInfo.from_file(model_path)
    model.require_int8_io()
    arena = (codegen.plan_arena(arena_bytes, source="given")
             if arena_bytes else codegen.measure_arena(model))
    return codegen.generate(model, board, fw, arena)


def build(board: Board, model_path: Path, *, renode: bool = False, firmware: Path | None = None,
          arena_bytes: int | None = None, compile_firmware: bool = True) -> BuildResult:
    """Generate, then (unless ``compile_firmware`` is False) build with PlatformIO and size it."""
    fw = firmware or default_firmware_dir()
    env = env_for(board, renode)
    generated = generate_sources(board, model_path, fw, arena_bytes)
    if not compile_firmware:
        return BuildResult(board.id, env, model_path, generated.model_sha256, generated,
                           notes=("firmware not compiled (--no-compile)",))
    pio.ensure_buildable(fw, env)
    pio.run(fw, env)
    elf = elf_path(fw, env)
    return BuildResult(board.id, env, model_path, generated.model_sha256, generated, elf, elf_size(elf))
