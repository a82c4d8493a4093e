"""The runner against an in-process device: rows, refusals, errors, interrupts and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_fakes import UNIT_DIR, InProcessDevice, make_image_folder, tiny_model

from harness.bench.api import bench_on_device, run_bench
from harness.bench.journal import JOURNAL_NAME
from harness.bench.request import BenchRequest
from harness.bench.runner import BenchInterrupted, BenchSettings
from harness.bench.store import RESULTS_NAME, load_run, read_results
from harness.boards import load_board
from harness.errors import DeviceError, LinkError, ModelError


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return tiny_model(tmp_path / "models")


@pytest.fixture()
def nano33():  # type: ignore[no-untyped-def]
    return load_board("nano33")


def _bench(tmp_path: Path, device: InProcessDevice, data: Path, **kw: object) -> Path:
    return bench_on_device(
        device,
        board=device.board,
        backend="fake",
        model=device.model_path,
        dataset=data,
        out_dir=tmp_path / "runs",
        **kw,  # type: ignore[arg-type]
    )


def test_rows_metrics_profile_and_memory(tmp_path: Path, tiny: Path, nano33) -> None:  # type: ignore[no-untyped-def]
    data = make_image_folder(tmp_path / "data", 9, corrupt=(4,))
    folder = _bench(tmp_path, InProcessDevice(nano33, tiny, flip_every=3), data)
    run = load_run(folder)
    m = run.manifest
    assert m["status"] == "complete" and m["schema_version"] == 1
    assert sorted(run.image_ids()) == [f"img_{i:05d}" for i in range(9)]
    assert run.columns["seq"] == list(range(9))
    assert run.columns["status"].count("error") == 1
    err = run.columns["error"][4]
    assert "img_00004.png" in err and "\n" not in err
    assert run.columns["pred"][4] is None
    # the device flips a bit on every third call (calls 3, 6 of the 8 good images)
    assert m["metrics"]["host_mismatches"] == 2
    assert m["metrics"]["host_max_abs_diff_q"] == 1
    assert run.columns["host_match"].count(False) == 2
    assert m["metrics"]["n_ok"] == 8 and m["metrics"]["n_error"] == 1
    assert m["latency_source"] == "estimated"
    assert [p["op"] for p in m["profile"]] == ["CONV_2D", "FULLY_CONNECTED"]
    assert m["profile"][0]["us"] == pytest.approx(40_000 / 64e6 * 1e6)
    assert m["memory"]["arena_used"] == 2048 and m["memory"]["fits"] is True
    assert m["model"]["sha256"] == m["device"]["model_sha256"]
    assert m["dataset"]["count"] == 9 and m["dataset"]["sha256"]
    assert set(run.columns["sg_lighting"]) == {"dark", "bright"}
    ok = [i for i, s in enumerate(run.columns["status"]) if s == "ok"]
    for i in ok:
        assert run.columns["pred"][i] == int(run.columns["score"][i] >= 0.5)
        assert run.columns["latency_us"][i] == pytest.approx(run.columns["cycles"][i] / 64)
    assert (folder / "summary.txt").read_text().startswith(f"run {folder.name}: complete")
    assert not (folder / JOURNAL_NAME).exists() and (folder / RESULTS_NAME).is_file()


def test_device_errors_become_error_rows(tmp_path: Path, tiny: Path, nano33) -> None:  # type: ignore[no-untyped-def]
    data = make_image_folder(tmp_path / "data", 6)
    run = load_run(_bench(tmp_path, InProcessDevice(nano33, tiny, fail_every=2), data))
    assert run.columns["status"] == ["ok", "error"] * 3
    assert run.columns["error"][1] == "device: device answered error INVOKE_FAILED"


def test_test_double_engine_is_refused(tmp_path: Path, tiny: Path, nano33) -> None:  # type: ignore[no-untyped-def]
    data = make_image_folder(tmp_path / "data", 2)
    with pytest.raises(DeviceError, match="test-double"):
        _bench(tmp_path, InProcessDevice(nano33, tiny, engine="test-double"), data)


def test_wrong_model_on_device_names_both_hashes(tmp_path: Path, tiny: Path, nano33) -> None:  # type: ignore[no-untyped-def]
    data = make_image_folder(tmp_path / "data", 2)
    other = "ab" * 32
    with pytest.raises(DeviceError) as err:
        _bench(tmp_path, InProcessDevice(nano33, tiny, sha256=other), data)
    from harness.models.tflite_file import ModelInfo

    assert other in str(err.value) and ModelInfo.from_file(tiny).sha256 in str(err.value)


def test_settings_reach_the_manifest(tmp_path: Path, tiny: Path, nano33) -> None:  # type: ignore[no-untyped-def]
    data = make_image_folder(tmp_path / "data", 6)
    folder = _bench(
        tmp_path,
        InProcessDevice(nano33, tiny),
        data,
        settings=BenchSettings(threshold=0.0, warmups=0, repeats=3, limit=4),
    )
    run = load_run(folder)
    assert run.n_rows == 4
    assert run.manifest["settings"] == {
        "threshold": 0.0,
        "person_index": 1,
        "warmups": 0,
        "repeats": 3,
        "split": None,
        "limit": 4,
    }
    assert set(run.columns["pred"]) == {1}


def test_interrupt_then_resume_measures_each_image_once(tmp_path: Path, tiny: Path, nano33) -> None:  # type: ignore[no-untyped-def]
    data = make_image_folder(tmp_path / "data", 10)
    with pytest.raises(BenchInterrupted) as err:
        _bench(tmp_path, InProcessDevice(nano33, tiny, interrupt_at=6), data)
    folder = err.value.folder.path
    assert err.value.rows == 5 and err.value.exit_code == 130
    assert f"resume with hil bench --resume {folder.name}" in str(err.value)
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    partial = read_results(folder)
    assert partial is not None and partial.num_rows == 5
    from bench_fakes import register_fake_backend

    register_fake_backend()
    run_bench(BenchRequest(resume=folder.name, out_dir=tmp_path / "runs"), quiet=True)
    run = load_run(folder)
    assert sorted(run.image_ids()) == [f"img_{i:05d}" for i in range(10)]
    assert run.columns["seq"] == list(range(10))
    assert run.manifest["status"] == "complete" and run.manifest["metrics"]["n"] == 10


def test_lost_link_fails_the_run_and_says_how_to_resume(tmp_path: Path, tiny: Path, nano33) -> None:  # type: ignore[no-untyped-def]
    data = make_image_folder(tmp_path / "data", 8)
    with pytest.raises(LinkError) as err:
        _bench(tmp_path, InProcessDevice(nano33, tiny, link_lost_at=4), data)
    (folder,) = (tmp_path / "runs").iterdir()
    assert str(err.value) == (
        "no answer from the device within 2.0 s (waiting for RESULT); 3 rows saved in "
        f"{folder}; resume with hil bench --resume {folder.name} --out {tmp_path / 'runs'}"
    )
    m = json.loads((folder / "run.json").read_text())
    assert m["status"] == "failed" and m["errors"][-1].startswith("no answer from the device")
    table = read_results(folder)
    assert table is not None and table.num_rows == 3


def _measured_rows(folder: Path) -> int:
    table = read_results(folder)
    journal = folder / JOURNAL_NAME
    lines = journal.read_text().count("\n") if journal.is_file() else 0
    return (table.num_rows if table is not None else 0) + lines


def test_resume_after_sigkill_loses_and_repeats_nothing(tmp_path: Path, tiny: Path) -> None:
    data = make_image_folder(tmp_path / "data", 60)
    runs = tmp_path / "runs"
    script = (
        f"import sys; sys.path.insert(0, {str(UNIT_DIR)!r}); import bench_fakes\n"
        "from pathlib import Path\nfrom harness.bench.api import run_bench\n"
        "from harness.bench.request import BenchRequest\n"
        f"run_bench(BenchRequest(backend='fake', model={str(tiny)!r}, data={str(data)!r}, "
        f"out_dir=Path({str(runs)!r})))\n"
    )
    env = dict(os.environ, BENCH_FAKE_DELAY_S="0.03")
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        folder = None
        while time.monotonic() < deadline:
            found = list(runs.glob("*/run.json")) if runs.is_dir() else []
            if found and _measured_rows(found[0].parent) >= 40:
                folder = found[0].parent
                break
            assert child.poll() is None, "the child finished before it could be killed"
            time.sleep(0.02)
        assert folder is not None, "the child measured too few rows within 60 s"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    killed_at = _measured_rows(folder)
    assert 40 <= killed_at < 60
    assert json.loads((folder / "run.json").read_text())["status"] == "running"
    from bench_fakes import register_fake_backend

    register_fake_backend()
    run_bench(BenchRequest(resume=str(folder)), quiet=True)
    run = load_run(folder)
    ids = run.image_ids()
    assert len(ids) == 60 and sorted(ids) == [f"img_{i:05d}" for i in range(60)]
    assert sorted(run.columns["seq"]) == list(range(60))
    assert run.manifest["status"] == "complete"


def test_model_that_images_cannot_fill_fails_before_the_device(tmp_path: Path, tiny: Path) -> None:
    import flatbuffers
    from tflite_micro.python.tflite_micro import runtime

    model = runtime.convert_bytearray_to_object(bytearray(tiny.read_bytes()))
    model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]].shape = [1, 64]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    flat = tmp_path / "flat.tflite"
    flat.write_bytes(bytes(builder.Output()))
    data = make_image_folder(tmp_path / "data", 2)
    with pytest.raises(ModelError, match=r"input shape \[1, 64\] is not an image"):
        run_bench(BenchRequest(backend="fake", model=str(flat), data=str(data), out_dir=tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_a_changed_data_set(tmp_path: Path, tiny: Path, nano33) -> None:  # type: ignore[no-untyped-def]
    data = make_image_folder(tmp_path / "data", 6)
    with pytest.raises(BenchInterrupted) as err:
        _bench(tmp_path, InProcessDevice(nano33, tiny, interrupt_at=3), data)
    (data / "img_00000.png").write_bytes((data / "img_00001.png").read_bytes())
    from bench_fakes import register_fake_backend

    from harness.errors import ConfigError

    register_fake_backend()
    with pytest.raises(
        ConfigError, match=r"cannot resume .*: data set sha256 \w{64} differs from the run's \w{64}"
    ):
        run_bench(BenchRequest(resume=str(err.value.folder.path)), quiet=True)


def test_image_above_the_pixel_limit_is_an_error_row(
    tmp_path: Path, tiny: Path, nano33, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from PIL import Image

    data = make_image_folder(tmp_path / "data", 3)
    Image.new("RGB", (40, 40), (200, 10, 10)).save(data / "img_00001.png", format="JPEG")
    monkeypatch.setenv("HIL_MAX_IMAGE_PIXELS", "1000")  # the 12x10 PNGs pass, the 40x40 JPEG does not
    run = load_run(_bench(tmp_path, InProcessDevice(nano33, tiny), data))
    assert run.columns["status"] == ["ok", "error", "ok"]
    assert run.columns["error"][1].endswith("image too large (40x40 = 1,600 pixels; the limit is 1,000, "
                                            "set by HIL_MAX_IMAGE_PIXELS)")
    assert run.manifest["status"] == "complete"


def test_sigkilled_run_is_marked_interrupted_by_the_next_bench_and_report(tmp_path: Path, tiny: Path) -> None:
    from bench_fakes import register_fake_backend

    from harness.report.runs import load_run as report_load_run

    data = make_image_folder(tmp_path / "data", 40)
    runs = tmp_path / "runs"
    script = (
        f"import sys; sys.path.insert(0, {str(UNIT_DIR)!r}); import bench_fakes\n"
        "from pathlib import Path\nfrom harness.bench.api import run_bench\n"
        "from harness.bench.request import BenchRequest\n"
        f"run_bench(BenchRequest(backend='fake', model={str(tiny)!r}, data={str(data)!r}, "
        f"out_dir=Path({str(runs)!r})))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, BENCH_FAKE_DELAY_S="0.05"))
    try:
        deadline = time.monotonic() + 60
        folder = None
        while time.monotonic() < deadline and folder is None:
            found = list(runs.glob("*/run.json")) if runs.is_dir() else []
            if found and _measured_rows(found[0].parent) >= 3:
                folder = found[0].parent
            assert child.poll() is None, "the child finished before it could be killed"
            time.sleep(0.02)
        assert folder is not None, "the child measured too few rows within 60 s"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    left = json.loads((folder / "run.json").read_text())
    assert left["status"] == "running" and left["writer"]["pid"] == child.pid
    # a new run in the same runs folder notices the dead writer and says so on disk
    register_fake_backend()
    other = run_bench(
        BenchRequest(backend="fake", model=str(tiny), data=str(data), limit=2, out_dir=runs), quiet=True
    )
    marked = json.loads((folder / "run.json").read_text())
    assert marked["status"] == "interrupted"
    assert marked["errors"][-1].startswith(f"the process that wrote this run (pid {child.pid} on ")
    assert json.loads((other / "run.json").read_text())["status"] == "complete"
    # hil report's reader does the same for a run.json still saying "running"
    (folder / "run.json").write_text(json.dumps(left))
    run = report_load_run(folder)
    assert run.manifest["status"] == "interrupted"
    assert "run status is 'interrupted': results may be partial" in run.problems
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    # a run whose writer is alive (this process) is left alone, and cannot be resumed under it
    alive = dict(left, writer={**left["writer"], "pid": os.getpid(), "start_ticks": None})
    (folder / "run.json").write_text(json.dumps(alive))
    assert report_load_run(folder).manifest["status"] == "running"
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=r"is still being written by pid \d+; wait for it"):
        run_bench(BenchRequest(resume=str(folder)), quiet=True)


def test_the_watchdog_is_part_of_the_request_and_checked(tmp_path: Path, tiny: Path, nano33) -> None:  # type: ignore[no-untyped-def]
    from harness.errors import ConfigError

    for bad in (0.0, -3.0, float("nan")):
        with pytest.raises(ConfigError, match="--watchdog must be a positive number of seconds"):
            BenchRequest(watchdog=bad).resolved()
    assert BenchRequest.from_dict(BenchRequest(watchdog=7.5).to_dict()).watchdog == 7.5
    assert BenchRequest().watchdog == 60.0
    data = make_image_folder(tmp_path / "data", 2)
    folder = _bench(tmp_path, InProcessDevice(nano33, tiny), data, request=BenchRequest(watchdog=9.0))
    m = load_run(folder).manifest
    assert m["request"]["watchdog"] == 9.0
    assert "link" not in m  # a device without a host session has no link to count


def test_hil_bench_takes_watchdog_and_says_so_in_help() -> None:
    from harness.bench.cli import request_from_args
    from harness.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["bench", "--watchdog", "12"])
    assert request_from_args(args, None).watchdog == 12.0
    assert parser.parse_args(["bench"]).watchdog == 60.0
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert "--watchdog S" in proc.stdout and "no progress for S" in proc.stdout
