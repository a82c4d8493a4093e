"""What an EEMBC device's lap times are called: what its timer is, or "reported by the device".

Issue 20 item 1: ``hil serve --protocol eembc`` said its ``m-lap-us`` times were estimated,
yet ``hil bench --port L --protocol eembc`` wrote ``latency_source=measured``. The project's
device ends now announce their timer in the ``name`` answer (``m-timer-[kind]``, a line the
official runner skips); a device without it (the reference firmware) is "reported by the
device", never "measured". Real ptys, the real Python device end, a real bench run.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bench_fakes import make_image_folder, tiny_model

from harness.bench.api import bench_on_device, make_device
from harness.boards import load_board
from harness.devices.sim.child import open_pty
from harness.link import eembc
from harness.link.device_end import FdLink
from harness.link.eembc_device import EembcDevice, EembcOutcome, EstimateClock, WallClock
from harness.models.tflite_file import ModelInfo
from harness.report.compare import figures
from harness.results import load_run
from harness.units import latency_kind


class MeanEngine:
    def infer(self, data: bytes) -> EembcOutcome:
        p = round(float(np.frombuffer(data, np.uint8).mean()) / 255 * 256) / 256
        return EembcOutcome((1 - p, p), elapsed_us=2500)


class ReferenceFirmware(EembcDevice):
    """A device end that answers ``name`` as MLPerf Tiny's reference firmware does: no timer line."""

    def handle(self, text: str | None) -> list[str]:
        return [ln for ln in super().handle(text) if eembc.parse_timer(ln) is None]


def _serve(device_cls: type[EembcDevice], model: Path, clock: object) -> Iterator[str]:
    master, _slave, path = open_pty()
    nbytes = sum(s.nbytes for s in ModelInfo.from_file(model).inputs)
    device = device_cls(FdLink(master), MeanEngine(), input_bytes=nbytes, clock=clock)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=device.serve, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(timeout=5)
        os.close(master)


def _bench_over_eembc(tmp_path: Path, device_cls: type[EembcDevice], clock: object) -> dict:
    model = tiny_model(tmp_path / "models")
    board = load_board("nano33")
    for port in _serve(device_cls, model, clock):
        device = make_device(board, "serial", model=model, port=port, protocol="eembc")
        folder = bench_on_device(device, board=board, backend="serial", model=model,
                                 dataset=make_image_folder(tmp_path / "data", 3), out_dir=tmp_path / "runs")
        m = json.loads((folder / "run.json").read_text())
        m["_folder"] = folder
        return m
    raise AssertionError("unreachable")


def test_name_answer_carries_the_timer_and_the_runner_s_name_line_is_unchanged() -> None:
    dev = EembcDevice(None, MeanEngine(), input_bytes=4, clock=EstimateClock())
    lines = dev.handle("name")
    assert lines == ["m-name-dut-[vww-hil]", "m-timer-[estimated]", eembc.READY]
    assert [eembc.parse_name(ln) for ln in lines][0] == "vww-hil"  # what the runner matches
    assert EembcDevice(None, MeanEngine(), input_bytes=4).handle("name")[1] == "m-timer-[host_clock]"
    with pytest.raises(ValueError, match="unknown timer kind"):
        eembc.format_timer("sundial")


def test_a_sim_device_s_laps_are_estimated_not_measured(tmp_path: Path) -> None:
    m = _bench_over_eembc(tmp_path, EembcDevice, EstimateClock())
    assert m["latency_source"] == "estimated"
    assert m["latency"]["kind"] == "estimated" and "as the device announced" in m["latency"]["label"]
    assert m["device"]["timer"] == "estimated"
    summary = (m["_folder"] / "summary.txt").read_text()
    lat = next(ln for ln in summary.splitlines() if ln.startswith("latency"))
    assert lat.startswith("latency  (estimated)") and "(measured)" not in lat


def test_a_device_that_does_not_say_is_reported_never_measured(tmp_path: Path) -> None:
    m = _bench_over_eembc(tmp_path, ReferenceFirmware, WallClock())
    assert m["latency_source"] == "reported"
    assert m["latency"]["kind"] == "reported" and m["latency"]["label"].startswith("reported by the device")
    assert m["device"]["timer"] == "unannounced"
    summary = (m["_folder"] / "summary.txt").read_text()
    lat = next(ln for ln in summary.splitlines() if ln.startswith("latency"))
    assert lat.startswith("latency  (reported)") and "(measured)" not in lat
    # and so in compare and the report
    assert latency_kind(m) == "reported by the device"
    assert figures(load_run(m["_folder"])).latency_kind == "reported by the device"


def test_a_device_with_a_cycle_counter_is_measured(tmp_path: Path) -> None:
    class DwtClock(WallClock):
        kind = "dwt"

    m = _bench_over_eembc(tmp_path, EembcDevice, DwtClock())
    assert m["latency_source"] == "measured" and m["latency"]["kind"] == "measured"
    assert "DWT cycle counter" in m["latency"]["label"]
