"""The ``qemu`` backend: the real firmware on an emulated Cortex-M4.

For a model, deploy builds (or takes from its cache) the firmware the boards run, TFLM +
CMSIS-NN with the model compiled in, for QEMU's mps2-an386 (arm-none-eabi-gcc + newlib).
This backend starts ``qemu-system-arm -icount shift=0`` and talks to the firmware over one
of two links (``link=``), with the same protocol bytes on both; the boot config block
tells the firmware which one to use:

* ``semihost`` (the default): ARM semihosting. The guest reads and writes QEMU's standard
  input and output (SYS_READ / SYS_WRITE on ``:tt``, up to 1 KiB per call), which this
  backend connects to a pseudo-terminal whose other end it hands to the session. QEMU 7.2
  routes ``:tt`` to its own stdin/stdout, not to a chardev, hence the terminal.
* ``uart``: UART0 on a local TCP socket (``socket://127.0.0.1:port``). QEMU's CMSDK UART
  model holds one received byte and takes the next on a turn of QEMU's main loop, about
  50 us of host time per byte: an upload of the 27.6 kB VWW image takes over a second.

With -icount every guest instruction advances virtual time by exactly 1 ns, so the ticks
it reports (TimerKind.INSTRUCTIONS) are instruction counts: deterministic, the same on
every run and every host, and not a time (harness.units derives an estimated board
latency from them). The link costs no counted instruction inside a measurement: a
semihosting call is one BKPT plus a few instructions of the port, between inferences.

``test_double=True`` runs the protocol test double instead (firmware/qemu/Makefile), for
protocol tests only; the bench refuses its results. There is no silent fallback.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.boards import Board
from harness.deploy.api import build_emulator_image
from harness.devices.base import DeviceOptions, SessionDevice, register_backend
from harness.devices.process import stop_process
from harness.errors import ConfigError, DeviceError, ToolMissing
from harness.link.messages import Log
from harness.link.protocol import Protocol

log = logging.getLogger(__name__)

LISTEN_TIMEOUT_S = 10.0
#: how long a semihost start waits to see QEMU refuse its command line
STARTUP_CHECK_S = 0.2
DEFAULT_MACHINE = "mps2-an386"

#: The boot config block (firmware/qemu/bootcfg.h): where QEMU loads it and its layout.
BOOTCFG_ADDR = 0x203FF000
BOOTCFG_SIZE = 4096
BOOTCFG_MAGIC = 0x43575756
BOOTCFG_FLAG_FAIL_MODEL = 1
BOOTCFG_FLAG_SEMIHOST = 2
_BOOTCFG_HEAD = struct.Struct("<IBBH6I32s")

#: The firmware's links on QEMU: the semihosting console (bulk reads) or the CMSDK UART0.
LINKS = ("semihost", "uart")
DEFAULT_LINK = "semihost"
#: the link when the caller names none (``HIL_QEMU_LINK=uart`` for every QEMU device of a run)
LINK_ENV = "HIL_QEMU_LINK"
#: how run.json and the run summary name each link
LINK_NAMES = {"semihost": "semihosting console (QEMU stdin/stdout on a pty)",
              "uart": "CMSDK UART0 (QEMU TCP serial)"}


@dataclass(frozen=True)
class QemuOptions(DeviceOptions):
    """A prebuilt ELF, the TFLM tree to build with, or the protocol test double and its shape."""

    elf: Path | None = None
    tflm_dir: Path | None = None
    test_double: bool | None = None
    #: False: the model need only fit QEMU's memory map, not the board (instruction counting)
    fit_board: bool | None = None
    input_shape: Sequence[int] | None = None
    ops: Sequence[str] | None = None
    fail_model: bool | None = None
    #: "semihost" (default) or "uart": which of the firmware's ports carries the link
    link: str | None = None


def boot_config(board_id: str, input_shape: Sequence[int] | None = None,
                ops: Sequence[str] | None = None, fail_model: bool = False,
                link: str = DEFAULT_LINK) -> bytes:
    """The 4 KiB block that tells the QEMU firmware which board, input shape and layers to report.

    Passing these at start-up (rather than compiling them in) lets one ELF stand in for
    any model's shape in the conformance suite.
    """
    shape = list(input_shape or [])
    if len(shape) > 6:
        raise DeviceError(f"the QEMU test double supports at most 6 input dimensions, not {len(shape)}")
    names = [op.encode("ascii", errors="replace")[:63] for op in (ops or [])][:64]
    table = b"".join(name + b"\0" for name in names)
    flags = BOOTCFG_FLAG_FAIL_MODEL if fail_model else 0
    if link == "semihost":
        flags |= BOOTCFG_FLAG_SEMIHOST
    head = _BOOTCFG_HEAD.pack(
        BOOTCFG_MAGIC, len(shape), len(names), flags, *(shape + [0] * (6 - len(shape))),
        board_id.encode()[:31],
    )
    block = head + table
    if len(block) > BOOTCFG_SIZE:
        raise DeviceError(f"{len(names)} layer names do not fit the QEMU boot config block")
    return block.ljust(BOOTCFG_SIZE, b"\0")


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_link(link: str) -> str:
    """``link`` if QEMU's firmware has such a port, else a one-line configuration error."""
    if link not in LINKS:
        raise ConfigError(f"unknown QEMU link {link!r}: choose one of {', '.join(LINKS)}")
    return link


def qemu_command(machine: str, elf: Path, port: int | None = None, bootcfg: Path | None = None,
                 link: str = DEFAULT_LINK) -> list[str]:
    """The QEMU command line: instruction counting, and the link.

    ``uart``: UART0 on 127.0.0.1:``port`` (nodelay: the guest writes replies byte by byte;
    Nagle would hold each one ~40 ms). ``semihost``: semihosting calls on QEMU's own
    stdin/stdout (target=native: not through a debugger), UART0 unconnected.
    """
    cmd = [
        "qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none",
        "-icount", "shift=0", "-kernel", str(elf),
    ]
    if check_link(link) == "semihost":
        cmd += ["-semihosting-config", "enable=on,target=native", "-serial", "null"]
    else:
        if port is None:
            raise ValueError("the uart link needs a TCP port")
        cmd += ["-serial", f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on"]
    if bootcfg is not None:
        cmd += ["-device", f"loader,file={bootcfg},addr=0x{BOOTCFG_ADDR:08x},force-raw=on"]
    return cmd


@register_backend("qemu", QemuOptions)
class QemuDevice(SessionDevice):
    """QEMU running the core's Cortex-M4 build; started on open, always killed on close."""

    backend = "qemu"

    def __init__(
        self,
        board: Board,
        *,
        elf: Path | None = None,
        tflm_dir: Path | None = None,
        test_double: bool = False,
        fit_board: bool = True,
        input_shape: Sequence[int] | None = None,
        ops: Sequence[str] | None = None,
        fail_model: bool = False,
        link: str | None = None,
        model: Path | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        on_log: Callable[[Log], None] | None = None,
        protocol: Protocol | str = Protocol.V1,
    ) -> None:
        super().__init__(board, timeout=timeout, retries=retries, on_log=on_log, protocol=protocol)
        self.model = model
        self.elf = elf
        self.tflm_dir = tflm_dir
        self.test_double = test_double
        self.fit_board = fit_board
        self.input_shape = tuple(input_shape) if input_shape else None
        self.ops = tuple(ops) if ops else None
        self.fail_model = fail_model
        self.link = check_link(link or os.environ.get(LINK_ENV) or DEFAULT_LINK)
        self.machine = str(board.emulator.get("qemu_machine") or DEFAULT_MACHINE)
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        #: the semihost link's terminal: QEMU holds the master, we keep one slave fd open
        #: so that QEMU's reads never see a hang-up while the session reconnects
        self._pty: tuple[int, int] | None = None

    def _start(self) -> tuple[str, int | None]:
        if shutil.which("qemu-system-arm") is None:
            raise ToolMissing("qemu-system-arm is not installed (Debian package qemu-system-arm)")
        elf = self.elf or self._image()
        # run.json's firmware record and the run summary name the link the firmware used
        self.firmware = {**self.firmware, "port": LINK_NAMES[self.link]}
        self._tmp = tempfile.TemporaryDirectory(prefix="vww-qemu-")
        cfg = Path(self._tmp.name) / "bootcfg.bin"
        cfg.write_bytes(boot_config(self.board.id, self.input_shape, self.ops, self.fail_model, self.link))
        if self.link == "semihost":
            return self._start_semihost(elf, cfg)
        port = free_tcp_port()
        cmd = qemu_command(self.machine, elf, port, cfg, self.link)
        log.debug("starting %s", " ".join(cmd))
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_listening(port)
        return f"socket://127.0.0.1:{port}", self.board.baud

    def _start_semihost(self, elf: Path, cfg: Path) -> tuple[str, int | None]:
        """QEMU with its stdin/stdout on a raw pseudo-terminal's master; the session opens the slave."""
        master, slave = os.openpty()
        tty.setraw(slave)
        self._pty = (master, slave)
        cmd = qemu_command(self.machine, elf, None, cfg, self.link)
        log.debug("starting %s", " ".join(cmd))
        self._proc = subprocess.Popen(cmd, stdin=master, stdout=master, stderr=subprocess.PIPE)
        os.close(master)
        self._pty = (-1, slave)
        self._check_running()
        return os.ttyname(slave), None  # a terminal between two processes has no link rate

    def _check_running(self) -> None:
        """One line from QEMU's stderr if it has exited already (a bad option, a missing ELF)."""
        assert self._proc is not None
        try:
            self._proc.wait(timeout=STARTUP_CHECK_S)
        except subprocess.TimeoutExpired:
            return
        err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
        first = err.strip().splitlines()[0] if err.strip() else f"exit code {self._proc.returncode}"
        raise DeviceError(f"qemu-system-arm exited at start-up: {first}")

    def _image(self) -> Path:
        image = build_emulator_image("qemu", self.model, self.board, protocol=self.protocol.value,
                                     tflm_dir=self.tflm_dir, test_double=self.test_double,
                                     fit_board=self.fit_board)
        self.firmware = image.firmware
        return image.path

    def _wait_listening(self, port: int) -> None:
        """Wait until QEMU accepts connections on its link's socket (it opens it at start-up)."""
        assert self._proc is not None
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                first = err.strip().splitlines()[0] if err.strip() else f"exit code {self._proc.returncode}"
                raise DeviceError(f"qemu-system-arm exited at start-up: {first}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise DeviceError(
            f"QEMU did not open its {self.link} socket on port {port} within {LISTEN_TIMEOUT_S:.0f} s"
        )

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        pty, self._pty = self._pty, None
        if proc is not None and pty is not None:
            # QEMU blocks in a semihosting read holding its big lock, so it would not act on
            # SIGTERM until the stop timeout: the guest has nothing to save, kill it.
            proc.kill()
        stop_process(proc)
        for fd in pty or ():
            if fd >= 0:
                os.close(fd)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            tmp.cleanup()
