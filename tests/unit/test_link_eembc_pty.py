"""The EEMBC host session and device end over a real pseudo-terminal, and the tools around them.

- a session drives the Python device end through pyserial on a pty, as ``hil bench`` does;
- a silent or babbling device ends in one line naming what the host waited for;
- ``hil data export`` writes the runner's layout with the bench's preprocessing;
- ``hil serve``'s link handling and its refusals;
- the report's runner-style figures from rows.
"""

from __future__ import annotations

import csv
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.devices.sim.child import open_pty
from harness.errors import ConfigError, DataError, DeviceError, HarnessError, LinkError
from harness.link import eembc
from harness.link.device_end import FdLink
from harness.link.eembc_device import EembcDevice, EembcOutcome, EstimateClock
from harness.link.eembc_session import EembcSession, quantise_scores
from harness.link.messages import DType, TensorSpec
from harness.link.protocol import SessionOptions
from harness.link.transport import open_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fakes import make_image_folder  # noqa: E402

IN = TensorSpec(DType.INT8, (1, 4, 4, 3), 1 / 255, -128)
OUT = TensorSpec(DType.INT8, (1, 2), 1 / 256, -128)


class MeanEngine:
    """Person score = mean input byte / 255, as a float that survives the int8 round trip."""

    def infer(self, data: bytes) -> EembcOutcome:
        p = round(float(np.frombuffer(data, np.uint8).mean()) / 255 * 256) / 256
        return EembcOutcome((1 - p, p), elapsed_us=2500)


@pytest.fixture
def served() -> Iterator[tuple[str, EembcDevice]]:
    master, _slave, path = open_pty()
    device = EembcDevice(FdLink(master), MeanEngine(), input_bytes=IN.nbytes, clock=EstimateClock())
    stop = threading.Event()
    thread = threading.Thread(target=device.serve, args=(stop, 0.05), daemon=True)
    thread.start()
    yield path, device
    stop.set()
    thread.join(timeout=5)
    os.close(master)


def test_session_runs_inputs_through_a_pty(served: tuple[str, EembcDevice]) -> None:
    path, device = served
    port = open_port(path)
    try:
        session = EembcSession(port, SessionOptions(inputs=(IN,), outputs=(OUT,)), chunk_bytes=38)
        info = session.start()
        assert info.board == "vww-hil" and info.protocol == "eembc" and info.clock_hz == 1_000_000
        for fill in (0x00, 0x7F, 0xFF):  # int8 bytes as the bench gives them
            data = bytes([fill]) * IN.nbytes
            raw = session.run(data, warmups=2, repeats=4, profile=False, timeout=5.0)
            pixel = fill ^ 0x80  # what the DUT received: the int8 input plus 128
            assert raw.cycles == (2500,) * 4
            p = round(pixel / 255 * 256) / 256
            want = quantise_scores((1 - p, p), (OUT,))
            assert raw.output == want
        assert device.stats.inferences == 12 and device.stats.errors == 0
        assert session.stats.inputs_sent == 3 and session.stats.bytes_received > 0
        assert session.timestamp() == 18 * 2500  # the estimate clock: 12 timed and 6 warm-up runs
    finally:
        port.close()


def test_a_silent_device_is_one_line_naming_what_was_awaited() -> None:
    master, slave, path = open_pty()
    port = open_port(path)
    try:
        session = EembcSession(port, line_timeout=0.3, settle_s=0)
        started = time.monotonic()
        with pytest.raises(LinkError) as info:
            session.command("name")
        assert time.monotonic() - started < 2
        assert "m-ready after 'name'" in str(info.value) and "0.3 s" in str(info.value)
        assert session.stats.timeouts == 1
    finally:
        port.close()
        os.close(master)
        os.close(slave)


def test_boot_banner_is_drained_and_the_wrong_model_refused(served: tuple[str, EembcDevice]) -> None:
    path, device = served
    device.model = "ic01"
    port = open_port(path)
    try:
        session = EembcSession(port, SessionOptions(inputs=(IN,), outputs=(OUT,)), settle_s=0.1)
        with pytest.raises(DeviceError, match="'ic01'"):
            session.start()
    finally:
        port.close()


def test_scores_are_quantised_with_the_output_spec() -> None:
    assert quantise_scores([0.0, 1.0], (OUT,)) == bytes([0x80, 0x7F])  # -128, clipped to 127
    assert quantise_scores([0.5, 0.5], (OUT,)) == bytes([0x00, 0x00])
    with pytest.raises(DeviceError, match="3 scores"):
        quantise_scores([0.1, 0.2, 0.7], (OUT,))


# -- hil data export ---------------------------------------------------------------------------


def test_export_writes_the_runner_layout_with_the_bench_preprocessing(tmp_path: Path) -> None:
    from harness.bench.preprocess import Preprocessor
    from harness.data.dataset import Dataset
    from harness.data.export import export_mlperf_tiny

    data = make_image_folder(tmp_path / "imgs", 5, corrupt=(3,), size=(40, 30))
    spec = TensorSpec(DType.INT8, (1, 96, 96, 3), 1 / 255, -128)
    pre = Preprocessor.for_input(spec)
    ds = Dataset.open(data)
    result = export_mlperf_tiny(ds, tmp_path / "out", pre)
    assert result.images == 4 and len(result.skipped) == 1
    rows = list(csv.reader((tmp_path / "out" / "vww01" / "y_labels.csv").open()))
    assert [r[1] for r in rows] == ["2"] * 4 and {r[2] for r in rows} <= {"0", "1"}
    sample = next(iter(ds.iter_samples(None, 1)))
    blob = (tmp_path / "out" / "vww01" / rows[0][0]).read_bytes()
    assert len(blob) == 27_648
    # for the MLPerf Tiny quantisation the file is the resized RGB pixels themselves
    assert blob == pre.resize(sample.load_rgb()).tobytes()
    assert eembc.from_eembc_input(blob, True) == pre(sample.load_rgb()).tobytes()
    with pytest.raises(DataError, match="--force"):
        export_mlperf_tiny(ds, tmp_path / "out", pre)


# -- hil serve -------------------------------------------------------------------------------


def test_serve_links_never_replace_a_real_file(tmp_path: Path) -> None:
    from harness.serve import place_link, remove_link

    link = tmp_path / "dut.pty"
    place_link(link, "/dev/pts/98")
    place_link(link, "/dev/pts/99")  # an old link is replaced
    assert os.readlink(link) == "/dev/pts/99"
    remove_link(link, "/dev/pts/98")  # not ours any more: kept
    assert link.is_symlink()
    remove_link(link, "/dev/pts/99")
    assert not link.exists() and not link.is_symlink()
    real = tmp_path / "file"
    real.write_text("x")
    with pytest.raises(ConfigError, match="not a symlink"):
        place_link(real, "/dev/pts/99")
    with pytest.raises(ConfigError, match="does not exist"):
        place_link(tmp_path / "no" / "dut", "/dev/pts/99")


def test_serve_refuses_other_backends(tmp_path: Path) -> None:
    from harness.boards import load_board
    from harness.link.protocol import Protocol
    from harness.serve import serve

    with pytest.raises(HarnessError, match="serial"):
        serve("serial", load_board("nano33"), tmp_path / "m.tflite", Protocol.EEMBC, tmp_path / "l")


# -- report figures ------------------------------------------------------------------------


def test_runner_style_figures_from_rows() -> None:
    from harness.report.eembc_figures import eembc_figures

    n = 12
    labels = np.array([i % 2 for i in range(n)], dtype=float)
    scores = [[0.9, 0.1] if i % 3 == 0 else [0.2, 0.8] for i in range(n)]
    outputs = np.array([*scores, None], dtype=object)[:-1]
    columns = {"status": np.array(["ok"] * n, dtype=object), "label": labels, "output_f": outputs,
               "latency_us": np.full(n, 250_000.0)}
    manifest = {"protocol": "eembc", "settings": {"repeats": 20}, "metrics": {"accuracy": 0.5}}
    f = eembc_figures(manifest, columns)
    assert f is not None
    want = 100 * np.mean([(1 if i % 3 else 0) == i % 2 for i in range(n)])
    assert f.runner_top1 == pytest.approx(want)
    assert f.runner_throughput == pytest.approx(4.0) and f.harness_throughput == pytest.approx(4.0)
    # 12 images x 20 runs x 0.25 s = 60 s: 5 windows of 10 s (2 images each) and more
    assert f.runner_valid and len(f.windows) == 5 and all(t == pytest.approx(10.0) for _, t in f.windows)
    short = eembc_figures({**manifest, "settings": {"repeats": 1}}, columns)
    assert short is not None and not short.runner_valid and "too short" in short.note
    assert eembc_figures({"protocol": "v1"}, columns) is None


def test_a_v1_hello_to_an_eembc_device_says_to_add_protocol_eembc(
    served: tuple[str, EembcDevice], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hil bench --port`` without ``--protocol eembc`` meets an EEMBC DUT: the line says so."""
    from deploy_tiny_model import write_tiny_model

    from harness.cli import main
    from harness.link.session import Session

    path, _device = served
    port = open_port(path)
    try:
        with pytest.raises(LinkError) as info:
            Session(port, timeout=0.2, retries=1).hello()
    finally:
        port.close()
    assert "this looks like an EEMBC/MLPerf Tiny device" in str(info.value)
    assert str(info.value).endswith("add --protocol eembc")
    model = write_tiny_model(tmp_path / "tiny.tflite")
    data = make_image_folder(tmp_path / "data", 1)
    argv = ["bench", "--port", path, "--model", str(model), "--data", str(data),
            "--out", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hil bench: error: no VWW harness firmware answered")
    assert err.rstrip().endswith("add --protocol eembc")


def test_a_silent_port_is_not_taken_for_an_eembc_device() -> None:
    master, _slave, path = open_pty()
    port = open_port(path)
    try:
        with pytest.raises(LinkError) as info:
            from harness.link.session import Session

            Session(port, timeout=0.2, retries=1).hello()
    finally:
        port.close()
        os.close(master)
    assert "nothing was received" in str(info.value) and "EEMBC" not in str(info.value)
