"""A relay between the host and a device that damages the bytes on their way.

The host opens the relay's pseudo-terminal like any serial port (the ``serial`` backend,
real pyserial, real kernel buffers); the relay forwards to whatever stands behind the
device's own URL (a simulated board's pty, an emulator's TCP socket) and applies one
:class:`Mutation` per direction: bit flips, drops, duplicates, bursts of garbage, stalls
(it stops reading that direction, so a host write really blocks once the kernel buffer is
full), a device reset (``on_reset`` restarts the device and the relay reconnects) and a
closed connection (the relay closes the host's side). Randomness is seeded, so one case
damages the same bytes on every run.
"""

from __future__ import annotations

import math
import os
import pty
import select
import socket
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CHUNK = 4096


@dataclass(frozen=True)
class Mutation:
    """What happens to the bytes of one direction once ``after`` bytes have passed clean.

    Rates are per byte. ``stall_s`` (``math.inf`` for forever) stops forwarding for that
    long, once; ``reset`` restarts the device and ``close`` closes the host's end, both once.
    """

    flip: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    garbage_every: int = 0
    garbage_len: int = 0
    stall_s: float = 0.0
    reset: bool = False
    close: bool = False
    after: int = 0

    @property
    def clean(self) -> bool:
        return self == Mutation(after=self.after)


class _Direction:
    """The state of one direction: bytes seen, the seeded generator, a stall in progress."""

    def __init__(self, mutation: Mutation, seed: int) -> None:
        self.m = mutation
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.stalled_until = 0.0
        self.event_done = False
        self.since_garbage = 0
        self.damaged = 0
        self.held = b""

    def stalled(self, now: float) -> bool:
        return now < self.stalled_until

    def process(self, data: bytes) -> tuple[bytes, str | None]:
        """The bytes to forward, and an event ("stall", "reset", "close") that starts now."""
        m = self.m
        start = self.seen
        self.seen += len(data)
        if self.seen <= m.after:
            return data, None
        clean_head = max(0, m.after - start)
        head, tail = data[:clean_head], data[clean_head:]
        if not self.event_done and (m.stall_s or m.reset or m.close):
            self.event_done = True
            if m.stall_s:
                self.stalled_until = time.monotonic() + m.stall_s
                self.held = tail  # forwarded when the stall ends, as if read only then
                return head, "stall"
            return head, "reset" if m.reset else "close"
        if not (m.flip or m.drop or m.dup or m.garbage_every):
            return data, None
        arr = np.frombuffer(tail, dtype=np.uint8).copy()
        if m.flip:
            hits = np.flatnonzero(self.rng.random(arr.size) < m.flip)
            arr[hits] ^= (1 << self.rng.integers(0, 8, hits.size)).astype(np.uint8)
            self.damaged += hits.size
        keep = np.ones(arr.size, dtype=bool)
        if m.drop:
            lost = self.rng.random(arr.size) < m.drop
            keep &= ~lost
            self.damaged += int(lost.sum())
        repeat = np.where(keep, 1, 0)
        if m.dup:
            twice = (self.rng.random(arr.size) < m.dup) & keep
            repeat = repeat + twice
            self.damaged += int(twice.sum())
        out = np.repeat(arr, repeat).tobytes()
        if m.garbage_every:
            pieces = []
            pos = 0
            while pos < len(out):
                room = m.garbage_every - self.since_garbage
                piece = out[pos : pos + room]
                pieces.append(piece)
                pos += len(piece)
                self.since_garbage += len(piece)
                if self.since_garbage >= m.garbage_every:
                    pieces.append(self.rng.integers(0, 256, m.garbage_len, dtype=np.uint8).tobytes())
                    self.since_garbage = 0
                    self.damaged += m.garbage_len
            out = b"".join(pieces)
        return head + out, None


class _DeviceEnd:
    """The relay's connection to the device's URL: a pty path or ``socket://host:port``."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.sock: socket.socket | None = None
        self.fd = -1
        if url.startswith("socket://"):
            host, _, port = url[len("socket://") :].rpartition(":")
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
            self.sock.setblocking(False)
        else:
            self.fd = os.open(url, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(self.fd)

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else self.fd

    def read(self) -> bytes:
        try:
            if self.sock is not None:
                return self.sock.recv(CHUNK) or b""
            return os.read(self.fd, CHUNK)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return b""

    def write(self, data: bytes) -> int:
        try:
            if self.sock is not None:
                return self.sock.send(data)
            return os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return len(data)  # the device is gone (reset in progress): the bytes are lost

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        elif self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Relay:
    """Forwards bytes between a host-facing pty and ``device_url``, damaging them as told.

    ``on_reset`` restarts the device and returns its new URL (a reset mid-image). Use as a
    context manager; :attr:`url` is what the host opens.
    """

    def __init__(
        self,
        device_url: str,
        to_device: Mutation | None = None,
        to_host: Mutation | None = None,
        *,
        on_reset: Callable[[], str] | None = None,
        seed: int = 1,
    ) -> None:
        self.device_url = device_url
        self.h2d = _Direction(to_device or Mutation(), seed)
        self.d2h = _Direction(to_host or Mutation(), seed + 1)
        self.on_reset = on_reset
        self.events: list[str] = []
        self._master, self._slave = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.url = os.ttyname(self._slave)
        self._dev = _DeviceEnd(device_url)
        self._to_host = bytearray()
        self._to_dev = bytearray()
        self._host_open = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fault-relay", daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._dev.close()
        self._close_host()
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1

    def _close_host(self) -> None:
        if self._host_open:
            self._host_open = False
            os.close(self._master)

    def _event(self, name: str, direction: str) -> None:
        self.events.append(f"{name} {direction} at {time.monotonic():.2f}")
        if name == "reset":
            self._dev.close()
            self._to_dev.clear()
            assert self.on_reset is not None, "a reset fault needs on_reset"
            self.device_url = self.on_reset()
            self._dev = _DeviceEnd(self.device_url)
        elif name == "close":
            self._close_host()
            # the slave side must report the hang-up too: closing our copy of it lets the
            # host's reads fail instead of waiting on a pty nobody will ever write
            if self._slave >= 0:
                os.close(self._slave)
                self._slave = -1

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for direction, queue in ((self.h2d, self._to_dev), (self.d2h, self._to_host)):
                if direction.held and not direction.stalled(now):
                    queue += direction.held
                    direction.held = b""
            readers, writers = [], []
            if self._host_open and not self.h2d.stalled(now):
                readers.append(self._master)
            if not self.d2h.stalled(now):
                readers.append(self._dev.fileno())
            if self._to_host and self._host_open:
                writers.append(self._master)
            if self._to_dev:
                writers.append(self._dev.fileno())
            try:
                r, w, _ = select.select(readers, writers, [], 0.02)
            except (OSError, ValueError):
                time.sleep(0.02)
                continue
            if self._host_open and self._master in r:
                try:
                    data = os.read(self._master, CHUNK)
                except (BlockingIOError, OSError):
                    data = b""
                if data:
                    out, event = self.h2d.process(data)
                    self._to_dev += out
                    if event:
                        self._event(event, "host->device")
            if self._dev.fileno() in r:
                data = self._dev.read()
                if data:
                    out, event = self.d2h.process(data)
                    self._to_host += out
                    if event:
                        self._event(event, "device->host")
            if self._to_dev and self._dev.fileno() in w:
                n = self._dev.write(bytes(self._to_dev))
                del self._to_dev[:n]
            if self._host_open and self._to_host and self._master in w:
                try:
                    n = os.write(self._master, bytes(self._to_host))
                except (BlockingIOError, OSError):
                    n = 0
                del self._to_host[:n]


FOREVER = math.inf
