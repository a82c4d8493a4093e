"""Uploading a built firmware with PlatformIO (``pio run -t upload``).

The port is the one the user gives, else the one a board profile's USB ids find; two
matching boards are an error (flashing the wrong one is worse than asking).
"""

from __future__ import annotations

import logging
from pathlib import Path

from harness.boards import Board
from harness.deploy import pio
from harness.deploy.build import elf_path, env_for
from harness.errors import LinkError, ToolMissing
from harness.paths import firmware_dir as default_firmware_dir

log = logging.getLogger(__name__)


def find_board_port(board: Board) -> str:
    """The one serial port whose USB id belongs to ``board``."""
    from harness.link.transport import find_ports

    found = find_ports(board.usb_ids)
    if not found:
        ids = ", ".join(f"{v:04x}:{p:04x}" for v, p in board.usb_ids) or "none listed"
        raise LinkError(f"no {board.name} found on USB (ids {ids}); give --port")
    if len(found) > 1:
        names = ", ".join(p.device for p in found)
        raise LinkError(f"several {board.name} boards found ({names}); give --port")
    return found[0].device


def flash(board: Board, port: str | None = None, *, renode: bool = False,
          firmware: Path | None = None) -> str:
    """Upload the last build of the board's environment; returns the port used."""
    fw = firmware or default_firmware_dir()
    env = env_for(board, renode)
    if not elf_path(fw, env).is_file():
        raise ToolMissing(f"no firmware built for {env} in {fw}; run `hil build --board {board.id}` first")
    target = port or find_board_port(board)
    pio.ensure_buildable(fw, env)
    pio.run(fw, env, targets=("upload",), upload_port=target, timeout=pio.UPLOAD_TIMEOUT_S)
    log.info("flashed %s on %s", env, target)
    return target
