"""The cost-model fit on synthetic per-layer counts, and the calibration file round trip.

The per-layer "QEMU" counts here are synthetic: a hidden cost per op (MACs, outputs and a
per-op overhead, with 4 % noise per layer) over the layers of real models. They test that
the fit recovers such a cost and that the calibrated profile is read back and labelled;
they say nothing about how well the fit matches real CMSIS-NN counts (that is
benchmarks/bench_cost_model.py with QEMU).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bench_fakes import tiny_model

from harness.boards import load_board, load_board_file
from harness.calibration import api, collect
from harness.calibration.fit import model_errors
from harness.models.tflite_file import ModelInfo
from harness.paths import boards_dir
from harness.units import latency_basis

HIDDEN = {"CONV_2D": (1.6, 9.0), "DEPTHWISE_CONV_2D": (3.1, 14.0), "FULLY_CONNECTED": (1.3, 40.0)}
OTHER = {"AVERAGE_POOL_2D": 7.0, "RESHAPE": 0.5, "SOFTMAX": 120.0}


def _synthetic_records(models: list[tuple[str, Path]], cpi: float, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for name, path in models:
        layers = []
        for layer in ModelInfo.from_file(path).layers:
            if layer.op in HIDDEN and layer.macs:
                a, b = HIDDEN[layer.op]
                cycles = a * layer.macs + b * layer.output_elements + 1500
            else:
                cycles = OTHER.get(layer.op, 10.0) * layer.output_elements + 1500
            instr = int(cycles * rng.normal(1.0, 0.04) / cpi)
            layers.append([layer.index, layer.op, instr, layer.macs, layer.output_elements])
        out.append({"name": name, "sha256": collect.sha256_of(path), "engine": "synthetic",
                    "instructions": sum(row[2] for row in layers), "layers": layers})
    return out


@pytest.fixture()
def models(tmp_path: Path) -> list[tuple[str, Path]]:
    shipped = sorted((Path(__file__).parents[2] / "models" / "vww_default").glob("*.tflite"))
    out = [(p.stem, p) for p in shipped[:1]]
    out += [(f"tiny-{s}", tiny_model(tmp_path / f"m{s}", seed=s)) for s in (0, 1)]
    return out


def test_fit_recovers_a_hidden_cost_model(models: list[tuple[str, Path]]) -> None:
    board = load_board("nano33")
    cal = api.calibrate(board, _synthetic_records(models, 1.25))
    after = {e.model: e for e in cal.result.after}
    assert set(after) == {n for n, _ in models}
    assert all(e.median_layer_error < 0.10 for e in after.values()), after
    assert all(e.total_error < 0.10 for e in after.values()), after
    # the fit re-derives the errors it reports
    again = {e.model: e for e in model_errors(cal.samples, cal.result.coefficients)}
    assert again == after


def test_calibration_file_is_written_linked_and_labelled(
    tmp_path: Path, models: list[tuple[str, Path]]
) -> None:
    folder = tmp_path / "boards"
    shutil.copytree(boards_dir(), folder, ignore=shutil.ignore_patterns("calibration"))
    profile = folder / "nano33.toml"
    text = profile.read_text()
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("calibration =")) + "\n"
    profile.write_text(text)
    board = load_board_file(profile)
    cal = api.calibrate(board, _synthetic_records(models, 1.25))
    target = api.write(cal)
    api.write(cal)  # a second run updates the same line, it does not add another
    linked = profile.read_text()
    assert linked.count("calibration = ") == 1 and "calibration/nano33.toml" in linked
    assert "[cost_model]" in linked and "cycles_per_mac = { CONV_2D = 2.2" in linked  # prior kept

    again = load_board_file(profile)
    assert again.cost_model.source.startswith("calibrated from QEMU instruction counts x CPI 1.25")
    fitted = cal.result.coefficients
    got = again.cost_model.cycles_per_mac["CONV_2D"]
    assert got == pytest.approx(fitted.cycles_per_mac["CONV_2D"], rel=1e-5)
    assert "calibrated from QEMU instruction counts" in latency_basis("estimated", again).label
    cal_text = target.read_text()
    for name, path in models:
        assert name in cal_text and collect.sha256_of(path) in cal_text


def test_calibrate_cli_refuses_a_board_without_cpi() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "calibrate", "--board", "esp32cam"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "has no [cost_model] cpi figure" in proc.stderr and "Traceback" not in proc.stderr


COUNTS = boards_dir() / "calibration" / "nano33-qemu-counts.json"


def test_committed_counts_need_no_model_files_and_pin_the_whole_inference(tmp_path: Path) -> None:
    """The counts file holds shapes and hashes, no paths: a refit works from a copy anywhere,
    and the fitted cost model gives each calibration model's whole inference within 2 %."""
    text = COUNTS.read_text()
    assert "/work/" not in text and '"path"' not in text
    copy = tmp_path / "elsewhere" / "counts.json"
    copy.parent.mkdir()
    copy.write_text(text)
    records = collect.load_profiles(copy)
    assert all(len(row) == 5 for r in records for row in r["layers"])
    cal = api.calibrate(load_board("nano33"), records)
    for e in cal.result.after:
        assert e.total_error < 0.02, e
        assert e.median_layer_error < 0.10, e
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "calibrate", "--board", "nano33",
                           "--profiles", str(copy), "--dry-run"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "mlperf-vww-96" in proc.stdout


def test_a_format_1_counts_file_whose_models_are_gone_is_one_line(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text('{"format": "hil-qemu-layer-counts/1", "models": [{"name": "m", "path": '
                   '"/nowhere/m.tflite", "sha256": "00", "engine": "tflm", "layers": [[0, "CONV_2D", 5]]}]}')
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "calibrate", "--board", "nano33",
                           "--profiles", str(old), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "rerun `hil calibrate --save`" in proc.stderr


def test_save_and_load_round_trip(tmp_path: Path, models: list[tuple[str, Path]]) -> None:
    records = _synthetic_records(models, 1.25)
    path = tmp_path / "c.json"
    collect.save_profiles(path, records)
    assert collect.load_profiles(path) == records
