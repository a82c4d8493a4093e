// Protocol v1 dispatch and the benchmark loop; see vww/server.h and docs/protocol.md.
#include "vww/server.h"

#include <string.h>

namespace vww {
namespace {

constexpr size_t kHelloRespHead = 56;  // fixed part of HELLO_RESP before the strings
constexpr uint32_t kResultHead = 8;
constexpr uint32_t kFrameHead = 14;     // FRAME: offset total width height format reserved
constexpr size_t kProfileHead = 6;
constexpr uint32_t kChunkHead = 8;
constexpr uint32_t kMaxPayload = 0xFFFF;

size_t spec_size(const TensorSpec& s) { return 2 + 4u * s.ndims + 8; }

bool is_request(uint8_t type) {
  switch (static_cast<MsgType>(type)) {
    case MsgType::kHello:
    case MsgType::kInputChunk:
    case MsgType::kInfer:
    case MsgType::kGetProfile:
    case MsgType::kGetMemory:
    case MsgType::kCapture:
    case MsgType::kPing:
      return true;
    default:
      return false;
  }
}

// "expected offset 1016" without printf (keeps newlib's formatter out of the image).
void format_expected(char* out, size_t size, uint32_t value) {
  static const char kPrefix[] = "expected offset ";
  char digits[10];
  int nd = 0;
  do {
    digits[nd++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  size_t o = 0;
  for (size_t i = 0; kPrefix[i] != '\0' && o + 1 < size; ++i) out[o++] = kPrefix[i];
  while (nd > 0 && o + 1 < size) out[o++] = digits[--nd];
  out[o] = '\0';
}

}  // namespace

Server::Server(Port& port, Engine& engine, Timer& timer, const ServerConfig& config,
               const ServerBuffers& buffers)
    : port_(port),
      engine_(engine),
      timer_(timer),
      config_(config),
      decoder_(buffers.rx, buffers.rx_size),
      writer_(port, buffers.tx, buffers.tx_size),
      max_payload_(config.max_payload) {
  size_t fits = buffers.rx_size > kFrameOverhead ? buffers.rx_size - kFrameOverhead : 0;
  if (fits < max_payload_) max_payload_ = static_cast<uint16_t>(fits);
}

uint16_t Server::capabilities() const {
  uint16_t caps = config_.capabilities;
  if (profiler_ == nullptr) caps = static_cast<uint16_t>(caps & ~kCapProfile);
  if (camera_ == nullptr) caps = static_cast<uint16_t>(caps & ~(kCapCamera | kCapFrame));
  return caps;
}

bool Server::poll() {
  uint8_t chunk[64];
  bool any = false;
  for (;;) {
    size_t n = port_.read(chunk, sizeof chunk);
    if (n == 0) return any;
    any = true;
    feed(chunk, n);
  }
}

void Server::feed(const uint8_t* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    switch (decoder_.push(data[i])) {
      case FrameDecoder::Event::kReady:
        on_frame(decoder_.header(), decoder_.payload());
        break;
      case FrameDecoder::Event::kError:
        on_frame_error(decoder_.error(), decoder_.error_seq());
        break;
      case FrameDecoder::Event::kNone:
        break;
    }
  }
}

void Server::on_frame_error(ErrorCode code, uint16_t ref_seq) {
  ++stats_.bad_frames;
  send_error(code, ref_seq, 0, "");
}

void Server::on_frame(const FrameHeader& h, const uint8_t* payload) {
  ++stats_.frames;
  if (h.length > max_payload_) {
    ++stats_.bad_frames;
    send_error(ErrorCode::kTooLong, h.seq, max_payload_, "payload over max_payload");
    return;
  }
  if (cache_valid_ && h.seq == cache_seq_ && h.type == cache_type_) {
    ++stats_.replays;  // a resend of the last INFER/CAPTURE: answer again, do not rerun
    if (cache_error_ != ErrorCode::kNone) {
      send_error(cache_error_, h.seq, 0, cache_error_text_);
    } else {
      send_result(h.seq);
      if (h.type == static_cast<uint8_t>(MsgType::kCapture) && frame_view_.data != nullptr)
        send_frame_pages(h.seq);
    }
    return;
  }
  cache_valid_ = false;
  dispatch(h, payload);
}

void Server::dispatch(const FrameHeader& h, const uint8_t* p) {
  if (!is_request(h.type)) {
    send_error(ErrorCode::kUnknownType, h.seq, h.type, "unknown message type");
    return;
  }
  MsgType type = static_cast<MsgType>(h.type);
  if (type == MsgType::kPing) return handle_ping(h.seq, p, h.length);
  if (type == MsgType::kHello) return handle_hello(h.seq, p, h.length);
  if (!hello_done_) return send_error(ErrorCode::kNotReady, h.seq, 0, "hello first");
  if (type == MsgType::kGetMemory) return handle_get_memory(h.seq);
  if (engine_.status() != 0) {
    return send_error(ErrorCode::kNotReady, h.seq, engine_.status(), engine_.status_text());
  }
  switch (type) {
    case MsgType::kInputChunk:
      return handle_chunk(h.seq, p, h.length);
    case MsgType::kInfer:
      return handle_infer(h.seq, p, h.length);
    case MsgType::kGetProfile:
      return handle_get_profile(h.seq, p, h.length);
    case MsgType::kCapture:
      return handle_capture(h.seq, p, h.length);
    default:
      return send_error(ErrorCode::kUnknownType, h.seq, h.type, "unknown message type");
  }
}

void Server::handle_ping(uint16_t seq, const uint8_t* p, uint16_t n) {
  writer_.begin(MsgType::kPong, seq, n);
  writer_.put(p, n);
  writer_.end();
}

void Server::handle_hello(uint16_t seq, const uint8_t* p, uint16_t n) {
  (void)p;
  if (n < 4) return send_error(ErrorCode::kBadArgument, seq, n, "hello payload too short");
  hello_done_ = true;
  expected_ = 0;
  profile_valid_ = false;

  const bool ready = engine_.status() == 0;
  const uint8_t n_in = ready ? engine_.input_count() : 0;
  const uint8_t n_out = ready ? engine_.output_count() : 0;
  const char* strings[4] = {config_.board, config_.firmware_version, engine_.name(),
                            engine_.status_text()};
  size_t len = kHelloRespHead;
  for (const char* s : strings) len += FrameWriter::str_size(s);
  for (uint8_t i = 0; i < n_in; ++i) len += spec_size(engine_.input_spec(i));
  for (uint8_t i = 0; i < n_out; ++i) len += spec_size(engine_.output_spec(i));

  writer_.begin(MsgType::kHelloResp, seq, static_cast<uint16_t>(len));
  writer_.put_u8(kProtocolVersion);
  writer_.put_u8(engine_.status());
  writer_.put_u16(max_payload_);
  writer_.put_u16(config_.credits);
  writer_.put_u16(capabilities());
  writer_.put_u32(config_.clock_hz != 0 ? config_.clock_hz : timer_.hz());
  writer_.put_u8(static_cast<uint8_t>(timer_.kind()));
  writer_.put_u8(n_in);
  writer_.put_u8(n_out);
  writer_.put_u8(0);
  writer_.put_u32(engine_.arena_size());
  writer_.put_u32(engine_.arena_used());
  writer_.put(engine_.model_sha256(), 32);
  for (const char* s : strings) writer_.put_str(s);
  for (uint8_t k = 0; k < n_in + n_out; ++k) {
    TensorSpec s = k < n_in ? engine_.input_spec(k) : engine_.output_spec(k - n_in);
    writer_.put_u8(s.dtype);
    writer_.put_u8(s.ndims);
    for (uint8_t d = 0; d < s.ndims; ++d) writer_.put_u32(s.dims[d]);
    writer_.put_f32(s.scale);
    writer_.put_u32(static_cast<uint32_t>(s.zero_point));
  }
  writer_.end();
  log(ready ? LogLevel::kInfo : LogLevel::kError, ready ? "ready" : engine_.status_text());
}

uint32_t Server::input_bytes() const {
  return engine_.input_count() != 0 ? engine_.input_spec(0).bytes : 0;
}

uint32_t Server::output_bytes() const {
  uint32_t total = 0;
  for (uint8_t i = 0; i < engine_.output_count(); ++i) total += engine_.output_spec(i).bytes;
  return total;
}

void Server::handle_chunk(uint16_t seq, const uint8_t* p, uint16_t n) {
  if (n < kChunkHead) return send_error(ErrorCode::kBadArgument, seq, n, "chunk too short");
  const uint32_t offset = get_u32(p);
  const uint32_t total = get_u32(p + 4);
  const uint32_t len = n - kChunkHead;
  const uint32_t size = input_bytes();
  if (total != size || offset > total || len > total - offset) {
    return send_error(ErrorCode::kInputTooLarge, seq, size, "chunk outside the input tensor");
  }
  if (offset == 0) expected_ = 0;
  if (offset > expected_) {
    char text[28];
    format_expected(text, sizeof text, expected_);
    return send_error(ErrorCode::kOutOfOrder, seq, expected_, text);
  }
  if (offset == expected_ && len != 0) {
    memcpy(engine_.input_buffer(0) + offset, p + kChunkHead, len);
    expected_ += len;
  }
  writer_.begin(MsgType::kAck, seq, 6);
  writer_.put_u32(expected_);
  // The slot of the chunk being acknowledged is still in use while the ACK is composed.
  writer_.put_u16(config_.credits > 0 ? static_cast<uint16_t>(config_.credits - 1) : 0);
  writer_.end();
}

bool Server::run_repeats(uint16_t warmups, uint16_t repeats, bool profile) {
  for (uint16_t i = 0; i < warmups; ++i) {
    ++stats_.invokes;
    if (!engine_.invoke()) return false;
  }
  n_cycles_ = 0;
  for (uint16_t i = 0; i < repeats; ++i) {
    const bool last = i + 1 == repeats;
    if (profile && last) {
      profiler_->reset();
      engine_.set_profiler(profiler_);
    }
    ++stats_.invokes;
    timer_.align();
    const uint64_t t0 = timer_.now();
    const bool ok = engine_.invoke();
    const uint64_t t1 = timer_.now();
    if (profile && last) {
      engine_.set_profiler(nullptr);
      profile_valid_ = ok;
    }
    if (!ok) return false;
    cycles_[n_cycles_++] = t1 - t0;
  }
  return true;
}

void Server::handle_infer(uint16_t seq, const uint8_t* p, uint16_t n) {
  if (n < 6) return send_error(ErrorCode::kBadArgument, seq, n, "infer payload too short");
  const uint16_t warmups = get_u16(p);
  const uint16_t repeats = get_u16(p + 2);
  const bool profile = (p[4] & kInferFlagProfile) != 0;
  if (repeats == 0 || repeats > kMaxRepeats) {
    return send_error(ErrorCode::kBadArgument, seq, repeats, "repeats must be 1..32");
  }
  if (profile && ((capabilities() & kCapProfile) == 0 || !engine_.set_profiler(nullptr))) {
    return send_error(ErrorCode::kUnsupported, seq, 0, "no per-layer profile on this device");
  }
  if (expected_ != input_bytes() || input_bytes() == 0) {
    return send_error(ErrorCode::kInputIncomplete, seq, expected_, "input incomplete");
  }
  if (profile) profile_valid_ = false;
  const bool ok = run_repeats(warmups, repeats, profile);
  cache_valid_ = true;
  cache_seq_ = seq;
  cache_type_ = static_cast<uint8_t>(MsgType::kInfer);
  cache_error_ = ok ? ErrorCode::kNone : ErrorCode::kInvokeFailed;
  cache_error_text_ = "invoke failed";
  frame_view_ = FrameView();
  if (!ok) return send_error(ErrorCode::kInvokeFailed, seq, 0, cache_error_text_);
  send_result(seq);
}

void Server::send_result(uint16_t seq) {
  const uint32_t out_len = output_bytes();
  const uint32_t len = kResultHead + 8u * n_cycles_ + out_len;
  if (len > kMaxPayload || out_len > 0xFFFF) {
    return send_error(ErrorCode::kUnsupported, seq, out_len, "outputs too large for a RESULT");
  }
  writer_.begin(MsgType::kResult, seq, static_cast<uint16_t>(len));
  writer_.put_u8(0);
  writer_.put_u8(0);
  writer_.put_u16(n_cycles_);
  writer_.put_u16(static_cast<uint16_t>(out_len));
  writer_.put_u16(0);
  for (uint16_t i = 0; i < n_cycles_; ++i) writer_.put_u64(cycles_[i]);
  for (uint8_t i = 0; i < engine_.output_count(); ++i) {
    writer_.put(engine_.output_buffer(i), engine_.output_spec(i).bytes);
  }
  writer_.end();
}

void Server::handle_get_profile(uint16_t seq, const uint8_t* p, uint16_t n) {
  if ((capabilities() & kCapProfile) == 0) {
    return send_error(ErrorCode::kUnsupported, seq, 0, "no per-layer profile on this device");
  }
  if (n < 2) return send_error(ErrorCode::kBadArgument, seq, n, "get_profile payload too short");
  const uint16_t start = get_u16(p);
  const uint16_t total = profile_valid_ ? profiler_->count() : 0;
  if (start > total) return send_error(ErrorCode::kBadArgument, seq, total, "start past the end");
  uint16_t count = 0;
  size_t len = kProfileHead;
  while (start + count < total) {
    size_t entry = 10 + FrameWriter::str_size(profiler_->entry(start + count).op);
    if (count > 0 && len + entry > max_payload_) break;
    len += entry;
    ++count;
  }
  writer_.begin(MsgType::kProfile, seq, static_cast<uint16_t>(len));
  writer_.put_u16(total);
  writer_.put_u16(start);
  writer_.put_u16(count);
  for (uint16_t i = 0; i < count; ++i) {
    const ProfileEntry& e = profiler_->entry(start + i);
    writer_.put_u16(static_cast<uint16_t>(start + i));
    writer_.put_u64(e.cycles);
    writer_.put_str(e.op);
  }
  writer_.end();
}

void Server::handle_get_memory(uint16_t seq) {
  MemoryStats m;
  if (engine_.status() == 0 || engine_.arena_size() != 0) {
    m.arena_size = engine_.arena_size();
    m.arena_used = engine_.arena_used();
  }
  m.model_bytes = engine_.model_bytes();
  if (memory_probe_ != nullptr) memory_probe_->read(&m);
  writer_.begin(MsgType::kMemory, seq, 32);
  const uint32_t fields[8] = {m.arena_size, m.arena_used,  m.ram_total,  m.ram_free,
                              m.stack_used, m.flash_total, m.flash_used, m.model_bytes};
  for (uint32_t v : fields) writer_.put_u32(v);
  writer_.end();
}

void Server::handle_capture(uint16_t seq, const uint8_t* p, uint16_t n) {
  if ((capabilities() & kCapCamera) == 0) {
    return send_error(ErrorCode::kUnsupported, seq, 0, "no camera");
  }
  if (n < 2) return send_error(ErrorCode::kBadArgument, seq, n, "capture payload too short");
  const bool send_frame =
      (p[0] & kCaptureFlagSendFrame) != 0 && (capabilities() & kCapFrame) != 0;
  frame_view_ = FrameView();
  bool ok = camera_->capture(engine_, &frame_view_);
  cache_error_text_ = "camera capture failed";
  if (ok) {
    expected_ = input_bytes();  // the camera filled the input
    cache_error_text_ = "invoke failed";
    ok = run_repeats(0, 1, false);
  }
  if (!send_frame) frame_view_.data = nullptr;
  cache_valid_ = true;
  cache_seq_ = seq;
  cache_type_ = static_cast<uint8_t>(MsgType::kCapture);
  cache_error_ = ok ? ErrorCode::kNone : ErrorCode::kInvokeFailed;
  if (!ok) return send_error(ErrorCode::kInvokeFailed, seq, 0, cache_error_text_);
  send_result(seq);
  if (frame_view_.data != nullptr) send_frame_pages(seq);
}

void Server::send_frame_pages(uint16_t seq) {
  const uint32_t page = max_payload_ > kFrameHead ? max_payload_ - kFrameHead : 1;
  uint32_t offset = 0;
  do {
    uint32_t len = frame_view_.bytes - offset;
    if (len > page) len = page;
    writer_.begin(MsgType::kFrame, seq, static_cast<uint16_t>(kFrameHead + len));
    writer_.put_u32(offset);
    writer_.put_u32(frame_view_.bytes);
    writer_.put_u16(frame_view_.width);
    writer_.put_u16(frame_view_.height);
    writer_.put_u8(static_cast<uint8_t>(frame_view_.format));
    writer_.put_u8(0);
    writer_.put(frame_view_.data + offset, len);
    writer_.end();
    offset += len;
  } while (offset < frame_view_.bytes);
}

void Server::send_error(ErrorCode code, uint16_t ref_seq, uint32_t detail, const char* text) {
  ++stats_.errors;
  size_t n = text != nullptr ? strlen(text) : 0;
  if (n > kLogMax) n = kLogMax;
  writer_.begin(MsgType::kError, ref_seq == kNoSeq ? 0 : ref_seq, static_cast<uint16_t>(8 + n));
  writer_.put_u16(static_cast<uint16_t>(code));
  writer_.put_u16(ref_seq);
  writer_.put_u32(detail);
  if (n != 0) writer_.put(reinterpret_cast<const uint8_t*>(text), n);
  writer_.end();
}

void Server::log(LogLevel level, const char* text) {
  size_t n = text != nullptr ? strlen(text) : 0;
  if (n > kLogMax) n = kLogMax;
  writer_.begin(MsgType::kLog, 0, static_cast<uint16_t>(1 + n));
  writer_.put_u8(static_cast<uint8_t>(level));
  if (n != 0) writer_.put(reinterpret_cast<const uint8_t*>(text), n);
  writer_.end();
}

}  // namespace vww
