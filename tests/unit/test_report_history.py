"""The DuckDB history index: incremental refresh, damaged runs, cell queries."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.report.history import History
from harness.report.synth import SynthSpec, write_run

T0 = datetime(2026, 11, 1, 3, tzinfo=timezone.utc)


def _spec(day: int, **kw: object) -> SynthSpec:
    return SynthSpec(n=60, seed=day, images=False, created=T0 + timedelta(days=day), **kw)  # type: ignore[arg-type]


def test_refresh_is_incremental(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    a = write_run(runs, _spec(0))
    write_run(runs, _spec(1))
    with History(tmp_path) as h:
        assert h.refresh() == 2
        assert h.refresh() == 0
        m = json.loads((a / "run.json").read_text())
        m["metrics"]["accuracy"] = 0.5
        (a / "run.json").write_text(json.dumps(m))
        os.utime(a / "run.json", ns=(1, 1))
        assert h.refresh() == 1
        assert h.run_row(a)["accuracy"] == 0.5  # type: ignore[index]
        (a / "run.json").unlink()
        h.refresh()
        assert h.count() == 1


def test_index_survives_reopening(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", _spec(0))
    with History(tmp_path) as h:
        h.refresh()
    with History(tmp_path) as h:
        assert h.count() == 1 and h.refresh() == 0


def test_truncated_manifest_is_indexed_with_its_problem(tmp_path: Path) -> None:
    r = write_run(tmp_path / "runs", _spec(0))
    (r / "run.json").write_text('{"run_id": "x", "metr')
    with History(tmp_path) as h:
        h.refresh()
        row = h.run_row(r)
    assert row is not None and "unreadable" in row["problem"]
    assert row["accuracy"] is not None  # recomputed from the Parquet rows


def test_interrupted_run_metrics_come_from_parquet(tmp_path: Path) -> None:
    r = write_run(tmp_path / "runs", _spec(0))
    m = json.loads((r / "run.json").read_text())
    truth = m["metrics"]
    del m["metrics"]
    (r / "run.json").write_text(json.dumps(m))
    with History(tmp_path) as h:
        h.refresh()
        row = h.run_row(r)
    assert row is not None
    assert row["accuracy"] == pytest.approx(truth["accuracy"], abs=1e-6)
    assert row["correct"] == truth["tp"] + truth["tn"]
    assert row["latency_us_p50"] == pytest.approx(truth["latency_us_p50"], rel=1e-6)


def test_previous_selects_same_cell_before_the_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for d in range(5):
        write_run(runs, _spec(d))
    write_run(runs, _spec(2, board="esp32cam"))
    last = write_run(runs, _spec(9))
    with History(tmp_path) as h:
        h.refresh()
        row = h.run_row(last)
        prev = h.previous(row, window=3)  # type: ignore[arg-type]
    assert [p["created"].day for p in prev] == [5, 4, 3]
    assert all(p["board"] == "nano33" for p in prev)


def test_trends_are_ordered_per_cell(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for d in (3, 1, 2):
        write_run(runs, _spec(d))
    write_run(runs, _spec(1, board="esp32cam"))
    with History(tmp_path) as h:
        h.refresh()
        t = h.trends(["accuracy", "latency_us_p50"])
        with pytest.raises(ValueError):
            h.trends(["accuracy; DROP TABLE runs"])
    assert list(t["cell"]) == ["vww_96_025 @ esp32cam/sim"] + ["vww_96_025 @ nano33/sim"] * 3
    days = [d.astype("datetime64[D]").item().day for d in t["created"][1:]]
    assert days == [2, 3, 4]
