"""harness.results on real run folders: written by the bench (fake backend) and by synth."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from bench_fakes import InProcessDevice, make_image_folder, tiny_model

from harness.bench.api import bench_on_device
from harness.bench.runner import BenchInterrupted
from harness.boards import load_board
from harness.errors import DataError
from harness.report.history import History
from harness.report.synth import SynthSpec, write_run
from harness.results import history, load_run, load_runs


def _bench(tmp_path: Path, n: int, **kw: object) -> Path:
    board = load_board("nano33")
    model = tiny_model(tmp_path / "models")
    data = make_image_folder(tmp_path / "data", n)
    return bench_on_device(
        InProcessDevice(board, model, **kw),  # type: ignore[arg-type]
        board=board, backend="fake", model=model, dataset=data, out_dir=tmp_path / "runs",
    )  # fmt: skip


def test_a_bench_run_loads_with_typed_columns_and_its_manifest(tmp_path: Path) -> None:
    folder = _bench(tmp_path, 6)
    run = load_run(folder)
    assert run.status == "complete" and run.meta["status"] == "complete"
    assert len(run.rows) == 6 == run.metrics["n"]
    assert list(run.rows["seq"]) == list(range(6))
    assert run.rows["seq"].dtype == pd.Int32Dtype()
    assert run.rows["label"].dtype == pd.Int8Dtype()
    assert run.rows["status"].dtype == pd.StringDtype()
    assert run.rows["cycles"].dtype == pd.Int64Dtype()
    assert str(run.rows["score"].dtype) == "float32"
    assert set(run.rows["label"]) == {0, 1}
    # the figures the bench stored agree with the rows
    ok = run.rows[run.rows["status"] == "ok"]
    acc = float((ok["pred"] == ok["label"]).mean())
    assert acc == pytest.approx(run.metrics["accuracy"])
    assert run.board == "nano33" and run.backend == "fake" and run.run_id == folder.name
    # run.json itself is accepted as the path
    assert load_run(folder / "run.json").run_id == run.run_id


def test_an_interrupted_run_gives_its_partial_rows(tmp_path: Path) -> None:
    with pytest.raises(BenchInterrupted) as err:
        _bench(tmp_path, 10, interrupt_at=6)
    run = load_run(err.value.folder.path)
    assert run.status == "interrupted"
    assert len(run.rows) == 5 and not (run.path / "results.parquet").exists()
    assert run.rows["seq"].tolist() == list(range(5))


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        load_run(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is not a run folder") as err:
        load_run(tmp_path / "empty")
    assert "\n" not in str(err.value)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "run.json").write_text("{not json")
    with pytest.raises(DataError, match="is not a run folder"):
        load_run(tmp_path / "junk")


def test_load_runs_stacks_every_run_with_its_identity(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, SynthSpec(n=40, seed=1, board="nano33", backend="sim", model_name="a"))
    write_run(runs, SynthSpec(n=30, seed=2, board="nucleo_f746", backend="qemu", model_name="b"))
    (runs / "not-a-run").mkdir()
    df = load_runs(runs)
    assert len(df) == 70
    assert list(df.columns[:5]) == ["run_id", "board", "backend", "model", "run_status"]
    per = df.groupby("model")["seq"].count().to_dict()
    assert per == {"a": 40, "b": 30}
    assert set(df["backend"]) == {"sim", "qemu"}
    with pytest.raises(DataError, match="no run folders"):
        load_runs(runs / "not-a-run")


def test_history_is_the_duckdb_index_as_a_frame(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, SynthSpec(n=50, seed=3))
    write_run(runs, SynthSpec(n=50, seed=4))
    with pytest.raises(DataError, match="no history index"):
        history(tmp_path)
    with History(tmp_path) as h:
        h.refresh()
    df = history(tmp_path / "history.duckdb")
    assert len(df) == 2 and {"run_id", "board", "accuracy", "latency_us_p50"} <= set(df.columns)
    manifests = {json.loads(p.read_text())["run_id"] for p in runs.glob("*/run.json")}
    assert set(df["run_id"]) == manifests
    assert history(tmp_path)["accuracy"].between(0, 1).all()
