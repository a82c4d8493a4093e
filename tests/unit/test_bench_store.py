"""The run folder: typed rows in parts, consolidation, resume bookkeeping, atomic manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.bench.store import (
    RESULTS_NAME,
    RowWriter,
    RunFolder,
    new_run_id,
    part_files,
    read_results,
    rows_table,
)
from harness.errors import ConfigError


def _row(i: int, **extra: Any) -> dict[str, Any]:
    row = {
        "seq": i,
        "image_id": f"img{i}",
        "path": f"img{i}.png",
        "split": "test",
        "label": i % 2,
        "status": "ok",
        "error": None,
        "output_q": [1, -1],
        "output_f": [0.5, 0.25],
        "score": 0.25,
        "pred": 0,
        "cycles": 1000 + i,
        "latency_us": 15.6,
        "host_output_q": [1, -1],
        "host_match": True,
    }
    row.update(extra)
    return row


def test_rows_table_has_the_schema_types() -> None:
    t = rows_table([_row(0, sg_lighting="dark"), _row(1, status="error", error="bad", pred=None)])
    assert t.schema.field("seq").type == pa.int32()
    assert t.schema.field("label").type == pa.int8()
    assert t.schema.field("output_q").type == pa.list_(pa.int32())
    assert t.schema.field("output_f").type == pa.list_(pa.float32())
    assert t.schema.field("host_match").type == pa.bool_()
    assert t.column("sg_lighting").to_pylist() == ["dark", None]
    assert t.column("pred").to_pylist() == [0, None]


def test_writer_writes_parts_in_batches_and_reader_joins_them(tmp_path: Path) -> None:
    w = RowWriter(tmp_path, batch_rows=3, batch_s=1e9)
    for i in range(7):
        w.add(_row(i))
    assert len(part_files(tmp_path)) == 2 and w.pending == 1
    w.flush()
    assert [p.name for p in part_files(tmp_path)] == [f"results-0000{i}.parquet" for i in range(3)]
    table = read_results(tmp_path)
    assert table is not None and table.column("image_id").to_pylist() == [f"img{i}" for i in range(7)]


def test_parts_with_different_subgroups_are_joined(tmp_path: Path) -> None:
    w = RowWriter(tmp_path, batch_rows=1)
    w.add(_row(0, sg_age=3))
    w.add(_row(1, sg_lighting="dark"))
    w.add(_row(2, sg_age=None))
    for _ in range(2):  # parts first, then the consolidated file
        table = read_results(tmp_path)
        assert table is not None
        assert table.column("seq").to_pylist() == [0, 1, 2]
        assert table.column("sg_age").to_pylist() == [3, None, None]
        assert table.column("sg_lighting").to_pylist() == [None, "dark", None]
        assert RunFolder(tmp_path).consolidate() == 3


def test_consolidate_then_resume_keeps_every_row_once(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "r1")
    w = RowWriter(folder.path, batch_rows=2)
    for i in range(4):
        w.add(_row(i))
    folder.consolidate()
    assert (folder.path / RESULTS_NAME).is_file() and not part_files(folder.path)
    # a kill between writing results.parquet and deleting the parts leaves both
    pq.write_table(rows_table([_row(3)]), folder.path / "results-00007.parquet")
    table, next_part = folder.prepare_resume()
    assert table is not None and table.column("image_id").to_pylist() == [f"img{i}" for i in range(4)]
    assert next_part == 1
    assert not (folder.path / RESULTS_NAME).exists()


def test_manifest_is_replaced_atomically(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "r2")
    folder.write_manifest({"schema_version": 1, "status": "running"})
    folder.write_manifest({"schema_version": 1, "status": "complete"})
    assert json.loads((folder.path / "run.json").read_text())["status"] == "complete"
    assert [p.name for p in folder.path.iterdir()] == ["run.json"]


def test_find_by_id_and_path(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "r3")
    folder.write_manifest({"schema_version": 1})
    assert RunFolder.find("r3", tmp_path).path == folder.path
    assert RunFolder.find(folder.path).path == folder.path
    with pytest.raises(ConfigError, match="no run 'nope' to resume"):
        RunFolder.find("nope", tmp_path)


def test_create_refuses_an_existing_folder(tmp_path: Path) -> None:
    RunFolder.create(tmp_path, "r4")
    with pytest.raises(ConfigError, match="already exists"):
        RunFolder.create(tmp_path, "r4")


def test_run_id_format() -> None:
    rid = new_run_id("nano33", "sim")
    stamp, board, backend, tail = rid.split("-")
    assert len(stamp) == 16 and stamp.endswith("Z") and "T" in stamp
    assert (board, backend) == ("nano33", "sim") and len(tail) == 6
    int(tail, 16)


def test_journal_recovers_whole_lines_and_drops_a_torn_one(tmp_path: Path) -> None:
    from harness.bench.journal import Journal

    folder = RunFolder.create(tmp_path, "r5")
    journal = Journal(folder)
    journal.append(_row(0))
    journal.append(_row(1))
    journal.close()
    with open(journal.path, "a", encoding="utf-8") as fh:
        fh.write('{"seq": 2, "image_id": "im')  # the write a SIGKILL cut short
    assert [r["image_id"] for r in journal.recover()] == ["img0", "img1"]
    journal.clear()
    assert not journal.path.exists() and journal.recover() == []


def test_resume_command_names_out_only_when_the_run_is_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.bench.store import resume_command

    monkeypatch.setenv("HIL_REPORTS_DIR", str(tmp_path / "reports"))
    run_id = "20260101T000000Z-nano33-sim-abcdef"
    assert resume_command(tmp_path / "reports" / "runs" / run_id) == f"hil bench --resume {run_id}"
    odd = tmp_path / "my runs"
    assert resume_command(odd / run_id) == f"hil bench --resume {run_id} --out '{odd}'"


def test_resume_drops_the_rows_the_link_lost_so_they_are_measured_again(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "r-link")
    w = RowWriter(folder.path, batch_rows=2)
    lost = {"status": "error", "error": "link: input bytes 0-1016 of 27648: 70 resends", "output_q": None}
    w.add(_row(0))
    w.add(_row(1, **lost))
    w.add(_row(2, status="error", error="not an image file", output_q=None))
    w.add(_row(3, **lost))
    w.add(_row(4))
    w.flush()
    assert len(part_files(folder.path)) == 3
    table, next_part = folder.prepare_resume()
    kept = ["img0", "img2", "img4"]  # a corrupt image stays an error row; the link's are redone
    assert table is not None and table.column("image_id").to_pylist() == kept
    assert [p.name for p in part_files(folder.path)] == ["results-00000.parquet"] and next_part == 1
    assert not (folder.path / RESULTS_NAME).exists()
    again = read_results(folder.path)
    assert again is not None and again.column("image_id").to_pylist() == kept
