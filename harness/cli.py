"""The ``hil`` command.

Each area of the harness contributes its own subcommands through a ``register``
function in its ``cli`` module, so this file stays a small dispatcher and heavy
libraries (TensorFlow) are imported only inside the handlers that need them:
``hil bench`` on the simulated board never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from harness import __version__, console
from harness.errors import HarnessError

log = logging.getLogger("harness")

# Modules with a ``register(subparsers)`` function, in the order their commands are listed.
COMMAND_MODULES = (
    "harness.data.cli",
    "harness.models.cli",
    "harness.deploy.cli",
    "harness.bench.cli",
    "harness.report.cli",
    "harness.boards_cli",
    "harness.calibration.cli",
    "harness.serve",
    "harness.farm.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hil",
        description="Hardware-in-the-loop benchmarking for TinyML Visual Wake Words models.",
    )
    parser.add_argument("--version", action="version", version=f"hil {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that area has no commands yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # one place decides bars and colours: --quiet (on the commands that have it) hides bars
    console.configure(quiet=bool(getattr(args, "quiet", False)), verbose=args.verbose)
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except HarnessError as exc:
        # one line (red on a terminal); the traceback only with -vv
        console.print_error(f"hil {args.command}", exc, verbose=args.verbose)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"hil {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
