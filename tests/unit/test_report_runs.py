"""Reading run folders that are complete, partial, damaged, old or empty."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.errors import DataError
from harness.report.runs import labelled_predictions, load_run, ok_mask, resolve_run
from harness.report.synth import SynthSpec, write_run


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path, SynthSpec(n=150, seed=1, images=False))


def test_complete_run_has_no_problems(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert run.problems == []
    assert run.n_rows == 150
    assert run.subgroup_columns == ["sg_lighting", "sg_scene"]
    assert int(ok_mask(run).sum()) == 150 - 4
    labels, preds, scores = labelled_predictions(run)  # type: ignore[misc]
    assert len(labels) == len(preds) == len(scores) == 146


def test_run_id_resolves_under_reports_dir(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIL_REPORTS_DIR", str(run_dir.parent.parent))
    (run_dir.parent.parent / "runs").mkdir(exist_ok=True)
    target = run_dir.parent.parent / "runs" / run_dir.name
    run_dir.rename(target)
    assert resolve_run(run_dir.name) == target


def test_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no run folder"):
        load_run(tmp_path / "nope")


def test_empty_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="neither a readable run.json nor readable results"):
        load_run(tmp_path)


def test_parts_are_read_in_order_when_not_consolidated(run_dir: Path) -> None:
    table = pq.read_table(run_dir / "results.parquet")
    (run_dir / "results.parquet").unlink()
    pq.write_table(table.slice(100), run_dir / "results-10.parquet")
    pq.write_table(table.slice(0, 100), run_dir / "results-2.parquet")
    run = load_run(run_dir)
    assert run.n_rows == 150
    assert list(run.columns["seq"][:3]) == [0, 1, 2]


def test_truncated_results_are_a_stated_problem(run_dir: Path) -> None:
    data = (run_dir / "results.parquet").read_bytes()
    (run_dir / "results.parquet").write_bytes(data[: len(data) // 2])
    run = load_run(run_dir)
    assert run.n_rows == 0
    assert any("results.parquet is unreadable" in p for p in run.problems)


def test_truncated_manifest_is_a_stated_problem(run_dir: Path) -> None:
    text = (run_dir / "run.json").read_text()
    (run_dir / "run.json").write_text(text[: len(text) // 3])
    run = load_run(run_dir)
    assert run.n_rows == 150
    assert any("run.json is unreadable" in p for p in run.problems)
    assert run.board_id == "?"


def test_older_schema_names_what_is_missing(run_dir: Path) -> None:
    m = json.loads((run_dir / "run.json").read_text())
    del m["schema_version"], m["memory"], m["latency_source"]
    (run_dir / "run.json").write_text(json.dumps(m))
    table = pq.read_table(run_dir / "results.parquet").drop(["host_match", "score"])
    pq.write_table(table, run_dir / "results.parquet")
    run = load_run(run_dir)
    text = "\n".join(run.problems)
    assert "no schema_version" in text and "'memory'" in text and "'latency_source'" in text
    assert "no 'score' column" in text and "no 'host_match' column" in text
    labels, preds, scores = labelled_predictions(run)  # type: ignore[misc]
    assert len(preds) == 146  # predictions still come from the pred column


def test_interrupted_run_status_is_stated(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, SynthSpec(n=20, status="interrupted", images=False)))
    assert any("interrupted" in p for p in run.problems)


def test_empty_run_has_no_rows_and_says_so(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, SynthSpec(n=0, images=False)))
    assert run.n_rows == 0
    assert any("empty run" in p for p in run.problems)
