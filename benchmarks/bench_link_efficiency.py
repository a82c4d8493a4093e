"""Link efficiency: image payload per second over a throttled pty, as a fraction of the line rate.

For each baud rate, a device process serves a pseudo-terminal whose both directions are
paced to baud/10 bytes per second (8N1), and the host uploads whole VWW input tensors
(96x96x3 int8 = 27,648 B) through it:

* protocol v1: COBS frames of up to 4,096 B payload, 8 chunks in flight (credits), one
  ACK per chunk travelling the other way;
* an ASCII-hex line protocol of the kind the MLPerf Tiny runner uses: ``db load N%`` then
  ``db <hex>%`` commands carrying 31 payload bytes as 62 hex digits, each answered by an
  ``m-ready`` line before the next is sent.

The figure is payload bytes acknowledged per second divided by baud/10; the target for
protocol v1 is at least 0.90. Run: ``python benchmarks/bench_link_efficiency.py``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import Connection

from harness.devices.sim_child import open_pty
from harness.devices.sim_double import TestDoubleEngine
from harness.devices.sim_link import ThrottledLink, grain_bytes
from harness.link.device_end import DeviceEnd, FdLink
from harness.link.session import Session
from harness.link.transport import open_port

IMAGE_BYTES = 96 * 96 * 3
HEX_PAYLOAD = 31
READY = b"m-ready\r\n"
TARGET = 0.90


def _throttled_pty(baud: int) -> tuple[ThrottledLink, str]:
    master, _slave, path = open_pty()
    return ThrottledLink(FdLink(master, block=grain_bytes(baud)), baud), path


def serve_binary(conn: Connection, baud: int) -> None:
    """Device process: protocol v1 with a test-double engine on a throttled pty."""
    link, path = _throttled_pty(baud)
    device = DeviceEnd(link, TestDoubleEngine(), max_payload=4096, credits=8)
    conn.send(path)
    device.serve()


def serve_hex(conn: Connection, baud: int) -> None:
    """Device process: the ASCII-hex line protocol on a throttled pty."""
    link, path = _throttled_pty(baud)
    conn.send(path)
    buf = b""
    image = bytearray()
    while True:
        buf += link.read(0.5)
        while b"%" in buf:
            line, buf = buf.split(b"%", 1)
            words = line.strip().split()
            if words[:2] == [b"db", b"load"]:
                image = bytearray()
            elif words[:1] == [b"db"] and len(words) == 2:
                image += bytes.fromhex(words[1].decode())
            link.write(READY)


def _start(target: object, baud: int) -> tuple[mp.process.BaseProcess, str]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, baud), daemon=True)
    proc.start()
    if not parent.poll(30):
        proc.kill()
        raise RuntimeError("device process did not start")
    return proc, parent.recv()


def measure_binary(baud: int, images: int) -> float:
    proc, path = _start(serve_binary, baud)
    port = open_port(path, baud)
    try:
        session = Session(port, timeout=5.0, baud=baud)
        session.hello()
        data = os.urandom(IMAGE_BYTES)
        start = time.perf_counter()
        for _ in range(images):
            session.upload(data)
        elapsed = time.perf_counter() - start
        assert session.stats.go_backs == 0, "the link lost frames: the figure would be meaningless"
    finally:
        port.close()
        proc.kill()
        proc.join(5)
    return images * IMAGE_BYTES / elapsed


def _wait_ready(port: object, timeout: float) -> None:
    port.timeout = timeout  # type: ignore[attr-defined]
    got = port.read_until(READY)  # type: ignore[attr-defined]
    if not got.endswith(READY):
        raise RuntimeError(f"no m-ready within {timeout} s (got {got[-20:]!r})")


def measure_hex(baud: int, images: int) -> float:
    proc, path = _start(serve_hex, baud)
    port = open_port(path, baud)
    try:
        data = os.urandom(IMAGE_BYTES)
        start = time.perf_counter()
        for _ in range(images):
            port.write(f"db load {IMAGE_BYTES}%".encode())
            _wait_ready(port, 5.0)
            for off in range(0, IMAGE_BYTES, HEX_PAYLOAD):
                port.write(b"db " + data[off : off + HEX_PAYLOAD].hex().encode() + b"%")
                _wait_ready(port, 5.0)
        elapsed = time.perf_counter() - start
    finally:
        port.close()
        proc.kill()
        proc.join(5)
    return images * IMAGE_BYTES / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--bauds", type=int, nargs="+", default=[115200, 921600])
    p.add_argument("--images", type=int, default=0, help="images per measurement (default: ~3 s of line time)")
    args = p.parse_args(argv)
    print(f"{'baud':>8} {'raw B/s':>9} {'v1 B/s':>9} {'v1 eff':>7} {'hex B/s':>9} {'hex eff':>8} {'v1/hex':>7}")
    ok = True
    for baud in args.bauds:
        raw = baud / 10
        n = args.images or max(1, round(3.0 * raw / IMAGE_BYTES))
        binary = measure_binary(baud, n)
        hexrate = measure_hex(baud, max(1, n // 2))
        eff = binary / raw
        ok &= eff >= TARGET
        print(
            f"{baud:>8} {raw:>9.0f} {binary:>9.0f} {eff:>7.3f} {hexrate:>9.0f} {hexrate / raw:>8.3f} "
            f"{binary / hexrate:>7.2f}"
        )
    print(f"protocol v1 efficiency target >= {TARGET:.2f}: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
