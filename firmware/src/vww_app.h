// The firmware's wiring, shared by every build: the board sketch (main.cpp, PlatformIO),
// QEMU's mps2-an386 image (firmware/qemu/tflm_main.cpp) and the native host runner
// (firmware/native/runner/tflm_main.cpp).
//
// It joins the generated model sources (model array, op resolver, config), the TFLM
// engine and the portable core's protocol server to whatever implements board.h. Each
// build's main only brings the board up, names it, and calls poll() forever, so the code
// measured in QEMU and on the host is the code that runs on the boards.
//
// Header-only on purpose: PlatformIO compiles every .cpp under src/, and the emulator
// builds find <generated/...> under their own build folder, never the repository's.
//
// Protocol: v1 by default; -DVWW_PROTOCOL_EEMBC=1 serves the EEMBC/MLPerf Tiny runner's
// text protocol instead (vww/eembc.h).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "board.h"
// Angle brackets on purpose: a quoted include would look next to this file first and take
// the repository's src/generated/ (the shipped model) in an emulator build whose model is
// another one; <...> searches only the include path, where each build puts its own folder
// first (PlatformIO adds src/, the emulator builds their cache folder).
#include <generated/model_config.h>
#include <generated/model_data.h>
#include <generated/model_ops.h>
#include "vww/profiler.h"
#include "vww/server.h"
#include "vww_tflm/tflm_engine.h"

#ifndef VWW_PROTOCOL_EEMBC
#define VWW_PROTOCOL_EEMBC 0
#endif
#if VWW_PROTOCOL_EEMBC
#include "vww/eembc.h"
#endif

#ifndef VWW_FIRMWARE_VERSION
#define VWW_FIRMWARE_VERSION "0.0.0"
#endif
// Largest frame payload the server accepts: bigger chunks mean fewer acknowledgements
// per upload (the emulator builds raise it; the boards keep their RAM).
#ifndef VWW_MAX_PAYLOAD
#define VWW_MAX_PAYLOAD 1024
#endif

namespace vww_app {

constexpr uint16_t kMaxPayload = VWW_MAX_PAYLOAD;
constexpr uint16_t kProfileLayers = 64;

#if VWW_PROTOCOL_EEMBC
using ServerType = vww::EembcServer;
#else
using ServerType = vww::Server;
#endif

inline ServerType*& server_slot() {
  static ServerType* server = nullptr;
  return server;
}

// Builds the engine and the server, once; call after board::begin(). `board_id` is what
// HELLO reports (a compile-time id on the boards, the harness's board on emulators).
inline void setup(const char* board_id) {
  static vww_generated::OpResolver resolver;
  const bool ops_ok = vww_generated::register_ops(resolver);
  const vww_tflm::ModelImage model{g_vww_model, g_vww_model_len, vww_generated::kModelSha256};
  static vww_tflm::TflmEngine engine(model, resolver, board::arena(vww_generated::kArenaSize),
                                     vww_generated::kArenaSize,
                                     board::input_stage(vww_generated::kInputBytes),
                                     vww_generated::kInputBytes);
  if (ops_ok) {
    engine.begin();
  } else {
    engine.fail("the op resolver refused one of the model's ops");
  }
#if VWW_PROTOCOL_EEMBC
  vww::EembcConfig config;
  static vww::EembcServer server(board::port(), engine, board::timer(), config);
  (void)board_id;
#else
  static uint8_t rx[vww::Server::rx_size_for(kMaxPayload)];
  static uint8_t tx[512];
  vww::ServerConfig config;
  config.board = board_id;
  config.firmware_version = VWW_FIRMWARE_VERSION;
  config.clock_hz = board::clock_hz();
  config.capabilities = vww::kCapProfile | vww::kCapMemory | vww::kCapCamera | vww::kCapFrame;
  config.max_payload = kMaxPayload;
  config.credits = 4;
  static vww::Server server(board::port(), engine, board::timer(), config,
                            vww::ServerBuffers{rx, sizeof rx, tx, sizeof tx});
  static vww::StaticProfiler<kProfileLayers> profiler(board::timer());
  server.set_profiler(&profiler);
  server.set_camera(board::camera());
  server.set_memory_probe(board::memory_probe());
#endif
  server_slot() = &server;
}

// Serves what the link has; never blocks on input. False before setup().
inline bool poll() {
  ServerType* server = server_slot();
  return server != nullptr && server->poll();
}

}  // namespace vww_app
