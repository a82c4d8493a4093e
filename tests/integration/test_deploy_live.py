"""`hil live` through the protocol: a device without a camera is refused in one line."""

from __future__ import annotations

import os
import pty
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.boards import load_board
from harness.cli import main
from harness.deploy.live import run_live
from harness.devices.sim.double import TestDoubleEngine
from harness.errors import DeviceError
from harness.link.device_end import DeviceEnd, FdLink


@pytest.fixture()
def double_device() -> Iterator[str]:
    """A protocol device end (test-double engine, no camera) on a pseudo-terminal."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    stop = threading.Event()
    end = DeviceEnd(FdLink(master), TestDoubleEngine())
    thread = threading.Thread(target=end.serve, args=(stop,), kwargs={"poll": 0.05}, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(timeout=5)
        os.close(slave)
        os.close(master)


def test_live_refuses_a_device_without_camera(double_device: str) -> None:
    with pytest.raises(DeviceError, match="has no camera"):
        run_live(load_board("nano33"), double_device, count=1, timeout=2.0, on_frame=lambda f: None)


def test_cli_reports_it_in_one_line(
    double_device: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["live", "--board", "nano33", "--port", double_device, "--count", "1",
                 "--out", str(tmp_path), "--timeout", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and "no camera" in err[0]
    assert err[0].startswith("hil live: error: the device (test-board")
