"""Read a run folder (schema v1, see docs/reports.md) without trusting it.

A run folder can be interrupted, truncated, written by an older harness or empty. The
reports must still say as much as they can, so this reader never raises for damaged
content: it collects one-line ``problems`` that the report prints at the top, and it
raises :class:`~harness.errors.DataError` only when there is nothing to report at all
(no folder, or neither a manifest nor any results).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import DataError
from harness.paths import reports_dir
from harness.results import read_parts

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

# Columns the reports use, with the section that needs each, so a missing one is explained.
EXPECTED_COLUMNS = {
    "seq": "ordering",
    "image_id": "gallery and mismatch lists",
    "path": "gallery",
    "label": "every accuracy figure",
    "status": "error counts",
    "error": "error list",
    "output_q": "host-vs-device agreement",
    "score": "ROC/PR curves, score histograms, gallery",
    "pred": "confusion matrix",
    "cycles": "latency",
    "latency_us": "latency",
    "host_output_q": "host-vs-device agreement",
    "host_match": "host-vs-device agreement",
}


@dataclass
class Run:
    """One run folder: its manifest, its per-image columns and what was wrong with them."""

    path: Path
    manifest: dict[str, Any]
    columns: dict[str, np.ndarray]
    n_rows: int
    problems: list[str] = field(default_factory=list)

    # -- manifest access that tolerates missing keys --------------------------------------
    def get(self, *keys: str, default: Any = None) -> Any:
        """Nested manifest lookup: run.get("board", "id")."""
        node: Any = self.manifest
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return default
            node = node[k]
        return node

    @property
    def run_id(self) -> str:
        return str(self.get("run_id", default=self.path.name))

    @property
    def board_id(self) -> str:
        return str(self.get("board", "id", default="?"))

    @property
    def backend(self) -> str:
        return str(self.get("backend", default="?"))

    @property
    def model_name(self) -> str:
        name = self.get("model", "name") or self.get("model", "path")
        return str(name) if name else "?"

    @property
    def label(self) -> str:
        """Short name for plots and tables: model @ board/backend."""
        return f"{self.model_name} @ {self.board_id}/{self.backend}"

    @property
    def latency_source(self) -> str:
        return str(self.get("latency_source", default="unknown"))

    @property
    def threshold(self) -> float:
        t = self.get("settings", "threshold")
        return float(t) if isinstance(t, (int, float)) else 0.5

    @property
    def subgroup_columns(self) -> list[str]:
        return sorted(c for c in self.columns if c.startswith("sg_"))

    def has(self, *cols: str) -> bool:
        return all(c in self.columns for c in cols)


def resolve_run(arg: str | Path) -> Path:
    """A run folder path, or a run id looked up under ``<reports_dir>/runs``."""
    p = Path(arg).expanduser()
    if p.is_dir():
        return p
    if p.name == "run.json" and p.is_file():
        return p.parent
    candidate = reports_dir() / "runs" / str(arg)
    if candidate.is_dir():
        return candidate
    raise DataError(f"no run folder at {arg} (nor a run id under {reports_dir() / 'runs'})")


def _read_manifest(folder: Path, problems: list[str]) -> dict[str, Any]:
    path = folder / "run.json"
    if not path.is_file():
        problems.append("run.json is missing: board, model and settings are unknown")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"run.json is unreadable (truncated?): {exc}")
        return {}
    if not isinstance(data, dict):
        problems.append("run.json is not a JSON object")
        return {}
    version = data.get("schema_version")
    if version is None:
        problems.append("run.json has no schema_version: an older run; fields may be missing")
    elif version != SCHEMA_VERSION:
        problems.append(
            f"run.json schema_version is {version}, this reader knows {SCHEMA_VERSION}: "
            "fields may be missing or mean something else"
        )
    if data.get("status") == "running":  # a killed run is marked interrupted by the first reader
        from harness.bench.store import mark_if_abandoned

        data = mark_if_abandoned(folder, data)
    status = data.get("status")
    if status not in (None, "complete"):
        problems.append(f"run status is '{status}': results may be partial")
    for key in ("board", "model", "dataset", "settings", "metrics", "memory", "latency_source"):
        if key not in data:
            problems.append(f"run.json has no '{key}'")
    return data


def _read_results(
    folder: Path, problems: list[str], columns: list[str] | None
) -> tuple[dict[str, np.ndarray], int]:
    table, unreadable = read_parts(folder, columns)
    problems.extend(unreadable)
    if table is None:
        if not unreadable:
            problems.append("no results.parquet (nor results-*.parquet parts): no per-image rows")
        return {}, 0
    cols: dict[str, np.ndarray] = {}
    for name in table.column_names:
        cols[name] = _to_numpy(table.column(name))
    missing = [c for c in EXPECTED_COLUMNS if c not in cols and (columns is None or c in columns)]
    for c in missing:
        problems.append(f"results have no '{c}' column: {EXPECTED_COLUMNS[c]} not shown")
    if table.num_rows == 0:
        problems.append("the run has no per-image rows (empty run)")
    return cols, table.num_rows


def _to_numpy(col: Any) -> np.ndarray:
    """Arrow column to NumPy: numbers to float with NaN for nulls, lists and strings to objects."""
    import pyarrow as pa

    t = col.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return np.array(col.to_pylist() + [None], dtype=object)[:-1]
    if pa.types.is_boolean(t):
        # nulls become None in an object array so "unknown" stays distinct from False
        if col.null_count:
            return np.array(col.to_pylist(), dtype=object)
        return col.to_numpy(zero_copy_only=False).astype(bool)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return col.to_numpy(zero_copy_only=False).astype(float)
    return np.array(col.to_pylist(), dtype=object)


def load_run(arg: str | Path, columns: list[str] | None = None) -> Run:
    """Load a run folder; damaged content becomes entries in ``Run.problems``.

    ``columns`` limits which result columns are read (subgroup columns always are),
    which keeps history-wide comparisons cheap.
    """
    folder = resolve_run(arg)
    problems: list[str] = []
    manifest = _read_manifest(folder, problems)
    cols, n = _read_results(folder, problems, columns)
    if not manifest and not cols and n == 0:
        raise DataError(f"{folder} has neither a readable run.json nor readable results")
    for line in manifest.get("errors", []) or []:
        log.debug("run error: %s", line)
    return Run(path=folder, manifest=manifest, columns=cols, n_rows=n, problems=problems)


def ok_mask(run: Run) -> np.ndarray:
    """Rows that produced an output (status 'ok', or a score when status is absent)."""
    n = run.n_rows
    if "status" in run.columns:
        mask = run.columns["status"] == "ok"
    else:
        mask = np.ones(n, dtype=bool)
    if "score" in run.columns:
        mask &= ~np.isnan(run.columns["score"])
    return np.asarray(mask, dtype=bool)


def labelled_predictions(run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(labels, preds, scores) over usable rows, or None when the columns are missing.

    Predictions are taken from ``pred`` when present, else from the score and threshold.
    Scores are NaN where unknown.
    """
    if "label" not in run.columns:
        return None
    mask = ok_mask(run) & ~np.isnan(run.columns["label"])
    labels = run.columns["label"][mask].astype(int)
    scores = run.columns["score"][mask] if "score" in run.columns else np.full(len(labels), np.nan)
    if "pred" in run.columns:
        raw = run.columns["pred"][mask]
        preds = np.where(np.isnan(raw), (scores >= run.threshold), raw).astype(int)
    elif "score" in run.columns:
        preds = (scores >= run.threshold).astype(int)
    else:
        return None
    return labels, preds, scores
