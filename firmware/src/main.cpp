// The benchmark firmware's sketch: the portable core's Server, fed by the TFLM engine.
//
// Everything model-specific is in src/generated/ (written by `hil build`), everything
// board-specific behind board.h, and the wiring between them in vww_app.h, which the
// QEMU and native builds share; this file only names the board. Start-up is the only
// time memory is allocated (the PSRAM arena on the ESP32-CAM); after that, loop() polls.
#include <Arduino.h>

#include "board.h"
#include "vww_app.h"

#ifndef VWW_BOARD_ID
#define VWW_BOARD_ID "unknown"
#endif

void setup() {
  board::begin();
  vww_app::setup(VWW_BOARD_ID);
}

void loop() { vww_app::poll(); }
