"""``hil bench --flash``: build and flash before benchmarking, or say in one line why not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.paths import firmware_dir


def test_flash_does_not_go_with_an_emulated_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--flash", "--backend", "sim", "--quiet"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hil bench: error: --flash uploads to a real board; it does not go with --backend sim"]


def test_flash_without_a_buildable_platform_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without PlatformIO, or with its registry out of reach (as on CI machines), the build
    # cannot happen and the command must say so in one line; with a board it would run.
    # The build writes generated sources, so it gets its own copy of the project: the
    # repository's firmware/src/generated must stay the shipped model's.
    fw = tmp_path / "fw"
    fw.mkdir()
    shutil.copy(firmware_dir() / "platformio.ini", fw / "platformio.ini")
    monkeypatch.setenv("HIL_FIRMWARE_DIR", str(fw))
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path / "pio-core"))
    code = main(["bench", "--flash", "--quiet", "--limit", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    if code == 0:
        pytest.skip("PlatformIO could build and a board was attached: nothing to check here")
    assert len(err) == 1 and err[0].startswith("hil bench: error: "), err
