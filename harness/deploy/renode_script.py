"""The Renode script that runs the firmware ELF with its UART on a TCP socket.

Kept apart from the device backend so the script can be generated and checked where
Renode is not installed: the template lives in ``firmware/renode/`` next to the firmware
it runs, and the board profile says which Renode platform and UART to use.
"""

from __future__ import annotations

from pathlib import Path

from harness.boards import Board
from harness.errors import ConfigError
from harness.paths import firmware_dir

TEMPLATE_NAME = "nano33ble.resc.in"


def template_path(board: Board) -> Path:
    name = str(board.emulator.get("renode_script", TEMPLATE_NAME))
    return firmware_dir() / "renode" / name


def render_script(board: Board, elf: Path, port: int, template: Path | None = None) -> str:
    """The .resc text for ``board`` running ``elf`` with its protocol UART on TCP ``port``."""
    platform = board.emulator.get("renode_platform")
    uart = board.emulator.get("renode_uart")
    if not platform or not uart:
        raise ConfigError(f"board {board.id} has no Renode mapping (emulator.renode_platform/renode_uart)")
    path = template or template_path(board)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"no Renode script template at {path}") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"TCP port {port} is out of range")
    return text.format(machine=board.id, platform=platform, elf=elf.resolve(), port=port, uart=uart)
