// Framing: CRC-32, COBS, and streaming frame decode/encode (docs/protocol.md, "Framing").
//
// Both directions stream so that no frame is ever held twice:
// - FrameDecoder takes bytes as they arrive, un-stuffs COBS into the caller's rx buffer
//   and, at each 0x00, checks length and CRC and reports one frame or one error code.
//   Garbage, torn frames and frames longer than the buffer are dropped up to the next
//   0x00, which is how the receiver resynchronises.
// - FrameWriter takes a header, then payload bytes in any number of pieces, and pushes
//   COBS blocks through a small staging buffer to the Port, computing the CRC on the way.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vww/port.h"
#include "vww/protocol.h"

namespace vww {

// CRC-32/IEEE as zlib computes it. Start with crc32_init(), feed, finish with crc32_final().
uint32_t crc32_update(uint32_t state, const uint8_t* data, size_t n);
constexpr uint32_t crc32_init() { return 0xFFFFFFFFu; }
constexpr uint32_t crc32_final(uint32_t state) { return state ^ 0xFFFFFFFFu; }
uint32_t crc32(const uint8_t* data, size_t n);

// One-shot COBS over whole buffers (tests, tools). encode writes at most
// n + n/254 + 1 bytes and no delimiter; decode returns the decoded length, or -1 when the
// input is not valid COBS. Both return -1 when `out` is too small.
long cobs_encode(const uint8_t* in, size_t n, uint8_t* out, size_t out_size);
long cobs_decode(const uint8_t* in, size_t n, uint8_t* out, size_t out_size);

// Little-endian field access.
inline uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

struct FrameHeader {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint16_t seq = 0;
  uint16_t length = 0;
};

// Incremental receiver. push() returns kReady when a frame ended at this byte (read it
// with header()/payload()), kError when a damaged frame ended (error()/error_seq()), and
// kNone otherwise. The buffer holds one decoded frame: payload capacity is size - 10.
class FrameDecoder {
 public:
  enum class Event : uint8_t { kNone, kReady, kError };

  FrameDecoder(uint8_t* buffer, size_t size) : buf_(buffer), size_(size) {}

  Event push(uint8_t byte);
  void reset();

  const FrameHeader& header() const { return header_; }
  const uint8_t* payload() const { return buf_ + kHeaderSize; }
  ErrorCode error() const { return error_; }
  // The damaged frame's seq when its CRC was good (BAD_LENGTH), else kNoSeq.
  uint16_t error_seq() const { return error_seq_; }
  // Bytes thrown away with damaged frames (diagnostics).
  uint32_t discarded() const { return discarded_; }

 private:
  Event finish();

  uint8_t* buf_;
  size_t size_;
  size_t len_ = 0;          // decoded bytes in buf_
  size_t raw_ = 0;          // encoded bytes seen since the last delimiter
  uint8_t remaining_ = 0;   // data bytes left in the current COBS block
  bool zero_pending_ = false;
  bool overflow_ = false;
  FrameHeader header_;
  ErrorCode error_ = ErrorCode::kNone;
  uint16_t error_seq_ = kNoSeq;
  uint32_t discarded_ = 0;
};

// Streaming encoder: begin(), then payload bytes via put*(), then end(). The payload
// length given to begin() must match what is put (the writer does not check it, so
// that it needs no buffer for the payload).
class FrameWriter {
 public:
  FrameWriter(Port& port, uint8_t* stage, size_t stage_size)
      : port_(port), stage_(stage), size_(stage_size) {}

  void begin(MsgType type, uint16_t seq, uint16_t length);
  void put(const uint8_t* data, size_t n);
  void put_u8(uint8_t v) { put(&v, 1); }
  void put_u16(uint16_t v);
  void put_u32(uint32_t v);
  void put_u64(uint64_t v);
  void put_f32(float v);
  // str: u8 length, then at most 255 bytes of text.
  void put_str(const char* text);
  void end();

  // Bytes a str field of `text` occupies.
  static size_t str_size(const char* text);

 private:
  void raw(uint8_t byte);
  void flush_complete();

  Port& port_;
  uint8_t* stage_;
  size_t size_;
  size_t fill_ = 0;        // bytes staged
  size_t code_pos_ = 0;    // where the open block's code byte sits in stage_
  uint8_t code_ = 1;       // open block's code so far
  uint32_t crc_ = 0;
};

}  // namespace vww
