"""Camera frames and predictions as the host shows them in ``hil live``.

A device in camera mode answers CAPTURE with a RESULT (the model's outputs for the frame)
and, on request, the frame itself in FRAME pages: gray8, rgb888 or rgb565 (little-endian
16-bit words). This module turns those bytes into an RGB image and the outputs into a
prediction, and knows the centre crop the firmware applies before scaling the frame to
the model's input (firmware/src/image_prep.cpp), so the host can draw what the model saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import DeviceError
from harness.link.messages import PixelFormat, TensorSpec

_BYTES_PER_PIXEL = {PixelFormat.GRAY8: 1, PixelFormat.RGB888: 3, PixelFormat.RGB565: 2}


def decode_pixels(data: bytes, width: int, height: int, fmt: PixelFormat) -> np.ndarray:
    """An (height, width, 3) uint8 RGB image from a FRAME's pixel bytes."""
    need = width * height * _BYTES_PER_PIXEL[fmt]
    if len(data) != need:
        raise DeviceError(
            f"camera frame of {len(data)} B does not match {width}x{height} {fmt.name.lower()} ({need} B)"
        )
    if fmt is PixelFormat.GRAY8:
        gray = np.frombuffer(data, dtype=np.uint8).reshape(height, width)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if fmt is PixelFormat.RGB888:
        return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3).copy()
    words = np.frombuffer(data, dtype="<u2").reshape(height, width).astype(np.uint16)
    r5 = (words >> 11) & 0x1F
    g6 = (words >> 5) & 0x3F
    b5 = words & 0x1F
    rgb = np.stack([(r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)], axis=2)
    return rgb.astype(np.uint8)


def encode_rgb565(rgb: np.ndarray) -> bytes:
    """RGB888 to little-endian RGB565 words: what a device sends for an rgb565 frame."""
    r = rgb[:, :, 0].astype(np.uint16) >> 3
    g = rgb[:, :, 1].astype(np.uint16) >> 2
    b = rgb[:, :, 2].astype(np.uint16) >> 3
    return ((r << 11) | (g << 5) | b).astype("<u2").tobytes()


def centre_crop(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """(x0, y0, width, height) of the crop the firmware takes before scaling; integer maths as on device."""
    if dst_w <= 0 or dst_h <= 0:
        return 0, 0, src_w, src_h
    if src_w * dst_h > src_h * dst_w:
        w = src_h * dst_w // dst_h
        return (src_w - w) // 2, 0, w, src_h
    h = src_w * dst_h // dst_w
    return 0, (src_h - h) // 2, src_w, h


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one frame: person score and the decision at the threshold."""

    scores: tuple[float, ...]
    person_index: int
    threshold: float

    @property
    def person_score(self) -> float:
        return self.scores[self.person_index]

    @property
    def is_person(self) -> bool:
        return self.person_score >= self.threshold

    def label(self) -> str:
        return f"{'person' if self.is_person else 'no person'} ({self.person_score:.2f})"


def predict(output: bytes, spec: TensorSpec, person_index: int = 1, threshold: float = 0.5) -> Prediction:
    """Dequantise the first output tensor and read the person score from it."""
    n = spec.nbytes
    if len(output) < n:
        raise DeviceError(f"device returned {len(output)} B of output, the model's first output has {n} B")
    raw = np.frombuffer(output[:n], dtype=spec.dtype.numpy_name).astype(np.float64).ravel()
    scores = (raw - spec.zero_point) * spec.scale if spec.scale else raw
    if not 0 <= person_index < scores.size:
        raise DeviceError(f"person class {person_index} is outside the model's {scores.size} outputs")
    return Prediction(tuple(float(s) for s in scores), person_index, threshold)
