"""The Renode backend: its script is generated here; running it needs Renode and the ELF."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.boards import load_board
from harness.deploy.build import elf_path
from harness.deploy.renode_script import render_script
from harness.devices import create_device
from harness.errors import ConfigError, ToolMissing
from harness.paths import firmware_dir
from harness.skip_groups import RENODE, needs


def test_script_loads_the_elf_and_bridges_the_uart(tmp_path: Path) -> None:
    board = load_board("nano33")
    elf = tmp_path / "firmware.elf"
    text = render_script(board, elf, 45678)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "using sysbus"
    assert f"machine LoadPlatformDescription @{board.emulator['renode_platform']}" in lines
    assert f"sysbus LoadELF @{elf.resolve()}" in lines
    assert 'emulation CreateServerSocketTerminal 45678 "hil_term" false' in lines
    assert f"connector Connect {board.emulator['renode_uart']} hil_term" in lines
    assert lines[-1] == "start"
    # the terminal exists before the UART is connected to it
    assert lines.index('emulation CreateServerSocketTerminal 45678 "hil_term" false') < lines.index(
        f"connector Connect {board.emulator['renode_uart']} hil_term")


def test_script_refuses_boards_without_renode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no Renode mapping"):
        render_script(load_board("esp32cam"), tmp_path / "x.elf", 1234)
    with pytest.raises(ConfigError, match="out of range"):
        render_script(load_board("nano33"), tmp_path / "x.elf", 70000)


def test_missing_renode_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    dev = create_device("renode", load_board("nano33"))
    with pytest.raises(ToolMissing, match="^Renode is not installed: ") as exc:
        dev.open()
    assert "\n" not in str(exc.value)


@pytest.mark.emulator("renode")
def test_firmware_answers_hello_in_renode() -> None:
    if shutil.which("renode") is None:
        pytest.skip(needs(RENODE, "Renode is not installed"))
    board = load_board("nano33")
    elf = elf_path(firmware_dir(), board.pio_renode_env or "")
    if not elf.is_file():
        pytest.skip(f"no Renode firmware at {elf} (build it with `hil build --board nano33 --renode`)")
    with create_device("renode", board) as dev:
        info = dev.info
        assert info.engine == "tflm" and info.board == "nano33"
        assert len(info.model_sha256) == 64
