"""``hil serve``: stand a device up on a pseudo-terminal for another program to talk to.

The official MLPerf Tiny runner (or any terminal program, or another ``hil bench``) needs
a serial port. ``hil serve`` starts the simulated board, or the native or QEMU firmware
image built for the model, speaking protocol v1 or the EEMBC DUT protocol, and puts a
symlink at ``--link`` to its pseudo-terminal. It serves until SIGTERM or SIGINT, then
stops the device and removes the link. On start-up it says where latency figures come
from, since on the sim they are the cost model's estimate, not a measurement.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import tty
from pathlib import Path
from types import FrameType
from typing import Any

from harness.boards import Board
from harness.errors import ConfigError, DeviceError
from harness.link.protocol import Protocol

log = logging.getLogger(__name__)

SERVE_BACKENDS = ("sim", "native", "qemu")
_POLL_S = 0.2


def _latency_note(backend: str, protocol: Protocol, board: Board) -> str:
    """One line: what the lap times (EEMBC) or cycles (v1) of this device are."""
    what = "m-lap-us lap times" if protocol is Protocol.EEMBC else "cycle counts"
    if backend == "sim":
        from harness.units import cost_model_source

        return f"latency: {what} are ESTIMATED, not measured: {cost_model_source(board)}"
    if backend == "native":
        return f"latency: {what} come from the host clock (the firmware compiled for this PC), not a board's"
    if protocol is Protocol.EEMBC:
        cpi = (board.raw.get("cost_model") or {}).get("cpi")
        return (f"latency: {what} are ESTIMATED from QEMU -icount instruction counts x CPI {cpi} at "
                f"{board.clock_hz / 1e6:g} MHz ({board.id}'s profile), not measured on a board")
    return f"latency: {what} come from QEMU -icount instruction counts on an emulated Cortex-M4, not a board"


class PtyRelay:
    """A pseudo-terminal whose bytes go to and from a TCP socket (QEMU's UART).

    The runner and pyserial want a terminal path; QEMU offers a socket. The slave end is
    kept open here, so that the relay survives a host closing and reopening the terminal.
    """

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=5.0)
        # one command, one small write: without this, Nagle and delayed ACKs cost ~40 ms each
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(_POLL_S)
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._to_socket, name="pty-to-socket", daemon=True),
            threading.Thread(target=self._to_pty, name="socket-to-pty", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _to_socket(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], _POLL_S)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                    self.sock.sendall(data)
                except OSError as exc:
                    log.debug("relay to the socket ended: %s", exc)
                    return

    def _to_pty(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as exc:
                log.debug("relay from the socket ended: %s", exc)
                return
            if not data:
                return
            os.write(self.master, data)

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        self.sock.close()
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


class Served:
    """What stands behind the link: started once, watched, always stopped."""

    def __init__(self, backend: str, board: Board, model: Path, protocol: Protocol, name: str | None) -> None:
        self.backend = backend
        self.board = board
        self.model = model
        self.protocol = protocol
        self.name = name
        self._child: Any = None
        self._device: Any = None
        self._relay: PtyRelay | None = None

    def start(self) -> str:
        """Start the device; returns the path of its pseudo-terminal."""
        if self.backend == "sim":
            from harness.devices.sim.process import SimChild

            self._child = SimChild(self.model, self.board, protocol=self.protocol.value, name=self.name)
            return self._child.start()
        if self.name:
            raise ConfigError(f"--name is for the sim; the {self.backend} firmware has its own DUT name")
        from harness.devices import get_backend

        self._device = get_backend(self.backend).create(self.board, model=self.model, protocol=self.protocol)
        url, _baud = self._device._start()  # the backend's own start: build the image, launch it
        if url.startswith("socket://"):
            host, _, port = url[len("socket://"):].rpartition(":")
            self._relay = PtyRelay(host, int(port))
            return self._relay.path
        return str(url)

    def death(self) -> str | None:
        """Why the device is gone, or None while it serves."""
        if self._child is not None:
            return None if self._child.alive() else (self._child.death_reason() or "the sim stopped")
        proc = getattr(self._device, "_proc", None)
        if proc is not None and proc.poll() is not None:
            return f"the {self.backend} firmware exited with status {proc.returncode}"
        if self._relay is not None and not self._relay.alive():
            return f"the {self.backend} UART connection closed"
        return None

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        if self._child is not None:
            self._child.stop()
            self._child = None
        if self._device is not None:
            self._device._stop()
            self._device = None


def place_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target``, replacing an old symlink but never a real file."""
    if link.exists() and not link.is_symlink():
        raise ConfigError(f"--link {link} exists and is not a symlink; choose another path")
    if not link.parent.is_dir():
        raise ConfigError(f"--link {link}: folder {link.parent} does not exist")
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def remove_link(link: Path, target: str) -> None:
    """Remove ``link`` if it still points at ``target`` (another server may have taken it over)."""
    try:
        if link.is_symlink() and os.readlink(link) == target:
            link.unlink()
    except OSError as exc:
        log.warning("could not remove %s: %s", link, exc)


def serve(
    backend: str, board: Board, model: Path, protocol: Protocol, link: Path, *,
    name: str | None = None, stop: threading.Event | None = None,
) -> int:
    """Serve until ``stop`` is set (SIGTERM/SIGINT set it); 0 on a clean stop, 3 if the device died."""
    if backend not in SERVE_BACKENDS:
        raise ConfigError(f"hil serve runs the {', '.join(SERVE_BACKENDS)} backends, not {backend!r}")
    stop = stop or threading.Event()
    served = Served(backend, board, model, protocol, name)
    pty = ""
    try:
        pty = served.start()
        place_link(link, pty)
        print(f"hil serve: {protocol.value} on {link} -> {pty} ({backend} standing in for {board.id}, "
              f"model {model.name})", flush=True)
        print(f"hil serve: {_latency_note(backend, protocol, board)}", flush=True)
        print("hil serve: ready; stop with Ctrl-C or SIGTERM", flush=True)
        while not stop.wait(_POLL_S):
            why = served.death()
            if why is not None:
                raise DeviceError(why)
    finally:
        if pty:
            remove_link(link, pty)
        served.stop()
    return 0


def _resolve_model(spec: str | None) -> Path:
    from harness.models.zoo import resolve_model

    return Path(resolve_model(spec))


def handle(args: argparse.Namespace) -> int:
    from harness.boards import load_board

    protocol = Protocol.parse(args.protocol)
    board = load_board(args.board)
    model = _resolve_model(args.model)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.debug("signal %d: stopping", signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return serve(args.backend, board, model, protocol, Path(args.link), name=args.name, stop=stop)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a simulated or emulated device on a pseudo-terminal (protocol v1 or EEMBC)",
        description="Start the sim, native or QEMU device for a model and put a symlink to its "
        "pseudo-terminal at --link, until SIGTERM or Ctrl-C. With --protocol eembc it answers the "
        "official MLPerf Tiny runner; `hil bench --port LINK` drives either protocol.",
    )
    p.add_argument("--protocol", choices=[p.value for p in Protocol], default="v1",
                   help="what the device speaks (default: v1)")
    p.add_argument("--backend", choices=SERVE_BACKENDS, default="sim",
                   help="what runs the model (default: sim)")
    p.add_argument("--board", default="nano33",
                   help="board profile the device stands in for (default: nano33)")
    p.add_argument("--model", default=None, help="zoo name or int8 .tflite file (default: as hil bench)")
    p.add_argument("--link", required=True, type=Path, help="path of the symlink to the pseudo-terminal")
    p.add_argument("--name", default=None, help="EEMBC DUT name of the sim (default: vww-hil-sim)")
    p.set_defaults(func=handle)


if __name__ == "__main__":  # pragma: no cover
    from harness.cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
