"""Board profiles: the figures the fit checks and the sim backend depend on."""

from __future__ import annotations

import shutil
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


def test_the_nano_ram_budget_is_the_measured_firmware_beside_the_arena() -> None:
    """Arena + input must fit beside the camera frame, the core's static RAM and a heap margin."""
    nano = load_board("nano33")
    budget = nano.ram_budget
    assert budget is not None and "measured" in budget.source
    parts = budget.static_bytes + budget.camera_frame_bytes + budget.heap_margin_bytes
    assert nano.ram_reserved_bytes == parts
    assert budget.camera_frame_bytes == 176 * 144 * 2  # the OV7675's QCIF RGB565 frame
    # The reference model as `hil build` allocates it fits, with what the real build left.
    ref = check_fit(nano, model_bytes=323_984, arena_bytes=116_736, input_bytes=27_648)
    assert ref.fits and ref.ram_spare == 262_144 - 116_736 - 27_648 - nano.ram_reserved_bytes
    used = 262_144 - ref.ram_spare
    assert ref.ram_line().endswith(f"= {used:,} B of 262,144 B RAM ({ref.ram_spare:,} B spare)")
    # 140 KB of arena passed the old check (arena + input against RAM minus a 64 KB guess) and
    # does not leave the firmware its own RAM: the message shows the whole sum.
    big = check_fit(nano, model_bytes=323_984, arena_bytes=140_000, input_bytes=27_648)
    assert 140_000 + 27_648 <= 262_144 - 65_536 and not big.fits
    assert big.reason() == (
        "RAM: arena 140,000 B + input 27,648 B + camera frame 50,688 B + firmware static RAM "
        f"{budget.static_bytes:,} B + heap margin {budget.heap_margin_bytes:,} B = "
        f"{140_000 + 27_648 + nano.ram_reserved_bytes:,} B of 262,144 B RAM "
        f"({140_000 + 27_648 + nano.ram_reserved_bytes - 262_144:,} B short) on nano33"
    )
    # Only a lower bound of the arena known: within it is "unknown", beyond it "does not fit".
    assert check_fit(nano, 323_984, 50_000, 27_648, arena_measured=False).verdict is None
    assert check_fit(nano, 323_984, 617_000, 27_648, arena_measured=False).verdict is False


def test_a_profile_with_both_ram_figures_is_refused(tmp_path: Path) -> None:
    path = _nano33_with(tmp_path, "timer", '"dwt"\nram_reserved_bytes = 65_536')
    with pytest.raises(ConfigError, match=r"firmware\.ram_reserved_bytes and \[firmware\.ram\] both"):
        load_board_file(path)
    path = _nano33_with(tmp_path, "heap_margin_bytes", "8_192\nstack_bytes = 1_024")
    with pytest.raises(ConfigError, match=r"unknown key firmware\.ram\.stack_bytes \(known keys: static_"):
        load_board_file(path)


def test_cost_model_counts_macs_and_overhead() -> None:
    cm = load_board("nano33").cost_model
    conv = cm.op_cycles("CONV_2D", macs=1000, output_elements=10)
    # per MAC, plus per output element where the profile (or its calibration) has a figure
    per_out = cm.cycles_per_output_element.get("CONV_2D", 0.0)
    expected_conv = cm.cycles_per_mac["CONV_2D"] * 1000 + per_out * 10 + cm.per_op_overhead_cycles
    assert conv == pytest.approx(expected_conv)
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


def _nano33_with(tmp_path: Path, key: str, value: str) -> Path:
    """A copy of the shipped nano33 profile with one top-level or cost-model line replaced."""
    from harness.paths import boards_dir

    lines = (boards_dir() / "nano33.toml").read_text(encoding="utf-8").splitlines()
    out = [f"{key} = {value}" if ln.split("=", 1)[0].strip() == key else ln for ln in lines]
    assert out != lines, f"{key} is not a line of nano33.toml"
    path = tmp_path / "edited.toml"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    shutil.copytree(boards_dir() / "calibration", tmp_path / "calibration", dirs_exist_ok=True)
    return path


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("clock_hz", '"fast"', "clock_hz = 'fast' is wrong: expected an integer > 0"),
        ("clock_hz", "0", "clock_hz = 0 is wrong: expected an integer > 0"),
        ("clock_hz", "64.5e6", "clock_hz = 64500000.0 is wrong: expected an integer > 0"),
        ("ram_bytes", "0", "ram_bytes = 0 is wrong: expected an integer > 0"),
        ("ram_bytes", "-5", "ram_bytes = -5 is wrong: expected an integer > 0"),
        ("ram_bytes", "1000", "ram_bytes = 1000 is wrong: expected more than [firmware.ram]'s parts"),
        ("static_bytes", "0", "firmware.ram.static_bytes = 0 is wrong: expected an integer > 0"),
        ("heap_margin_bytes", "-1", "firmware.ram.heap_margin_bytes = -1 is wrong: expected an integer >= 0"),
        ("flash_bytes", "true", "flash_bytes = True is wrong: expected an integer > 0"),
        ("cpi", "-1.0", "cost_model.cpi = -1.0 is wrong: expected a number > 0"),
        ("per_op_overhead_cycles", '"lots"', "cost_model.per_op_overhead_cycles = 'lots' is wrong"),
        ("cycles_per_mac", '{ CONV_2D = "x" }', "cost_model.cycles_per_mac = {'CONV_2D': 'x'} is wrong"),
        ("min_accuracy", "80", "bench.min_accuracy = 80 is wrong: expected a number from 0 to 1"),
        ("baud", "0", "serial.baud = 0 is wrong: expected an integer > 0"),
    ],
)
def test_profile_values_outside_the_schema_are_one_config_error_line(
    tmp_path: Path, key: str, value: str, expected: str
) -> None:
    path = _nano33_with(tmp_path, key, value)
    with pytest.raises(ConfigError) as err:
        load_board_file(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"board profile {path}: ")
    assert expected in message


def test_unknown_cost_model_key_and_non_utf8_profile_are_refused(tmp_path: Path) -> None:
    path = _nano33_with(tmp_path, "cpi", "1.25\ncycles_per_flop = 3.0")
    with pytest.raises(ConfigError, match=r"unknown key cost_model\.cycles_per_flop \(known keys: source, "):
        load_board_file(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0: invalid start byte\)"):
        load_board_file(path)


@pytest.mark.parametrize("content", [b'clock_hz = "fast"\n', b"\xff\xfe", b"ram_bytes = -5\n"])
def test_hil_bench_with_a_bad_profile_is_one_line_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    from harness.paths import boards_dir

    folder = tmp_path / "boards"
    folder.mkdir()
    text = (boards_dir() / "nano33.toml").read_bytes()
    key = content.split(b"=")[0].strip()
    lines = [content.rstrip(b"\n") if ln.split(b"=")[0].strip() == key else ln for ln in text.splitlines()]
    (folder / "nano33.toml").write_bytes(content if b"=" not in content else b"\n".join(lines) + b"\n")
    shutil.copytree(boards_dir() / "calibration", folder / "calibration")
    monkeypatch.setenv("HIL_BOARDS_DIR", str(folder))
    assert boards_dir() == folder, "HIL_BOARDS_DIR does not move the boards folder"
    rc = main(["bench", "--board", "nano33", "--limit", "1", "--quiet", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"hil bench: error: board profile {folder / 'nano33.toml'}")
    assert not (tmp_path / "runs").exists()


def _mobilenet_v1_025_96(in_channels: int) -> list[tuple[str, int, int]]:
    """(op, MACs, output elements) of MobileNetV1 0.25 at 96x96: the MLPerf Tiny VWW network
    (3 input channels) and TFLM's person_detect (1), which differ in the first convolution only."""
    layers = [("CONV_2D", 48 * 48 * 8 * 9 * in_channels, 48 * 48 * 8)]
    size, ch = 48, 8
    for out_ch, stride in [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
                           (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)]:
        size //= stride
        layers.append(("DEPTHWISE_CONV_2D", size * size * ch * 9, size * size * ch))
        layers.append(("CONV_2D", size * size * ch * out_ch, size * size * out_ch))
        ch = out_ch
    return layers + [("AVERAGE_POOL_2D", 0, 256), ("RESHAPE", 0, 256), ("FULLY_CONNECTED", 512, 2),
                     ("SOFTMAX", 0, 2)]


def _estimate_ms(board_id: str, layers: list[tuple[str, int, int]]) -> float:
    board = load_board(board_id)
    cycles = sum(board.cost_model.op_cycles(op, macs, out) for op, macs, out in layers)
    return cycles / board.clock_hz * 1e3


def test_esp32cam_estimate_is_of_the_reference_kernels_the_firmware_runs() -> None:
    """Issue 20 item 2: the firmware's TFLM port has no ESP-NN, so the estimate must be
    Espressif's "without ESP-NN" figure (4,084 ms on ESP32 at 240 MHz), not the 380 ms with it."""
    assert sum(m for _, m, _ in _mobilenet_v1_025_96(3)) == 7_489_664  # as `hil analyze` counts it
    person_detect = _estimate_ms("esp32cam", _mobilenet_v1_025_96(1))
    assert person_detect == pytest.approx(4084, rel=0.01)
    vww = _estimate_ms("esp32cam", _mobilenet_v1_025_96(3))
    assert 4084 < vww < 4400  # three input channels cost a little more
    source = load_board("esp32cam").cost_model.source
    assert "without ESP-NN" in source and "4,084 ms" in source and "esp-tflite-micro" in source
    assert load_board("esp32cam").max_latency_ms > vww  # the bench's budget does not fail the estimate
