"""``hil boards``: list the board profiles."""

from __future__ import annotations

import argparse

from harness.boards import list_boards


def _kib(n: int) -> str:
    return f"{n // 1024} KiB"


def cmd_boards(args: argparse.Namespace) -> int:
    boards = list_boards()
    header = f"{'id':<10} {'name':<28} {'core':<24} {'MHz':>5} {'RAM':>9} {'flash':>9} {'PSRAM':>9}"
    print(header)
    print("-" * len(header))
    for b in boards:
        print(
            f"{b.id:<10} {b.name:<28} {b.core:<24} {b.clock_hz // 1_000_000:>5} "
            f"{_kib(b.ram_bytes):>9} {_kib(b.flash_bytes):>9} {_kib(b.psram_bytes):>9}"
        )
        if args.verbose:
            print(f"           source: {b.source}")
            print(f"           cost model: {b.cost_model.source}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("boards", help="list board profiles")
    p.set_defaults(func=cmd_boards)
