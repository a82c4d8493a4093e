"""Preprocessing: crop, resize, colour and quantisation against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from harness.bench.preprocess import Preprocessor, centre_crop_box
from harness.errors import ModelError
from harness.link.messages import DType, TensorSpec

MLPERF_INPUT = TensorSpec(DType.INT8, (1, 96, 96, 3), 0.003921568859368563, -128)


def test_mlperf_quantisation_is_pixel_minus_128() -> None:
    pre = Preprocessor.for_input(MLPERF_INPUT)
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    q = pre.quantise(pixels)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q.astype(np.int16), pixels.astype(np.int16) - 128)
    assert pre.convention == "pixel / 255"


def test_uint8_input_with_zero_zero_point_keeps_pixels() -> None:
    pre = Preprocessor.for_input(TensorSpec(DType.UINT8, (1, 4, 4, 3), 1 / 255, 0))
    pixels = np.array([[[0, 1, 254], [255, 128, 127]]], dtype=np.uint8)
    np.testing.assert_array_equal(pre.quantise(pixels), pixels)


def test_signed_range_model_gets_minus_one_to_one() -> None:
    # scale 1/128, zero point 0: int8 covers [-1, 0.992]: a model trained on pixel/127.5 - 1
    pre = Preprocessor.for_input(TensorSpec(DType.INT8, (1, 2, 2, 3), 1 / 128, 0))
    assert pre.convention == "pixel / 127.5 - 1"
    q = pre.quantise(np.array([[[0, 255, 128, 64]]], dtype=np.uint8))
    # 0 -> -1 -> -128; 255 -> 1 -> 128, clipped to 127; 128 -> 0.00392 * 128 = 0.502 -> 1;
    # 64 -> -0.498 * 128 = -63.75 -> -64
    assert q.tolist() == [[[-128, 127, 1, -64]]]


def test_grayscale_input_uses_luma() -> None:
    pre = Preprocessor.for_input(TensorSpec(DType.INT8, (1, 1, 1, 1), 1 / 255, -128))
    red = np.array([[[255, 0, 0]]], dtype=np.uint8)
    out = pre(red)
    assert out.shape == (1, 1, 1, 1)
    # ITU-R 601: 0.299 * 255 = 76.2 -> 76; quantised 76 - 128
    assert int(out.ravel()[0]) == 76 - 128


def test_centre_crop_box_trims_the_long_side() -> None:
    assert centre_crop_box(160, 120, 96, 96) == (20, 0, 140, 120)
    assert centre_crop_box(100, 200, 50, 50) == (0, 50, 100, 150)
    assert centre_crop_box(64, 64, 32, 32) == (0, 0, 64, 64)


def test_crop_drops_the_side_bands_before_resizing() -> None:
    img = np.zeros((40, 80, 3), dtype=np.uint8)
    img[:, :20] = 255  # left quarter white: outside the centred 40x40 square
    img[:, 60:] = 255  # right quarter white
    pre = Preprocessor.for_input(TensorSpec(DType.UINT8, (1, 8, 8, 3), 1 / 255, 0))
    out = pre(img)
    assert out.shape == (1, 8, 8, 3)
    assert int(out.max()) == 0


def test_image_of_the_right_size_is_not_resampled() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    out = Preprocessor.for_input(MLPERF_INPUT)(img)
    np.testing.assert_array_equal(out[0].astype(np.int16), img.astype(np.int16) - 128)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (TensorSpec(DType.INT8, (1, 64), 0.1, 0), "not an image"),
        (TensorSpec(DType.INT8, (1, 8, 8, 4), 0.1, 0), "4 channels"),
        (TensorSpec(DType.INT8, (2, 8, 8, 3), 0.1, 0), "single NHWC"),
        (TensorSpec(DType.FLOAT32, (1, 8, 8, 3), 0.0, 0), "float32"),
        (TensorSpec(DType.INT8, (1, 8, 8, 3), 0.0, 0), "no quantisation"),
    ],
)
def test_inputs_that_images_cannot_fill_are_one_line_model_errors(spec: TensorSpec, words: str) -> None:
    with pytest.raises(ModelError) as err:
        Preprocessor.for_input(spec, "m.tflite")
    assert words in str(err.value)
    assert "\n" not in str(err.value)
