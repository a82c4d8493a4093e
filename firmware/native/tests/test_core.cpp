// Unit tests of the portable core against tests/golden/frames.txt (the bytes the Python
// host side produces). Usage: vww_core_tests <path to frames.txt>. Exits non-zero on the
// first failed check, printing where.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <new>
#include <string>
#include <vector>

#include "fake_timer.h"
#include "vww/frame.h"
#include "vww/server.h"
#include "vww/test_double.h"

namespace {

int g_checks = 0;

#define CHECK(cond)                                                         \
  do {                                                                      \
    ++g_checks;                                                             \
    if (!(cond)) {                                                          \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                              \
    }                                                                       \
  } while (0)

using Bytes = std::vector<uint8_t>;

struct Golden {
  std::string name;
  unsigned seq;
  Bytes bytes;
};

std::vector<Golden> load_golden(const char* path) {
  std::vector<Golden> out;
  FILE* f = fopen(path, "r");
  if (f == nullptr) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  char line[4096];
  while (fgets(line, sizeof line, f) != nullptr) {
    if (line[0] == '#' || line[0] == '\n') continue;
    char name[64];
    unsigned seq = 0;
    char hex[4000];
    if (sscanf(line, "%63s %u %3999s", name, &seq, hex) != 3) continue;
    Golden g{name, seq, {}};
    for (size_t i = 0; hex[i] != '\0' && hex[i + 1] != '\0'; i += 2) {
      char byte[3] = {hex[i], hex[i + 1], '\0'};
      g.bytes.push_back(static_cast<uint8_t>(strtoul(byte, nullptr, 16)));
    }
    out.push_back(g);
  }
  fclose(f);
  return out;
}

std::vector<Golden> g_golden;

const Bytes& golden(const char* name) {
  for (const Golden& g : g_golden) {
    if (g.name == name) return g.bytes;
  }
  fprintf(stderr, "golden frame %s missing\n", name);
  exit(2);
}

// A port that records what is written and replays a queue of input.
class CapturePort : public vww::Port {
 public:
  size_t read(uint8_t* buf, size_t max) override {
    size_t n = 0;
    while (n < max && pos_ < in.size()) buf[n++] = in[pos_++];
    return n;
  }
  void write(const uint8_t* buf, size_t n) override { out.insert(out.end(), buf, buf + n); }
  Bytes take() {
    Bytes b;
    b.swap(out);
    return b;
  }
  void send(const Bytes& b) { in.insert(in.end(), b.begin(), b.end()); }
  Bytes in;
  Bytes out;

 private:
  size_t pos_ = 0;
};

using test_support::FakeTimer;  // fake_timer.h

// The engine the golden frames describe: nano33, VWW int8 96x96x3 -> 2, three layers.
class GoldenEngine : public vww::Engine {
 public:
  explicit GoldenEngine(FakeTimer& timer) : timer_(timer) {
    // sha256(b"golden model"), as make_golden.py uses.
    static const uint8_t kSha[32] = {
        0x8f, 0x57, 0x08, 0xf5, 0x49, 0x41, 0xcb, 0x11, 0xf1, 0x5b, 0x57, 0xbc, 0xe7, 0x91, 0xbd, 0x99,
        0x89, 0x57, 0x0f, 0x8d, 0x97, 0xa6, 0x81, 0xe5, 0x53, 0x25, 0x12, 0xb1, 0xab, 0xbf, 0x52, 0x4f};
    memcpy(sha_, kSha, 32);
  }
  uint8_t status() const override { return broken ? 11 : 0; }
  const char* status_text() const override { return broken ? "arena too small" : ""; }
  const char* name() const override { return "tflm"; }
  uint8_t input_count() const override { return 1; }
  uint8_t output_count() const override { return 1; }
  vww::TensorSpec input_spec(uint8_t) const override {
    vww::TensorSpec s;
    s.dtype = vww::kInt8;
    s.ndims = 4;
    s.dims[0] = 1;
    s.dims[1] = 96;
    s.dims[2] = 96;
    s.dims[3] = 3;
    s.scale = 1.0f / 255.0f;
    s.zero_point = -128;
    s.bytes = sizeof input_;
    return s;
  }
  vww::TensorSpec output_spec(uint8_t) const override {
    vww::TensorSpec s;
    s.dtype = vww::kInt8;
    s.ndims = 2;
    s.dims[0] = 1;
    s.dims[1] = 2;
    s.scale = 1.0f / 256.0f;
    s.zero_point = -128;
    s.bytes = 2;
    return s;
  }
  uint8_t* input_buffer(uint8_t) override { return input_; }
  const uint8_t* output_buffer(uint8_t) const override { return output_; }
  bool invoke() override {
    ++invokes;
    static const uint64_t kDurations[] = {999, 1234567, 1234601, 1234590};
    uint64_t d = kDurations[invokes <= 4 ? invokes - 1 : 0];
    if (profiler_ != nullptr) {
      static const char* kOps[3] = {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"};
      static const uint64_t kLayer[3] = {120000, 80000, 900};
      for (int i = 0; i < 3; ++i) {
        uint32_t h = profiler_->begin(kOps[i]);
        timer_.t += kLayer[i];
        profiler_->end(h);
        d -= kLayer[i];
      }
    }
    timer_.t += d;
    return true;
  }
  uint32_t arena_size() const override { return broken ? 0 : 131072; }
  uint32_t arena_used() const override { return broken ? 0 : 98765; }
  uint32_t model_bytes() const override { return 333288; }
  const uint8_t* model_sha256() const override {
    static const uint8_t kZero[32] = {};
    return broken ? kZero : sha_;
  }
  uint16_t layer_count() const override { return 3; }
  bool set_profiler(vww::Profiler* p) override {
    profiler_ = p;
    return true;
  }
  bool broken = false;
  unsigned invokes = 0;

 private:
  FakeTimer& timer_;
  vww::Profiler* profiler_ = nullptr;
  uint8_t sha_[32];
  uint8_t input_[96 * 96 * 3] = {};
  uint8_t output_[2] = {0x79, 0x87};
};

class FakeProbe : public vww::MemoryProbe {
 public:
  void read(vww::MemoryStats* m) override {
    m->ram_total = 262144;
    m->ram_free = 40000;
    m->stack_used = 3000;
    m->flash_total = 1048576;
    m->flash_used = 500000;
  }
};

Bytes encode(vww::MsgType type, uint16_t seq, const Bytes& payload, size_t stage = 256) {
  CapturePort port;
  std::vector<uint8_t> buf(stage);
  vww::FrameWriter w(port, buf.data(), buf.size());
  w.begin(type, seq, static_cast<uint16_t>(payload.size()));
  w.put(payload.data(), payload.size());
  w.end();
  return port.take();
}

struct Decoded {
  vww::FrameDecoder::Event ev;
  vww::FrameHeader h;
  Bytes payload;
  vww::ErrorCode error;
  uint16_t error_seq;
};

Decoded decode(const Bytes& wire) {
  static uint8_t buf[2048];
  vww::FrameDecoder d(buf, sizeof buf);
  Decoded out{vww::FrameDecoder::Event::kNone, {}, {}, vww::ErrorCode::kNone, 0};
  for (uint8_t b : wire) {
    vww::FrameDecoder::Event ev = d.push(b);
    if (ev == vww::FrameDecoder::Event::kNone) continue;
    out.ev = ev;
    out.h = d.header();
    if (ev == vww::FrameDecoder::Event::kReady) out.payload.assign(d.payload(), d.payload() + d.header().length);
    out.error = d.error();
    out.error_seq = d.error_seq();
  }
  return out;
}

void test_crc_and_cobs() {
  const char* check = "123456789";
  CHECK(vww::crc32(reinterpret_cast<const uint8_t*>(check), 9) == 0xCBF43926u);
  // COBS round trips, including the 254-byte block boundary.
  for (size_t n : {0u, 1u, 253u, 254u, 255u, 600u}) {
    Bytes data(n);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i % 7 == 3 ? 0 : i * 13 + 1);
    Bytes enc(n + n / 254 + 2);
    long m = vww::cobs_encode(data.data(), n, enc.data(), enc.size());
    CHECK(m > 0);
    for (long i = 0; i < m; ++i) CHECK(enc[static_cast<size_t>(i)] != 0);
    Bytes dec(n + 1);
    long k = vww::cobs_decode(enc.data(), static_cast<size_t>(m), dec.data(), dec.size());
    CHECK(k == static_cast<long>(n));
    CHECK(memcmp(dec.data(), data.data(), n) == 0);
    // The streaming writer with the smallest stage produces the same bytes as one-shot COBS.
    Bytes frame = encode(vww::MsgType::kPing, 7, data, 256);
    Bytes body(vww::kHeaderSize + n + 4);
    long b = vww::cobs_decode(frame.data(), frame.size() - 1, body.data(), body.size());
    CHECK(b == static_cast<long>(body.size()));
    CHECK(memcmp(body.data() + vww::kHeaderSize, data.data(), n) == 0);
    Decoded d = decode(frame);
    CHECK(d.ev == vww::FrameDecoder::Event::kReady);
    CHECK(d.payload == data);
  }
  const uint8_t bad[] = {0x05, 0x01, 0x02};
  uint8_t out[8];
  CHECK(vww::cobs_decode(bad, sizeof bad, out, sizeof out) == -1);
}

// Every good golden frame decodes, and re-encoding its header and payload gives the same
// bytes; the damaged ones decode to the right error code.
void test_golden_codec() {
  int good = 0;
  for (const Golden& g : g_golden) {
    Decoded d = decode(g.bytes);
    if (g.name == "bad_crc") {
      CHECK(d.ev == vww::FrameDecoder::Event::kError);
      CHECK(d.error == vww::ErrorCode::kBadCrc);
      CHECK(d.error_seq == vww::kNoSeq);
    } else if (g.name == "bad_length") {
      CHECK(d.ev == vww::FrameDecoder::Event::kError);
      CHECK(d.error == vww::ErrorCode::kBadLength);
      CHECK(d.error_seq == g.seq);
    } else if (g.name == "garbage") {
      CHECK(d.ev == vww::FrameDecoder::Event::kError);
      CHECK(d.error == vww::ErrorCode::kBadFrame);
    } else {
      CHECK(d.ev == vww::FrameDecoder::Event::kReady);
      CHECK(d.h.seq == g.seq);
      for (size_t stage : {256u, 1024u}) {
        Bytes again = encode(static_cast<vww::MsgType>(d.h.type), d.h.seq, d.payload, stage);
        CHECK(again == g.bytes);
      }
      ++good;
    }
  }
  CHECK(good == static_cast<int>(g_golden.size()) - 3);
}

struct Rig {
  FakeTimer timer;
  GoldenEngine engine{timer};
  CapturePort port;
  FakeProbe probe;
  vww::StaticProfiler<8> profiler{timer};
  uint8_t rx[vww::Server::rx_size_for(1024)];
  uint8_t tx[256];
  vww::ServerConfig config;
  vww::Server* server = nullptr;

  Rig() {
    config.board = "nano33";
    config.firmware_version = "0.1.0";
    config.clock_hz = 64000000;
    config.capabilities = vww::kCapProfile | vww::kCapMemory;
    config.max_payload = 1024;
    config.credits = 4;
  }
  void start() {
    static uint8_t storage[sizeof(vww::Server)] __attribute__((aligned(8)));
    server = new (storage) vww::Server(port, engine, timer, config, {rx, sizeof rx, tx, sizeof tx});
    server->set_profiler(&profiler);
    server->set_memory_probe(&probe);
  }
  Bytes ask(const Bytes& wire) {
    port.send(wire);
    server->poll();
    return port.take();
  }
};

Bytes payload_of(const Bytes& wire) { return decode(wire).payload; }

// The first frame of what the device wrote, and the rest.
Bytes first_frame(const Bytes& wire, Bytes* rest = nullptr) {
  auto end = std::find(wire.begin(), wire.end(), 0);
  CHECK(end != wire.end());
  if (rest != nullptr) rest->assign(end + 1, wire.end());
  return Bytes(wire.begin(), end + 1);
}

Bytes chunk(uint32_t offset, uint32_t total, size_t n, uint8_t fill) {
  Bytes p(8 + n, fill);
  vww::put_u32(p.data(), offset);
  vww::put_u32(p.data() + 4, total);
  return p;
}

uint16_t error_code(const Bytes& wire) {
  Decoded d = decode(wire);
  CHECK(d.ev == vww::FrameDecoder::Event::kReady);
  CHECK(d.h.type == 0xFF);
  return vww::get_u16(d.payload.data());
}

void test_server_golden_session() {
  Rig rig;
  rig.start();
  // Before the hello only HELLO and PING are answered.
  CHECK(rig.ask(encode(vww::MsgType::kGetMemory, 10, {})) == golden("error_not_ready"));
  CHECK(rig.ask(golden("ping")) == golden("pong"));
  // A lone delimiter in front of the hello is padding; the hello answer is the golden one.
  Bytes hello = golden("hello");
  hello.insert(hello.begin(), 0);
  Bytes log_frame;
  CHECK(first_frame(rig.ask(hello), &log_frame) == golden("hello_resp"));
  Decoded log_msg = decode(log_frame);  // the hello is followed by a LOG "ready"
  CHECK(log_msg.h.type == 0x86 && log_msg.h.seq == 0 && log_msg.payload.size() == 6);
  CHECK(rig.ask(golden("input_chunk")) == golden("ack"));
  // Upload up to 1016 in order, then a chunk beyond: OUT_OF_ORDER with the golden text.
  Bytes ack = rig.ask(encode(vww::MsgType::kInputChunk, 20, chunk(16, 27648, 1000, 1)));
  CHECK(vww::get_u32(payload_of(ack).data()) == 1016);
  CHECK(rig.ask(encode(vww::MsgType::kInputChunk, 9, chunk(2000, 27648, 8, 0))) ==
        golden("error_out_of_order"));
  // A resent chunk is acknowledged again without storing anything.
  ack = rig.ask(encode(vww::MsgType::kInputChunk, 21, chunk(16, 27648, 1000, 7)));
  CHECK(vww::get_u32(payload_of(ack).data()) == 1016);
  CHECK(rig.engine.input_buffer(0)[16] == 1);
  // INFER before the whole input arrived.
  CHECK(error_code(rig.ask(golden("infer"))) == 8);
  uint32_t off = 1016;
  uint16_t seq = 30;
  while (off < 27648) {
    uint32_t n = 27648 - off < 1016 ? 27648 - off : 1016;
    ack = rig.ask(encode(vww::MsgType::kInputChunk, seq++, chunk(off, 27648, n, 2)));
    off += n;
    CHECK(vww::get_u32(payload_of(ack).data()) == off);
  }
  rig.engine.invokes = 0;
  CHECK(rig.ask(golden("infer")) == golden("result"));
  CHECK(rig.engine.invokes == 4);
  // The same seq again: the cached RESULT, no second inference.
  CHECK(rig.ask(golden("infer")) == golden("result"));
  CHECK(rig.engine.invokes == 4);
  CHECK(rig.server->stats().replays == 1);
  CHECK(rig.ask(golden("get_profile")) == golden("profile"));
  CHECK(rig.ask(golden("get_memory")) == golden("memory"));
  rig.server->log(vww::LogLevel::kInfo, "booted");
  CHECK(rig.port.take() == golden("log"));
}

void test_server_errors_and_resync() {
  Rig rig;
  rig.start();
  rig.ask(golden("hello"));
  CHECK(rig.ask(golden("bad_crc")) == golden("error_bad_crc"));
  Decoded d = decode(rig.ask(golden("bad_length")));
  CHECK(vww::get_u16(d.payload.data()) == 2 && vww::get_u16(d.payload.data() + 2) == 12);
  d = decode(rig.ask(golden("unknown_type")));
  CHECK(vww::get_u16(d.payload.data()) == 4 && vww::get_u16(d.payload.data() + 2) == 13);
  d = decode(rig.ask(golden("garbage")));
  CHECK(vww::get_u16(d.payload.data()) == 14 && vww::get_u16(d.payload.data() + 2) == 0xFFFF);
  // A frame too long for the receive buffer, then a good one: TOO_LONG, then the answer.
  Bytes big(3000, 0x55);
  big.push_back(0);
  Bytes both = big;
  const Bytes& ping = golden("ping");
  both.insert(both.end(), ping.begin(), ping.end());
  rig.port.send(both);
  rig.server->poll();
  Bytes out = rig.port.take();
  Bytes rest;
  CHECK(error_code(first_frame(out, &rest)) == 3);
  CHECK(rest == golden("pong"));
  // Garbage without any delimiter, torn mid-frame, then a delimiter: one error, back in step.
  Bytes torn(golden("hello_resp").begin(), golden("hello_resp").begin() + 20);
  torn.push_back(0);
  CHECK(error_code(rig.ask(torn)) != 0);
  CHECK(rig.ask(golden("ping")) == golden("pong"));
  // Argument checks.
  CHECK(error_code(rig.ask(encode(vww::MsgType::kInfer, 40, {0, 0, 0, 0, 0, 0}))) == 12);
  CHECK(error_code(rig.ask(encode(vww::MsgType::kInfer, 41, {0, 0}))) == 12);
  CHECK(error_code(rig.ask(encode(vww::MsgType::kCapture, 42, {1, 0}))) == 10);
  CHECK(error_code(rig.ask(encode(vww::MsgType::kInputChunk, 43, chunk(0, 5, 4, 1)))) == 7);
  CHECK(error_code(rig.ask(encode(vww::MsgType::kInputChunk, 44, chunk(27640, 27648, 16, 1)))) == 7);
  CHECK(error_code(rig.ask(encode(vww::MsgType::kHelloResp, 45, {}))) == 4);
  CHECK(error_code(rig.ask(encode(vww::MsgType::kGetProfile, 46, {5, 0}))) == 12);
  CHECK(rig.server->stats().errors >= 10);
}

void test_not_ready_engine() {
  Rig rig;
  rig.engine.broken = true;
  rig.config.max_payload = 256;
  rig.config.credits = 1;
  rig.config.capabilities = 0;
  rig.start();
  Bytes log_frame;
  CHECK(first_frame(rig.ask(golden("hello")), &log_frame) == golden("hello_resp_not_ready"));
  Decoded log_msg = decode(log_frame);  // the reason, as an error-level LOG
  CHECK(log_msg.payload[0] == 3 && log_msg.payload.size() == 1 + strlen("arena too small"));
  CHECK(error_code(rig.ask(golden("input_chunk"))) == 5);
  CHECK(error_code(rig.ask(golden("get_profile"))) == 5);
  CHECK(decode(rig.ask(golden("get_memory"))).h.type == 0x85);
  CHECK(rig.ask(golden("ping")) == golden("pong"));
}

// A camera whose "frame" is 2500 gray pixels; capture() fills the input with a pattern.
class FakeCamera : public vww::Camera {
 public:
  bool capture(vww::Engine& engine, vww::FrameView* frame) override {
    ++captures;
    if (fail) return false;
    uint8_t* in = engine.input_buffer(0);
    for (uint32_t i = 0; i < engine.input_spec(0).bytes; ++i) in[i] = static_cast<uint8_t>(i);
    for (size_t i = 0; i < sizeof pixels; ++i) pixels[i] = static_cast<uint8_t>(i * 7);
    frame->data = pixels;
    frame->bytes = sizeof pixels;
    frame->width = 50;
    frame->height = 50;
    frame->format = vww::PixelFormat::kGray8;
    return true;
  }
  uint8_t pixels[2500];
  int captures = 0;
  bool fail = false;
};

void test_capture() {
  Rig rig;
  FakeCamera camera;
  rig.config.capabilities |= vww::kCapCamera | vww::kCapFrame;
  rig.start();
  rig.server->set_camera(&camera);
  CHECK((rig.server->capabilities() & (vww::kCapCamera | vww::kCapFrame)) != 0);
  rig.ask(golden("hello"));
  // CAPTURE with the frame: one RESULT, then FRAME pages that add up to the picture.
  Bytes out = rig.ask(golden("capture"));
  Bytes rest;
  Decoded result = decode(first_frame(out, &rest));
  CHECK(result.h.type == 0x83 && result.h.seq == 7);
  CHECK(vww::get_u16(result.payload.data() + 2) == 1);  // one timed run
  Bytes picture;
  int pages = 0;
  while (!rest.empty()) {
    Bytes next;
    Decoded page = decode(first_frame(rest, &next));
    CHECK(page.h.type == 0x88 && page.h.seq == 7);
    CHECK(vww::get_u32(page.payload.data()) == picture.size());
    CHECK(vww::get_u32(page.payload.data() + 4) == 2500);
    CHECK(vww::get_u16(page.payload.data() + 8) == 50 && page.payload[12] == 0);
    CHECK(page.payload.size() <= 1024);
    picture.insert(picture.end(), page.payload.begin() + 14, page.payload.end());
    rest.swap(next);
    ++pages;
  }
  CHECK(pages == 3 && picture.size() == 2500);
  CHECK(memcmp(picture.data(), camera.pixels, 2500) == 0);
  // The same seq again: the same answer from the cache, no second capture.
  CHECK(rig.ask(golden("capture")) == out);
  CHECK(camera.captures == 1);
  // The camera filled the input, so INFER may follow without an upload.
  Bytes infer = encode(vww::MsgType::kInfer, 60, {0, 0, 1, 0, 0, 0});
  CHECK(decode(rig.ask(infer)).h.type == 0x83);
  // Without the frame flag: only the RESULT. A failing camera: INVOKE_FAILED.
  Bytes only = rig.ask(encode(vww::MsgType::kCapture, 61, {0, 0}));
  Bytes after;
  CHECK(decode(first_frame(only, &after)).h.type == 0x83 && after.empty());
  camera.fail = true;
  CHECK(error_code(rig.ask(encode(vww::MsgType::kCapture, 62, {1, 0}))) == 9);
}

class NsTimer : public vww::Timer {
 public:
  uint64_t now() override { return ++t; }
  uint32_t hz() const override { return 1000000000u; }
  vww::TimerKind kind() const override { return vww::TimerKind::kHostClock; }
  uint64_t t = 0;
};

void test_test_double() {
  NsTimer timer;
  vww::TestDoubleEngine engine(nullptr, 0, false);
  CHECK(engine.status() == 0);
  CHECK(strcmp(engine.name(), "test-double") == 0);
  CHECK(engine.input_spec(0).bytes == 27648);
  uint8_t* in = engine.input_buffer(0);
  uint32_t sum = 0;
  uint8_t x = 0;
  for (uint32_t i = 0; i < 27648; ++i) {
    in[i] = static_cast<uint8_t>(i * 31 + 7);
    sum += in[i];
    x = static_cast<uint8_t>(x ^ in[i]);
  }
  vww::StaticProfiler<2> profiler(timer);  // smaller than the 3 layers: one is dropped
  engine.set_profiler(&profiler);
  CHECK(engine.invoke());
  CHECK(engine.output_buffer(0)[0] == (sum & 0xFF));
  CHECK(engine.output_buffer(0)[1] == x);
  CHECK(profiler.count() == 2 && profiler.dropped() == 1);
  CHECK(strcmp(profiler.entry(1).op, "DEPTHWISE_CONV_2D") == 0);
  // Named layers: one profile entry each, same outputs.
  static const char* const kOps[5] = {"CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"};
  engine.set_layers(kOps, 5);
  vww::StaticProfiler<8> big(timer);
  engine.set_profiler(&big);
  CHECK(engine.invoke());
  CHECK(big.count() == 5 && strcmp(big.entry(2).op, "MEAN") == 0);
  CHECK(engine.output_buffer(0)[0] == (sum & 0xFF) && engine.output_buffer(0)[1] == x);
  CHECK(engine.arena_used() <= engine.arena_size());
  memcpy(in, "FAIL", 4);
  CHECK(!engine.invoke());
  const uint32_t dims[2] = {1, 70000};
  vww::TestDoubleEngine too_big(dims, 2, false);
  CHECK(too_big.status() == 11);
  vww::TestDoubleEngine told(nullptr, 0, true);
  CHECK(told.status() == 11 && told.input_count() == 0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s tests/golden/frames.txt\n", argv[0]);
    return 2;
  }
  g_golden = load_golden(argv[1]);
  CHECK(g_golden.size() >= 24);
  test_crc_and_cobs();
  test_golden_codec();
  test_server_golden_session();
  test_server_errors_and_resync();
  test_not_ready_engine();
  test_capture();
  test_test_double();
  printf("vww_core_tests: %d checks passed (%zu golden frames)\n", g_checks, g_golden.size());
  return 0;
}
