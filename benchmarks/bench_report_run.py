"""Run report speed: a 10,000-image run against a 1,000-image one.

Both runs are synthetic run folders (schema v1, with subgroups, errors, host mismatches
and thumbnails on disk), written before the clock starts. The figure that matters is
the wall time of ``write_report`` (load the folder, recompute every metric, draw every
plot, read the gallery images, write the page); the 1,000-image run in the same process
shows how the time scales with the run's size.

    python benchmarks/bench_report_run.py [--n 10000] [--keep DIR]

Target (issue 6): the report of a 10,000-image run is written in under 10 s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

TARGET_S = 10.0


def timed_report(run: Path) -> tuple[float, float, int]:
    from harness.report.run_report import render
    from harness.report.runs import load_run

    t0 = time.perf_counter()
    loaded = load_run(run)
    t1 = time.perf_counter()
    html = render(loaded)
    (run / "report.html").write_text(html, encoding="utf-8")
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, len(html)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="images in the large run")
    ap.add_argument("--keep", type=Path, help="write the runs here and keep them")
    args = ap.parse_args()

    from harness.report.synth import SynthSpec, write_run

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        t = time.perf_counter()
        small = write_run(root / "small", SynthSpec(n=args.n // 10, seed=1))
        large = write_run(root / "large", SynthSpec(n=args.n, seed=2))
        print(f"synthetic runs written in {time.perf_counter() - t:.1f} s (not counted)")
        timed_report(small)  # warm-up: imports matplotlib, PIL, pyarrow once
        rows = []
        for label, run, n in (("small", small, args.n // 10), ("large", large, args.n)):
            load_s, total_s, size = timed_report(run)
            rows.append((label, n, load_s, total_s, size))
            print(f"{n:>6} images: load {load_s:6.2f} s, report written in {total_s:6.2f} s, "
                  f"{size / 1e6:.2f} MB")
        large_s, small_s = rows[1][3], rows[0][3]
        print(f"scaling: {args.n // 10} -> {args.n} images costs x{large_s / small_s:.2f} time")
        print(f"target: {args.n} images in < {TARGET_S:.0f} s; measured {large_s:.2f} s = "
              f"{large_s / TARGET_S:.0%} of the budget -> "
              f"{'PASS' if large_s < TARGET_S else 'FAIL'}")
        return 0 if large_s < TARGET_S else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
