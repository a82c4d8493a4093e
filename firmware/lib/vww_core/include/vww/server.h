// The device end of protocol v1: framing, dispatch and the benchmark loop.
//
// One Server per device, constructed once at start-up from references to the platform's
// Port, Engine and Timer, the device's static facts, and buffers the caller owns (so the
// caller decides where they live: SRAM, PSRAM, a linker section). It allocates nothing.
//
//   static uint8_t rx[vww::Server::rx_size_for(1024)];
//   static uint8_t tx[256];
//   static vww::StaticProfiler<64> profiler(timer);
//   vww::Server server(port, engine, timer, config, {rx, sizeof rx, tx, sizeof tx});
//   server.set_profiler(&profiler);
//   for (;;) server.poll();
//
// rx holds one decoded frame (header + payload + CRC); the max_payload announced in the
// hello is the smaller of config.max_payload and what rx holds. tx stages outgoing COBS
// blocks for Port::write (at least kMinTxSize bytes; more means fewer, larger writes).
// Answers are streamed: RESULT outputs go from the engine's buffer to the port directly.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vww/camera.h"
#include "vww/engine.h"
#include "vww/frame.h"
#include "vww/port.h"
#include "vww/profiler.h"
#include "vww/protocol.h"
#include "vww/timer.h"

namespace vww {

struct ServerConfig {
  const char* board = "unknown";            // board id, e.g. "nano33"
  const char* firmware_version = "0.0.0";
  uint32_t clock_hz = 0;                    // 0: use timer.hz()
  uint16_t capabilities = kCapMemory;       // Capability bits; PROFILE/CAMERA/FRAME are
                                            // cleared when no profiler/camera is attached
  uint16_t max_payload = 1024;              // largest payload accepted (clamped to rx)
  uint16_t credits = 4;                     // chunks the host may keep in flight
};

struct ServerBuffers {
  uint8_t* rx;
  size_t rx_size;
  uint8_t* tx;
  size_t tx_size;
};

// GET_MEMORY facts; fields left at kUnknownU32 are reported as unknown.
struct MemoryStats {
  uint32_t arena_size = kUnknownU32;
  uint32_t arena_used = kUnknownU32;
  uint32_t ram_total = kUnknownU32;
  uint32_t ram_free = kUnknownU32;
  uint32_t stack_used = kUnknownU32;
  uint32_t flash_total = kUnknownU32;
  uint32_t flash_used = kUnknownU32;
  uint32_t model_bytes = kUnknownU32;
};

// Platform hook for the RAM/flash figures only the platform knows (heap, stack, linker).
class MemoryProbe {
 public:
  // Arena figures and model_bytes are already filled from the engine; fill the rest.
  virtual void read(MemoryStats* stats) = 0;

 protected:
  ~MemoryProbe() = default;
};

struct ServerStats {
  uint32_t frames = 0;      // good frames received
  uint32_t bad_frames = 0;  // frames answered with BAD_CRC/BAD_LENGTH/TOO_LONG/BAD_FRAME
  uint32_t errors = 0;      // ERROR frames sent (all codes)
  uint32_t replays = 0;     // answers re-sent from the dedup cache
  uint32_t invokes = 0;     // engine invocations
};

class Server {
 public:
  static constexpr size_t kMinTxSize = 256;
  static constexpr uint16_t kMaxRepeats = 32;     // cycles kept per RESULT
  static constexpr size_t kLogMax = 120;          // LOG text is truncated to this

  // rx bytes needed to accept payloads of `max_payload` bytes.
  static constexpr size_t rx_size_for(uint16_t max_payload) {
    return static_cast<size_t>(max_payload) + kFrameOverhead;
  }

  Server(Port& port, Engine& engine, Timer& timer, const ServerConfig& config,
         const ServerBuffers& buffers);

  void set_profiler(Profiler* profiler) { profiler_ = profiler; }
  void set_camera(Camera* camera) { camera_ = camera; }
  void set_memory_probe(MemoryProbe* probe) { memory_probe_ = probe; }

  // Reads whatever the port has and answers every complete frame. Never blocks on input.
  // Returns true when at least one byte was read.
  bool poll();
  // Feeds bytes as if read from the port (for drivers that receive in an interrupt).
  void feed(const uint8_t* data, size_t n);

  // Sends an unsolicited LOG frame (seq 0); text is truncated to kLogMax bytes.
  void log(LogLevel level, const char* text);

  uint16_t max_payload() const { return max_payload_; }
  uint16_t capabilities() const;
  const ServerStats& stats() const { return stats_; }

 private:
  void on_frame(const FrameHeader& h, const uint8_t* payload);
  void on_frame_error(ErrorCode code, uint16_t ref_seq);
  void dispatch(const FrameHeader& h, const uint8_t* payload);
  void handle_hello(uint16_t seq, const uint8_t* p, uint16_t n);
  void handle_chunk(uint16_t seq, const uint8_t* p, uint16_t n);
  void handle_infer(uint16_t seq, const uint8_t* p, uint16_t n);
  void handle_get_profile(uint16_t seq, const uint8_t* p, uint16_t n);
  void handle_get_memory(uint16_t seq);
  void handle_capture(uint16_t seq, const uint8_t* p, uint16_t n);
  void handle_ping(uint16_t seq, const uint8_t* p, uint16_t n);
  bool run_repeats(uint16_t warmups, uint16_t repeats, bool profile);
  void send_result(uint16_t seq);
  void send_frame_pages(uint16_t seq);
  void send_error(ErrorCode code, uint16_t ref_seq, uint32_t detail, const char* text);
  uint32_t output_bytes() const;
  uint32_t input_bytes() const;

  Port& port_;
  Engine& engine_;
  Timer& timer_;
  ServerConfig config_;
  FrameDecoder decoder_;
  FrameWriter writer_;
  uint16_t max_payload_;
  Profiler* profiler_ = nullptr;
  Camera* camera_ = nullptr;
  MemoryProbe* memory_probe_ = nullptr;

  bool hello_done_ = false;
  uint32_t expected_ = 0;  // input bytes received in order

  // The last INFER/CAPTURE answer, replayed when the host repeats its seq.
  bool cache_valid_ = false;
  uint16_t cache_seq_ = 0;
  uint8_t cache_type_ = 0;
  ErrorCode cache_error_ = ErrorCode::kNone;
  const char* cache_error_text_ = "";
  uint16_t n_cycles_ = 0;
  uint64_t cycles_[kMaxRepeats] = {};
  bool profile_valid_ = false;
  FrameView frame_view_;

  ServerStats stats_;
};

}  // namespace vww
