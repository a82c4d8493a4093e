"""A small RFC 2217 server in front of a local serial port, for tests.

Board farms export serial ports over the network with RFC 2217 (ser2net, labgrid's
serial server); the harness reaches them through pyserial's ``rfc2217://`` URL. This
bridge serves a simulated board's pseudo-terminal the same way, on 127.0.0.1 only, so
that the whole conformance suite also runs through a real RFC 2217 connection: telnet
negotiation, IAC escaping of 0xFF bytes and all.
"""

from __future__ import annotations

import logging
import socket
import threading
from types import TracebackType

import serial
import serial.rfc2217

log = logging.getLogger(__name__)


class _Connection:
    """What PortManager writes telnet replies to: the client socket, behind a lock."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


class _PtyLines:
    """The serial port as PortManager sees it: a pseudo-terminal has no modem lines.

    A real adapter reports CTS/DSR/RI/CD and takes DTR/RTS; a pty refuses those ioctls,
    so this reports ready lines, ignores line changes and passes everything else (baud
    rate, reads, writes) through.
    """

    cts = True
    dsr = True
    ri = False
    cd = True

    def __init__(self, port: serial.SerialBase) -> None:
        object.__setattr__(self, "_port", port)

    def __getattr__(self, name: str) -> object:
        return getattr(self._port, name)

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("dtr", "rts", "break_condition"):
            return  # control lines a pty does not have; a real adapter would set them
        setattr(self._port, name, value)


class Rfc2217Bridge:
    """Serves one local serial device to RFC 2217 clients, one client at a time."""

    def __init__(self, device: str) -> None:
        self.serial = serial.serial_for_url(device, timeout=0.02)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = int(self.server.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="rfc2217-bridge", daemon=True)

    @property
    def url(self) -> str:
        return f"rfc2217://127.0.0.1:{self.port}"

    def __enter__(self) -> Rfc2217Bridge:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()
        self.serial.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _addr = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with sock:
                self._session(sock)

    def _session(self, sock: socket.socket) -> None:
        sock.settimeout(0.05)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(sock)
        manager = serial.rfc2217.PortManager(_PtyLines(self.serial), conn)
        closed = threading.Event()
        pump = threading.Thread(target=self._to_network, args=(conn, manager, closed), daemon=True)
        pump.start()
        try:
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                self.serial.write(b"".join(manager.filter(data)))
        finally:
            closed.set()
            pump.join(timeout=5)

    def _to_network(
        self, conn: _Connection, manager: serial.rfc2217.PortManager, closed: threading.Event
    ) -> None:
        while not closed.is_set() and not self._stop.is_set():
            try:
                data = self.serial.read(max(1, self.serial.in_waiting))
                if data:
                    conn.write(b"".join(manager.escape(data)))
            except OSError:
                log.debug("bridge lost its client", exc_info=True)
                return
