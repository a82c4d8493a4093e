"""The ``renode`` backend: the real firmware ELF on an emulated nRF52840.

Renode runs the ``nano33ble_renode`` build (protocol on the hardware UART) with that UART
bridged to a TCP server socket; the harness talks to ``socket://127.0.0.1:PORT`` like to
any other port. Where Renode is not installed the backend says so in one line
(ToolMissing) and the tests that need it skip with that reason.

Renode is ``$HIL_RENODE`` or ``renode`` on PATH; the ELF is the one given, else
``$HIL_RENODE_FIRMWARE``, else where PlatformIO puts the board's Renode build. Renode runs
with a TMPDIR of its own: at start and exit it deletes every ``renode-*`` folder in TMPDIR
that no live process owns, other runs' included.

The script runs the CPU at the board's clock in MIPS with a DWT at the board's clock, so
the firmware's cycle counts are executed instructions (virtual time), not time on a
board: ``open`` reports the timer as ``INSTRUCTIONS`` whatever the firmware calls it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.boards import Board
from harness.deploy.api import renode_elf, renode_platform, renode_script
from harness.devices.base import DeviceInfo, DeviceOptions, SessionDevice, register_backend
from harness.errors import DeviceError, ToolMissing
from harness.link.messages import Log, TimerKind
from harness.link.protocol import Protocol

log = logging.getLogger(__name__)

BOOT_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


RENODE_ENV = "HIL_RENODE"
FIRMWARE_ENV = "HIL_RENODE_FIRMWARE"


def find_renode() -> str | None:
    """``$HIL_RENODE`` when set (it must be an executable file), else ``renode`` on PATH."""
    given = os.environ.get(RENODE_ENV)
    if given:
        return given if os.path.isfile(given) and os.access(given, os.X_OK) else None
    return shutil.which("renode")


def renode_executable() -> str:
    exe = find_renode()
    if exe is None:
        given = os.environ.get(RENODE_ENV)
        if given:
            raise ToolMissing(f"{RENODE_ENV}={given} is not an executable file")
        raise ToolMissing(
            "Renode is not installed: get it from https://renode.io (the portable Linux build "
            f"puts `renode` on PATH) or set {RENODE_ENV} to its `renode` launcher"
        )
    return exe


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RenodeOptions(DeviceOptions):
    """A prebuilt ELF (default: the Renode build of the board), its UART port and boot time."""

    elf: Path | None = None
    tcp_port: int | None = None
    boot_timeout: float | None = None


@register_backend("renode", RenodeOptions)
class RenodeDevice(SessionDevice):
    """The firmware ELF running in Renode, reached over its UART socket."""

    backend = "renode"

    def __init__(self, board: Board, *, model: str | Path | None = None, elf: Path | None = None,
                 tcp_port: int | None = None, boot_timeout: float = BOOT_TIMEOUT_S,
                 timeout: float = 10.0, retries: int = 3,
                 on_log: Callable[[Log], None] | None = None,
                 protocol: Protocol | str = Protocol.V1) -> None:
        super().__init__(board, timeout=timeout, retries=retries, on_log=on_log, protocol=protocol)
        self.model = Path(model) if model is not None else None
        self.elf = elf
        self.tcp_port = tcp_port
        self.boot_timeout = boot_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def open(self) -> DeviceInfo:
        """Open, then refuse firmware built for another model than the one asked for."""
        info = super().open()
        if info.timer is not TimerKind.INSTRUCTIONS and info.protocol == Protocol.V1.value:
            # DWT or micros(): both run on Renode's virtual time, one tick per instruction
            info = dataclasses.replace(info, timer=TimerKind.INSTRUCTIONS)
            self._info = info
        if self.model is not None:
            from harness.models.tflite_file import ModelInfo

            want = ModelInfo.from_file(self.model).sha256
            if info.model_sha256 != want:
                self.close()
                raise DeviceError(
                    f"the Renode firmware runs model {info.model_sha256[:12]}, not {self.model.name} "
                    f"({want[:12]}); rebuild with `hil build --board {self.board.id} --renode "
                    f"--model {self.model}`"
                )
        return info

    def _elf(self) -> Path:
        given = os.environ.get(FIRMWARE_ENV)
        elf = self.elf or (Path(given) if given else renode_elf(self.board))
        if not elf.is_file():
            raise ToolMissing(
                f"no Renode firmware at {elf}; build it with `hil build --board {self.board.id} --renode`"
            )
        return elf

    def _start(self) -> tuple[str, int | None]:
        exe = renode_executable()
        elf = self._elf()
        port = self.tcp_port or free_tcp_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="hil-renode-")
        folder = Path(self._tmp.name)
        platform = folder / f"{self.board.id}.repl"
        platform.write_text(renode_platform(self.board))
        script = folder / "hil.resc"
        script.write_text(renode_script(self.board, elf, port, platform))
        own_tmp = folder / "tmp"
        own_tmp.mkdir()
        log_path = folder / "renode.log"
        cmd = [exe, "--disable-xwt", "--console", "-e", f"include @{script}"]
        log.info("starting %s", " ".join(cmd))
        with open(log_path, "wb") as log_fh:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=log_fh, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, "TMPDIR": str(own_tmp)},
            )
        self._wait_for_socket(port, log_path)
        return f"socket://127.0.0.1:{port}", self.board.baud

    def _wait_for_socket(self, port: int, log_path: Path) -> None:
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                lines = log_path.read_text(errors="replace").strip().splitlines()
                raise DeviceError(
                    f"Renode exited (code {self._proc.returncode}) before opening its UART socket: "
                    f"{lines[-1] if lines else 'no output'}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise DeviceError(
            f"Renode did not open its UART socket on port {port} within {self.boot_timeout:.0f} s"
        )

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                if proc.stdin is not None:
                    proc.stdin.write(b"quit\n")
                    proc.stdin.flush()
            except OSError:
                pass
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
