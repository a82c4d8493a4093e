// What main.cpp needs from a board: the link, the clock, the arena, and optionally a camera.
//
// One implementation per board, chosen at compile time by the environment's flags
// (VWW_BOARD_NANO33 -> board_nano33.cpp, VWW_BOARD_ESP32CAM -> board_esp32cam.cpp), so the
// sketch itself is the same for every board.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vww/camera.h"
#include "vww/engine.h"
#include "vww/port.h"
#include "vww/server.h"
#include "vww/timer.h"

namespace board {

// Brings up the serial link and the cycle counter; returns once the link can be used.
void begin();
vww::Port& port();
vww::Timer& timer();
// Core clock in Hz, for HELLO_RESP.
uint32_t clock_hz();
// The tensor arena, 16-byte aligned, `bytes` long; null when the board has no room.
uint8_t* arena(size_t bytes);
// The buffer uploads land in, outside the arena, `bytes` long; null when there is no room.
uint8_t* input_stage(size_t bytes);
// The camera, or null when this build has none (CAPTURE then answers UNSUPPORTED).
vww::Camera* camera();
// RAM and flash figures for GET_MEMORY.
vww::MemoryProbe* memory_probe();

}  // namespace board
