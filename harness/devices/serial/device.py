"""The ``serial`` backend: a board running the harness firmware, on a port.

The port is any pyserial URL given with ``port=`` (``/dev/ttyACM0``, ``socket://host:p``,
``rfc2217://host:p``, a pty path), or found by the USB ids of the board profile when
exactly one such port is attached. Baud comes from the board profile unless given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.boards import Board
from harness.devices.base import DeviceOptions, SessionDevice, register_backend
from harness.errors import ConfigError, LinkError
from harness.link.messages import Log
from harness.link.protocol import Protocol
from harness.link.transport import find_ports


def present_ports() -> list[str]:
    """Every serial port the system lists, for error messages."""
    import serial.tools.list_ports

    return sorted(p.device for p in serial.tools.list_ports.comports())


def locate_port(board: Board) -> str:
    """The one port whose USB id belongs to ``board``; otherwise a one-line error."""
    ids = ", ".join(f"{vid:04x}:{pid:04x}" for vid, pid in board.usb_ids) or "none in the profile"
    found = find_ports(board.usb_ids)
    if not found:
        ports = present_ports()
        listing = ", ".join(ports) if ports else "none"
        raise LinkError(
            f"no {board.name} found by USB id ({ids}); serial ports present: {listing}; "
            "connect the board or give --port"
        )
    if len(found) > 1:
        names = ", ".join(f"{p.device} ({p.description})" if p.description else p.device for p in found)
        raise ConfigError(f"several {board.name} boards are attached: {names}; choose one with --port")
    return found[0].device


@dataclass(frozen=True)
class SerialOptions(DeviceOptions):
    """A port URL (found by USB id when None) and its baud rate (the board's by default)."""

    port: str | None = None
    baud: int | None = None

    takes_port: ClassVar[bool] = True
    takes_baud: ClassVar[bool] = True


@register_backend("serial", SerialOptions)
class SerialDevice(SessionDevice):
    """A real board (or anything speaking protocol v1) behind a serial port."""

    backend = "serial"

    def __init__(
        self,
        board: Board,
        *,
        port: str | None = None,
        baud: int | None = None,
        model: Path | None = None,
        timeout: float = 2.0,
        retries: int = 3,
        on_log: Callable[[Log], None] | None = None,
        protocol: Protocol | str = Protocol.V1,
    ) -> None:
        super().__init__(board, timeout=timeout, retries=retries, on_log=on_log, protocol=protocol)
        self.model = model
        if baud is not None and baud <= 0:
            raise ConfigError(f"baud must be a positive rate, not {baud}")
        self.port = port
        self.baud = baud

    def _start(self) -> tuple[str, int | None]:
        url = self.port or locate_port(self.board)
        return url, self.baud or self.board.baud
