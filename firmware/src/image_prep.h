// Camera frame -> model input: centre crop to the input's aspect ratio, nearest-neighbour
// scale, colour conversion and quantisation, in one pass and without a second buffer.
//
// Portable C++ (no Arduino, no TFLM) so that the host test suite compiles and checks it
// with g++ against a Python reference (tests/integration/test_deploy_image_prep.py).
// Pixels map to real values as pixel / 255 (the zoo's "uint8 pixel / 255" convention),
// then to the input's quantisation: q = round(pixel / 255 / scale) + zero_point.
// RGB565 frames are little-endian 16-bit words, the byte order the protocol's FRAME
// messages carry; camera drivers that deliver big-endian words swap them first.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vww_img {

enum class Format : uint8_t { kGray8 = 0, kRgb888 = 1, kRgb565 = 2 };

struct Source {
  const uint8_t* data;
  uint16_t width;
  uint16_t height;
  Format format;
};

struct Target {
  uint8_t* data;        // the model's input tensor
  uint16_t width;
  uint16_t height;
  uint8_t channels;     // 1 (grayscale) or 3 (RGB)
  bool is_signed;       // int8 (true) or uint8 (false)
  float scale;
  int32_t zero_point;
};

// Source rows/columns used after the centre crop (for drawing the crop on the host).
struct Crop {
  uint16_t x0, y0, width, height;
};

Crop centre_crop(uint16_t src_w, uint16_t src_h, uint16_t dst_w, uint16_t dst_h);

// False when the geometry or format is unusable (nothing written then).
bool crop_scale_quantize(const Source& src, const Target& dst);

// Big-endian RGB565 words (as OV7675 and OV2640 deliver them) to little-endian, in place.
void swap_rgb565_bytes(uint8_t* data, size_t pixels);

}  // namespace vww_img
