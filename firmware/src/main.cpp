// The benchmark firmware's sketch: the portable core's Server, fed by the TFLM engine.
//
// Everything model-specific is in src/generated/ (written by `hil build`), everything
// board-specific behind board.h; this file only wires them together. Start-up is the only
// time memory is allocated (the PSRAM arena on the ESP32-CAM); after that, loop() polls.
#include <Arduino.h>

#include "board.h"
#include "generated/model_config.h"
#include "generated/model_data.h"
#include "generated/model_ops.h"
#include "vww/profiler.h"
#include "vww/server.h"
#include "vww_tflm/tflm_engine.h"

#ifndef VWW_BOARD_ID
#define VWW_BOARD_ID "unknown"
#endif
#ifndef VWW_FIRMWARE_VERSION
#define VWW_FIRMWARE_VERSION "0.0.0"
#endif

namespace {

constexpr uint16_t kMaxPayload = 1024;
constexpr uint16_t kProfileLayers = 64;

vww_generated::OpResolver g_resolver;
uint8_t g_rx[vww::Server::rx_size_for(kMaxPayload)];
uint8_t g_tx[512];
vww_tflm::TflmEngine* g_engine = nullptr;
vww::Server* g_server = nullptr;

}  // namespace

void setup() {
  board::begin();
  const bool ops_ok = vww_generated::register_ops(g_resolver);
  const vww_tflm::ModelImage model{g_vww_model, g_vww_model_len, vww_generated::kModelSha256};
  static vww_tflm::TflmEngine engine(model, g_resolver,
                                     board::arena(vww_generated::kArenaSize),
                                     vww_generated::kArenaSize,
                                     board::input_stage(vww_generated::kInputBytes),
                                     vww_generated::kInputBytes);
  if (ops_ok) {
    engine.begin();
  } else {
    engine.fail("the op resolver refused one of the model's ops");
  }
  g_engine = &engine;

  vww::ServerConfig config;
  config.board = VWW_BOARD_ID;
  config.firmware_version = VWW_FIRMWARE_VERSION;
  config.clock_hz = board::clock_hz();
  config.capabilities = vww::kCapProfile | vww::kCapMemory | vww::kCapCamera | vww::kCapFrame;
  config.max_payload = kMaxPayload;
  config.credits = 4;
  static vww::Server server(board::port(), engine, board::timer(), config,
                            vww::ServerBuffers{g_rx, sizeof g_rx, g_tx, sizeof g_tx});
  static vww::StaticProfiler<kProfileLayers> profiler(board::timer());
  server.set_profiler(&profiler);
  server.set_camera(board::camera());
  server.set_memory_probe(board::memory_probe());
  g_server = &server;
}

void loop() { g_server->poll(); }
