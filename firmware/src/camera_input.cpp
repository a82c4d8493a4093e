#include "camera_input.h"

namespace board {

bool frame_to_input(vww::Engine& engine, const uint8_t* frame, uint16_t width, uint16_t height,
                    vww_img::Format format, vww::FrameView* view) {
  const vww::TensorSpec spec = engine.input_spec(0);
  uint8_t* input = engine.input_buffer(0);
  if (input == nullptr || spec.ndims != 4 || spec.dims[0] != 1) return false;
  if (spec.dtype != vww::kInt8 && spec.dtype != vww::kUInt8) return false;
  vww_img::Target target;
  target.data = input;
  target.height = static_cast<uint16_t>(spec.dims[1]);
  target.width = static_cast<uint16_t>(spec.dims[2]);
  target.channels = static_cast<uint8_t>(spec.dims[3]);
  target.is_signed = spec.dtype == vww::kInt8;
  target.scale = spec.scale;
  target.zero_point = spec.zero_point;
  const vww_img::Source source{frame, width, height, format};
  if (!vww_img::crop_scale_quantize(source, target)) return false;
  const uint8_t bpp = format == vww_img::Format::kGray8 ? 1 : (format == vww_img::Format::kRgb888 ? 3 : 2);
  view->data = frame;
  view->bytes = static_cast<uint32_t>(width) * height * bpp;
  view->width = width;
  view->height = height;
  view->format = static_cast<vww::PixelFormat>(static_cast<uint8_t>(format));
  return true;
}

}  // namespace board
