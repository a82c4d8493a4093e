"""Decode any image a user may hand us into the one pixel format the harness uses.

Everything downstream (training, the bench runner, the device) wants an ``HxWx3``
``uint8`` RGB array. Source images come as grayscale, palette, RGBA, CMYK, 16-bit or
float TIFFs, and some are truncated or not images at all; this module turns the good
ones into that array and every bad one into a one-line :class:`DataError`.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from harness.errors import ConfigError, DataError

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)

#: sources with more pixels than this are refused, not decoded (``HIL_MAX_IMAGE_PIXELS``
#: overrides it): a full decode costs 3 bytes per pixel and more in the conversions after it
DEFAULT_MAX_PIXELS = 40_000_000
#: JPEGs whose short side is at least twice this are decoded at a reduced scale (``draft``)
#: that keeps the short side at or above it: every consumer downsizes to a few hundred pixels
DRAFT_MIN_SIDE = 1024


def max_image_pixels() -> int:
    """The largest source image (in pixels) the harness decodes: ``HIL_MAX_IMAGE_PIXELS`` or 40 M."""
    text = os.environ.get("HIL_MAX_IMAGE_PIXELS", "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"HIL_MAX_IMAGE_PIXELS={text!r}: expected a positive pixel count, e.g. 40000000")
    return value


def _draft_size(width: int, height: int) -> tuple[int, int] | None:
    """The size to ask a JPEG decoder for, or None to decode at full size."""
    short = min(width, height)
    if short < 2 * DRAFT_MIN_SIDE:
        return None
    k = DRAFT_MIN_SIDE / short
    return max(1, math.ceil(width * k)), max(1, math.ceil(height * k))


def is_image_name(path: Path | str) -> bool:
    """True when the file name has an image suffix (the content is checked on decode)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def open_image(path: Path) -> Image.Image:
    """Open and fully decode ``path``; a corrupt, truncated or non-image file is a DataError.

    ``Image.open`` only reads the header, so ``load()`` is called here to surface
    truncation now rather than halfway through a benchmark. Large JPEGs are decoded at
    a reduced scale (see :data:`DRAFT_MIN_SIDE`), so one big photo costs megabytes, not a
    gigabyte; sources above :func:`max_image_pixels` are refused from their header.
    """
    limit = max_image_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            if img.width * img.height > limit:
                img.close()
                raise DataError(
                    f"{path}: image too large ({img.width}x{img.height} = {img.width * img.height:,} "
                    f"pixels; the limit is {limit:,}, set by HIL_MAX_IMAGE_PIXELS)"
                )
            draft = _draft_size(img.width, img.height) if img.format == "JPEG" else None
            if draft is not None:
                img.draft(img.mode, draft)
            img.load()
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: image too large (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: corrupt or truncated image ({first})") from None
    return img


def is_grayscale_mode(img: Image.Image) -> bool:
    """True when the source stores one channel (L, 1, I;16, I, F, LA)."""
    return img.mode in {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    """Scale a 16/32-bit or float single-channel image to 8 bits by its value range.

    16-bit PNGs use the full 0..65535 range, so a plain ``convert("L")`` would clip
    nearly every pixel to white.
    """
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        scaled = arr / 257.0
    else:
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if hi <= 255.0 and lo >= 0.0:
            scaled = arr
        elif hi > lo:
            scaled = (arr - lo) * (255.0 / (hi - lo))
        else:
            scaled = np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def to_rgb_image(img: Image.Image) -> Image.Image:
    """Return an 8-bit RGB PIL image, upright per its EXIF orientation.

    Transparent pixels are put on white, the convention of image viewers, so that an
    RGBA logo looks the same to the model as it does to the person labelling it.
    """
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:  # noqa: BLE001 - a broken orientation tag must not lose the image
        pass
    if img.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        img = _high_depth_to_l(img)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode != "RGB":
        return img.convert("RGB")
    return img


def load_rgb(path: Path) -> np.ndarray:
    """Decode ``path`` into an ``HxWx3`` uint8 RGB array (DataError if it cannot be)."""
    with open_image(path) as img:
        try:
            rgb = to_rgb_image(img)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot convert image ({exc})") from None
        arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(f"{path}: decoded to unexpected shape {arr.shape}")
    return arr


def luminance_mean(arr: np.ndarray) -> float:
    """Mean ITU-R BT.601 luma of an RGB or gray uint8 array, 0..255."""
    if arr.ndim == 2:
        return float(arr.mean())
    a = arr.astype(np.float32)
    return float((0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]).mean())


def fit_to_square(img: Image.Image, size: int, fit: str) -> Image.Image:
    """Resize to ``size`` x ``size``.

    ``squash`` keeps all content (so a label derived from boxes stays true) at the cost
    of aspect ratio; ``crop`` keeps aspect and cuts the long side's centre; ``pad``
    keeps aspect and everything, padding with grey.
    """
    if fit == "squash":
        return img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if fit == "crop":
        return ImageOps.fit(img, (size, size), Image.Resampling.BILINEAR)
    if fit == "pad":
        return ImageOps.pad(img, (size, size), Image.Resampling.BILINEAR, color=(128, 128, 128))
    raise DataError(f"unknown fit {fit!r} (choose squash, crop or pad)")
