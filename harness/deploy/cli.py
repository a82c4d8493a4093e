"""``hil build``, ``hil flash`` and ``hil live``: the firmware side of the harness.

Heavy work (TFLM in a child process, PlatformIO, matplotlib) is imported inside the
handlers, so listing the commands costs nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from harness.models.default import DEFAULT_MODEL, DEFAULT_MODEL_HELP

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="generate the firmware sources for a model and build them with PlatformIO",
        description="Check that the model fits the board, write firmware/src/generated/, run "
        "`pio run -e <env>` and report flash and RAM use read from the ELF.",
    )
    p.add_argument("--board", required=True, help="board id (see `hil boards`)")
    p.add_argument("--model", default=None,
                   help=f"zoo name or .tflite path (default: {DEFAULT_MODEL}, the model the project ships, "
                   f"for the committed PlatformIO tree; with --emulator: {DEFAULT_MODEL_HELP})")
    p.add_argument("--renode", action="store_true", help="build the Renode variant (protocol on Serial1)")
    p.add_argument("--arena", type=int, default=None, metavar="BYTES",
                   help="measured arena to size from (default: measure with the TFLM allocator)")
    p.add_argument("--no-compile", action="store_true",
                   help="only generate the sources; do not run PlatformIO")
    p.add_argument("--emulator", choices=("qemu", "native"), default=None,
                   help="build the real firmware (TFLM + CMSIS-NN) for an emulated board into the "
                   "user cache instead of a PlatformIO build: qemu (Cortex-M4, mps2-an386) or native "
                   "(host g++); `hil bench --backend qemu|native` does this by itself")
    p.add_argument("--tflm-dir", type=Path, default=None, metavar="DIR",
                   help="TFLM Arduino-library tree (Chirale_TensorFLowLite 2.0.0) for --emulator builds "
                   "(default: $HIL_TFLM_DIR, then PlatformIO's copy in firmware/.pio/libdeps/*/ or "
                   "~/.platformio/lib; with none, PlatformIO installs it if its registry answers)")
    p.add_argument("--protocol", choices=("v1", "eembc"), default="v1",
                   help="protocol the --emulator firmware serves (default v1)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no status line while building")
    p.set_defaults(func=_build)

    p = sub.add_parser("flash", help="upload the last build to a board (pio run -t upload)")
    p.add_argument("--board", required=True, help="board id")
    p.add_argument("--port", default=None, help="serial port (default: found by the board's USB ids)")
    p.set_defaults(func=_flash)

    p = sub.add_parser(
        "live",
        help="camera mode: show frames and predictions from the board's camera",
        description="Capture, infer and show frames until Ctrl-C (or --count). Without --out a "
        "matplotlib window shows them; with --out PNG files are written (headless use).",
    )
    p.add_argument("--board", required=True, help="board id")
    p.add_argument("--port", default=None,
                   help="serial port or pyserial URL (default: found by the board's USB ids)")
    p.add_argument("--out", type=Path, default=None, help="write PNG files here instead of a window")
    p.add_argument("--count", type=int, default=None, help="stop after this many frames (default: run on)")
    p.add_argument("--threshold", type=float, default=0.5, help="person score threshold (default 0.5)")
    p.add_argument("--person-index", type=int, default=1,
                   help="output index of the person class (default 1)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for each capture (default 10)")
    p.set_defaults(func=_live)


def _build(args: argparse.Namespace) -> int:
    from harness import console
    from harness.boards import load_board
    from harness.deploy.build import build, env_for
    from harness.models.zoo import resolve_model

    board = load_board(args.board)
    if args.emulator:
        return _build_emulator(args, board)
    # the firmware tree is committed: only the project's own model may be generated into it by default
    model = resolve_model(args.model if args.model is not None else DEFAULT_MODEL)
    env = env_for(board, renode=args.renode)
    what = (f"generating firmware sources for {model.name} on {board.id}" if args.no_compile
            else f"building {env} firmware for {model.name} (arena, sources, PlatformIO)")
    # a PlatformIO build takes minutes: a live line on a terminal; plain and quiet runs log it
    with console.status(what):
        result = build(board, model, renode=args.renode, arena_bytes=args.arena,
                       compile_firmware=not args.no_compile)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
    return 0


def _build_emulator(args: argparse.Namespace, board: object) -> int:
    """``hil build --emulator``: the cached real-TFLM image for a model (never the repo's sources)."""
    from harness import console
    from harness.boards import Board
    from harness.deploy.api import build_emulator_image
    from harness.models.zoo import resolve_model

    assert isinstance(board, Board)
    model = resolve_model(args.model)
    what = f"building the {args.emulator} firmware for {model.name} (TFLM once, then the model)"
    with console.status(what):
        image = build_emulator_image(args.emulator, model, board, protocol=args.protocol,
                                     tflm_dir=args.tflm_dir)
    fw = image.firmware
    if args.json:
        print(json.dumps(fw, indent=2))
        return 0
    tflm = fw.get("tflm") or {}
    assert isinstance(tflm, dict)
    lines = [f"{args.emulator} firmware for {model.name} ({args.protocol}): {image.path}"
             f"{' (cached)' if fw.get('cached') else ''}",
             f"TFLM {tflm.get('version')} checksum {str(tflm.get('checksum'))[:16]}... "
             f"(from {tflm.get('found_by')}), arena {fw.get('arena_size'):,} B"]
    elf = fw.get("elf")
    if isinstance(elf, dict):
        lines.append(f"ELF: flash {elf['flash']:,} B (text {elf['text']:,} + data {elf['data']:,}), "
                     f"static RAM {elf['ram']:,} B (data {elf['data']:,} + bss {elf['bss']:,})")
    print("\n".join(lines))
    return 0


def _flash(args: argparse.Namespace) -> int:
    from harness.boards import load_board
    from harness.deploy.flash import flash

    board = load_board(args.board)
    port = flash(board, args.port)
    print(f"flashed {board.pio_env} to {port}")
    return 0


def _live(args: argparse.Namespace) -> int:
    from harness.boards import load_board
    from harness.deploy.flash import find_board_port
    from harness.deploy.live import run_live

    board = load_board(args.board)
    url = args.port or find_board_port(board)
    shown = run_live(board, url, out_dir=args.out, count=args.count, person_index=args.person_index,
                     threshold=args.threshold, timeout=args.timeout)
    where = f" into {args.out}" if args.out else ""
    print(f"{shown} frames{where}")
    return 0
