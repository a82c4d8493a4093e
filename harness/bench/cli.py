"""``hil bench``: benchmark a model on a board, an emulator or the simulated board.

With no arguments it runs offline: the sim backend standing in for nano33, the model the
project ships and the smoke data set. The runner and its libraries are imported inside
the handler so that ``hil --help`` stays fast and nothing here pulls in TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from harness.models.default import DEFAULT_MODEL_HELP

if TYPE_CHECKING:
    from harness.bench.request import BenchRequest


EXIT_STATUS_HELP = """\
exit status:
  0    every image was measured ok
  2    a wrong option, board profile, model or data set (nothing measured)
  3    the link or the device failed (rows so far are kept; the message says how to resume)
  4    a tool is missing or a firmware build failed
  5    the run completed but some images failed: they are error rows in the run folder
  130  interrupted by Ctrl-C or SIGTERM: rows are kept; resume with the printed command
"""


def register(sub: argparse._SubParsersAction) -> None:
    from harness.devices import backend_names

    p = sub.add_parser(
        "bench",
        help="benchmark a model on a device and write a run folder",
        description=textwrap.fill(
            "Stream a data set through a device, compare every output with the host "
            "reference, and write reports/runs/<id>/ (results.parquet, run.json, summary.txt). "
            "With no arguments: the sim backend standing in for nano33, the MLPerf Tiny reference "
            "model where present (`hil models fetch mlperf-vww`, or ../shared/reference), else the "
            "shipped synthetic-data model, and the smoke data set, offline.",
            width=88,
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--board", default="nano33", help="board profile id (default: nano33)")
    p.add_argument(
        "--backend",
        choices=backend_names(),
        default=None,
        help="how to reach the board (default: serial when --port is given, else sim)",
    )
    p.add_argument(
        "--port",
        default=None,
        help="pyserial URL of a real board; implies --backend serial (default: none; with "
        "--backend serial the board is found by its USB ids)",
    )
    p.add_argument(
        "--protocol",
        choices=["v1", "eembc"],
        default="v1",
        help="what to speak to the device: the harness's binary protocol v1, or MLPerf Tiny's EEMBC "
        "text protocol (e.g. the MLPerf Tiny reference firmware); default: v1",
    )
    p.add_argument(
        "--baud", type=int, default=None, help="link baud rate (default: the board's; sim: unthrottled)"
    )
    p.add_argument(
        "--model", default=None,
        help=f"zoo name or int8 .tflite file (default: {DEFAULT_MODEL_HELP})",
    )
    p.add_argument("--data", default=None, help="data set folder (default: the smoke data set)")
    p.add_argument("--split", default=None, help="only this split of the data set (default: all)")
    p.add_argument("--limit", type=int, default=None, help="at most this many images (default: all)")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="person score at or above which the prediction is person (default: 0.5)",
    )
    p.add_argument(
        "--person-index", type=int, default=None, metavar="N",
        help="which element of the model's first output is the person score, for 2-class models "
        "whose classes are not [no person, person] (default: 1 of two outputs, 0 of one)",
    )
    p.add_argument(
        "--warmups",
        type=int,
        default=None,
        help="untimed runs before each image (default: 1; 0 on the sim, whose cycles are estimates)",
    )
    p.add_argument(
        "--repeats", type=int, default=1, help="timed runs per image; the median is kept (default: 1)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="folder that receives run folders (default: reports/runs)"
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_ID|PATH",
        help="continue an interrupted run: measures only the images it lacks, with the run's own "
        "settings (--limit is refused); a complete run is left as it is",
    )
    p.add_argument(
        "--flash",
        action="store_true",
        help="first build the firmware for --model with PlatformIO and upload it to the real board "
        "(implies --backend serial; the device must then report that model's sha256)",
    )
    p.add_argument(
        "--watchdog", type=float, default=60.0, metavar="S",
        help="fail the run when the link makes no progress for S seconds; rows so far are kept "
        "and the message says how to resume (default: 60)",
    )
    farm = p.add_argument_group("board farm (labgrid places; pip install -e '.[farm]', see docs/farm.md)")
    farm.add_argument(
        "--place", default=None, metavar="NAME|TAG=VALUE[,...]",
        help="run on a labgrid place: its name, or tags such as board=nano33 for any free place that "
        "has them; acquired for the run, its serial port read after acquiring, released at the end "
        "(implies --backend serial; default: none)",
    )
    farm.add_argument(
        "--coordinator", default=None, metavar="HOST:PORT",
        help="labgrid coordinator (default: $LG_COORDINATOR, else 127.0.0.1:20408)",
    )
    farm.add_argument(
        "--place-wait", type=float, default=0.0, metavar="S",
        help="wait up to S seconds for the place (or for any matching place) when all are busy; "
        "0 fails at once naming the holder (default: 0)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)


def flash_first(args: argparse.Namespace) -> str:
    """Build and flash the firmware for the run's model; returns the model's path for the bench.

    The bench then refuses the device unless its hello reports this model's sha256, so a
    flash that silently failed cannot produce numbers for the wrong model.
    """
    from harness.boards import load_board
    from harness.deploy.api import build_and_flash
    from harness.errors import ConfigError
    from harness.models.zoo import resolve_model

    if args.backend not in (None, "serial"):
        raise ConfigError(f"--flash uploads to a real board; it does not go with --backend {args.backend}")
    if getattr(args, "place", None):
        raise ConfigError("--flash uploads over a local USB port; on a farm place flash first with "
                          "`hil farm flash --place NAME FIRMWARE` (the place's labgrid flash driver)")
    model = resolve_model(args.model)
    result = build_and_flash(load_board(args.board), model, args.port)
    for note in result.notes:
        print(f"hil bench: {note}", file=sys.stderr)
    args.backend = "serial"
    return str(model)


def request_from_args(args: argparse.Namespace, model: str | None) -> BenchRequest:
    """The command line as a :class:`BenchRequest` (checked by ``run_bench``)."""
    from harness.bench.request import BenchRequest

    return BenchRequest(
        board=args.board, backend=args.backend, protocol=args.protocol, model=model, data=args.data,
        split=args.split, limit=args.limit, threshold=args.threshold, person_index=args.person_index,
        warmups=args.warmups,
        repeats=args.repeats, out_dir=args.out, resume=args.resume, port=args.port, baud=args.baud,
        watchdog=args.watchdog, place=args.place, coordinator=args.coordinator, place_wait=args.place_wait,
    )


def handle(args: argparse.Namespace) -> int:
    import logging

    from harness import console
    from harness.bench.api import RunAlreadyComplete, run_bench
    from harness.bench.runner import BenchInterrupted
    from harness.bench.store import SUMMARY_NAME, RunFolder
    from harness.errors import EXIT_IMAGES_FAILED
    from harness.farm import open_place

    if not getattr(args, "verbose", 0):
        # device log frames go to the run's device.log; on the terminal they would repeat the
        # one error line the run ends with
        logging.getLogger("harness.device").setLevel(logging.CRITICAL)
    model = flash_first(args) if args.flash else args.model
    try:
        folder = run_bench(request_from_args(args, model), quiet=args.quiet, place_opener=open_place)
    except BenchInterrupted as exc:
        print(f"hil bench: {exc}", file=sys.stderr)
        return exc.exit_code
    except RunAlreadyComplete as exc:
        print(f"hil bench: {exc}")
        return 0
    # a table on a terminal, the summary.txt text byte for byte otherwise
    console.print_summary((folder / SUMMARY_NAME).read_text(encoding="utf-8"), title=folder.name)
    print(f"run folder: {folder}")
    metrics = RunFolder(folder).read_manifest().get("metrics") or {}
    n, n_ok = int(metrics.get("n") or 0), int(metrics.get("n_ok") or 0)
    if n and not n_ok:
        print("hil bench: error: no image could be measured (see the errors above)", file=sys.stderr)
        return EXIT_IMAGES_FAILED
    if n_ok < n:
        print(f"hil bench: {n - n_ok} of {n} images failed (error rows in the run folder)", file=sys.stderr)
        return EXIT_IMAGES_FAILED
    return 0
