"""What the fault suite puts behind its relay: one entry per backend.

A target is started by its own backend (the ``_start``/``_stop`` pair every
:class:`~harness.devices.base.SessionDevice` has), so the relay sits between the host
and exactly what users run: the sim's child process, the native runner, QEMU. The host
reaches the relay through the ``serial`` backend. Adding a backend is one line:

    TARGETS.append(FaultTarget("native", "native", skip_reason=native_missing))

``options`` gives the backend's own options for a model file; ``skip_reason`` returns a
one-line reason when the backend cannot run here (a tool missing), and every case of that
target then skips with it; a firmware image that cannot be built (ToolMissing, BuildError
from the backend's start) skips them too, with the build's one-line message. The native
backend (the real firmware, TFLM + CMSIS-NN, on a pty) was tried through the relay on
2026-12-03 with that one line and passed the fast cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.boards import Board
from harness.devices import create_device
from harness.devices.base import SessionDevice


def _sim_options(model: Path) -> dict[str, Any]:
    """The sim announcing the firmware's limits (1 KiB payloads, 4 credits) instead of its own 32 KiB."""
    return {"max_payload": 1024, "credits": 4}


@dataclass(frozen=True)
class FaultTarget:
    name: str
    backend: str
    options: Callable[[Path], dict[str, Any]] = field(default=lambda model: {})
    skip_reason: Callable[[], str | None] = field(default=lambda: None)
    #: every case of a slow target is faults_slow (QEMU: the first run builds its firmware)
    slow: bool = False
    #: added to every case's deadline: the images a slow target measures before the fault
    #: (QEMU: about 0.6 s each, plus its start) are time the deadline is not about
    deadline_extra_s: float = 0.0


class Endpoint:
    """A running device of one target: its URL, and a reset that restarts it (new URL)."""

    def __init__(self, target: FaultTarget, model: Path, board: Board) -> None:
        device = create_device(target.backend, board, model=model, **target.options(model))
        assert isinstance(device, SessionDevice), f"{target.backend} does not speak through a port"
        self.device = device
        self.resets = 0
        self.url = self._start()

    def _start(self) -> str:
        url, _baud = self.device._start()
        return url

    def restart(self) -> str:
        """Kill what stands behind the port and start it again, as a board reset would."""
        self.resets += 1
        self.device._stop()
        self.url = self._start()
        return self.url

    def close(self) -> None:
        self.device._stop()

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _missing(*tools: str) -> str | None:
    import shutil

    from harness.skip_groups import tools_missing

    absent = [t for t in tools if shutil.which(t) is None]
    return tools_missing(absent) if absent else None


TARGETS: list[FaultTarget] = [
    FaultTarget("sim", "sim", options=_sim_options),
    # the real firmware (TFLM + CMSIS-NN, the model compiled in): the C++ device end
    FaultTarget("native", "native", skip_reason=lambda: _missing("cmake", "g++")),
    FaultTarget("qemu", "qemu", skip_reason=lambda: _missing("cmake", "arm-none-eabi-g++", "qemu-system-arm"),
                slow=True, deadline_extra_s=5.0),
]
