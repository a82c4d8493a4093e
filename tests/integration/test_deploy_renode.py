"""The Renode backend: its script is generated here; running it needs Renode and the ELF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.bench.summary import format_summary
from harness.boards import load_board
from harness.deploy.build import elf_path
from harness.deploy.renode_script import render_platform, render_script
from harness.devices import create_device
from harness.devices.renode.device import find_renode
from harness.errors import ConfigError, ToolMissing
from harness.link.messages import TimerKind
from harness.paths import firmware_dir
from harness.skip_groups import RENODE, needs
from harness.units import latency_basis


def test_script_loads_the_elf_and_bridges_the_uart(tmp_path: Path) -> None:
    board = load_board("nano33")
    elf = tmp_path / "firmware.elf"
    platform = tmp_path / "nano33.repl"
    text = render_script(board, elf, 45678, platform)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "using sysbus"
    assert f"machine LoadPlatformDescription @{platform.resolve()}" in lines
    # one instruction per DWT tick: the CPU's MIPS equal the board's clock in MHz
    assert f"sysbus.cpu PerformanceInMips {board.clock_hz / 1e6:g}" in lines
    assert f"sysbus LoadELF @{elf.resolve()}" in lines
    assert 'emulation CreateServerSocketTerminal 45678 "hil_term" false' in lines
    assert f"connector Connect {board.emulator['renode_uart']} hil_term" in lines
    assert lines[-1] == "start"
    # the terminal exists before the UART is connected to it
    assert lines.index('emulation CreateServerSocketTerminal 45678 "hil_term" false') < lines.index(
        f"connector Connect {board.emulator['renode_uart']} hil_term")


def test_platform_works_offline_and_counts_cycles() -> None:
    """Renode's nrf52840.repl applies an SVD from a URL; the generated platform replaces that init."""
    board = load_board("nano33")
    text = render_platform(board)
    assert f'using "{board.emulator["renode_platform"]}"' in text
    assert "ApplySVD" not in text and "http" not in text
    assert "sysbus:\n    init:\n" in text  # "init:" replaces the included file's init ("init add:" would not)
    assert "dwt: Miscellaneous.DWT @ sysbus 0xe0001000" in text
    assert f"frequency: {board.clock_hz}" in text


def test_script_refuses_boards_without_renode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no Renode mapping"):
        render_script(load_board("esp32cam"), tmp_path / "x.elf", 1234, tmp_path / "p.repl")
    with pytest.raises(ConfigError, match="has no Renode mapping"):
        render_platform(load_board("esp32cam"))
    with pytest.raises(ConfigError, match="out of range"):
        render_script(load_board("nano33"), tmp_path / "x.elf", 70000, tmp_path / "p.repl")


def test_missing_renode_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("HIL_RENODE", raising=False)
    dev = create_device("renode", load_board("nano33"))
    with pytest.raises(ToolMissing, match="^Renode is not installed: ") as exc:
        dev.open()
    assert "\n" not in str(exc.value)


def test_hil_renode_not_executable_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HIL_RENODE", str(tmp_path / "no-renode"))
    dev = create_device("renode", load_board("nano33"))
    with pytest.raises(ToolMissing, match="^HIL_RENODE=.* is not an executable file$"):
        dev.open()


@pytest.mark.emulator("renode")
def test_firmware_answers_hello_in_renode() -> None:
    if find_renode() is None:
        pytest.skip(needs(RENODE, "Renode is not installed"))
    board = load_board("nano33")
    given = os.environ.get("HIL_RENODE_FIRMWARE")
    elf = Path(given) if given else elf_path(firmware_dir(), board.pio_renode_env or "")
    if not elf.is_file():
        pytest.skip(f"no Renode firmware at {elf} (build it with `hil build --board nano33 --renode`)")
    with create_device("renode", board) as dev:
        info = dev.info
        assert info.engine == "tflm" and info.board == "nano33"
        assert len(info.model_sha256) == 64
        # Renode's virtual time counts instructions, whatever timer the firmware found
        assert info.timer is TimerKind.INSTRUCTIONS


def test_renode_instruction_counts_are_labelled_as_renode_s() -> None:
    """A Renode run's counts are instructions, labelled with Renode, never QEMU, never a measurement."""
    board = load_board("nano33")
    basis = latency_basis("INSTRUCTIONS", board, "renode")
    assert basis.count_unit == "instructions" and basis.kind != "measured"
    assert "Renode instruction counts" in basis.label and "QEMU" not in basis.label
    text = format_summary({"backend": "renode", "latency": basis.to_dict(),
                           "metrics": {"n": 1, "n_ok": 1, "instructions_p50": 25_000_000,
                                       "latency_us_p50": 1.0}})
    assert "per inference p50 (counted by Renode's virtual time; instructions, not time)" in text
    assert "QEMU" not in text
