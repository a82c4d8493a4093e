"""Decoding every kind of image a user may hand us, and refusing bad files in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from harness.data.images import fit_to_square, load_rgb
from harness.errors import DataError


def _save(img: Image.Image, path: Path, **kw: Any) -> Path:
    img.save(path, **kw)
    return path


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    arr = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    p = _save(Image.fromarray(arr, "L"), tmp_path / "g.png")
    out = load_rgb(p)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], arr) and np.array_equal(out[..., 2], arr)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    arr = np.array([[0, 32768], [65535, 257]], dtype=np.uint16)
    p = _save(Image.fromarray(arr), tmp_path / "d16.png")
    assert Image.open(p).mode.startswith("I")
    out = load_rgb(p)
    assert out[..., 0].tolist() == [[0, 128], [255, 1]]


def test_cmyk_jpeg_converts_to_rgb(tmp_path: Path) -> None:
    p = _save(Image.new("CMYK", (10, 6), (0, 255, 255, 0)), tmp_path / "c.jpg", quality=95)
    out = load_rgb(p)
    assert out.shape == (6, 10, 3)
    r, g, b = out[3, 5].astype(int)
    assert r > 200 and g < 60 and b < 60  # cyan-free, full magenta+yellow = red


def test_rgba_transparent_goes_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    img.putpixel((0, 0), (0, 0, 255, 255))
    out = load_rgb(_save(img, tmp_path / "a.png"))
    assert out[0, 0].tolist() == [0, 0, 255]
    assert out[3, 3].tolist() == [255, 255, 255]


def test_palette_image(tmp_path: Path) -> None:
    img = Image.new("RGB", (5, 5), (10, 200, 30)).convert("P")
    assert load_rgb(_save(img, tmp_path / "p.gif")).shape == (5, 5, 3)


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png")])
def test_truncated_file_is_a_one_line_data_error(tmp_path: Path, fmt: str, suffix: str) -> None:
    rng = np.random.default_rng(0)
    full = tmp_path / f"full{suffix}"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full, fmt)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DataError) as exc:
        load_rgb(cut)
    assert "\n" not in str(exc.value) and str(cut) in str(exc.value)


def test_non_image_and_missing_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    with pytest.raises(DataError, match="not an image"):
        load_rgb(text)
    with pytest.raises(DataError, match="not found"):
        load_rgb(tmp_path / "absent.png")


@pytest.mark.parametrize("fit", ["squash", "crop", "pad"])
def test_fit_to_square(fit: str) -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    assert fit_to_square(img, 16, fit).size == (16, 16)


def test_unknown_fit() -> None:
    with pytest.raises(DataError):
        fit_to_square(Image.new("RGB", (4, 4)), 2, "stretch")


def _big_jpeg(path: Path, side: int = 8000) -> Path:
    """A ``side`` x ``side`` JPEG with some structure (made in grayscale to keep the test's memory low)."""
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    arr = ((ramp[None, :] + ramp[:, None]) / 2).astype(np.uint8)
    Image.fromarray(arr, "L").save(path, quality=80)
    return path


def test_image_above_the_pixel_limit_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = _big_jpeg(tmp_path / "big.jpg")
    monkeypatch.delenv("HIL_MAX_IMAGE_PIXELS", raising=False)
    with pytest.raises(DataError) as err:
        load_rgb(big)
    assert str(err.value) == (
        f"{big}: image too large (8000x8000 = 64,000,000 pixels; the limit is 40,000,000, "
        "set by HIL_MAX_IMAGE_PIXELS)"
    )
    monkeypatch.setenv("HIL_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(DataError, match="the limit is 1,000"):
        load_rgb(_big_jpeg(tmp_path / "small.jpg", side=40))


def test_large_jpeg_decodes_at_reduced_scale_with_small_peak_memory(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    big = _big_jpeg(tmp_path / "big.jpg")
    code = (
        "import resource, sys\nimport numpy as np\nfrom harness.data.images import load_rgb\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"arr = load_rgb({str(big)!r})\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(arr.shape[0], arr.shape[1], (after - before) // 1024)\n"
    )
    env = dict(os.environ, HIL_MAX_IMAGE_PIXELS="100000000")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    height, width, grown_mb = (int(v) for v in proc.stdout.split())
    # decoded at 1/4 scale: the short side stays >= 1024; a full decode would be 8000x8000x3 = 192 MB
    assert (height, width) == (2000, 2000)
    assert grown_mb < 40, f"peak RSS grew by {grown_mb} MB decoding one 8000x8000 JPEG"
