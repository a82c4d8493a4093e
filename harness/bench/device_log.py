"""The run's device.log: log frames the device sends, time-stamped, one per line.

The session hands log frames to a callback it is given when the port opens, which is
before the run folder exists (a refused device must leave no folder), so the sink holds
early lines in memory and writes them once it is attached to the folder.
"""

from __future__ import annotations

from typing import IO

from harness.bench.store import DEVICE_LOG_NAME, RunFolder, utc_now
from harness.devices.base import Device, State
from harness.link.protocol import Log


class DeviceLogSink:
    """Device log frames with a UTC time stamp, held in memory until the run folder exists."""

    def __init__(self) -> None:
        self._early: list[str] = []
        self._fh: IO[str] | None = None

    def __call__(self, msg: Log) -> None:
        line = f"{utc_now()} {msg.level.name} {msg.text.rstrip()}\n"
        if self._fh is None:
            self._early.append(line)
            return
        self._fh.write(line)
        self._fh.flush()

    def attach(self, folder: RunFolder) -> None:
        if self._fh is None:
            self._fh = open(folder.path / DEVICE_LOG_NAME, "a", encoding="utf-8")  # noqa: SIM115
            self._fh.writelines(self._early)
            self._fh.flush()
            self._early.clear()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def install_log_sink(device: Device) -> DeviceLogSink | None:
    """Route a closed device's log frames to a sink (the session takes the callback on open)."""
    if not hasattr(device, "on_log") or getattr(device, "state", None) is not State.CLOSED:
        return None
    sink = DeviceLogSink()
    device.on_log = sink
    return sink
