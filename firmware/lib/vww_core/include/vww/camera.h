// Optional camera for the protocol's CAPTURE command (camera mode).
//
// capture() grabs one frame, scales and crops it to the model's input and writes that
// into engine.input_buffer(0); the server then runs one timed inference and answers with
// RESULT, followed by FRAME pages of `frame` when the host asked for the picture.
// Boards without a camera give the server no Camera and CAPTURE answers UNSUPPORTED.
#pragma once

#include <stdint.h>

#include "vww/engine.h"
#include "vww/protocol.h"

namespace vww {

struct FrameView {
  const uint8_t* data = nullptr;  // null: no picture to send
  uint32_t bytes = 0;
  uint16_t width = 0;
  uint16_t height = 0;
  PixelFormat format = PixelFormat::kGray8;
};

class Camera {
 public:
  // Fills the engine's input 0 from a fresh frame; `frame` (never null) describes the
  // picture as captured and must stay valid until the next capture(). False on failure.
  virtual bool capture(Engine& engine, FrameView* frame) = 0;

 protected:
  ~Camera() = default;
};

}  // namespace vww
