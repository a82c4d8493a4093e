"""The fault matrix: every case of tests/faults on every target, as one table.

Each fault (bit flips, drops, duplicates, garbage, stalls, a device reset, a closed
connection, each host->device and device->host) runs through the relay of the fault
suite and ends in (a) "complete" with outputs equal to the clean run's, or (b)
"failed+resumed": it failed within its deadline and ``--resume`` completed it. The table
gives the outcome, the time against the clean run of the same size (for (b): the failing
run's time until the error) and the resends the link needed.

    python benchmarks/bench_faults.py                  # the whole matrix on every target
    python benchmarks/bench_faults.py --only stall     # cases whose id holds "stall"
    python benchmarks/bench_faults.py --target sim
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for sub in ("tests/faults", "tests/unit"):
    sys.path.insert(0, str(ROOT / sub))

from bench_fakes import make_image_folder  # noqa: E402
from fault_cases import CASES, CaseResult, outputs_of, relayed, request, run_case  # noqa: E402
from fault_targets import TARGETS, FaultTarget  # noqa: E402

from harness.bench.api import run_bench  # noqa: E402
from harness.boards import Board, load_board  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.models.zoo import resolve_model  # noqa: E402


def _clean(target: FaultTarget, model: Path, board: Board, data: Path, out: Path
           ) -> tuple[float, dict[str, list[int]]]:
    """The clean run's time (median of three, after one untimed run) and outputs."""
    times = []
    for i in range(4):
        started = time.monotonic()
        with relayed(target, model, board) as relay:
            folder = run_bench(request(relay.url, model, data, out / str(i)))
        times.append(time.monotonic() - started)
    return statistics.median(times[1:]), outputs_of(folder)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run only the cases whose id contains this")
    ap.add_argument("--target", default=None, help="run only this target (default: all that can run)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    try:
        model = resolve_model("vww-default")
    except HarnessError as exc:
        print(f"bench_faults: skipped: {exc}")
        return 0
    board = load_board("nano33")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench_faults_") as tmp:
        root = Path(tmp)
        for target in TARGETS:
            if args.target and target.name != args.target:
                continue
            reason = target.skip_reason()
            if reason:
                print(f"target {target.name}: skipped: {reason}")
                continue
            clean_s: dict[int, float] = {}
            clean_out: dict[int, dict[str, list[int]]] = {}
            rows: list[tuple[CaseResult, int]] = []
            for case in CASES:
                if args.only not in case.id:
                    continue
                n = case.images
                data = root / f"data-{n}"
                if n not in clean_s:
                    make_image_folder(data, n, size=(128, 96))
                    clean_dir = root / f"clean-{target.name}-{n}"
                    clean_s[n], clean_out[n] = _clean(target, model, board, data, clean_dir)
                out = root / f"{target.name}-{case.id}"
                out.mkdir()
                result = run_case(case, target, model, board, data, out, clean_out[n])
                failures += not result.ok
                rows.append((result, n))
            print(f"\ntarget {target.name}: nano33, vww-default (96x96x3 int8), 1 KiB frames, 4 credits")
            print(f"clean run: {', '.join(f'{n} images {s:.2f} s' for n, s in sorted(clean_s.items()))}")
            print(f"{'fault':<36} {'outcome':<16} {'images':>6} {'time':>7} {'x clean':>8} {'resends':>8}")
            for result, n in rows:
                outcome = result.outcome if result.ok else f"BAD: {result.outcome}"
                print(
                    f"{result.case:<36} {outcome:<16} {n:>6} {result.seconds:>6.1f}s "
                    f"{result.seconds / clean_s[n]:>7.1f}x {result.resends:>8}"
                )
                if not result.ok:
                    print(f"    problems: {'; '.join(result.problems)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
