"""Run folders as pandas DataFrames, for notebooks and scripts.

Parquet stays the storage format (docs/results.md); this module is the reading side that
an analyst uses: ``load_run`` gives one run's per-image rows with typed columns (nullable
integers, booleans and strings, so a missing value stays missing instead of becoming 0 or
NaN-as-float), ``load_runs`` stacks every run under a folder with its identity columns,
and ``history`` gives the DuckDB history index that ``hil nightly`` maintains.

The folder is read the way the bench wrote it: ``results.parquet`` once consolidated,
else the ``results-NNNNN.parquet`` parts in order, so an interrupted run yields the rows
it measured, with status "interrupted". A folder that is not a run is one clear error.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bench.store import MANIFEST_NAME, RESULTS_NAME, mark_if_abandoned, part_files
from harness.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

HISTORY_DB = "history.duckdb"  # the file harness.report.history writes next to the runs


@dataclass
class Run:
    """One run folder: ``rows`` (one per image), ``meta`` (run.json) and ``status``."""

    path: Path
    meta: dict[str, Any]
    rows: pd.DataFrame
    status: str
    problems: list[str] = field(default_factory=list)

    def _dig(self, *keys: str) -> Any:
        node: Any = self.meta
        for k in keys:
            if not isinstance(node, dict):
                return None
            node = node.get(k)
        return node

    @property
    def run_id(self) -> str:
        return str(self._dig("run_id") or self.path.name)

    @property
    def board(self) -> str | None:
        v = self._dig("board", "id")
        return None if v is None else str(v)

    @property
    def backend(self) -> str | None:
        v = self._dig("backend")
        return None if v is None else str(v)

    @property
    def model(self) -> str | None:
        v = self._dig("model", "name") or self._dig("model", "path")
        return None if v is None else str(v)

    @property
    def metrics(self) -> dict[str, Any]:
        m = self.meta.get("metrics")
        return dict(m) if isinstance(m, dict) else {}


def result_files(folder: Path) -> list[Path]:
    """The Parquet files holding a run's rows, in row order (consolidated file, else parts)."""
    whole = folder / RESULTS_NAME
    return [whole] if whole.is_file() else part_files(folder)


def read_parts(folder: Path, columns: list[str] | None = None) -> tuple[pa.Table | None, list[str]]:
    """All readable rows of a run as one Arrow table, and a line for each unreadable part.

    A truncated part (a disk that filled up, a copy cut short) is skipped and named
    rather than losing the whole run. ``columns`` limits what is read; subgroup columns
    (``sg_*``) are always read. None when the folder has no result files at all.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = result_files(folder)
    if not files:
        return None, []
    problems: list[str] = []
    tables = []
    for f in files:
        try:
            pf = pq.ParquetFile(f)
            names = pf.schema_arrow.names
            wanted = names if columns is None else [c for c in names if c in columns or c.startswith("sg_")]
            tables.append(pf.read(columns=wanted))
        except (pa.ArrowException, OSError) as exc:
            problems.append(f"{f.name} is unreadable (truncated?): {str(exc).splitlines()[0]}")
    if not tables:
        return None, problems
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        problems.append(f"result parts have incompatible schemas: {exc}")
        table = tables[0]
    return table, problems


def _nullable_types() -> dict[Any, Any]:
    import pandas as pd
    import pyarrow as pa

    return {
        pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
        pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(),
    }  # fmt: skip


def to_frame(table: pa.Table | None) -> pd.DataFrame:
    """Arrow rows to a DataFrame with nullable dtypes; no table gives the schema's empty frame."""
    from harness.bench.store import BASE_SCHEMA

    if table is None:
        table = BASE_SCHEMA.empty_table()
    mapping = _nullable_types()
    return table.to_pandas(types_mapper=mapping.get)


def _read_meta(folder: Path) -> tuple[dict[str, Any], str | None]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return {}, f"{MANIFEST_NAME} is missing"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {}, f"{MANIFEST_NAME} is unreadable: {exc}"
    if not isinstance(data, dict):
        return {}, f"{MANIFEST_NAME} is not a JSON object"
    if data.get("status") == "running":  # a dead writer's run is marked interrupted, as hil report does
        data = mark_if_abandoned(folder, data)
    return data, None


def load_run(path: str | Path, columns: list[str] | None = None) -> Run:
    """One run folder (or its run.json) as a :class:`Run`.

    Raises DataError when ``path`` is not a run: no folder, or neither a readable
    run.json nor result files. A run that did not finish gives the rows it has and its
    status from run.json ("interrupted", "failed", or "running" while its writer lives).
    """
    folder = Path(path).expanduser()
    if folder.name == MANIFEST_NAME and folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise DataError(f"{folder} is not a run folder: no such folder")
    meta, meta_problem = _read_meta(folder)
    table, problems = read_parts(folder, columns)
    if meta_problem and table is None:
        raise DataError(f"{folder} is not a run folder: no readable {MANIFEST_NAME} and no results*.parquet")
    if meta_problem:
        problems.insert(0, meta_problem)
    status = str(meta.get("status") or ("complete" if (folder / RESULTS_NAME).is_file() else "interrupted"))
    return Run(path=folder, meta=meta, rows=to_frame(table), status=status, problems=problems)


def run_folders(root: Path, max_depth: int = 3) -> Iterator[Path]:
    """Folders holding a run.json up to ``max_depth`` below ``root`` (itself included), sorted."""
    root = Path(root)
    found: list[Path] = []
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        if MANIFEST_NAME in filenames:
            dirnames[:] = []  # a run folder holds no other runs
            found.append(Path(dirpath))
        elif len(Path(dirpath).parts) - base >= max_depth:
            dirnames[:] = []
        dirnames.sort()
    yield from sorted(found)


def load_runs(folder: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Every run under ``folder`` as one DataFrame, with run_id, board, backend, model and
    run_status columns in front (``status`` stays the per-image one); unreadable runs are
    logged and left out."""
    import pandas as pd

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of runs")
    frames = []
    for sub in run_folders(root):
        try:
            run = load_run(sub, columns)
        except DataError as exc:
            log.warning("skipped: %s", exc)
            continue
        df = run.rows.copy()
        ident = {"run_id": run.run_id, "board": run.board, "backend": run.backend,
                 "model": run.model, "run_status": run.status}  # fmt: skip
        for i, (name, value) in enumerate(ident.items()):
            df.insert(i, name, pd.Series([value] * len(df), index=df.index, dtype=pd.StringDtype()))
        frames.append(df)
    if not frames:
        raise DataError(f"no run folders (with a run.json) under {root}")
    return pd.concat(frames, ignore_index=True)


def history(db: str | Path) -> pd.DataFrame:
    """The history index (one row per run, see harness/report/history.py) as a DataFrame.

    ``db`` is the ``history.duckdb`` file or the folder it sits in. It is opened read
    only: ``hil nightly`` keeps it up to date, and nothing here changes it.
    """
    import duckdb

    path = Path(db).expanduser()
    if path.is_dir():
        path = path / HISTORY_DB
    if not path.is_file():
        raise DataError(f"no history index at {path}: `hil nightly` writes one next to its runs")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise DataError(f"cannot open history database {path}: {str(exc).splitlines()[0]}") from None
    try:
        frame = con.execute("SELECT * FROM runs ORDER BY created").df()
    except duckdb.Error as exc:
        raise DataError(f"{path} holds no run index: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return frame
