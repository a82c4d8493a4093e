"""Nightly history speed: index, query and trend plots over 1,000 stored runs.

Synthetic run folders (run.json plus a small results.parquet each, spread over four
cells and 250 nights) are written to a temporary folder first. Then, timed:

* cold: the DuckDB index is built from nothing (every run.json read) and the trend
  plots are drawn; this is a nightly's first run on an existing history;
* warm: the index is refreshed (nothing changed, every folder still stat'ed), the
  regression queries for one cell run, and the trend plots are drawn again; this is
  every later night.

    python benchmarks/bench_report_history.py [--runs 1000] [--keep DIR]

Target (issue 6): history query and trend plots over 1,000 runs in under 5 s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

TARGET_S = 5.0
CELLS = [("nano33", "sim"), ("esp32cam", "sim"), ("nano33", "qemu"), ("nano33", "serial")]


def write_history(root: Path, runs: int) -> None:
    from harness.report.synth import SynthSpec, write_run

    t0 = datetime(2026, 1, 1, 3, tzinfo=timezone.utc)
    for i in range(runs):
        board, backend = CELLS[i % len(CELLS)]
        night = i // len(CELLS)
        spec = SynthSpec(n=40, seed=i, board=board, backend=backend, images=False,
                         created=t0 + timedelta(days=night),
                         latency_ms=180.0 if board == "nano33" else 95.0)
        write_run(root / "runs", spec)


def query_and_plot(root: Path) -> tuple[float, float, int]:
    from harness.report.history import History
    from harness.report.regress import Policy
    from harness.report.trends import trend_plots

    t0 = time.perf_counter()
    with History(root) as h:
        h.refresh()
        newest = sorted((root / "runs").iterdir())[-1]
        row = h.run_row(newest)
        assert row is not None
        h.previous(row, 10)
        t1 = time.perf_counter()
        plots = trend_plots(h, Policy())
        n = h.count()
    t2 = time.perf_counter()
    assert plots, "no trend plots drawn"
    return t1 - t0, t2 - t0, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--keep", type=Path, help="write the history here and keep it")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        t = time.perf_counter()
        write_history(root, args.runs)
        print(f"{args.runs} synthetic run folders written in {time.perf_counter() - t:.1f} s "
              "(not counted)")
        import matplotlib  # noqa: F401 - import cost is not what is measured

        (root / "history.duckdb").unlink(missing_ok=True)
        cold_q, cold, n = query_and_plot(root)
        warm_q, warm, _ = query_and_plot(root)
        print(f"cold (index built from {n} run.json files): query {cold_q:.2f} s, "
              f"with trend plots {cold:.2f} s")
        print(f"warm (index up to date):                  query {warm_q:.2f} s, "
              f"with trend plots {warm:.2f} s")
        print(f"incremental index saves x{cold_q / max(warm_q, 1e-9):.1f} on the query")
        worst = max(cold, warm)
        print(f"target: < {TARGET_S:.0f} s; worst measured {worst:.2f} s = "
              f"{worst / TARGET_S:.0%} of the budget -> {'PASS' if worst < TARGET_S else 'FAIL'}")
        return 0 if worst < TARGET_S else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
