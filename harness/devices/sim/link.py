"""A byte link slowed to a serial line's rate, so that a pty behaves like a UART.

A pseudo-terminal moves megabytes per second; a board's UART moves baud/10 bytes per
second (8N1: a start bit, 8 data bits, a stop bit). To measure link-bound behaviour on
the simulated board, both directions are paced: bytes the host sends become visible to
the device only once the line could have carried them, and bytes the device sends
leave only as fast as the line allows. Reading runs in its own thread so that the two
directions are paced independently, as on a full-duplex UART.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from harness.link.device_end import ByteLink

log = logging.getLogger(__name__)

BITS_PER_BYTE = 10  # 8N1
#: How far pacing may run behind the clock (sleep overshoot) without losing line time.
_SLACK_S = 0.001
#: Longest catch-up after this process was kept off the CPU (a UART's FIFO would have buffered).
_BURST_S = 0.05


def grain_bytes(baud: int, seconds: float = 0.002) -> int:
    """How many bytes to pace at once: about two milliseconds of line time, at least 16."""
    return max(16, int(baud / BITS_PER_BYTE * seconds))


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


class ThrottledLink:
    """Wraps a :class:`ByteLink` (read in blocks of :func:`grain_bytes`) and paces it to ``baud``."""

    def __init__(self, inner: ByteLink, baud: int) -> None:
        if baud <= 0:
            raise ValueError("baud must be positive")
        self.inner = inner
        self.baud = baud
        self.byte_time = BITS_PER_BYTE / baud
        self.grain = grain_bytes(baud)
        self._rx: queue.Queue[bytes | None] = queue.Queue()
        self._rx_free = self._tx_free = time.monotonic()
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="throttled-rx", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        """Take bytes off the inner link and release them at the line rate."""
        try:
            while not self._stop.is_set():
                asked = time.monotonic()
                data = self.inner.read(0.1)
                if not data:
                    continue
                now = time.monotonic()
                # Bytes that were already waiting arrived while the line was busy: they follow
                # the previous ones back to back. Bytes we had to wait for start the line anew.
                waited = now - asked > _SLACK_S
                base = max(self._rx_free, now) if waited else max(self._rx_free, now - _BURST_S)
                for i in range(0, len(data), self.grain):
                    piece = data[i : i + self.grain]
                    base += len(piece) * self.byte_time
                    self._rx_free = base
                    _sleep_until(base)
                    self._rx.put(piece)
        except (EOFError, OSError) as exc:
            log.debug("throttled link: receive side ended: %s", exc)
        self._rx.put(None)

    def close(self) -> None:
        """Stop the receiving thread (the caller closes the file descriptors afterwards)."""
        self._stop.set()
        self._thread.join(timeout=2.0)

    def read(self, timeout: float) -> bytes:
        if self._closed:
            raise EOFError("link closed")
        try:
            first = self._rx.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return b""
        parts = [first]
        while True:
            try:
                parts.append(self._rx.get_nowait())
            except queue.Empty:
                break
        if None in parts:
            self._closed = True
            data = b"".join(p for p in parts if p is not None)
            if data:
                return data
            raise EOFError("link closed")
        return b"".join(p for p in parts if p is not None)

    def write(self, data: bytes) -> None:
        # Sleeping overshoots by a fraction of a millisecond; a little slack keeps those
        # overshoots from adding up into idle line time between back-to-back writes.
        base = max(self._tx_free, time.monotonic() - _SLACK_S)
        for i in range(0, len(data), self.grain):
            piece = data[i : i + self.grain]
            base += len(piece) * self.byte_time
            self._tx_free = base
            _sleep_until(base)
            self.inner.write(piece)
