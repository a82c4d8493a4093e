// libFuzzer target: bytes into the Server, then a PING that must be answered.
//
// Every input runs against the same long-lived server (state carries over between
// inputs, as on a device that keeps running), with the test-double engine on an 8x8x3
// input (192 bytes). An input whose first byte is even is fed raw (framing, COBS, CRC
// paths). One whose first byte is odd is a list of records
//     type:u8 seq:u16 flags:u8 n:u8 payload[n]
// each sent as a proper frame (good COBS and CRC; flags bit0 puts a wrong length in the
// header), so that mutated payloads reach the dispatcher instead of dying at the CRC.
// After the input, a delimiter and a PING frame with a fixed payload are fed; the target
// traps unless the last frame the server wrote is the matching PONG, so a lost
// resynchronisation counts as a crash, as do sanitizer reports.
// Build: cmake -S firmware/native -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVWW_LIBFUZZER=ON
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vww/server.h"
#include "vww/test_double.h"

namespace {

class SinkPort : public vww::Port {
 public:
  size_t read(uint8_t*, size_t) override { return 0; }
  void write(const uint8_t* buf, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      if (len < sizeof last) last[len++] = buf[i];
      if (buf[i] == 0) {  // a frame ended: keep only the newest
        memcpy(prev, last, len);
        prev_len = len;
        len = 0;
      }
    }
  }
  uint8_t last[2048];
  size_t len = 0;
  uint8_t prev[2048];
  size_t prev_len = 0;
};

class StepTimer : public vww::Timer {
 public:
  uint64_t now() override { return t += 7; }
  uint32_t hz() const override { return 1000000; }
  vww::TimerKind kind() const override { return vww::TimerKind::kHostClock; }
  uint64_t t = 0;
};

struct Rig {
  const uint32_t dims[4] = {1, 8, 8, 3};
  vww::TestDoubleEngine engine{dims, 4, false};
  StepTimer timer;
  SinkPort port;
  vww::StaticProfiler<8> profiler{timer};
  uint8_t rx[vww::Server::rx_size_for(512)];
  uint8_t tx[vww::Server::kMinTxSize];
  vww::Server server{port, engine, timer, config(), {rx, sizeof rx, tx, sizeof tx}};
  uint8_t ping[64];
  size_t ping_len = 0;
  uint8_t pong[64];
  size_t pong_len = 0;

  static vww::ServerConfig config() {
    vww::ServerConfig c;
    c.board = "fuzz";
    c.capabilities = vww::kCapProfile | vww::kCapMemory;
    c.max_payload = 512;
    c.credits = 2;
    return c;
  }

  Rig() {
    server.set_profiler(&profiler);
    ping_len = encode(vww::MsgType::kPing, ping);
    pong_len = encode(vww::MsgType::kPong, pong);
  }

  // Frames type/seq 0x7777/"fuzz" with the core's own writer (checked by the unit tests).
  static size_t encode(vww::MsgType type, uint8_t* out) {
    SinkPort sink;
    uint8_t stage[vww::Server::kMinTxSize];
    vww::FrameWriter w(sink, stage, sizeof stage);
    w.begin(type, 0x7777, 4);
    w.put(reinterpret_cast<const uint8_t*>("fuzz"), 4);
    w.end();
    memcpy(out, sink.prev, sink.prev_len);
    return sink.prev_len;
  }
};

// Sends the records of a structured input as well-formed frames.
void feed_records(Rig& rig, const uint8_t* data, size_t size) {
  size_t i = 1;
  while (i + 5 <= size) {
    const uint8_t type = data[i];
    const uint16_t seq = vww::get_u16(data + i + 1);
    const uint8_t flags = data[i + 3];
    size_t n = data[i + 4];
    i += 5;
    if (n > size - i) n = size - i;
    uint8_t body[vww::kHeaderSize + 255 + vww::kCrcSize];
    body[0] = type;
    body[1] = 0;
    vww::put_u16(body + 2, seq);
    vww::put_u16(body + 4, static_cast<uint16_t>((flags & 1) ? n + 1 + flags : n));
    memcpy(body + vww::kHeaderSize, data + i, n);
    vww::put_u32(body + vww::kHeaderSize + n, vww::crc32(body, vww::kHeaderSize + n));
    uint8_t wire[sizeof body + 4];
    const long m = vww::cobs_encode(body, vww::kHeaderSize + n + vww::kCrcSize, wire, sizeof wire - 1);
    if (m > 0) {
      wire[m] = 0;
      rig.server.feed(wire, static_cast<size_t>(m) + 1);
    }
    i += n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Rig rig;
  if (size > 0 && (data[0] & 1) != 0) {
    feed_records(rig, data, size);
  } else {
    rig.server.feed(data, size);
  }
  const uint8_t delimiter = 0;
  rig.server.feed(&delimiter, 1);
  rig.port.prev_len = 0;
  rig.server.feed(rig.ping, rig.ping_len);
  if (rig.port.prev_len != rig.pong_len || memcmp(rig.port.prev, rig.pong, rig.pong_len) != 0) {
    __builtin_trap();  // the server did not answer the PING after the input: lost resync
  }
  return 0;
}
