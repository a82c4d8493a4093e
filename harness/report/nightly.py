"""``hil nightly``: run a matrix, add the runs to the history, check, and tell CI.

One pass: run every cell through the bench runner (a cell whose backend or board is
absent raises ToolMissing and is skipped with that reason), write each new run's
report, refresh the DuckDB history index, check each new run against the recent runs
of its cell, then write the nightly page with trend plots, a Markdown summary for the
CI job summary, JUnit XML for CI test views and OpenMetrics lines for dashboards. The
exit code is 1 on a regression or a failed cell, so a CI job turns red.

The runner is injectable (``runner=``) so the cell loop is testable without the bench.
What ran tonight is read back from the history through :func:`harness.results.history`
(:meth:`NightlyResult.tonight`), the DataFrame a notebook gets, and shown as a table.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import console
from harness.bench.request import BenchRequest
from harness.errors import ConfigError, HarnessError, ToolMissing
from harness.paths import reports_dir
from harness.report import ci_outputs, trends
from harness.report.history import History
from harness.report.matrix import Cell, Matrix, check_cells, load_matrix
from harness.report.records import CellOutcome
from harness.report.regress import Check, check_accuracy, check_latency
from harness.units import latency_label

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

#: What runs one cell: ``run_bench`` in production, a fake in the report's tests.
Runner = Callable[[BenchRequest], Path]

OK, SKIPPED, FAILED = "ok", "skipped", "failed"


@dataclass
class NightlyResult:
    matrix: Matrix
    out: Path
    outcomes: list[CellOutcome]
    history_runs: int
    summary_path: Path
    html_path: Path
    junit_path: Path
    metrics_path: Path

    @property
    def regressions(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.regressed]

    @property
    def exit_code(self) -> int:
        failed = any(o.status == FAILED for o in self.outcomes)
        return 1 if self.regressions or failed else 0

    def history(self) -> pd.DataFrame:
        """Every run in the history index, one row each (``harness.results.history``)."""
        from harness.results import history

        return history(self.out)

    def tonight(self) -> pd.DataFrame:
        """One row per cell of tonight: its outcome, and its run's history row where it ran.

        The figures come from the history index, so this table and a notebook's
        ``harness.results.history`` agree; a cell that did not run has no figures.
        """
        import pandas as pd

        index = self.history().set_index("path")
        records = []
        for o in self.outcomes:
            key = str(o.run_dir) if o.run_dir is not None else None
            row = index.loc[key].to_dict() if key is not None and key in index.index else {}
            records.append({"cell": o.cell.name, "result": ci_outputs.verdict(o),
                            "reason": o.reason, "run_dir": key, **row, "place": o.place,
                            "latency_label": (o.row or {}).get("latency_label")})  # fmt: skip
        return pd.DataFrame.from_records(records)

    def table_rows(self) -> list[tuple[str, ...]]:
        """Tonight as the console shows it: accuracy with its interval, p50 with its unit and source."""
        rows: list[tuple[str, ...]] = []
        for rec in self.tonight().to_dict("records"):
            run_dir = rec.get("run_dir")
            where = Path(run_dir).name if isinstance(run_dir, str) else str(rec.get("reason") or "")
            if rec.get("place"):
                where = f"{where} (place {rec['place']})"
            rows.append((rec["cell"], rec["result"], _acc_text(rec), _p50_text(rec), where))
        return rows


TABLE_COLUMNS = ["cell", "result", "accuracy (95 % CI)", "p50 latency", "run / reason"]


def _num(v: Any) -> float | None:
    """A figure the history holds as a float; None for NULL (None, NaN or pandas' NA)."""
    import pandas as pd

    return None if v is None or bool(pd.isna(v)) else float(v)


def _acc_text(rec: dict[str, Any]) -> str:
    a, lo, hi = (_num(rec.get(k)) for k in ("accuracy", "accuracy_ci_low", "accuracy_ci_high"))
    if a is None:
        return "\u2014"
    if lo is None or hi is None:
        return f"{a:.1%}"
    return f"{a:.1%} [{lo:.1%}, {hi:.1%}]"


def _p50_text(rec: dict[str, Any]) -> str:
    p50 = _num(rec.get("latency_us_p50"))
    if p50 is None:
        return "\u2014"
    label = rec.get("latency_label")
    if not isinstance(label, str) or not label:
        label = ci_outputs.source_words(rec.get("latency_source"))
    return f"{p50 / 1000:.2f} ms ({label})"


def bench_runner() -> Runner:
    """The real bench runner; imported here so the report side works without it."""
    try:
        from harness.bench.api import run_bench
    except ImportError as exc:
        raise ConfigError(f"hil nightly needs the bench runner (harness.bench.api): {exc}") from exc
    return run_bench


def _run_cell(cell: Cell, m: Matrix, runs_dir: Path, limit: int | None,
              runner: Runner, write_reports: bool) -> CellOutcome:
    from harness.report.run_report import write_report

    started = time.perf_counter()
    try:
        run_dir = runner(BenchRequest(
            board=cell.board, backend=cell.backend, model=cell.model, data=cell.dataset,
            out_dir=runs_dir, limit=limit, threshold=m.threshold, warmups=m.warmups, repeats=m.repeats,
        ))
    except ToolMissing as exc:
        log.info("skipping %s: %s", cell.name, exc)
        return CellOutcome(cell, SKIPPED, str(exc), seconds=time.perf_counter() - started)
    except HarnessError as exc:
        log.warning("cell %s failed: %s", cell.name, exc)
        return CellOutcome(cell, FAILED, f"{type(exc).__name__}: {exc}",
                           seconds=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - one broken backend must not cost the other cells
        log.exception("cell %s crashed", cell.name)
        return CellOutcome(cell, FAILED, f"internal error: {type(exc).__name__}: {exc}",
                           seconds=time.perf_counter() - started)
    outcome = CellOutcome(cell, OK, run_dir=Path(run_dir))
    if write_reports:
        try:
            outcome.report = write_report(Path(run_dir))
        except HarnessError as exc:
            outcome.reason = f"report not written: {exc}"
    outcome.seconds = time.perf_counter() - started
    return outcome


def _run_latency_label(run_dir: Path) -> str | None:
    """The run's own latency label (run.json), which the history index does not hold.

    CI outputs show it beside every time, so a nightly says "estimated from the nano33
    cost model (source: ...)" rather than a bare "estimated".
    """
    from harness.errors import DataError
    from harness.results import load_run

    try:
        return latency_label(load_run(run_dir, columns=["status"]).meta)
    except DataError:
        return None


def check_run(history: History, row: dict[str, Any], m: Matrix) -> list[Check]:
    prev = history.previous(row, m.policy.window)
    acc = check_accuracy(
        row.get("correct"), row.get("n_ok"),
        [(int(p["correct"]), int(p["n_ok"])) for p in prev
         if p.get("correct") is not None and p.get("n_ok")], m.policy)
    lat = check_latency(row.get("latency_us_p50"), [p["latency_us_p50"] for p in prev
                                                    if p.get("latency_us_p50") is not None],
                        m.policy)
    if row.get("latency_us_p50") is not None:
        # the check quotes times: say what kind, on the page, in Markdown and in JUnit alike
        lat = replace(lat, message=f"{lat.message} {ci_outputs.latency_tag(row)}")
    return [acc, lat]


def farm_runner() -> Runner:
    """The bench runner that acquires the place a cell's request names (board farms)."""
    from functools import partial

    from harness.bench.api import run_bench
    from harness.farm import open_place

    return partial(run_bench, place_opener=open_place)


def _run_on_places(cells: list[Cell], m: Matrix, runs_dir: Path, limit: int | None, runner: Runner,
                   write_reports: bool, coordinator: str | None, bar: Any) -> list[CellOutcome]:
    """Run the cells in parallel, one per free place tagged with the cell's board at a time."""
    import threading

    from harness.farm.schedule import PlacePool

    def on_place(cell: Cell, place: str) -> CellOutcome:
        log.info("nightly cell %s on place %s", cell.name, place)
        def placed(req: BenchRequest) -> Path:
            return runner(replace(req, place=place, coordinator=coordinator))

        outcome = _run_cell(cell, m, runs_dir, limit, placed, write_reports)
        outcome.place = place
        return outcome

    def no_place(cell: Cell, reason: str) -> CellOutcome:
        return CellOutcome(cell, FAILED, reason)

    lock = threading.Lock()
    done: list[CellOutcome] = []

    def advance(_cell: Cell, outcome: CellOutcome) -> None:
        with lock:
            done.append(outcome)
            bar.advance(1, **{s: sum(o.status == s for o in done) for s in (OK, SKIPPED, FAILED)})

    pool: PlacePool[Cell, CellOutcome] = PlacePool(coordinator, on_place, no_place,
                                                   failed=lambda o: o.status == FAILED)
    return pool.run(cells, board_of=lambda c: c.board, on_done=advance)


def run_nightly(matrix_path: Path, out: Path | None = None, limit: int | None = None,
                dry_history: bool = False, runner: Runner | None = None,
                write_reports: bool = True, places: bool = False,
                coordinator: str | None = None) -> NightlyResult:
    """Run the matrix (unless ``dry_history``) and write the pages; see the module doc.

    With ``places``, the cells whose backend is ``serial`` run on labgrid places tagged
    ``board=<cell's board>`` (in parallel, one cell per place at a time); the others run
    here first, one after another.
    """
    m = load_matrix(matrix_path)
    if runner is None and not dry_history:
        check_cells(m)  # names only the real bench knows; an injected runner has its own
    out = out or m.out or reports_dir() / "nightly"
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    limit = limit if limit is not None else m.limit
    outcomes: list[CellOutcome] = []
    if not dry_history:
        run = runner or (farm_runner() if places else bench_runner())
        farm_cells = [c for c in m.cells if places and c.backend == "serial"]
        with console.progress("nightly", len(m.cells), unit="cell") as bar:
            for cell in m.cells:
                if cell in farm_cells:
                    continue
                log.info("nightly cell %s", cell.name)
                outcomes.append(_run_cell(cell, m, runs_dir, limit, run, write_reports))
                bar.advance(1, **{s: sum(o.status == s for o in outcomes) for s in (OK, SKIPPED, FAILED)})
            if farm_cells:
                placed = _run_on_places(farm_cells, m, runs_dir, limit, run, write_reports, coordinator, bar)
                by_cell = {o.cell: o for o in outcomes + placed}
                outcomes = [by_cell[c] for c in m.cells]
    with History(out) as history:
        history.refresh()
        for o in outcomes:
            if o.status == OK and o.run_dir is not None:
                o.row = history.run_row(o.run_dir)
                if o.row is None:
                    o.status, o.reason = FAILED, "the runner returned a folder without run.json"
                    continue
                o.row["latency_label"] = _run_latency_label(o.run_dir)
                if o.row.get("model"):  # the run names the model it measured: that is the cell's name
                    o.cell = replace(o.cell, model_name=str(o.row["model"]))
                o.checks = check_run(history, o.row, m)
        total = history.count()
        page = trends.nightly_page(m, outcomes, history, out)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    html_path = out / "nightly.html"
    html_path.write_text(page, encoding="utf-8")
    summary = ci_outputs.markdown(m, outcomes, total, stamp, html_path)
    summary_path = out / "summary.md"
    summary_path.write_text(summary, encoding="utf-8")
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    if step:
        with open(step, "a", encoding="utf-8") as fh:
            fh.write(summary)
    junit_path = out / "junit.xml"
    metrics_path = out / "metrics.prom"
    if dry_history:
        # no cell ran: the last night's test results and metrics stay what CI reads
        log.info("--history-only: %s and %s keep the last night's results", junit_path.name,
                 metrics_path.name)
    else:
        junit_path.write_text(ci_outputs.junit(m, outcomes), encoding="utf-8")
        metrics_path.write_text(ci_outputs.openmetrics(outcomes), encoding="utf-8")
    return NightlyResult(m, out, outcomes, total, summary_path, html_path, junit_path,
                         metrics_path)
