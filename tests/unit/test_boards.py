"""Board profiles: the figures the fit checks and the sim backend depend on."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.boards import check_fit, list_boards, load_board, load_board_file
from harness.cli import main
from harness.errors import ConfigError


def test_both_boards_load_with_their_documented_figures() -> None:
    nano = load_board("nano33")
    assert (nano.clock_hz, nano.ram_bytes, nano.flash_bytes) == (64_000_000, 256 * 1024, 1024 * 1024)
    assert (0x2341, 0x805A) in nano.usb_ids
    assert nano.camera["sensor"] == "OV7675"
    esp = load_board("esp32cam")
    assert esp.clock_hz == 240_000_000 and esp.psram_bytes == 4 * 1024 * 1024
    assert esp.camera["sensor"] == "OV2640"
    assert [b.id for b in list_boards()] == ["esp32cam", "nano33"]


def test_unknown_board_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known boards: esp32cam, nano33"):
        load_board("uno")


def test_fit_check_reports_the_failing_resource() -> None:
    nano = load_board("nano33")
    ok = check_fit(nano, model_bytes=300_000, arena_bytes=100_000, input_bytes=27_648)
    assert ok.fits and ok.reason() == ""
    too_big = check_fit(nano, model_bytes=900_000, arena_bytes=250_000)
    assert not too_big.flash_ok and not too_big.ram_ok
    assert "flash" in too_big.reason() and "RAM" in too_big.reason()
    # The ESP32-CAM puts its arena in PSRAM, so an arena too large for the Nano fits there.
    assert check_fit(load_board("esp32cam"), 900_000, 250_000).fits


def test_cost_model_counts_macs_and_overhead() -> None:
    cm = load_board("nano33").cost_model
    conv = cm.op_cycles("CONV_2D", macs=1000, output_elements=10)
    assert conv == pytest.approx(cm.cycles_per_mac["CONV_2D"] * 1000 + cm.per_op_overhead_cycles)
    pool = cm.op_cycles("AVERAGE_POOL_2D", macs=0, output_elements=256)
    expected = cm.cycles_per_output_element["AVERAGE_POOL_2D"] * 256 + cm.per_op_overhead_cycles
    assert pool == pytest.approx(expected)


def test_broken_profile_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\nname = "y"\n')
    with pytest.raises(ConfigError, match="lacks the field"):
        load_board_file(bad)
    bad.write_text("id = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_board_file(bad)


def test_hil_boards_lists_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    assert "nano33" in out and "Arduino Nano 33 BLE Sense" in out and "esp32cam" in out
