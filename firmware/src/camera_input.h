// A captured frame into the engine's input 0, shaped by what the input tensor says.
//
// Portable (core headers and image_prep only): both boards' cameras call it after they
// have a little-endian RGB565 frame in memory, and the host tests compile it with g++.
#pragma once

#include <stdint.h>

#include "image_prep.h"
#include "vww/camera.h"
#include "vww/engine.h"

namespace board {

// Fills input 0 from `frame` and describes the frame for FRAME pages. False when the
// input is not an image tensor [1, H, W, 1|3] of int8/uint8.
bool frame_to_input(vww::Engine& engine, const uint8_t* frame, uint16_t width, uint16_t height,
                    vww_img::Format format, vww::FrameView* view);

}  // namespace board
