"""``hil farm``: look at a labgrid coordinator's places and drive a place's board.

``places`` lists places with their tags and holders; ``power``, ``reset`` and ``flash``
acquire the place, act through its labgrid drivers and release it (see
``harness.farm.drivers``). Benches, pytest sessions and nightly take places themselves
(``hil bench --place``, ``pytest --place``, ``hil nightly --places``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _places(args: argparse.Namespace) -> int:
    from harness import console
    from harness.farm.client import FarmClient

    with FarmClient(args.coordinator) as client:
        rows = [(p.name, ",".join(f"{k}={v}" for k, v in sorted(p.tags.items())), p.acquired or "free")
                for p in sorted(client.places(), key=lambda p: p.name)]
    console.print_rows(["place", "tags", "held by"], rows, title=f"places at {client.address}")
    return 0


def _act(args: argparse.Namespace) -> int:
    from harness.farm.drivers import PlaceDrivers
    from harness.farm.lease import hold_place

    with hold_place(args.place, coordinator=args.coordinator, wait_s=args.place_wait) as lease:
        drivers = PlaceDrivers(lease.place.name, lease.client)
        if args.farm_command == "power":
            drivers.power(args.action)
            print(f"place {lease.place.name}: power {args.action}")
        elif args.farm_command == "reset":
            how = drivers.reset()
            print(f"place {lease.place.name}: reset by {how}")
        else:
            drivers.flash(Path(args.script), Path(args.firmware))
            print(f"place {lease.place.name}: flashed {args.firmware}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("farm", help="board-farm places (labgrid): list, power, reset, flash",
                       description="Look at a labgrid coordinator's places and drive a place's board "
                                   "through its labgrid drivers. See docs/farm.md.")
    p.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="labgrid coordinator (default: $LG_COORDINATOR, else 127.0.0.1:20408)")
    fs = p.add_subparsers(dest="farm_command", metavar="ACTION", required=True)
    ls = fs.add_parser("places", help="list places, their tags and who holds them")
    ls.set_defaults(func=_places)

    def place_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--place", required=True, metavar="NAME|TAG=VALUE[,...]",
                       help="the place, by name or by tags (any free place that has them)")
        q.add_argument("--place-wait", type=float, default=0.0, metavar="S",
                       help="wait up to S seconds for a busy place (default: 0)")
        q.set_defaults(func=_act)

    pw = fs.add_parser("power", help="switch the place's power (a NetworkPowerPort)")
    pw.add_argument("action", choices=["on", "off", "cycle"])
    place_args(pw)
    rs = fs.add_parser("reset", help="reset the board: its reset line, else a power cycle")
    place_args(rs)
    fl = fs.add_parser("flash", help="run a flash script on the exporter (FlashScriptDriver), e.g. bossac")
    fl.add_argument("script", help="script run on the exporter as SCRIPT DEVNODE FIRMWARE")
    fl.add_argument("firmware", help="firmware file copied to the exporter first")
    place_args(fl)
