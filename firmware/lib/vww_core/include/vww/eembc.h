// The device end of the EEMBC / MLPerf Tiny DUT protocol: the text command loop that the
// official MLPerf Tiny runner (mlcommons/tiny, benchmark/runner) drives, in performance
// and accuracy modes. It is the compile-time alternative to protocol v1's vww::Server
// (firmware/src/vww_app.h picks it with -DVWW_PROTOCOL_EEMBC=1): the same Engine, Timer
// and Port, a different wire format, so the MLPerf Tiny figures and the harness's own
// come from the same measured code.
//
//   vww::EembcConfig config;                     // defaults usable as is
//   static vww::EembcServer server(port, engine, timer, config);
//   for (;;) server.poll();
//
// Wire format (docs/protocol.md, "EEMBC"): commands are ASCII ended by '%' (no CR/LF, at
// most kMaxCommand characters); every reply is lines ended "\r\n" and closes with exactly
// one "m-ready"; errors are "e-[...]" lines. Nothing is sent unsolicited. The answer to
// `name` adds one line to the reference firmware's, "m-timer-[<kind>]" (the Timer's kind:
// dwt, ccount, systick, instructions, estimated, host_clock), so that the host knows
// whether the m-lap-us times are measured; the official runner skips that line. The server owns
// no input buffer: `db` bytes go straight into engine.input_buffer(0) (a 27 KB copy would
// not fit beside the arena on the Nano), bounds-checked against the smaller of the
// engine's input and config.input_bytes. A line longer than kMaxCommand is dropped up to
// the next '%' and answered with an error, so the loop always resyncs.
//
// Baud rate is the port's business: kBaudPerformance for performance/accuracy mode,
// kBaudEnergy when the DUT sits behind EEMBC's interface board (energy mode, not built
// here), whose "dut " passthrough the optional config.prefix accepts.
//
// No heap, no exceptions, no printf: numbers and scores are formatted by hand so that
// newlib's float formatter stays out of the image.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vww/engine.h"
#include "vww/port.h"
#include "vww/timer.h"

namespace vww {

struct EembcConfig {
  const char* name = "vww-hil";         // m-name-dut-[<name>]; the runner's check_name
  const char* model = "vww01";          // m-model-[<model>]
  const char* profile = "ULPMark for tinyML Firmware V0.0.1";  // m-profile-[<profile>]
  uint32_t input_bytes = 0;             // bytes one input takes; 0: the engine's input 0
  // The runner sends uint8 RGB; an int8 model wants v - 128, which the reference firmware
  // computes on the device. Applied only when input 0 is int8 (a uint8 model takes the
  // bytes as they come).
  bool subtract_128 = true;
  // Accepted (and stripped) in front of a command, e.g. "dut " when commands arrive through
  // EEMBC's interface board. Null or "": none. Commands without it are accepted too.
  const char* prefix = nullptr;
  // Digits after the point in m-results (at most kMaxDecimals). Six, as the Python device
  // end prints, keep an int8 score exact through the host's re-quantisation for any output
  // scale above 1e-6; the reference firmware prints three.
  uint8_t decimals = 6;
};

struct EembcStats {
  uint32_t commands = 0;  // commands answered (each with one m-ready)
  uint32_t errors = 0;    // e-[...] lines sent
  uint32_t invokes = 0;   // engine invocations
};

class EembcServer {
 public:
  static constexpr size_t kMaxCommand = 80;   // characters before '%'
  static constexpr uint32_t kBaudPerformance = 115200;
  static constexpr uint32_t kBaudEnergy = 9600;
  static constexpr uint8_t kMaxDecimals = 6;

  // Keeps references to port, engine and timer and a copy of config (its strings must
  // outlive the server).
  EembcServer(Port& port, Engine& engine, Timer& timer, const EembcConfig& config);

  // Reads whatever the port has and answers every complete command. Never blocks on
  // input. Returns true when at least one byte was read.
  bool poll();
  // Feeds bytes as if read from the port (for drivers that receive in an interrupt).
  void feed(const uint8_t* data, size_t n);

  // Bytes one input takes: config.input_bytes clamped to the engine's input 0.
  uint32_t input_bytes() const;
  const EembcStats& stats() const { return stats_; }

 private:
  void on_command();
  void dispatch(char* cmd, size_t n);
  void handle_db_load(const char* args, size_t n);
  void handle_db_hex(const char* hex, size_t n);
  void handle_infer(const char* n, size_t n_len, const char* w, size_t w_len);
  void print_results();
  void print_lap_us();
  void error(const char* text, const char* detail = nullptr, size_t detail_len = 0);

  // Output: lines are staged in tx_ and handed to the port when full and at m-ready.
  void put(const char* s);
  void put(const char* s, size_t n);
  void put_echo(const char* s, size_t n);
  void put_u64(uint64_t v);
  void put_fixed(float v);
  void end_line();
  void ready();

  Port& port_;
  Engine& engine_;
  Timer& timer_;
  EembcConfig config_;

  char line_[kMaxCommand + 1] = {};
  size_t line_len_ = 0;
  bool overflow_ = false;  // the current command passed kMaxCommand; dropped at '%'

  uint32_t expected_ = 0;  // bytes the last `db load` announced
  uint32_t loaded_ = 0;    // bytes received since
  bool results_valid_ = false;

  char tx_[96] = {};
  size_t tx_len_ = 0;
  size_t line_chars_ = 0;  // characters of the line being written

  EembcStats stats_;
};

}  // namespace vww
