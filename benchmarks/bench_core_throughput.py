"""Protocol throughput of the firmware core: QEMU build vs QEMU's link rate, native runner over a pty.

For each backend the same two things are measured in one run:

* the link's reference rate: PING frames of the largest payload the device accepts, echoed
  back (payload bytes per second, each direction), which is what the UART/pty moves with
  the least work on the device;
* the protocol's input rate: whole VWW input tensors (96x96x3 int8 = 27,648 B) uploaded
  with INPUT_CHUNK frames, credits and ACKs as the harness does it (input bytes per
  second), and the rate of complete upload + INFER round trips (images/s).

The ratio input/echo says how much of what the link can carry the upload protocol uses.
QEMU's CMSDK UART model hands the guest one byte per main-loop round trip, so its link
rate, not the core, bounds the QEMU figure.

    python benchmarks/bench_core_throughput.py [--seconds 4]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

import numpy as np

SHAPE = (1, 96, 96, 3)


def measure(backend: str, seconds: float) -> dict[str, float]:
    from harness.boards import load_board
    from harness.devices import create_device
    from harness.devices.base import SessionDevice

    with create_device(backend, load_board("nano33"), input_shape=SHAPE) as dev:
        assert isinstance(dev, SessionDevice) and dev.session is not None
        session = dev.session
        payload = bytes(range(256)) * (dev.info.max_payload // 256) + bytes(dev.info.max_payload % 256)
        payload = payload[: dev.info.max_payload]
        echoed, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            session.ping(payload)
            echoed += len(payload)
        echo_rate = echoed / (time.perf_counter() - t0)

        data = np.random.default_rng(0).integers(-128, 127, SHAPE, dtype=np.int8)
        sent, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or sent == 0:
            session.upload(data.tobytes())
            sent += data.nbytes
        upload_rate = sent / (time.perf_counter() - t0)

        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n == 0:
            dev.infer(data)
            n += 1
        images = n / (time.perf_counter() - t0)
        return {"echo": echo_rate, "upload": upload_rate, "images": images,
                "max_payload": dev.info.max_payload, "credits": dev.info.credits}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time per measurement (default 4)")
    args = parser.parse_args()
    tools = {"native": ("cmake", "g++"), "qemu": ("qemu-system-arm", "arm-none-eabi-g++")}
    rows = []
    for backend, needs in tools.items():
        missing = [t for t in needs if shutil.which(t) is None]
        if missing:
            print(f"{backend}: skipped, {', '.join(missing)} not installed")
            continue
        r = measure(backend, args.seconds)
        rows.append((backend, r))
        print(f"{backend:7s} (max_payload {r['max_payload']:.0f}, credits {r['credits']:.0f}): "
              f"link echo {r['echo'] / 1e3:9.1f} kB/s each way, "
              f"input upload {r['upload'] / 1e3:9.1f} kB/s = {r['upload'] / r['echo']:.2f} x echo, "
              f"{r['images']:.2f} images/s (upload + INFER)")
    if len(rows) == 2:
        (_, native), (_, qemu) = rows
        print(f"native/QEMU input rate: {native['upload'] / qemu['upload']:.0f}x")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
