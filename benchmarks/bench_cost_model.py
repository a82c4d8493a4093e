"""The sim's estimated cycles against QEMU-derived cycles, per layer and per model.

QEMU-derived cycles are the real firmware's (TFLM + CMSIS-NN, Cortex-M4) per-layer
instruction counts under ``-icount shift=0`` times the board profile's CPI figure. For
each model the script prints the median absolute relative error over its layers and the
error of the whole inference, for three cost models:

* before: the profile's prior coefficients (the hand-written [cost_model] table);
* after: the coefficients fitted on all models (what `hil calibrate` writes);
* held out: fitted on the *other* models only, so the figure says how well the fit
  carries over to a model it has not seen.

Goal (issue 11): median absolute error per model under 10 % after calibration.

    python benchmarks/bench_cost_model.py --board nano33                # runs QEMU
    python benchmarks/bench_cost_model.py --board nano33 --profiles counts.json
    python benchmarks/bench_cost_model.py --board nano33 --layers       # per-layer table too

It exits 0 with a one-line reason when the real-firmware QEMU path is not available.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.boards import load_board
from harness.calibration import api, collect
from harness.calibration.fit import fit, model_errors
from harness.errors import HarnessError
from harness.paths import cache_dir

GOAL = 0.10


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="nano33")
    ap.add_argument("--profiles", type=Path, help="layer counts saved by `hil calibrate --save`")
    ap.add_argument("--alphas", default="0.25,0.5")
    ap.add_argument("--save", type=Path, help="write the layer counts collected from QEMU here")
    ap.add_argument("--layers", action="store_true", help="print every layer")
    args = ap.parse_args()
    board = load_board(args.board)
    try:
        if args.profiles:
            records = collect.load_profiles(args.profiles)
        else:
            alphas = [float(a) for a in args.alphas.split(",") if a]
            records = api.collect(board, collect.default_models(alphas, cache_dir() / "calibration"))
        if args.save:
            collect.save_profiles(args.save, records)
        cal = api.calibrate(board, records)
    except HarnessError as exc:
        print(f"bench_cost_model: not run: {exc}")
        return 0
    prior = api.prior_of(board)
    before = {e.model: e for e in cal.result.before}
    after = {e.model: e for e in cal.result.after}
    held: dict[str, float] = {}
    names = [r["name"] for r in records]
    for name in names:
        train = [s for s in cal.samples if s.model != name]
        test = [s for s in cal.samples if s.model == name]
        if train and len(names) > 1:
            held[name] = model_errors(test, fit(train, prior).coefficients)[0].median_layer_error
    print(f"board {board.id}, CPI {cal.cpi:g} ({cal.cpi_source}), {len(cal.samples)} layers")
    print(f"{'model':<34} {'layers':>6} {'derived Mcyc':>12} {'est. before':>11} {'est. after':>10} "
          f"{'med err before':>14} {'after':>7} {'held out':>8} {'total before':>12} {'after':>7}")
    for name in names:
        b, a = before[name], after[name]
        h = f"{100 * held[name]:.1f}%" if name in held else "-"
        print(f"{name:<34} {a.layers:>6} {a.derived_cycles / 1e6:>12.2f} {b.estimated_cycles / 1e6:>11.2f} "
              f"{a.estimated_cycles / 1e6:>10.2f} {100 * b.median_layer_error:>13.1f}% "
              f"{100 * a.median_layer_error:>6.1f}% {h:>8} {100 * b.total_error:>11.1f}% "
              f"{100 * a.total_error:>6.1f}%")
    if args.layers:
        co = cal.result.coefficients
        for s in cal.samples:
            pe = prior.op_cycles(s.op, s.macs, s.output_elements)
            ae = co.op_cycles(s.op, s.macs, s.output_elements)
            print(f"  {s.model:<30} {s.index:>3} {s.op:<20} derived {s.cycles:>12,.0f} "
                  f"before {pe:>12,.0f} ({pe / s.cycles:5.2f}x) after {ae:>12,.0f} ({ae / s.cycles:5.2f}x)")
    worst = max(e.median_layer_error for e in after.values())
    print(f"worst median layer error after calibration: {100 * worst:.1f}% "
          f"(goal < {100 * GOAL:.0f}%): {'met' if worst < GOAL else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
