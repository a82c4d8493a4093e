#include "image_prep.h"

namespace vww_img {

namespace {

inline void rgb_at(const Source& s, uint32_t x, uint32_t y, uint8_t* rgb) {
  const uint32_t i = y * s.width + x;
  switch (s.format) {
    case Format::kGray8:
      rgb[0] = rgb[1] = rgb[2] = s.data[i];
      break;
    case Format::kRgb888:
      rgb[0] = s.data[3 * i];
      rgb[1] = s.data[3 * i + 1];
      rgb[2] = s.data[3 * i + 2];
      break;
    case Format::kRgb565: {
      const uint16_t w = static_cast<uint16_t>(s.data[2 * i] | (s.data[2 * i + 1] << 8));
      const uint8_t r5 = static_cast<uint8_t>(w >> 11);
      const uint8_t g6 = static_cast<uint8_t>((w >> 5) & 0x3F);
      const uint8_t b5 = static_cast<uint8_t>(w & 0x1F);
      rgb[0] = static_cast<uint8_t>((r5 << 3) | (r5 >> 2));
      rgb[1] = static_cast<uint8_t>((g6 << 2) | (g6 >> 4));
      rgb[2] = static_cast<uint8_t>((b5 << 3) | (b5 >> 2));
      break;
    }
  }
}

inline uint8_t luma(const uint8_t* rgb) {
  // ITU-R BT.601 weights in 8-bit fixed point (77 + 150 + 29 = 256).
  return static_cast<uint8_t>((77u * rgb[0] + 150u * rgb[1] + 29u * rgb[2]) >> 8);
}

}  // namespace

Crop centre_crop(uint16_t src_w, uint16_t src_h, uint16_t dst_w, uint16_t dst_h) {
  Crop c{0, 0, src_w, src_h};
  if (dst_w == 0 || dst_h == 0) return c;
  // Keep the largest window with the target's aspect ratio.
  if (static_cast<uint32_t>(src_w) * dst_h > static_cast<uint32_t>(src_h) * dst_w) {
    c.width = static_cast<uint16_t>(static_cast<uint32_t>(src_h) * dst_w / dst_h);
    c.x0 = static_cast<uint16_t>((src_w - c.width) / 2);
  } else {
    c.height = static_cast<uint16_t>(static_cast<uint32_t>(src_w) * dst_h / dst_w);
    c.y0 = static_cast<uint16_t>((src_h - c.height) / 2);
  }
  return c;
}

bool crop_scale_quantize(const Source& src, const Target& dst) {
  if (src.data == nullptr || dst.data == nullptr || src.width == 0 || src.height == 0 ||
      dst.width == 0 || dst.height == 0 || (dst.channels != 1 && dst.channels != 3) ||
      dst.scale <= 0.0f) {
    return false;
  }
  if (src.format != Format::kGray8 && src.format != Format::kRgb888 &&
      src.format != Format::kRgb565) {
    return false;
  }
  // One quantised value per pixel level, so the per-pixel work is a table lookup.
  uint8_t lut[256];
  const int32_t lo = dst.is_signed ? -128 : 0;
  const int32_t hi = dst.is_signed ? 127 : 255;
  for (int p = 0; p < 256; ++p) {
    const float real = static_cast<float>(p) / 255.0f / dst.scale;
    int32_t q = static_cast<int32_t>(real >= 0.0f ? real + 0.5f : real - 0.5f) + dst.zero_point;
    if (q < lo) q = lo;
    if (q > hi) q = hi;
    lut[p] = static_cast<uint8_t>(q & 0xFF);  // int8 values stored as their bit pattern
  }
  const Crop c = centre_crop(src.width, src.height, dst.width, dst.height);
  uint8_t* out = dst.data;
  uint8_t rgb[3] = {0, 0, 0};
  for (uint32_t y = 0; y < dst.height; ++y) {
    const uint32_t sy = c.y0 + (y * c.height + c.height / 2) / dst.height;
    for (uint32_t x = 0; x < dst.width; ++x) {
      const uint32_t sx = c.x0 + (x * c.width + c.width / 2) / dst.width;
      rgb_at(src, sx, sy, rgb);
      if (dst.channels == 1) {
        *out++ = lut[luma(rgb)];
      } else {
        *out++ = lut[rgb[0]];
        *out++ = lut[rgb[1]];
        *out++ = lut[rgb[2]];
      }
    }
  }
  return true;
}

void swap_rgb565_bytes(uint8_t* data, size_t pixels) {
  for (size_t i = 0; i < pixels; ++i) {
    const uint8_t t = data[2 * i];
    data[2 * i] = data[2 * i + 1];
    data[2 * i + 1] = t;
  }
}

}  // namespace vww_img
