"""The sim backend's own promises: fit refusal, a crashed child, a throttled link, cleanup."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.boards import Board, load_board, load_board_file
from harness.devices import create_device
from harness.devices.sim import SimDevice, default_model
from harness.devices.sim import device as sim_module
from harness.devices.sim.process import SimChild
from harness.errors import ConfigError, DeviceError, FitError, ModelError
from harness.paths import boards_dir, reference_models_dir


@pytest.fixture(scope="module")
def model() -> Path:
    shipped = default_model()
    if shipped is not None:
        return shipped
    ref = reference_models_dir()
    if ref is not None and (ref / "mlperf_tiny_vww_96_int8.tflite").is_file():
        return ref / "mlperf_tiny_vww_96_int8.tflite"
    pytest.skip("no int8 VWW model: neither the shipped default nor the reference model is present")


def board_with(tmp_path: Path, **changes: int) -> Board:
    """A copy of the nano33 profile with some figures changed (139,008 B of RAM: 30,464 for arena + input)."""
    text = (boards_dir() / "nano33.toml").read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key} = {changes[key]}" if key in changes else line)
    path = tmp_path / "small.toml"
    path.write_text("\n".join(lines) + "\n")
    # the profile names its fitted cost model by a relative path: copy it beside
    shutil.copytree(boards_dir() / "calibration", tmp_path / "calibration", dirs_exist_ok=True)
    return load_board_file(path)


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[SimChild]:
    """Every SimChild the sim backend starts during the test."""
    children: list[SimChild] = []

    class Recording(SimChild):
        def start(self) -> str:
            children.append(self)
            return super().start()

    monkeypatch.setattr(sim_module, "SimChild", Recording)
    return children


@pytest.mark.parametrize(
    ("changes", "words"),
    [({"ram_bytes": 139_008}, "arena"), ({"flash_bytes": 400_000}, "flash")],
    ids=["ram", "flash"],
)
def test_a_model_that_does_not_fit_is_refused_in_one_line(
    tmp_path: Path, model: Path, started: list[SimChild], changes: dict[str, int], words: str
) -> None:
    board = board_with(tmp_path, **changes)
    dev = create_device("sim", board, model=model)
    assert isinstance(dev, SimDevice)
    with pytest.raises(FitError) as info:  # as the native and QEMU builds refuse it: exit 2
        dev.open()
    message = str(info.value)
    assert "\n" not in message and "does not fit nano33" in message and words in message
    assert started and started[0].proc is None  # stopped
    assert dev.child is None


def test_a_corrupt_model_is_refused_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 4 + b"TFL3" + os.urandom(200))
    with pytest.raises(DeviceError, match="no usable model") as info:
        create_device("sim", load_board("nano33"), model=bad).open()
    assert "\n" not in str(info.value)


def test_bad_options_are_config_errors(tmp_path: Path, model: Path) -> None:
    board = load_board("nano33")
    with pytest.raises(ModelError, match="does not exist"):
        create_device("sim", board, model=tmp_path / "missing.tflite")
    with pytest.raises(ConfigError, match="port"):
        create_device("sim", board, model=model, port="/dev/ttyACM0")
    with pytest.raises(ConfigError, match="baud"):
        create_device("sim", board, model=model, baud=0)


def test_a_crashed_child_is_one_line_and_reaped(model: Path) -> None:
    dev = create_device("sim", load_board("nano33"), model=model)
    assert isinstance(dev, SimDevice)
    info = dev.open()
    assert dev.child is not None and dev.child.pid is not None
    pid = dev.child.pid
    os.kill(pid, signal.SIGABRT)  # what TFLM does when it aborts
    spec = info.inputs[0]
    with pytest.raises(DeviceError, match="SIGABRT") as err:
        dev.infer(np.zeros(spec.shape, spec.dtype.numpy_name))
    assert "\n" not in str(err.value)
    assert gone(pid) and dev.child is None
    dev.close()


def test_close_always_kills_the_child(model: Path) -> None:
    dev = create_device("sim", load_board("nano33"), model=model)
    assert isinstance(dev, SimDevice)
    dev.open()
    assert dev.child is not None and dev.child.pid is not None
    pid = dev.child.pid
    dev.close()
    dev.close()
    assert gone(pid)


def test_throttled_link_is_no_faster_than_the_line(model: Path) -> None:
    baud = 460_800
    with create_device("sim", load_board("nano33"), model=model, baud=baud) as dev:
        spec = dev.info.inputs[0]
        tensor = np.full(spec.shape, 7, spec.dtype.numpy_name)
        start = time.monotonic()
        result = dev.infer(tensor)
        elapsed = time.monotonic() - start
        out_shape = dev.info.outputs[0].shape
    line_time = spec.nbytes * 10 / baud
    assert elapsed >= 0.95 * line_time
    assert result.outputs[0].shape == out_shape


def test_estimated_latency_follows_the_cost_model(model: Path) -> None:
    from harness.models.tflite_file import ModelInfo

    board = load_board("nano33")
    layers = ModelInfo.from_file(model).layers
    want = sum(
        max(1, round(board.cost_model.op_cycles(x.op, x.macs, x.output_elements))) for x in layers
    )
    with create_device("sim", board, model=model) as dev:
        spec = dev.info.inputs[0]
        got = dev.infer(np.zeros(spec.shape, spec.dtype.numpy_name), repeats=2)
        assert dev.info.latency_source == "estimated" and dev.info.engine == "tflm-host"
    assert got.cycles == (want, want)
    assert got.latency_us == pytest.approx(want * 1e6 / board.clock_hz)


def test_bare_child_serves_its_pty_to_the_serial_backend(model: Path) -> None:
    board = load_board("nano33")
    with SimChild(model, board) as child:
        assert child.port is not None
        opts: dict[str, Any] = {"port": child.port}
        for _ in range(2):  # the pty can be opened again after a close
            with create_device("serial", board, **opts) as dev:
                assert dev.info.engine == "tflm-host" and dev.port_url == child.port
