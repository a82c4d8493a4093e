"""Turn a decoded image into the exact input tensor a quantised model expects.

The device receives raw int8/uint8 bytes, so every step a training pipeline did in float
must be reproduced here, on the host, in the same way for every backend:

1. **Centre crop to the model's aspect ratio, then resize** (bilinear, Pillow). Cropping
   before resizing keeps objects their true shape; a person squeezed by a plain resize is
   a different image from the ones the model was trained on. A square model input on a
   4:3 photo therefore drops an eighth of the width on each side.
2. **Colour**: three-channel inputs get RGB, one-channel inputs get ITU-R 601 luma
   (Pillow's ``L`` conversion), which is what the boards' cameras deliver in grayscale mode.
3. **Pixel scaling**: the float value the model was trained on is read off the input's
   quantisation. When the range the int8 input can represent starts below -0.5, the model
   was trained on ``pixel / 127.5 - 1`` (range [-1, 1]); otherwise on ``pixel / 255``
   (range [0, 1], the MLPerf Tiny and project convention).
4. **Quantisation** with the model's own scale and zero point:
   ``q = round(real / scale) + zero_point`` (halves away from zero, as TFLite rounds),
   clipped to the dtype. For the MLPerf Tiny VWW
   model (scale 1/255, zero point -128) this is exactly ``pixel - 128``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from harness.errors import ModelError
from harness.link.protocol import DType, TensorSpec

_INT_RANGES = {DType.INT8: (-128, 127), DType.UINT8: (0, 255)}


def centre_crop_box(width: int, height: int, target_w: int, target_h: int) -> tuple[int, int, int, int]:
    """The largest centred box of ``width x height`` with the aspect ratio of the target."""
    if width * target_h > height * target_w:  # source is wider than the target: trim the sides
        new_w = max(1, round(height * target_w / target_h))
        left = (width - new_w) // 2
        return left, 0, left + new_w, height
    new_h = max(1, round(width * target_h / target_w))
    top = (height - new_h) // 2
    return 0, top, width, top + new_h


@dataclass(frozen=True)
class Preprocessor:
    """Image -> input tensor for one model input; build it with :meth:`for_input`."""

    height: int
    width: int
    channels: int
    dtype: DType
    scale: float
    zero_point: int
    shape: tuple[int, ...]
    signed_range: bool

    @classmethod
    def for_input(cls, spec: TensorSpec, label: str = "model") -> Preprocessor:
        """Check that images can be made into ``spec`` and say why not in one line."""
        shape = tuple(int(d) for d in spec.shape)
        if len(shape) != 4:
            raise ModelError(
                f"{label}: input shape {list(shape)} is not an image (needs 4-D NHWC, e.g. [1, 96, 96, 3])"
            )
        n, h, w, c = shape
        if n not in (1, -1) or h <= 0 or w <= 0:
            raise ModelError(f"{label}: input shape {list(shape)} is not a single NHWC image")
        if c not in (1, 3):
            raise ModelError(f"{label}: input has {c} channels; images give 1 (grayscale) or 3 (RGB)")
        if spec.dtype not in _INT_RANGES:
            raise ModelError(
                f"{label}: input is {spec.dtype.numpy_name}; devices take int8 or uint8 inputs "
                "(convert the model to full integer with `hil convert`)"
            )
        if not spec.scale > 0.0:
            raise ModelError(f"{label}: input tensor has no quantisation scale")
        lo, _hi = _INT_RANGES[spec.dtype]
        real_low = (lo - spec.zero_point) * spec.scale
        return cls(
            height=h,
            width=w,
            channels=c,
            dtype=spec.dtype,
            scale=float(spec.scale),
            zero_point=int(spec.zero_point),
            shape=(1, h, w, c),
            signed_range=real_low < -0.5,
        )

    @property
    def convention(self) -> str:
        """The pixel scaling this preprocessor applies, for manifests and summaries."""
        return "pixel / 127.5 - 1" if self.signed_range else "pixel / 255"

    def resize(self, rgb: np.ndarray) -> np.ndarray:
        """Centre crop and resize to the input's size; keeps 3 channels."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 pixels, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        if (h, w) == (self.height, self.width):
            return rgb
        img = Image.fromarray(rgb, "RGB")
        box = centre_crop_box(w, h, self.width, self.height)
        # crop first: resize(box=...) lets the filter reach pixels outside the box
        img = img.crop(box).resize((self.width, self.height), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8)

    def to_channels(self, rgb: np.ndarray) -> np.ndarray:
        if self.channels == 3:
            return rgb
        gray = Image.fromarray(rgb, "RGB").convert("L")
        return np.asarray(gray, dtype=np.uint8)[:, :, None]

    def quantise(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels -> the input dtype, with the model's scale and zero point."""
        real = pixels.astype(np.float64) / 255.0
        if self.signed_range:
            real = real * 2.0 - 1.0
        x = real / self.scale
        q = np.sign(x) * np.floor(np.abs(x) + 0.5) + self.zero_point  # half away from zero, as TFLite
        lo, hi = _INT_RANGES[self.dtype]
        return np.clip(q, lo, hi).astype(self.dtype.numpy_name)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        pixels = self.to_channels(self.resize(rgb))
        return self.quantise(pixels).reshape(self.shape)
