"""The firmware core's own C++ unit tests, and the harness pieces that start its builds.

The C++ tests (firmware/native/tests/test_core.cpp) check the core against the golden
frames byte for byte; running them from pytest puts them in the same report as the
Python side's golden tests.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness.boards import load_board
from harness.deploy.emulators import build_native
from harness.devices.native import NativeDevice
from harness.devices.qemu import BOOTCFG_ADDR, BOOTCFG_MAGIC, BOOTCFG_SIZE, boot_config, qemu_command
from harness.errors import DeviceError
from harness.skip_groups import tools_missing

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frames.txt"


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("g++") is None,
                    reason=tools_missing(["cmake", "g++"]))
def test_core_unit_tests_pass_against_the_golden_frames() -> None:
    exe = build_native("vww_core_tests")
    proc = subprocess.run([str(exe), str(GOLDEN)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "checks passed" in proc.stdout


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("g++") is None,
                    reason=tools_missing(["cmake", "g++"]))
def test_core_unit_tests_notice_a_changed_golden_frame(tmp_path: Path) -> None:
    exe = build_native("vww_core_tests")
    lines = GOLDEN.read_text().splitlines()
    changed = []
    for line in lines:
        if line.startswith("pong "):
            name, seq, hexstr = line.split()
            line = f"{name} {seq} {hexstr[:-4]}{(int(hexstr[-4:-2], 16) ^ 1):02x}00"
        changed.append(line)
    path = tmp_path / "frames.txt"
    path.write_text("\n".join(changed) + "\n")
    proc = subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0


def test_boot_config_layout_matches_the_firmware_header() -> None:
    block = boot_config("nano33", (1, 96, 96, 3), ["CONV_2D", "SOFTMAX"], fail_model=True)
    assert len(block) == BOOTCFG_SIZE
    magic, ndims, n_ops, flags, *dims = struct.unpack_from("<IBBH6I", block)
    assert (magic, ndims, n_ops, flags) == (BOOTCFG_MAGIC, 4, 2, 1 | 2)  # fail model, semihost link
    assert dims == [1, 96, 96, 3, 0, 0]
    assert block[32:64].rstrip(b"\0") == b"nano33"
    assert block[64:].startswith(b"CONV_2D\0SOFTMAX\0\0")
    header = (Path(__file__).resolve().parents[2] / "firmware" / "qemu" / "bootcfg.h").read_text()
    assert f"0x{BOOTCFG_MAGIC:08X}u" in header
    assert f"0x{BOOTCFG_ADDR:08X}u" in header


def test_boot_config_refuses_what_does_not_fit() -> None:
    with pytest.raises(DeviceError):
        boot_config("b", (1,) * 7)
    with pytest.raises(DeviceError):
        boot_config("b", (1, 2), ["X" * 63] * 64)


def test_qemu_command_counts_instructions_and_loads_the_boot_config(tmp_path: Path) -> None:
    cmd = qemu_command("mps2-an386", tmp_path / "fw.elf", 4321, tmp_path / "cfg.bin", link="uart")
    assert cmd[:3] == ["qemu-system-arm", "-M", "mps2-an386"]
    assert "shift=0" in cmd[cmd.index("-icount") + 1]
    # nodelay: the guest UART writes byte by byte; Nagle would hold each reply ~40 ms
    assert "tcp:127.0.0.1:4321,server=on,wait=off,nodelay=on" in cmd
    assert any(a.startswith("loader,file=") and "addr=0x203ff000" in a for a in cmd)
    assert "-semihosting-config" not in cmd


def test_qemu_semihost_link_enables_semihosting_and_leaves_the_uart_unconnected(tmp_path: Path) -> None:
    cmd = qemu_command("mps2-an386", tmp_path / "fw.elf", None, tmp_path / "cfg.bin")
    assert cmd[cmd.index("-semihosting-config") + 1] == "enable=on,target=native"
    assert cmd[cmd.index("-serial") + 1] == "null"
    assert "shift=0" in cmd[cmd.index("-icount") + 1]
    # the firmware learns its link from the boot config: flag bit 1
    flags = struct.unpack_from("<IBBH", boot_config("b", link="semihost"))[3]
    assert flags == 2 and struct.unpack_from("<IBBH", boot_config("b", link="uart"))[3] == 0
    header = (Path(__file__).resolve().parents[2] / "firmware" / "qemu" / "bootcfg.h").read_text()
    assert "kBootFlagSemihost = 2;" in header


def test_an_unknown_qemu_link_is_a_configuration_error(tmp_path: Path) -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown QEMU link 'usb'"):
        qemu_command("mps2-an386", tmp_path / "fw.elf", None, None, link="usb")


def test_native_command_passes_the_model_shape_and_layers() -> None:
    dev = NativeDevice(load_board("nano33"), input_shape=(1, 8, 8, 1), ops=["CONV_2D", "MEAN"],
                       fail_model=True, test_double=True)
    cmd = dev.command(Path("/x/runner"))
    assert cmd[cmd.index("--board") + 1] == "nano33"
    assert cmd[cmd.index("--input-shape") + 1] == "1x8x8x1"
    assert cmd[cmd.index("--ops") + 1] == "CONV_2D,MEAN"
    assert "--fail-model" in cmd
    # the real firmware has its model compiled in: it takes only the board id
    real = NativeDevice(load_board("nano33")).command(Path("/x/native_tflm"))
    assert real == ["/x/native_tflm", "--board", "nano33"]


def test_missing_compilers_and_emulator_are_one_line_tool_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import harness.deploy.emulators as emulators
    import harness.devices.qemu.device as qemu
    from harness.errors import ToolMissing

    monkeypatch.setattr(emulators.shutil, "which", lambda _tool: None)
    monkeypatch.setattr(qemu.shutil, "which", lambda _tool: None)
    with pytest.raises(ToolMissing, match="cmake is not installed"):
        emulators.build_native(build_dir=tmp_path / "native")
    with pytest.raises(ToolMissing, match="arm-none-eabi-g\\+\\+ is not installed"):
        emulators.build_qemu_firmware(build_dir=tmp_path / "qemu")
    dev = qemu.QemuDevice(load_board("nano33"))
    with pytest.raises(ToolMissing, match="qemu-system-arm is not installed"):
        dev.open()
    assert dev._proc is None  # nothing was started, nothing is left running
