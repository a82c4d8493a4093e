"""The simulated board's process: ``python -m harness.devices.sim.child --model M --board-file B``.

It opens a pseudo-terminal, loads the model into TFLM (which may abort a process, hence
a process of its own), prints one JSON line ``{"port": "/dev/pts/N", "pid": ...}`` on
stdout, then serves protocol v1 (or, with ``--protocol eembc``, the EEMBC / MLPerf Tiny DUT
protocol, whose lap times are the cost model's estimate) on the pty until its stdin closes
(the parent's lifeline: when the parent dies, so does the board) or it is killed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import tty
from pathlib import Path

from harness.boards import load_board, load_board_file
from harness.devices.sim.eembc_engine import TflmEembcEngine
from harness.devices.sim.engine import TflmEngine
from harness.devices.sim.link import ThrottledLink, grain_bytes
from harness.link.device_end import DEFAULT_CREDITS, DEFAULT_MAX_PAYLOAD, ByteLink, DeviceEnd, FdLink
from harness.link.eembc_device import EembcDevice, EstimateClock

log = logging.getLogger("harness.devices.sim.child")

#: Unthrottled, a whole VWW input (27,648 B) travels in one frame: every extra frame costs
#: the host and the child a wake-up each, which on a busy machine is most of the overhead
#: (bench_sim_overhead: ratio 0.72 with 4 KiB chunks, 0.99 with one frame, same run).
#: Throttled, the sim announces a board-sized 4 KiB so the link behaves like a board's.
UNTHROTTLED_MAX_PAYLOAD = 32768


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.devices.sim.child")
    p.add_argument("--model", required=True, type=Path, help="the .tflite file to run")
    board = p.add_mutually_exclusive_group(required=True)
    board.add_argument("--board", help="board profile id")
    board.add_argument("--board-file", type=Path, help="board profile TOML file")
    p.add_argument("--baud", type=int, default=0, help="throttle the link to this rate (0: unthrottled)")
    p.add_argument(
        "--max-payload", type=int, default=0,
        help=f"largest payload announced (default: {UNTHROTTLED_MAX_PAYLOAD} unthrottled, "
        f"{DEFAULT_MAX_PAYLOAD} with --baud)",
    )
    p.add_argument("--credits", type=int, default=DEFAULT_CREDITS)
    p.add_argument("--protocol", choices=("v1", "eembc"), default="v1", help="what to speak (default: v1)")
    p.add_argument("--name", default="vww-hil-sim", help="the EEMBC DUT name (default: vww-hil-sim)")
    return p.parse_args(argv)


def _watch_parent() -> None:
    """Exit as soon as stdin closes: the parent that holds its other end has gone."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def open_pty() -> tuple[int, int, str]:
    """A raw pseudo-terminal: (master fd, slave fd, slave path).

    The slave stays open here too, so that reading the master never fails with EIO
    between two host connections.
    """
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def _announce(path: str, fit_refusal: str | None) -> None:
    """The one ready line the host waits for: the pty, and why the model does not fit, if so."""
    ready: dict[str, object] = {"port": path, "pid": os.getpid()}
    if fit_refusal is not None:
        ready["fit_refusal"] = fit_refusal
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="sim_child: %(message)s")
    board = load_board_file(args.board_file) if args.board_file else load_board(args.board)
    master, _slave, path = open_pty()
    engine = TflmEngine(args.model, board)
    link: ByteLink
    if args.baud:
        link = ThrottledLink(FdLink(master, block=grain_bytes(args.baud)), args.baud)
    else:
        link = FdLink(master)
    device: DeviceEnd | EembcDevice
    if args.protocol == "eembc":
        try:
            adapter = TflmEembcEngine(engine)
        except ValueError as exc:  # EEMBC has no way to say "no model": refuse to start instead
            log.error("%s", exc)
            if engine.fit_refusal is not None:  # still tell the host why, in its own words
                _announce(path, engine.fit_refusal)
            return 3
        device = EembcDevice(link, adapter, input_bytes=adapter.input_bytes, name=args.name,
                             clock=EstimateClock())
    else:
        max_payload = args.max_payload or (DEFAULT_MAX_PAYLOAD if args.baud else UNTHROTTLED_MAX_PAYLOAD)
        device = DeviceEnd(link, engine, max_payload=max_payload, credits=args.credits)
    _announce(path, engine.fit_refusal)
    threading.Thread(target=_watch_parent, name="parent-watch", daemon=True).start()
    device.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
