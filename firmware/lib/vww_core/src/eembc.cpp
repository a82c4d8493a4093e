// EEMBC / MLPerf Tiny DUT command loop; see vww/eembc.h and docs/protocol.md ("EEMBC").
// The exact lines, errors included, are pinned by tests/golden/eembc_transcripts.txt.
#include "vww/eembc.h"

#include <string.h>

namespace vww {
namespace {

// A command split into words at runs of spaces; `more` when it has over kMaxWords.
struct Words {
  static constexpr size_t kMaxWords = 4;
  const char* word[kMaxWords] = {};
  size_t len[kMaxWords] = {};
  size_t count = 0;
  bool more = false;
};

Words split(const char* s, size_t n) {
  Words w;
  size_t i = 0;
  while (i < n) {
    while (i < n && s[i] == ' ') ++i;
    if (i == n) break;
    const size_t start = i;
    while (i < n && s[i] != ' ') ++i;
    if (w.count == Words::kMaxWords) {
      w.more = true;
      break;
    }
    w.word[w.count] = s + start;
    w.len[w.count] = i - start;
    ++w.count;
  }
  return w;
}

bool is(const Words& w, size_t i, const char* text) {
  const size_t n = strlen(text);
  return i < w.count && w.len[i] == n && memcmp(w.word[i], text, n) == 0;
}

// Decimal digits only (no sign, no spaces), no overflow past 2^32 - 1.
bool parse_u32(const char* s, size_t n, uint32_t* out) {
  if (n == 0 || n > 10) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  if (v > 0xFFFFFFFFull) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

uint64_t ticks_to_us(uint64_t ticks, uint32_t hz) {
  if (hz == 0) return ticks;
  // Split so that ticks * 1e6 cannot overflow: (ticks % hz) * 1e6 < 2^32 * 2^20.
  return (ticks / hz) * 1000000u + (ticks % hz) * 1000000u / hz;
}

size_t element_size(uint8_t dtype) {
  switch (dtype) {
    case kInt8:
    case kUInt8:
      return 1;
    case kInt16:
      return 2;
    case kInt32:
    case kFloat32:
      return 4;
    default:
      return 0;
  }
}

// Element j of an output buffer as a float: dequantised with the tensor's scale and zero
// point when it is quantised, as is otherwise.
float dequantise(const TensorSpec& spec, const uint8_t* buf, size_t j) {
  int32_t q = 0;
  switch (spec.dtype) {
    case kFloat32: {
      float f;
      memcpy(&f, buf + 4 * j, sizeof f);
      return f;
    }
    case kInt8:
      q = static_cast<int8_t>(buf[j]);
      break;
    case kUInt8:
      q = buf[j];
      break;
    case kInt16: {
      int16_t v;
      memcpy(&v, buf + 2 * j, sizeof v);
      q = v;
      break;
    }
    case kInt32:
      memcpy(&q, buf + 4 * j, sizeof q);
      break;
    default:
      return 0.0f;
  }
  if (spec.scale == 0.0f) return static_cast<float>(q);
  return spec.scale * static_cast<float>(q - spec.zero_point);
}

// What the m-lap-us times count, as the m-timer-[...] line of the `name` answer says it:
// protocol v1's TimerKind names in lower case (harness/link/eembc.py, TIMER_KINDS).
const char* timer_kind_name(TimerKind kind) {
  switch (kind) {
    case TimerKind::kDwt:
      return "dwt";
    case TimerKind::kCcount:
      return "ccount";
    case TimerKind::kSysTick:
      return "systick";
    case TimerKind::kInstructions:
      return "instructions";
    case TimerKind::kEstimated:
      return "estimated";
    case TimerKind::kHostClock:
      return "host_clock";
  }
  return "systick";
}

constexpr uint32_t kPow10[EembcServer::kMaxDecimals + 1] = {1, 10, 100, 1000, 10000, 100000,
                                                             1000000};

}  // namespace

EembcServer::EembcServer(Port& port, Engine& engine, Timer& timer, const EembcConfig& config)
    : port_(port), engine_(engine), timer_(timer), config_(config) {
  if (config_.decimals > kMaxDecimals) config_.decimals = kMaxDecimals;
  if (config_.name == nullptr) config_.name = "";
  if (config_.model == nullptr) config_.model = "";
  if (config_.profile == nullptr) config_.profile = "";
}

uint32_t EembcServer::input_bytes() const {
  if (engine_.status() != 0 || engine_.input_count() == 0) return 0;
  const uint32_t size = engine_.input_spec(0).bytes;
  return config_.input_bytes != 0 && config_.input_bytes < size ? config_.input_bytes : size;
}

bool EembcServer::poll() {
  uint8_t chunk[64];
  bool any = false;
  for (;;) {
    const size_t n = port_.read(chunk, sizeof chunk);
    if (n == 0) return any;
    any = true;
    feed(chunk, n);
  }
}

void EembcServer::feed(const uint8_t* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == '%') {
      on_command();
    } else if (c == '\r' || c == '\n' || c == '\0') {
      continue;  // a terminal's line endings are not part of any command
    } else if (line_len_ < kMaxCommand) {
      line_[line_len_++] = c;
    } else {
      overflow_ = true;  // keep dropping until '%'
    }
  }
}

void EembcServer::on_command() {
  ++stats_.commands;
  if (overflow_) {
    error("Command longer than 80 characters");
  } else {
    line_[line_len_] = '\0';
    dispatch(line_, line_len_);
  }
  line_len_ = 0;
  overflow_ = false;
  ready();
}

void EembcServer::dispatch(char* cmd, size_t n) {
  const char* prefix = config_.prefix;
  const size_t np = prefix != nullptr ? strlen(prefix) : 0;
  if (np != 0 && n >= np && memcmp(cmd, prefix, np) == 0) {
    cmd += np;
    n -= np;
  }
  const Words w = split(cmd, n);
  if (w.count == 0) return;  // an empty command: only m-ready
  const bool bare = w.count == 1;
  if (is(w, 0, "name") && bare) {
    put("m-name-dut-[");
    put(config_.name);
    put("]");
    end_line();
    // Not in the reference firmware: says whether the lap times are measured. The runner
    // reads only the m-name-dut line of this answer and skips the rest up to m-ready.
    put("m-timer-[");
    put(timer_kind_name(timer_.kind()));
    put("]");
    end_line();
  } else if (is(w, 0, "profile") && bare) {
    put("m-profile-[");
    put(config_.profile);
    put("]");
    end_line();
    put("m-model-[");
    put(config_.model);
    put("]");
    end_line();
  } else if (is(w, 0, "timestamp") && bare) {
    print_lap_us();
  } else if (is(w, 0, "results") && bare) {
    if (!results_valid_) return error("results before infer");
    print_results();
  } else if (is(w, 0, "db") && is(w, 1, "load") && w.count <= 3 && !w.more) {
    handle_db_load(w.count == 3 ? w.word[2] : "", w.count == 3 ? w.len[2] : 0);
  } else if (is(w, 0, "db") && w.count == 2) {
    handle_db_hex(w.word[1], w.len[1]);
  } else if (is(w, 0, "infer") && w.count <= 3 && !w.more) {
    handle_infer(w.count >= 2 ? w.word[1] : nullptr, w.len[1], w.count == 3 ? w.word[2] : nullptr,
                 w.len[2]);
  } else {
    // The command's words, one space apart (as the Python device end echoes them).
    char text[kMaxCommand + 1];
    size_t len = 0;
    for (size_t i = 0; i < n; ++i) {
      if (cmd[i] == ' ' && (len == 0 || text[len - 1] == ' ')) continue;
      text[len++] = cmd[i];
    }
    while (len > 0 && text[len - 1] == ' ') --len;
    error("Unknown command: ", text, len);
  }
}

void EembcServer::handle_db_load(const char* arg, size_t n) {
  if (engine_.status() != 0 || engine_.input_buffer(0) == nullptr) {
    const char* why = engine_.status_text();
    return error("model not ready: ", why, strlen(why));
  }
  const uint32_t capacity = input_bytes();
  uint32_t size = 0;
  if (!parse_u32(arg, n, &size) || size == 0 || size > capacity) {
    ++stats_.errors;
    put("e-[db load needs 1 to ");
    put_u64(capacity);
    put(" bytes, got ");
    if (n == 0) put("nothing");
    put_echo(arg, n);
    put("]");
    return end_line();
  }
  expected_ = size;
  loaded_ = 0;
  put("m-[Expecting ");
  put_u64(size);
  put(" bytes]");
  end_line();
}

void EembcServer::handle_db_hex(const char* hex, size_t n) {
  if (expected_ == 0) return error("db before db load");
  if (n % 2 != 0) return error("db payload is not hex");
  for (size_t i = 0; i < n; ++i) {
    if (hex_value(hex[i]) < 0) return error("db payload is not hex");
  }
  const uint32_t bytes = static_cast<uint32_t>(n / 2);
  const uint32_t left = expected_ - loaded_;
  uint8_t* buf = engine_.input_buffer(0);
  if (bytes > left || buf == nullptr) {
    ++stats_.errors;
    put("e-[db past the buffer: ");
    put_u64(bytes);
    put(" bytes, ");
    put_u64(buf == nullptr ? 0 : left);
    put(" left]");
    return end_line();
  }
  // uint8 v - 128 as int8 has the bit pattern v ^ 0x80.
  const bool offset = config_.subtract_128 && engine_.input_spec(0).dtype == kInt8;
  const uint8_t flip = offset ? 0x80 : 0x00;
  for (uint32_t i = 0; i < bytes; ++i) {
    const int v = hex_value(hex[2 * i]) * 16 + hex_value(hex[2 * i + 1]);
    buf[loaded_ + i] = static_cast<uint8_t>(static_cast<uint8_t>(v) ^ flip);
  }
  loaded_ += bytes;
  if (loaded_ == expected_) {
    put("m-load-done");
    end_line();
  }
}

// `infer N [W]`: the words N and W (null when absent).
void EembcServer::handle_infer(const char* n, size_t n_len, const char* w, size_t w_len) {
  uint32_t count = 0;
  uint32_t warmups = 0;
  if (n == nullptr || !parse_u32(n, n_len, &count) || count == 0 ||
      (w != nullptr && !parse_u32(w, w_len, &warmups))) {
    return error("infer needs N >= 1 and W >= 0");
  }
  if (engine_.status() != 0) {
    const char* why = engine_.status_text();
    return error("model not ready: ", why, strlen(why));
  }
  const uint32_t size = input_bytes();
  if (expected_ != size || loaded_ != size || size == 0) {
    ++stats_.errors;
    put("e-[infer before a full load: ");
    put_u64(loaded_);
    put(" of ");
    put_u64(size);
    put(" bytes]");
    return end_line();
  }
  results_valid_ = false;
  put("m-warmup-start-");
  put_u64(warmups);
  end_line();
  for (uint32_t i = 0; i < warmups; ++i) {
    ++stats_.invokes;
    if (!engine_.invoke()) return error("infer failed: invoke failed");
  }
  put("m-warmup-done");
  end_line();
  put("m-infer-start-");
  put_u64(count);
  end_line();
  // The lap lines are printed after the timed loop, so no serial output runs inside it;
  // the runner only sees the order of the lines, which is the reference firmware's.
  port_.write(reinterpret_cast<const uint8_t*>(tx_), tx_len_);
  tx_len_ = 0;
  port_.flush();
  timer_.align();
  const uint64_t t0 = timer_.now();
  bool ok = true;
  for (uint32_t i = 0; i < count && ok; ++i) {
    ++stats_.invokes;
    ok = engine_.invoke();
  }
  const uint64_t t1 = timer_.now();
  if (!ok) return error("infer failed: invoke failed");
  results_valid_ = true;
  const uint32_t hz = timer_.hz();
  put("m-lap-us-");
  put_u64(ticks_to_us(t0, hz));
  end_line();
  put("m-lap-us-");
  put_u64(ticks_to_us(t1, hz));
  end_line();
  put("m-infer-done");
  end_line();
  print_results();
}

void EembcServer::print_results() {
  put("m-results-[");
  bool first = true;
  for (uint8_t i = 0; i < engine_.output_count(); ++i) {
    const TensorSpec spec = engine_.output_spec(i);
    const uint8_t* buf = engine_.output_buffer(i);
    const size_t size = element_size(spec.dtype);
    if (buf == nullptr || size == 0) continue;
    for (size_t j = 0; j < spec.bytes / size; ++j) {
      if (!first) put(",");
      first = false;
      put_fixed(dequantise(spec, buf, j));
    }
  }
  put("]");
  end_line();
}

void EembcServer::print_lap_us() {
  put("m-lap-us-");
  put_u64(ticks_to_us(timer_.now(), timer_.hz()));
  end_line();
}

void EembcServer::error(const char* text, const char* detail, size_t detail_len) {
  ++stats_.errors;
  put("e-[");
  put(text);
  if (detail != nullptr) put_echo(detail, detail_len);
  put("]");
  end_line();
}

// What the host sent, echoed in an error: printable ASCII only (the host decodes lines as
// text), cut so that the line with its closing "]" stays within kMaxCommand characters
// (hosts refuse longer lines; the Python device end cuts the same way).
void EembcServer::put_echo(const char* s, size_t n) {
  const size_t room = line_chars_ + 1 < kMaxCommand ? kMaxCommand - 1 - line_chars_ : 0;
  if (n > room) n = room;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
    put(&c, 1);
  }
}

void EembcServer::put(const char* s) { put(s, strlen(s)); }

void EembcServer::put(const char* s, size_t n) {
  line_chars_ += n;
  while (n > 0) {
    if (tx_len_ == sizeof tx_) {
      port_.write(reinterpret_cast<const uint8_t*>(tx_), tx_len_);
      tx_len_ = 0;
    }
    size_t k = sizeof tx_ - tx_len_;
    if (k > n) k = n;
    memcpy(tx_ + tx_len_, s, k);
    tx_len_ += k;
    s += k;
    n -= k;
  }
}

void EembcServer::put_u64(uint64_t v) {
  char digits[20];
  size_t nd = 0;
  do {
    digits[nd++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  char out[20];
  for (size_t i = 0; i < nd; ++i) out[i] = digits[nd - 1 - i];
  put(out, nd);
}

// v with config.decimals digits after the point, rounded half to even on the float's exact
// value (what printf's %.*f prints, and Python's format of the same value); "nan", "inf"
// and "-inf" for what has no decimal form (the runner's float() reads them).
void EembcServer::put_fixed(float v) {
  if (v != v) return put("nan");
  const bool negative = v < 0.0f;
  const float a = negative ? -v : v;
  if (!(a < 1.0e18f)) return put(negative ? "-inf" : "inf");
  uint64_t whole = static_cast<uint64_t>(a);
  const float frac = a - static_cast<float>(whole);  // exact: a minus its floor
  const uint32_t scale = kPow10[config_.decimals];
  const float scaled = frac * static_cast<float>(scale);
  uint32_t digits = static_cast<uint32_t>(scaled);
  const float rest = scaled - static_cast<float>(digits);
  const bool odd = config_.decimals == 0 ? (whole & 1u) != 0 : (digits & 1u) != 0;
  if (rest > 0.5f || (rest == 0.5f && odd)) ++digits;
  if (digits >= scale) {
    digits -= scale;
    ++whole;
  }
  if (negative) put("-");
  put_u64(whole);
  if (config_.decimals == 0) return;
  put(".");
  char text[kMaxDecimals];
  for (size_t i = config_.decimals; i > 0; --i) {
    text[i - 1] = static_cast<char>('0' + digits % 10);
    digits /= 10;
  }
  put(text, config_.decimals);
}

void EembcServer::end_line() {
  put("\r\n", 2);
  line_chars_ = 0;
}

void EembcServer::ready() {
  put("m-ready");
  end_line();
  port_.write(reinterpret_cast<const uint8_t*>(tx_), tx_len_);
  tx_len_ = 0;
  port_.flush();
}

}  // namespace vww
