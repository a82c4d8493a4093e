"""The history of runs: a DuckDB database that indexes every run folder under a root.

Nightly runs accumulate as ordinary run folders; ``history.duckdb`` next to them holds
one row per run (the run.json identity and metrics, flattened), so trends and
regression checks are SQL queries instead of walks over thousands of JSON files. The
index is refreshed incrementally by path and modification time, which keeps it right
when runs are added, rewritten (an interrupted run finishing) or deleted. A run whose
run.json lacks metrics (interrupted before the end) is summarised from its Parquet rows
with DuckDB's ``read_parquet``. The database can be deleted at any time: the folders
are the truth and the index is rebuilt from them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import DataError

log = logging.getLogger(__name__)

INDEX_VERSION = 2
DB_NAME = "history.duckdb"

# (column, DuckDB type, where it comes from in run.json)
FIELDS: list[tuple[str, str, tuple[str, ...]]] = [
    ("run_id", "VARCHAR", ("run_id",)),
    ("status", "VARCHAR", ("status",)),
    ("board", "VARCHAR", ("board", "id")),
    ("backend", "VARCHAR", ("backend",)),
    ("model", "VARCHAR", ("model", "name")),
    ("model_sha256", "VARCHAR", ("model", "sha256")),
    ("dataset", "VARCHAR", ("dataset", "name")),
    ("dataset_sha256", "VARCHAR", ("dataset", "sha256")),
    ("latency_source", "VARCHAR", ("latency_source",)),
    ("n", "BIGINT", ("metrics", "n")),
    ("n_ok", "BIGINT", ("metrics", "n_ok")),
    ("n_error", "BIGINT", ("metrics", "n_error")),
    ("accuracy", "DOUBLE", ("metrics", "accuracy")),
    ("accuracy_ci_low", "DOUBLE", ("metrics", "accuracy_ci_low")),
    ("accuracy_ci_high", "DOUBLE", ("metrics", "accuracy_ci_high")),
    ("tp", "BIGINT", ("metrics", "tp")),
    ("fp", "BIGINT", ("metrics", "fp")),
    ("tn", "BIGINT", ("metrics", "tn")),
    ("fn", "BIGINT", ("metrics", "fn")),
    ("fpr", "DOUBLE", ("metrics", "fpr")),
    ("fnr", "DOUBLE", ("metrics", "fnr")),
    ("latency_us_p50", "DOUBLE", ("metrics", "latency_us_p50")),
    ("latency_us_p90", "DOUBLE", ("metrics", "latency_us_p90")),
    ("latency_us_p99", "DOUBLE", ("metrics", "latency_us_p99")),
    ("latency_us_mean", "DOUBLE", ("metrics", "latency_us_mean")),
    ("host_mismatches", "BIGINT", ("metrics", "host_mismatches")),
    ("arena_used", "BIGINT", ("memory", "arena_used")),
    ("model_bytes", "BIGINT", ("memory", "model_bytes")),
]
NUMERIC = {name for name, typ, _ in FIELDS if typ in ("DOUBLE", "BIGINT")}


def _dig(d: Any, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _parse_time(text: Any, fallback: float) -> datetime:
    if isinstance(text, str):
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return dt.astimezone(timezone.utc).replace(tzinfo=None)
        except ValueError:
            pass
    return datetime.fromtimestamp(fallback, timezone.utc).replace(tzinfo=None)


def _manifests(root: Path, max_depth: int = 3) -> Iterator[Path]:
    """run.json files up to max_depth folders below root (runs/<id>/run.json and the like)."""
    root_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).parts) - root_depth
        if depth >= max_depth:
            dirnames[:] = []
        if "run.json" in filenames:
            dirnames[:] = []  # a run folder holds no other runs
            yield Path(dirpath) / "run.json"


class History:
    """Index and query the run folders under ``root``."""

    def __init__(self, root: Path, db_path: Path | None = None) -> None:
        import duckdb

        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path or root / DB_NAME
        try:
            self.con = duckdb.connect(str(self.db_path))
        except duckdb.Error as exc:
            raise DataError(f"cannot open history database {self.db_path}: {exc}") from exc
        self._ensure_schema()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_schema(self) -> None:
        self.con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        found = self.con.execute(
            "SELECT value FROM meta WHERE key = 'index_version'").fetchall()
        if not found or found[0][0] != str(INDEX_VERSION):
            self.con.execute("DROP TABLE IF EXISTS runs")
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('index_version', ?)",
                             [str(INDEX_VERSION)])
        cols = ", ".join(f"{name} {typ}" for name, typ, _ in FIELDS)
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS runs (path VARCHAR PRIMARY KEY, mtime_ns BIGINT, "
            f"created TIMESTAMP, {cols}, correct BIGINT, problem VARCHAR)")

    # -- indexing ---------------------------------------------------------------------
    def refresh(self) -> int:
        """Bring the index up to date with the folders; returns how many runs were (re)read."""
        known = dict(self.con.execute("SELECT path, mtime_ns FROM runs").fetchall())
        seen: set[str] = set()
        rows: list[dict[str, Any]] = []
        for manifest in _manifests(self.root):
            try:
                mtime = manifest.stat().st_mtime_ns
            except OSError:
                continue
            key = str(manifest.parent)
            seen.add(key)
            if known.get(key) == mtime:
                continue
            rows.append(self._row(manifest, mtime))
        gone = [p for p in known if p not in seen]
        if gone:
            self.con.execute("DELETE FROM runs WHERE path IN (SELECT unnest(?))", [gone])
        if rows:
            self._upsert(rows)
        log.info("history %s: %d runs read, %d removed", self.root, len(rows), len(gone))
        return len(rows)

    def _row(self, manifest: Path, mtime: int) -> dict[str, Any]:
        row: dict[str, Any] = {"path": str(manifest.parent), "mtime_ns": mtime, "problem": None}
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            data = {}
            row["problem"] = f"run.json unreadable: {exc}"
        for name, _typ, keys in FIELDS:
            v = _dig(data, keys)
            if name in NUMERIC:
                v = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                if v is not None and math.isnan(v):
                    v = None
            else:
                v = None if v is None else str(v)
            row[name] = v
        row["run_id"] = row["run_id"] or manifest.parent.name
        row["created"] = _parse_time(data.get("created_utc"), mtime / 1e9)
        if row["accuracy"] is None:
            self._from_parquet(manifest.parent, row)
        row["correct"] = row.get("correct")
        if row["correct"] is None and row["tp"] is not None and row["tn"] is not None:
            row["correct"] = row["tp"] + row["tn"]
        elif row["correct"] is None and row["accuracy"] is not None and row["n_ok"]:
            row["correct"] = round(row["accuracy"] * row["n_ok"])
        return row

    def _from_parquet(self, folder: Path, row: dict[str, Any]) -> None:
        """Fill metrics from the per-image rows for runs whose manifest has none."""
        import duckdb

        files = [folder / "results.parquet"] if (folder / "results.parquet").is_file() else \
            sorted(folder.glob("results-*.parquet"))
        if not files:
            row["problem"] = row["problem"] or "no metrics and no results"
            return
        try:
            r = self.con.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'ok'), "
                "count(*) FILTER (WHERE status = 'ok' AND label = pred), "
                "median(latency_us) FILTER (WHERE status = 'ok') "
                "FROM read_parquet(?, union_by_name = true)",
                [[str(f) for f in files]]).fetchall()
        except duckdb.Error as exc:
            row["problem"] = f"results unreadable: {str(exc).splitlines()[0]}"
            return
        if not r:
            return
        n, n_ok, correct, p50 = r[0]
        row.update(n=n, n_ok=n_ok, n_error=n - n_ok, latency_us_p50=p50)
        if n_ok:
            row["accuracy"] = correct / n_ok
            row["correct"] = correct
        row["problem"] = row["problem"] or "metrics recomputed from results (run.json had none)"

    def _upsert(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        names = ["path", "mtime_ns", "created"] + [n for n, _, _ in FIELDS] + ["correct", "problem"]
        table = pa.table({n: [r.get(n) for r in rows] for n in names})
        self.con.register("incoming", table)
        try:
            self.con.execute("DELETE FROM runs WHERE path IN (SELECT path FROM incoming)")
            self.con.execute(f"INSERT INTO runs ({', '.join(names)}) "
                             f"SELECT {', '.join(names)} FROM incoming")
        finally:
            self.con.unregister("incoming")

    # -- queries ----------------------------------------------------------------------
    def count(self) -> int:
        rows = self.con.execute("SELECT count(*) FROM runs").fetchall()
        return int(rows[0][0]) if rows else 0

    def run_row(self, folder: Path) -> dict[str, Any] | None:
        cur = self.con.execute("SELECT * FROM runs WHERE path = ?", [str(folder)])
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        return dict(zip(names, rows[0], strict=True)) if rows else None

    def previous(self, row: dict[str, Any], window: int) -> list[dict[str, Any]]:
        """The last ``window`` complete runs of the same cell before ``row``, newest first.

        A cell is model name x board x backend x data set name: a new build of the same
        model is compared with the old one, which is the point of a nightly.
        """
        cur = self.con.execute(
            "SELECT * FROM runs WHERE model IS NOT DISTINCT FROM ? AND board IS NOT DISTINCT FROM ?"
            " AND backend IS NOT DISTINCT FROM ? AND dataset IS NOT DISTINCT FROM ?"
            " AND coalesce(status, 'complete') = 'complete' AND created < ? AND path <> ?"
            " ORDER BY created DESC LIMIT ?",
            [row["model"], row["board"], row["backend"], row["dataset"], row["created"],
             row["path"], window])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def trends(self, metrics: list[str]) -> dict[str, Any]:
        """Columns (NumPy arrays) of every run ordered by cell then time, for trend plots."""
        bad = [m for m in metrics if m not in NUMERIC | {"correct"}]
        if bad:
            raise ValueError(f"unknown metrics {bad}")
        cols = ", ".join(metrics)
        res = self.con.execute(
            f"SELECT coalesce(model, '?') || ' @ ' || coalesce(board, '?') || '/' || "
            f"coalesce(backend, '?') AS cell, created, path, {cols} FROM runs "
            f"WHERE coalesce(status, 'complete') = 'complete' ORDER BY cell, created")
        return {k: v for k, v in res.fetchnumpy().items()}
