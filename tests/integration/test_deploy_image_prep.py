"""The firmware's frame-to-input code, compiled with g++ and checked against numpy.

firmware/src/image_prep.cpp is what both boards run in camera mode (centre crop, nearest
scaling, RGB565 decode, grayscale, quantisation). It is portable C++, so it is compiled
and run here exactly as written, and its output compared with an independent numpy
version of the same rule.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.deploy.frames import centre_crop, decode_pixels, encode_rgb565
from harness.link.messages import PixelFormat
from harness.paths import firmware_dir
from harness.skip_groups import tools_missing

GXX = shutil.which("g++") or ""
pytestmark = pytest.mark.skipif(not GXX, reason=tools_missing(["g++"]))

DRIVER = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "image_prep.h"
// args: in_file out_file src_w src_h fmt dst_w dst_h channels signed scale zero_point
int main(int argc, char** argv) {
  if (argc != 12) return 2;
  FILE* f = std::fopen(argv[1], "rb");
  std::vector<uint8_t> in(1 << 20);
  size_t n = std::fread(in.data(), 1, in.size(), f);
  std::fclose(f);
  in.resize(n);
  vww_img::Source s{in.data(), (uint16_t)std::atoi(argv[3]), (uint16_t)std::atoi(argv[4]),
                    (vww_img::Format)std::atoi(argv[5])};
  vww_img::Target t;
  t.width = (uint16_t)std::atoi(argv[6]);
  t.height = (uint16_t)std::atoi(argv[7]);
  t.channels = (uint8_t)std::atoi(argv[8]);
  t.is_signed = std::atoi(argv[9]) != 0;
  t.scale = (float)std::atof(argv[10]);
  t.zero_point = std::atoi(argv[11]);
  std::vector<uint8_t> out((size_t)t.width * t.height * t.channels);
  t.data = out.data();
  if (!vww_img::crop_scale_quantize(s, t)) return 3;
  f = std::fopen(argv[2], "wb");
  std::fwrite(out.data(), 1, out.size(), f);
  std::fclose(f);
  return 0;
}
"""


@pytest.fixture(scope="module")
def prep_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("image_prep")
    (folder / "driver.cpp").write_text(DRIVER)
    src = firmware_dir() / "src"
    exe = folder / "prep"
    subprocess.run(
        [GXX, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-I", str(src),
         str(folder / "driver.cpp"), str(src / "image_prep.cpp"), "-o", str(exe)],
        check=True, capture_output=True, timeout=120,
    )
    return exe


def reference(rgb: np.ndarray, dst_w: int, dst_h: int, channels: int, signed: bool,
              scale: float, zp: int) -> np.ndarray:
    h, w, _ = rgb.shape
    x0, y0, cw, ch = centre_crop(w, h, dst_w, dst_h)
    ys = y0 + (np.arange(dst_h) * ch + ch // 2) // dst_h
    xs = x0 + (np.arange(dst_w) * cw + cw // 2) // dst_w
    px = rgb[ys][:, xs].astype(np.int64)
    if channels == 1:
        px = ((77 * px[:, :, 0] + 150 * px[:, :, 1] + 29 * px[:, :, 2]) >> 8)[:, :, None]
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0) / np.float32(scale)
    q = np.floor(levels + np.float32(0.5)).astype(np.int32) + zp
    lo, hi = (-128, 127) if signed else (0, 255)
    lut = np.clip(q, lo, hi).astype(np.int8 if signed else np.uint8)
    return lut[px]


def run_prep(exe: Path, tmp: Path, data: bytes, w: int, h: int, fmt: PixelFormat, dst_w: int,
             dst_h: int, channels: int, signed: bool, scale: float, zp: int) -> np.ndarray:
    (tmp / "in.bin").write_bytes(data)
    subprocess.run(
        [str(exe), str(tmp / "in.bin"), str(tmp / "out.bin"), str(w), str(h), str(int(fmt)),
         str(dst_w), str(dst_h), str(channels), str(int(signed)), repr(scale), str(zp)],
        check=True, timeout=30,
    )
    out = np.frombuffer((tmp / "out.bin").read_bytes(), dtype=np.int8 if signed else np.uint8)
    return out.reshape(dst_h, dst_w, channels)


@pytest.mark.parametrize(
    ("w", "h", "fmt", "dst", "channels", "signed", "scale", "zp"),
    [
        (176, 144, PixelFormat.RGB565, 96, 3, True, 1 / 255, -128),  # Nano QCIF -> MLPerf VWW input
        (160, 120, PixelFormat.RGB565, 96, 1, True, 1 / 255, -128),  # ESP32 QQVGA -> grayscale model
        (100, 160, PixelFormat.RGB888, 64, 3, False, 1 / 255, 0),    # portrait, uint8 input
        (50, 40, PixelFormat.GRAY8, 32, 3, True, 2 / 255, -128),     # gray frame, coarser scale
    ],
)
def test_matches_numpy(prep_binary: Path, tmp_path: Path, w: int, h: int, fmt: PixelFormat, dst: int,
                       channels: int, signed: bool, scale: float, zp: int) -> None:
    rng = np.random.default_rng(w * h)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    if fmt is PixelFormat.RGB565:
        data = encode_rgb565(rgb)
    elif fmt is PixelFormat.RGB888:
        data = rgb.tobytes()
    else:
        data = rgb[:, :, 0].tobytes()
    seen = decode_pixels(data, w, h, fmt)  # what the camera actually delivered
    got = run_prep(prep_binary, tmp_path, data, w, h, fmt, dst, dst, channels, signed, scale, zp)
    want = reference(seen, dst, dst, channels, signed, scale, zp)
    assert np.array_equal(got, want)


def test_camera_input_compiles_against_the_core() -> None:
    core = firmware_dir() / "lib" / "vww_core" / "include"
    if not (core / "vww" / "engine.h").is_file():
        pytest.skip("the portable core's headers are not in the tree")
    src = firmware_dir() / "src"
    proc = subprocess.run(
        [GXX, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-I", str(src),
         "-I", str(core), str(src / "camera_input.cpp")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_portable_sources_cross_compile_for_cortex_m4(tmp_path: Path) -> None:
    arm = shutil.which("arm-none-eabi-g++")
    if arm is None:
        pytest.skip(tools_missing(["arm-none-eabi-g++"]))
    core = firmware_dir() / "lib" / "vww_core" / "include"
    src = firmware_dir() / "src"
    for name in ("image_prep.cpp", "camera_input.cpp"):
        proc = subprocess.run(
            [arm, "-std=gnu++17", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
             "-Os", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Werror",
             "-I", str(src), "-I", str(core), "-c", str(src / name), "-o", str(tmp_path / f"{name}.o")],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
