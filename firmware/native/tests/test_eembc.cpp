// Unit tests of the EEMBC command loop (vww/eembc.h). The golden transcripts
// (tests/golden/eembc_transcripts.txt, shared with the Python ends) are replayed through
// an EembcServer on an in-memory port with the test-double engine, whole commands and one
// byte at a time; then the figures the transcripts leave open ({int}, {floats}) are
// checked against what the test double and a fake clock make them exactly.
// Usage: vww_eembc_tests <path to eembc_transcripts.txt>; exits non-zero on a failure.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <string>
#include <vector>

#include "fake_timer.h"
#include "vww/eembc.h"
#include "vww/test_double.h"

namespace {

int g_checks = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    ++g_checks;                                                                \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

// A port that replays queued input `chunk` bytes per read and records what is written.
class MemoryPort : public vww::Port {
 public:
  size_t read(uint8_t* buf, size_t max) override {
    size_t n = 0;
    while (n < max && n < chunk && pos_ < in_.size()) buf[n++] = static_cast<uint8_t>(in_[pos_++]);
    return n;
  }
  void write(const uint8_t* buf, size_t n) override {
    out.append(reinterpret_cast<const char*>(buf), n);
  }
  void flush() override { ++flushes; }
  void send(const std::string& s) { in_ += s; }
  // What was written since the last call, split at "\r\n"; a trailing piece without its
  // "\r\n" comes back as a line starting with "<unterminated>".
  std::vector<std::string> take_lines() {
    std::vector<std::string> lines;
    size_t start = 0;
    for (;;) {
      size_t end = out.find("\r\n", start);
      if (end == std::string::npos) break;
      lines.push_back(out.substr(start, end - start));
      start = end + 2;
    }
    if (start < out.size()) lines.push_back("<unterminated>" + out.substr(start));
    out.clear();
    return lines;
  }
  size_t chunk = 64;
  std::string out;
  unsigned flushes = 0;

 private:
  std::string in_;
  size_t pos_ = 0;
};

using test_support::FakeTimer;  // fake_timer.h

// The test double, with every invoke taking `ticks` on the fake timer.
class TimedEngine : public vww::Engine {
 public:
  TimedEngine(const uint32_t* dims, uint8_t ndims, bool fail, FakeTimer& timer)
      : inner_(new vww::TestDoubleEngine(dims, ndims, fail)), timer_(timer) {}
  uint8_t status() const override { return inner_->status(); }
  const char* status_text() const override { return inner_->status_text(); }
  const char* name() const override { return inner_->name(); }
  uint8_t input_count() const override { return inner_->input_count(); }
  uint8_t output_count() const override { return inner_->output_count(); }
  vww::TensorSpec input_spec(uint8_t i) const override { return inner_->input_spec(i); }
  vww::TensorSpec output_spec(uint8_t i) const override { return inner_->output_spec(i); }
  uint8_t* input_buffer(uint8_t i) override { return inner_->input_buffer(i); }
  const uint8_t* output_buffer(uint8_t i) const override { return inner_->output_buffer(i); }
  bool invoke() override {
    ++invokes;
    timer_.t += ticks;
    return inner_->invoke();
  }
  uint32_t arena_size() const override { return inner_->arena_size(); }
  uint32_t arena_used() const override { return inner_->arena_used(); }
  const uint8_t* model_sha256() const override { return inner_->model_sha256(); }
  uint16_t layer_count() const override { return inner_->layer_count(); }
  bool set_profiler(vww::Profiler* p) override { return inner_->set_profiler(p); }
  uint64_t ticks = 6400;  // 100 us at 64 MHz
  unsigned invokes = 0;

 private:
  std::unique_ptr<vww::TestDoubleEngine> inner_;  // 64 KB: too big for the stack
  FakeTimer& timer_;
};

// An engine with float outputs the test sets, for the score formatter.
class FloatEngine : public vww::Engine {
 public:
  uint8_t status() const override { return 0; }
  const char* status_text() const override { return ""; }
  const char* name() const override { return "float"; }
  uint8_t input_count() const override { return 1; }
  uint8_t output_count() const override { return 2; }
  vww::TensorSpec input_spec(uint8_t) const override {
    vww::TensorSpec s;
    s.dtype = vww::kUInt8;
    s.bytes = 1;
    return s;
  }
  vww::TensorSpec output_spec(uint8_t i) const override {
    vww::TensorSpec s;
    s.dtype = i == 0 ? vww::kFloat32 : vww::kInt16;
    s.bytes = i == 0 ? sizeof values : sizeof q16;
    s.scale = i == 0 ? 0.0f : 0.5f;
    s.zero_point = i == 0 ? 0 : 10;
    return s;
  }
  uint8_t* input_buffer(uint8_t) override { return &input; }
  const uint8_t* output_buffer(uint8_t i) const override {
    if (i == 0) return reinterpret_cast<const uint8_t*>(values);
    return reinterpret_cast<const uint8_t*>(q16);
  }
  bool invoke() override { return true; }
  uint32_t arena_size() const override { return 0; }
  uint32_t arena_used() const override { return 0; }
  const uint8_t* model_sha256() const override { return sha_; }
  uint16_t layer_count() const override { return 1; }
  bool set_profiler(vww::Profiler*) override { return false; }
  float values[6] = {};
  int16_t q16[2] = {};
  uint8_t input = 0;

 private:
  uint8_t sha_[32] = {};
};

// ---- the golden transcripts ----

struct Exchange {
  std::string command;
  std::vector<std::string> lines;
};

struct Case {
  std::string name;
  uint32_t input_bytes = 0;
  std::string dut_name = "vww-hil";
  bool host_only = false;
  std::vector<Exchange> exchanges;
};

std::vector<Case> load_transcripts(const char* path) {
  std::vector<Case> cases;
  FILE* f = fopen(path, "r");
  if (f == nullptr) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  char buf[1024];
  while (fgets(buf, sizeof buf, f) != nullptr) {
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.rfind("## ", 0) == 0) {
      cases.push_back(Case());
      cases.back().name = line.substr(3);
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    if (cases.empty()) {
      fprintf(stderr, "%s: a line before the first case: %s\n", path, line.c_str());
      exit(2);
    }
    Case& c = cases.back();
    if (line.rfind("!input_bytes ", 0) == 0) {
      c.input_bytes = static_cast<uint32_t>(strtoul(line.c_str() + 13, nullptr, 10));
    } else if (line.rfind("!dut_name ", 0) == 0) {
      c.dut_name = line.substr(10);
    } else if (line == "!host_only") {
      c.host_only = true;
    } else if (line.rfind("!host_error ", 0) == 0) {
      // only the host end checks errors it raises itself
    } else if (line.rfind("> ", 0) == 0) {
      c.exchanges.push_back(Exchange{line.substr(2), {}});
    } else if (line.rfind("< ", 0) == 0 && !c.exchanges.empty()) {
      c.exchanges.back().lines.push_back(line.substr(2));
    } else {
      fprintf(stderr, "%s: case %s: cannot read: %s\n", path, c.name.c_str(), line.c_str());
      exit(2);
    }
  }
  fclose(f);
  return cases;
}

bool match_int(const std::string& s, size_t* i) {
  size_t start = *i;
  while (*i < s.size() && s[*i] >= '0' && s[*i] <= '9') ++*i;
  return *i > start;
}

bool match_float(const std::string& s, size_t* i) {
  if (*i < s.size() && s[*i] == '-') ++*i;
  if (!match_int(s, i)) return false;
  if (*i < s.size() && s[*i] == '.') {
    ++*i;
    if (!match_int(s, i)) return false;
  }
  if (*i < s.size() && (s[*i] == 'e' || s[*i] == 'E')) {
    ++*i;
    if (*i < s.size() && (s[*i] == '-' || s[*i] == '+')) ++*i;
    if (!match_int(s, i)) return false;
  }
  return true;
}

// `got` against a transcript line: {int}, {floats} and {timer} are placeholders, the rest literal.
bool matches(const std::string& pattern, const std::string& got) {
  size_t p = 0;
  size_t g = 0;
  while (p < pattern.size()) {
    if (pattern.compare(p, 5, "{int}") == 0) {
      if (!match_int(got, &g)) return false;
      p += 5;
    } else if (pattern.compare(p, 7, "{timer}") == 0) {
      const size_t start = g;
      while (g < got.size() && ((got[g] >= 'a' && got[g] <= 'z') || got[g] == '_')) ++g;
      if (g == start) return false;
      p += 7;
    } else if (pattern.compare(p, 8, "{floats}") == 0) {
      if (!match_float(got, &g)) return false;
      while (g < got.size() && got[g] == ',') {
        ++g;
        if (!match_float(got, &g)) return false;
      }
      p += 8;
    } else {
      if (g >= got.size() || got[g] != pattern[p]) return false;
      ++p;
      ++g;
    }
  }
  return g == got.size();
}

void test_matcher() {
  CHECK(matches("m-lap-us-{int}", "m-lap-us-0"));
  CHECK(!matches("m-lap-us-{int}", "m-lap-us-"));
  CHECK(!matches("m-lap-us-{int}", "m-lap-us--1"));
  CHECK(matches("m-timer-[{timer}]", "m-timer-[host_clock]"));
  CHECK(!matches("m-timer-[{timer}]", "m-timer-[]"));
  CHECK(!matches("m-timer-[{timer}]", "m-timer-[DWT]"));
  CHECK(matches("m-results-[{floats}]", "m-results-[0.5,-1.25,3e-2]"));
  CHECK(!matches("m-results-[{floats}]", "m-results-[0.5,]"));
  CHECK(!matches("m-results-[{floats}]", "m-results-[]"));
  CHECK(!matches("m-ready", "m-ready "));
}

// Replays one case on a fresh device; `chunk` bytes reach the server per read.
void replay(const Case& c, size_t chunk) {
  FakeTimer timer;
  TimedEngine engine(nullptr, 0, false, timer);
  MemoryPort port;
  port.chunk = chunk;
  vww::EembcConfig config;
  config.name = c.dut_name.c_str();
  config.input_bytes = c.input_bytes;
  vww::EembcServer server(port, engine, timer, config);
  unsigned readies = 0;
  for (const Exchange& x : c.exchanges) {
    port.send(x.command);
    while (server.poll()) {
    }
    const std::vector<std::string> got = port.take_lines();
    bool same = got.size() == x.lines.size();
    for (size_t i = 0; same && i < got.size(); ++i) same = matches(x.lines[i], got[i]);
    if (!same) {
      fprintf(stderr, "case '%s' (chunk %zu), command '%s':\n  expected:\n", c.name.c_str(), chunk,
              x.command.c_str());
      for (const std::string& l : x.lines) fprintf(stderr, "    %s\n", l.c_str());
      fprintf(stderr, "  got:\n");
      for (const std::string& l : got) fprintf(stderr, "    %s\n", l.c_str());
    }
    CHECK(same);
    for (const std::string& l : got) CHECK(l.size() <= vww::EembcServer::kMaxCommand);
    ++readies;
  }
  CHECK(server.stats().commands == readies);
}

void test_golden(const std::vector<Case>& cases) {
  size_t device_cases = 0;
  for (const Case& c : cases) {
    if (c.host_only) continue;
    ++device_cases;
    replay(c, 64);
    replay(c, 1);
  }
  CHECK(device_cases >= 20);
}

// ---- what the transcripts leave open ----

struct Device {
  explicit Device(uint32_t input_bytes, vww::EembcConfig config = vww::EembcConfig())
      : engine(&input_bytes, 1, false, timer), server(port, engine, timer, config) {}
  std::vector<std::string> run(const std::string& command) {
    port.send(command);
    while (server.poll()) {
    }
    return port.take_lines();
  }
  FakeTimer timer;
  TimedEngine engine;
  MemoryPort port;
  vww::EembcServer server;
};

void test_results_are_the_dequantised_outputs() {
  // Bytes 80 ff 00 7f minus 128: 00 7f 80 ff. Sum mod 256 = 0xfe = -2, XOR = 0; the test
  // double's output scale 1/256 and zero point -128 give (-2 + 128) / 256 and 128 / 256.
  Device d(4);
  d.run("db load 4%");
  CHECK(d.run("db 80ff007f%") == (std::vector<std::string>{"m-load-done", "m-ready"}));
  std::vector<std::string> lines = d.run("infer 1 0%");
  CHECK(lines.size() == 8);
  CHECK(lines[6] == "m-results-[0.492188,0.500000]");
  CHECK(d.run("results%") == (std::vector<std::string>{"m-results-[0.492188,0.500000]", "m-ready"}));
  const uint8_t* in = d.engine.input_buffer(0);
  CHECK(in[0] == 0x00 && in[1] == 0x7f && in[2] == 0x80 && in[3] == 0xff);

  // Without the offset the bytes go in as sent: 01 -> sum 1, XOR 1 -> 129 / 256.
  vww::EembcConfig raw;
  raw.subtract_128 = false;
  Device r(1, raw);
  r.run("db load 1%");
  r.run("db 01%");
  CHECK(r.run("infer 1%")[6] == "m-results-[0.503906,0.503906]");
  Device s(1);
  s.run("db load 1%");
  s.run("db 01%");  // 0x81 = -127 -> 1 / 256
  CHECK(s.run("infer 1%")[6] == "m-results-[0.003906,0.003906]");
}

void test_lap_times_come_from_the_timer_in_microseconds() {
  Device d(2);
  d.timer.t = (1ull << 40) + 63;  // large counts must not overflow the conversion
  d.run("db load 2%");
  d.run("db 0102%");
  std::vector<std::string> lines = d.run("infer 5 3%");
  CHECK(d.engine.invokes == 8);
  CHECK(lines[0] == "m-warmup-start-3" && lines[2] == "m-infer-start-5");
  const uint64_t warm_end = (1ull << 40) + 63 + 3 * 6400;
  const uint64_t t0 = warm_end / 64;  // 64 ticks per us; floor
  const uint64_t t1 = (warm_end + 5 * 6400) / 64;
  CHECK(lines[3] == "m-lap-us-" + std::to_string(t0));
  CHECK(lines[4] == "m-lap-us-" + std::to_string(t1));
  CHECK(t1 - t0 == 500);
  d.timer.t = 64 * 1234567;
  CHECK(d.run("timestamp%") == (std::vector<std::string>{"m-lap-us-1234567", "m-ready"}));
}

void test_score_formatting() {
  FloatEngine engine;
  FakeTimer timer;
  MemoryPort port;
  vww::EembcConfig config;
  config.decimals = 3;
  vww::EembcServer server(port, engine, timer, config);
  const float inf = 1e30f * 1e30f;
  const float values[6] = {-1.25f, 0.0625f, -0.0001f, 12345.5f, inf - inf, -inf};
  memcpy(engine.values, values, sizeof values);
  engine.q16[0] = 13;    // (13 - 10) * 0.5
  engine.q16[1] = -990;  // (-990 - 10) * 0.5
  port.send("db load 1%db 00%infer 1 0%");
  while (server.poll()) {
  }
  std::vector<std::string> lines = port.take_lines();
  CHECK(lines.size() == 2 + 2 + 8);
  // Halves round to even, as printf and Python do: 0.0625 -> 0.062, 12345.5 -> 12346.
  CHECK(lines[10] == "m-results-[-1.250,0.062,-0.000,12345.500,nan,-inf,1.500,-500.000]");
  CHECK(engine.input == 0x00);  // a uint8 input takes the bytes as sent

  vww::EembcConfig whole;
  whole.decimals = 0;
  vww::EembcServer s0(port, engine, timer, whole);
  port.send("db load 1%db 00%infer 1 0%");
  while (s0.poll()) {
  }
  lines = port.take_lines();
  CHECK(lines.size() == 12 && lines[10] == "m-results-[-1,0,-0,12346,nan,-inf,2,-500]");

  // Six decimals by default; 0.9999999 rounds up into the whole part.
  vww::EembcServer s6(port, engine, timer, vww::EembcConfig());
  const float six[6] = {0.0078125f, 0.0234375f, 0.9999999f, 0.5f, 1.0f / 3.0f, 255.0f / 256.0f};
  memcpy(engine.values, six, sizeof six);
  port.send("db load 1%db 00%infer 1 0%");
  while (s6.poll()) {
  }
  lines = port.take_lines();
  CHECK(lines.size() == 12);
  CHECK(lines[10] ==
        "m-results-[0.007812,0.023438,1.000000,0.500000,0.333333,0.996094,1.500000,-500.000000]");
}

void test_long_lines_resync_and_nothing_overruns() {
  Device d(8);
  // Far more than the line buffer, then a command: one error, one m-ready, then the answer.
  std::string flood(10000, 'a');
  std::vector<std::string> lines = d.run(flood + "%name%");
  CHECK(lines == (std::vector<std::string>{"e-[Command longer than 80 characters]", "m-ready",
                                           "m-name-dut-[vww-hil]", "m-timer-[dwt]", "m-ready"}));
  // CR, LF and NUL are not counted: 80 characters spread over more bytes still fit.
  std::string cmd = "db load 8";
  cmd += std::string(71, ' ');
  lines = d.run(std::string("\r\n") + cmd + std::string("\0\r\n", 3) + "%");
  CHECK(lines == (std::vector<std::string>{"m-[Expecting 8 bytes]", "m-ready"}));
  // An echoed command is cut so that the error line, "]" included, is 80 characters.
  lines = d.run(std::string(80, 'x') + "%");
  CHECK(lines.size() == 2);
  CHECK(lines[0] == "e-[Unknown command: " + std::string(59, 'x') + "]");
  const std::string nines(71, '9');
  lines = d.run("db load " + nines + "%");
  CHECK(lines.size() == 2);
  CHECK(lines[0] == "e-[db load needs 1 to 8 bytes, got " + nines.substr(0, 44) + "]");
  // Words are echoed one space apart; extra arguments make a command unknown.
  CHECK(d.run("  infer  1 2   3 %")[0] == "e-[Unknown command: infer 1 2 3]");
  CHECK(d.run("db load%")[0] == "e-[db load needs 1 to 8 bytes, got nothing]");
  // Bytes that are not printable ASCII are echoed as '?'.
  lines = d.run("fo\x01\xff%");
  CHECK(lines[0] == "e-[Unknown command: fo??]");
  // The buffer edge: a load never writes past input_bytes, even over many commands.
  uint8_t* in = d.engine.input_buffer(0);
  in[8] = 0x5a;  // the byte after the input (the test double's buffer is larger)
  d.run("db load 8%");
  d.run("db 0102030405060708%");
  for (int i = 0; i < 4; ++i) {
    CHECK(d.run("db ffff%")[0] == "e-[db past the buffer: 2 bytes, 0 left]");
  }
  CHECK(in[7] == (0x08 ^ 0x80) && in[8] == 0x5a);
}

void test_not_ready_model() {
  FakeTimer timer;
  uint32_t dims[1] = {4};
  TimedEngine engine(dims, 1, true, timer);
  MemoryPort port;
  vww::EembcServer server(port, engine, timer, vww::EembcConfig());
  port.send("name%db load 4%infer 1 0%");
  while (server.poll()) {
  }
  std::vector<std::string> lines = port.take_lines();
  CHECK(lines.size() == 7);
  CHECK(lines[0] == "m-name-dut-[vww-hil]");
  CHECK(lines[1] == "m-timer-[dwt]");
  CHECK(lines[3] == "e-[model not ready: test double told to fail loading its model]");
  CHECK(lines[5] == "e-[model not ready: test double told to fail loading its model]");
  CHECK(engine.invokes == 0);
}

void test_failing_invoke() {
  Device d(4);
  d.run("db load 4%");
  d.run("db c6c1c9cc%");  // "FAIL" after the offset: the test double refuses it
  std::vector<std::string> lines = d.run("infer 2 1%");
  CHECK(lines == (std::vector<std::string>{"m-warmup-start-1", "e-[infer failed: invoke failed]", "m-ready"}));
  CHECK(d.run("results%")[0] == "e-[results before infer]");
}

void test_prefix_and_config() {
  vww::EembcConfig config;
  config.prefix = "dut ";
  config.name = "board-x";
  config.model = "vww02";
  Device d(2, config);
  CHECK(d.run("dut name%") ==
        (std::vector<std::string>{"m-name-dut-[board-x]", "m-timer-[dwt]", "m-ready"}));
  CHECK(d.run("name%") == (std::vector<std::string>{"m-name-dut-[board-x]", "m-timer-[dwt]", "m-ready"}));
  CHECK(d.run("dut profile%")[1] == "m-model-[vww02]");
  CHECK(d.run("dut db load 2%")[0] == "m-[Expecting 2 bytes]");
  CHECK(d.run("dut foo%")[0] == "e-[Unknown command: foo]");
  // The server flushes the port once per reply and once before the timed loop.
  const unsigned before = d.port.flushes;
  d.run("dut db 0000%");
  CHECK(d.port.flushes == before + 1);
  d.run("infer 1 0%");
  CHECK(d.port.flushes == before + 3);
  // An input_bytes override larger than the engine's input is clamped to it.
  vww::EembcConfig big;
  big.input_bytes = 1000;
  Device b(4, big);
  CHECK(b.server.input_bytes() == 4);
  CHECK(b.run("db load 5%")[0] == "e-[db load needs 1 to 4 bytes, got 5]");
}


// Random commands made of the protocol's words, whole commands and random bytes: every
// '%' gets exactly one m-ready, every line is printable ASCII within 80 characters, and
// nothing is written past the input.
void test_random_input_never_overruns() {
  Device d(16);
  uint8_t* in = d.engine.input_buffer(0);
  for (int i = 16; i < 64; ++i) in[i] = 0xa5;
  static const char* const kWords[] = {"db", "load", "16", "8", "0", "infer", "1", "2", "results",
                                       "name", "profile", "timestamp", "00ff", "0a1b2c3d",
                                       "zz", "%", " ", "  ", "\r\n", "dut"};
  static const char* const kCommands[] = {"db load 16%", "db 0011223344556677%",
                                          "db 8899aabbccddeeff%", "infer 2 1%", "results%"};
  uint32_t state = 14;
  auto next = [&state]() {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  std::string stream;
  size_t commands = 0;
  for (int i = 0; i < 200000; ++i) {
    const uint32_t r = next();
    if (r % 5 == 0) {
      stream += static_cast<char>(next() & 0xff);
    } else if (r % 5 == 1) {
      stream += kCommands[next() % (sizeof kCommands / sizeof kCommands[0])];
    } else {
      stream += kWords[next() % (sizeof kWords / sizeof kWords[0])];
      if (next() % 3 != 0) stream += ' ';
    }
  }
  for (char c : stream) commands += c == '%';
  d.port.chunk = 7;
  d.port.send(stream);
  while (d.server.poll()) {
  }
  const std::vector<std::string> lines = d.port.take_lines();
  size_t readies = 0;
  size_t loads = 0;
  size_t infers = 0;
  for (const std::string& l : lines) {
    CHECK(l.size() <= vww::EembcServer::kMaxCommand);
    CHECK(l.rfind("<unterminated>", 0) != 0);
    bool printable = true;
    for (char c : l) printable = printable && c >= ' ' && c <= '~';
    CHECK(printable);
    readies += l == "m-ready";
    loads += l == "m-load-done";
    infers += l == "m-infer-done";
  }
  CHECK(loads > 100 && infers > 100);  // the random stream reaches every state
  CHECK(commands > 5000 && readies == commands);
  CHECK(d.server.stats().commands == commands);
  for (int i = 16; i < 64; ++i) CHECK(in[i] == 0xa5);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s tests/golden/eembc_transcripts.txt\n", argv[0]);
    return 2;
  }
  const std::vector<Case> cases = load_transcripts(argv[1]);
  test_matcher();
  test_golden(cases);
  test_results_are_the_dequantised_outputs();
  test_lap_times_come_from_the_timer_in_microseconds();
  test_score_formatting();
  test_long_lines_resync_and_nothing_overruns();
  test_not_ready_model();
  test_failing_invoke();
  test_prefix_and_config();
  test_random_input_never_overruns();
  printf("vww_eembc_tests: %d checks passed (%zu transcript cases)\n", g_checks, cases.size());
  return 0;
}
