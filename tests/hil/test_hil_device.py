"""Acceptance tests for a device under test: they run on every backend.

Without options they run on the sim backend standing in for nano33; ``--board nano33``
runs them on the real board (each skips with one line when none is attached), and
``--backend qemu|renode`` on an emulator. See harness/pytest_plugin.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.boards import Board, check_fit
from harness.devices.base import Device
from harness.models.tflite_file import ModelInfo
from harness.pytest_plugin import accuracy_not_meaningful

pytestmark = pytest.mark.board


def test_device_runs_the_expected_model(device: Device, expected_model: Path) -> None:
    want = ModelInfo.from_file(expected_model).sha256
    assert device.info.model_sha256 == want, (
        f"device runs model {device.info.model_sha256}, expected {want} ({expected_model.name})"
    )


def test_accuracy_meets_the_board_threshold(
    bench_run: Any, board_profile: Board, expected_model: Path, min_accuracy: float
) -> None:
    reason = accuracy_not_meaningful(expected_model, bool(bench_run.manifest["dataset"].get("synthetic")))
    if reason:
        pytest.skip(reason)
    m = bench_run.metrics
    assert m["n_ok"] > 0, f"no image was measured: {bench_run.manifest.get('errors')}"
    assert m["n_error"] == 0, f"{m['n_error']} images failed: {bench_run.manifest.get('errors')[:3]}"
    assert m["accuracy"] >= min_accuracy, (
        f"accuracy {m['accuracy']:.3f} (95 % CI {m['accuracy_ci_low']:.3f}-{m['accuracy_ci_high']:.3f}, "
        f"n={m['n_ok']}) is below the required {min_accuracy:.2f} ({board_profile.id})"
    )


def test_latency_within_budget(bench_run: Any, board_profile: Board, max_latency_ms: float) -> None:
    p99_ms = bench_run.metrics["latency_us_p99"] / 1000
    source = bench_run.manifest.get("latency_source", "?")
    assert p99_ms <= max_latency_ms, (
        f"p99 latency {p99_ms:.1f} ms ({source}) exceeds the budget of {max_latency_ms:.0f} ms "
        f"({board_profile.id})"
    )


def test_arena_fits_the_board(device: Device, board_profile: Board, expected_model: Path) -> None:
    info = device.info
    fit = check_fit(
        board_profile,
        ModelInfo.from_file(expected_model).size,
        info.arena_used,
        sum(s.nbytes for s in info.inputs),
    )
    assert fit.fits, fit.reason()


def test_device_reports_its_clock_and_tensors(device: Device, expected_model: Path) -> None:
    model = ModelInfo.from_file(expected_model)
    info = device.info
    assert info.clock_hz > 0
    assert tuple(s.shape for s in info.inputs) == tuple(s.shape for s in model.inputs)
    assert tuple(s.shape for s in info.outputs) == tuple(s.shape for s in model.outputs)
