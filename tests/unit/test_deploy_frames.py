"""Camera frames and predictions on the host side of `hil live`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.deploy.frames import centre_crop, decode_pixels, encode_rgb565, predict
from harness.deploy.live import LiveFrame, save_png
from harness.errors import DeviceError
from harness.link.messages import DType, PixelFormat, TensorSpec


def test_rgb565_round_trip_keeps_the_top_bits() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    back = decode_pixels(encode_rgb565(rgb), 16, 12, PixelFormat.RGB565)
    assert back.shape == (12, 16, 3)
    assert np.array_equal(back[:, :, 0] >> 3, rgb[:, :, 0] >> 3)
    assert np.array_equal(back[:, :, 1] >> 2, rgb[:, :, 1] >> 2)
    assert np.array_equal(back[:, :, 2] >> 3, rgb[:, :, 2] >> 3)


def test_rgb565_is_little_endian_and_expands_to_full_range() -> None:
    white_red = bytes([0x00, 0xF8, 0xFF, 0xFF])  # pure red 0xF800, white 0xFFFF, little-endian
    img = decode_pixels(white_red, 2, 1, PixelFormat.RGB565)
    assert img[0, 0].tolist() == [255, 0, 0]
    assert img[0, 1].tolist() == [255, 255, 255]


def test_gray_and_rgb888_and_size_errors() -> None:
    gray = decode_pixels(bytes(range(6)), 3, 2, PixelFormat.GRAY8)
    assert gray[1, 2].tolist() == [5, 5, 5]
    rgb = decode_pixels(bytes(range(18)), 3, 2, PixelFormat.RGB888)
    assert rgb[1, 2].tolist() == [15, 16, 17]
    with pytest.raises(DeviceError, match="does not match 3x2 rgb565"):
        decode_pixels(bytes(11), 3, 2, PixelFormat.RGB565)


def test_centre_crop_matches_the_firmware_rule() -> None:
    assert centre_crop(176, 144, 96, 96) == (16, 0, 144, 144)
    assert centre_crop(160, 120, 96, 96) == (20, 0, 120, 120)
    assert centre_crop(120, 160, 96, 96) == (0, 20, 120, 120)
    assert centre_crop(100, 50, 0, 0) == (0, 0, 100, 50)


def test_predict_dequantises_the_person_score() -> None:
    spec = TensorSpec(DType.INT8, (1, 2), 1 / 256, -128)
    pred = predict(np.array([-128 + 64, -128 + 192], dtype=np.int8).tobytes(), spec)
    assert pred.scores == pytest.approx((0.25, 0.75))
    assert pred.is_person and pred.label() == "person (0.75)"
    assert not predict(np.array([100, -100], dtype=np.int8).tobytes(), spec).is_person
    with pytest.raises(DeviceError, match="outside the model's 2 outputs"):
        predict(bytes(2), spec, person_index=2)


def test_save_png_names_the_prediction(tmp_path: Path) -> None:
    from PIL import Image

    spec = TensorSpec(DType.INT8, (1, 2), 1 / 256, -128)
    frame = LiveFrame(3, np.zeros((120, 160, 3), dtype=np.uint8),
                      predict(np.array([0, 100], dtype=np.int8).tobytes(), spec),
                      centre_crop(160, 120, 96, 96), cycles=64_000, clock_hz=64_000_000)
    path = save_png(frame, tmp_path / "out")
    assert path.name.startswith("frame_00003_person_")
    img = np.asarray(Image.open(path))
    assert img.shape == (120, 160, 3)
    assert img[0, 20].any() and not img[60, 80].any()  # the crop outline is drawn, the inside is not
    assert frame.latency_ms == pytest.approx(1.0)
