"""`hil calibrate --board B`: fit the sim's cost model to QEMU per-layer instruction counts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.calibration.collect import CalibrationError


def _alphas(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, not {text!r}") from exc


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit a board's sim cost model to QEMU instruction counts",
        description="Run one inference per model on the real firmware in QEMU (-icount shift=0), "
        "turn each layer's instruction count into cycles with the board's CPI figure, fit the "
        "sim's per-op coefficients, and write them with their data to boards/calibration/<board>.toml.",
    )
    p.add_argument("--board", required=True, help="board profile id, e.g. nano33")
    p.add_argument("--model", action="append", type=Path, default=[],
                   help="a .tflite to include (repeatable; default: zoo int8 models, the MLPerf "
                   "reference and untrained MobileNetV1 variants)")
    p.add_argument("--alphas", type=_alphas, default=[0.25, 0.5, 0.75],
                   help="depth multipliers of the untrained MobileNetV1 variants to fit on "
                   "(default 0.25,0.5,0.75)")
    p.add_argument("--held-out-alphas", type=_alphas, default=[0.35],
                   help="variants counted and measured against the fit but not fitted on (default "
                   "0.35: channel counts that are not multiples of 4 take CMSIS-NN's slower paths)")
    p.add_argument("--profiles", type=Path, help="fit layer counts saved earlier instead of running QEMU")
    p.add_argument("--save", type=Path, help="also write the layer counts to this JSON file")
    p.add_argument("--dry-run", action="store_true", help="print the fit, do not write the profile")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from harness.boards import load_board
    from harness.calibration import api, collect
    from harness.paths import cache_dir

    board = load_board(args.board)
    api.require_cpi(board)
    if args.profiles:
        records = collect.load_profiles(args.profiles)
    else:
        variants = cache_dir() / "calibration"
        models = [(m.stem, m) for m in args.model] or collect.default_models(args.alphas, variants)
        held = [] if args.model else collect.variant_models(args.held_out_alphas, variants)
        records = api.collect(board, models, held)
    if args.save:
        collect.save_profiles(args.save, records)
    cal = api.calibrate(board, records)
    print("\n".join(api.error_table(cal)))
    c = cal.result.coefficients
    print(f"CPI {cal.cpi:g} ({cal.cpi_source})")
    print("fitted: " + ", ".join(f"{k} {v:.3g}/MAC" for k, v in sorted(c.cycles_per_mac.items()))
          + f"; per-op overhead {c.per_op_overhead_cycles:,.0f} cycles")
    if args.dry_run:
        return 0
    target = api.write(cal)
    print(f"wrote {target} and linked it from {board.path}")
    return 0


__all__ = ["CalibrationError", "register"]
