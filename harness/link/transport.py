"""Opening the byte pipe to a device through any pyserial URL.

One code path serves a board on ``/dev/ttyACM0``, a Renode or QEMU UART on
``socket://127.0.0.1:PORT``, a board-farm port on ``rfc2217://host:port`` and a simulated
board's pseudo-terminal, so that every backend is tested through the same link code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import serial
import serial.tools.list_ports

from harness.errors import LinkError

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 10.0


def open_port(url: str, baud: int | None = None, timeout: float = 0.05) -> serial.SerialBase:
    """Open a port by path or URL; a missing or busy port is a one-line :class:`LinkError`.

    ``baud`` None leaves the rate at 115200, which pseudo-terminals and sockets ignore.
    """
    # A write that blocks for long means the device stopped reading; pyserial's RFC 2217
    # client cannot bound writes, so there the session's read deadlines have to do.
    write_timeout = None if url.startswith("rfc2217://") else WRITE_TIMEOUT_S
    try:
        port = serial.serial_for_url(
            url, baudrate=baud or 115200, timeout=timeout, write_timeout=write_timeout
        )
    except (serial.SerialException, OSError, ValueError, NotImplementedError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LinkError(f"cannot open port {url}: {reason}") from None
    log.debug("opened %s at %s baud", url, baud or "unset")
    return port


@dataclass(frozen=True)
class FoundPort:
    device: str
    vid: int
    pid: int
    description: str


def find_ports(usb_ids: tuple[tuple[int, int], ...]) -> list[FoundPort]:
    """Serial ports whose USB vendor and product id are among ``usb_ids``."""
    found = []
    for info in serial.tools.list_ports.comports():
        if info.vid is None or info.pid is None:
            continue
        if (info.vid, info.pid) in usb_ids:
            found.append(FoundPort(info.device, info.vid, info.pid, info.description or ""))
    return sorted(found, key=lambda p: p.device)
