"""``hil bench --flash``: build and flash before benchmarking, or say in one line why not."""

from __future__ import annotations

import pytest

from harness.cli import main


def test_flash_does_not_go_with_an_emulated_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--flash", "--backend", "sim", "--quiet"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hil bench: error: --flash uploads to a real board; it does not go with --backend sim"]


def test_flash_without_a_buildable_platform_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Without PlatformIO, or with its registry out of reach (as on CI machines), the build
    # cannot happen and the command must say so in one line; with a board it would run.
    code = main(["bench", "--flash", "--quiet", "--limit", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    if code == 0:
        pytest.skip("PlatformIO could build and a board was attached: nothing to check here")
    assert len(err) == 1 and err[0].startswith("hil bench: error: "), err
