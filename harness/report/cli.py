"""``hil report``, ``hil compare`` and ``hil nightly``.

Only argparse wiring lives here; matplotlib, pyarrow and DuckDB are imported by the
modules the handlers call, so listing ``hil --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _report(args: argparse.Namespace) -> int:
    from harness.errors import ConfigError
    from harness.report.run_report import ReportOptions, write_report

    if args.out and len(args.runs) > 1 and not Path(args.out).is_dir():
        raise ConfigError("--out must be an existing folder when several runs are given")
    for run in args.runs:
        out = write_report(run, Path(args.out) if args.out else None,
                           ReportOptions(target_fpr=args.target_fpr, gallery=args.gallery))
        print(out)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from harness.report.compare import compare, expand_runs

    runs = expand_runs(args.runs)
    result = compare(runs, Path(args.out) if args.out else None, sigma_k=args.k)
    if not args.quiet:
        result.print()
    print(result.path)
    return 0


def _nightly(args: argparse.Namespace) -> int:
    from harness import console
    from harness.report.nightly import TABLE_COLUMNS, run_nightly

    result = run_nightly(Path(args.matrix), Path(args.out) if args.out else None,
                         limit=args.limit, dry_history=args.history_only,
                         places=args.places, coordinator=args.coordinator)
    if console.is_plain(sys.stdout):
        # CI logs and pipes get the Markdown job summary, as written to summary.md
        print(result.summary_path.read_text(encoding="utf-8"))
    else:
        if result.outcomes:
            console.print_rows(TABLE_COLUMNS, result.table_rows(), title=f"Nightly {result.matrix.name}")
        print(f"{result.history_runs} runs in the history; trends: {result.html_path}")
    return result.exit_code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the HTML report of a run folder",
                       description="Write one self-contained HTML report per run folder "
                                   "(default <run>/report.html).")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder or run id")
    p.add_argument("--out", help="output file or folder (default: inside the run folder)")
    p.add_argument("--target-fpr", type=float, default=0.05,
                   help="false-positive rate whose threshold the report shows (default 0.05)")
    p.add_argument("--gallery", type=int, default=8,
                   help="worst false positives/negatives shown each (default 8, 0 = none)")
    p.set_defaults(func=_report)

    c = sub.add_parser("compare", help="compare runs side by side: tables, and one HTML page",
                       description="Compare run folders (paths, run ids or quoted globs): "
                                   "print the tables and write the HTML page.")
    c.add_argument("runs", nargs="+", metavar="RUN", help="run folders, run ids or globs")
    c.add_argument("--out", help="output file (default <reports>/compare-<UTC>.html)")
    c.add_argument("-k", type=float, default=3.0,
                   help="latency shifts beyond k times the noise are flagged (default 3)")
    c.add_argument("--quiet", action="store_true",
                   help="print only the page's path, not the tables (default: tables, then the path)")
    c.set_defaults(func=_compare)

    n = sub.add_parser("nightly", help="run a models x boards x backends matrix, track history",
                       description="Run every cell of a TOML matrix, add the runs to the "
                                   "history, draw trends and exit 1 on a regression.")
    n.add_argument("--matrix", required=True, help="matrix TOML file (see matrices/sim.toml)")
    n.add_argument("--out", help="history folder (default: the matrix's 'out', else "
                                 "<reports>/nightly)")
    n.add_argument("--limit", type=int, default=None,
                   help="images per cell, overriding the matrix (default: the matrix's)")
    n.add_argument("--history-only", action="store_true",
                   help="run no cells; rebuild trends and checks from the stored history "
                        "(junit.xml and metrics.prom keep the last night's results)")
    n.add_argument("--places", action="store_true",
                   help="run the matrix's serial cells on labgrid places tagged board=<cell's board>, "
                        "in parallel, one cell per place at a time (default: off; docs/farm.md)")
    n.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="labgrid coordinator for --places (default: $LG_COORDINATOR, else 127.0.0.1:20408)")
    n.add_argument("--quiet", action="store_true",
                   help="no progress bar; print the Markdown summary (default: bar, then a table "
                        "on a terminal, the Markdown summary otherwise)")
    n.set_defaults(func=_nightly)
