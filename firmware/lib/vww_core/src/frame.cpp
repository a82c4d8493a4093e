// Framing implementation; see vww/frame.h for what each piece promises.
#include "vww/frame.h"

#include <string.h>

namespace vww {
namespace {

// Byte-wise CRC-32 table (reflected polynomial 0xEDB88320), built at compile time.
struct CrcTable {
  uint32_t v[256];
  constexpr CrcTable() : v() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
      v[i] = c;
    }
  }
};
constexpr CrcTable kCrcTable;

}  // namespace

uint32_t crc32_update(uint32_t state, const uint8_t* data, size_t n) {
  for (size_t i = 0; i < n; ++i) state = kCrcTable.v[(state ^ data[i]) & 0xFFu] ^ (state >> 8);
  return state;
}

uint32_t crc32(const uint8_t* data, size_t n) {
  return crc32_final(crc32_update(crc32_init(), data, n));
}

long cobs_encode(const uint8_t* in, size_t n, uint8_t* out, size_t out_size) {
  if (out_size == 0) return -1;
  size_t code_pos = 0;
  size_t o = 1;
  uint8_t code = 1;
  for (size_t i = 0; i < n; ++i) {
    if (in[i] != 0) {
      if (o >= out_size) return -1;
      out[o++] = in[i];
      ++code;
    }
    if (in[i] == 0 || code == 0xFF) {
      out[code_pos] = code;
      if (o >= out_size) return -1;
      code_pos = o++;
      code = 1;
    }
  }
  out[code_pos] = code;
  return static_cast<long>(o);
}

long cobs_decode(const uint8_t* in, size_t n, uint8_t* out, size_t out_size) {
  size_t i = 0;
  size_t o = 0;
  while (i < n) {
    uint8_t code = in[i];
    if (code == 0) return -1;
    size_t end = i + code;
    if (end > n) return -1;
    for (size_t k = i + 1; k < end; ++k) {
      if (in[k] == 0 || o >= out_size) return -1;
      out[o++] = in[k];
    }
    i = end;
    if (code != 0xFF && i < n) {
      if (o >= out_size) return -1;
      out[o++] = 0;
    }
  }
  return static_cast<long>(o);
}

// ---------------------------------------------------------------------------------------

void FrameDecoder::reset() {
  len_ = 0;
  raw_ = 0;
  remaining_ = 0;
  zero_pending_ = false;
  overflow_ = false;
}

FrameDecoder::Event FrameDecoder::push(uint8_t byte) {
  if (byte == 0) return finish();
  ++raw_;
  if (overflow_) return Event::kNone;
  if (remaining_ == 0) {  // a code byte: the previous block ended with an implied zero?
    if (zero_pending_) {
      if (len_ >= size_) {
        overflow_ = true;
        return Event::kNone;
      }
      buf_[len_++] = 0;
    }
    remaining_ = static_cast<uint8_t>(byte - 1);
    zero_pending_ = byte != 0xFF;
    return Event::kNone;
  }
  if (len_ >= size_) {
    overflow_ = true;
    return Event::kNone;
  }
  buf_[len_++] = byte;
  --remaining_;
  return Event::kNone;
}

FrameDecoder::Event FrameDecoder::finish() {
  Event ev = Event::kError;
  error_seq_ = kNoSeq;
  if (raw_ == 0) {
    reset();
    return Event::kNone;  // back-to-back delimiters are padding
  }
  if (overflow_) {
    error_ = ErrorCode::kTooLong;
  } else if (remaining_ != 0) {
    error_ = ErrorCode::kBadFrame;  // the last block runs past the delimiter
  } else if (len_ < kFrameOverhead) {
    error_ = ErrorCode::kBadLength;
  } else if (crc32(buf_, len_ - kCrcSize) != get_u32(buf_ + len_ - kCrcSize)) {
    error_ = ErrorCode::kBadCrc;
  } else {
    header_.type = buf_[0];
    header_.flags = buf_[1];
    header_.seq = get_u16(buf_ + 2);
    header_.length = get_u16(buf_ + 4);
    if (header_.length != len_ - kFrameOverhead) {
      error_ = ErrorCode::kBadLength;
      error_seq_ = header_.seq;
    } else {
      error_ = ErrorCode::kNone;
      ev = Event::kReady;
    }
  }
  if (ev == Event::kError) discarded_ += static_cast<uint32_t>(raw_);
  reset();
  return ev;
}

// ---------------------------------------------------------------------------------------

void FrameWriter::begin(MsgType type, uint16_t seq, uint16_t length) {
  fill_ = 0;
  code_pos_ = 0;
  stage_[fill_++] = 0;  // code byte of the first block, patched when the block closes
  code_ = 1;
  crc_ = crc32_init();
  uint8_t head[kHeaderSize] = {static_cast<uint8_t>(type), 0, 0, 0, 0, 0};
  vww::put_u16(head + 2, seq);
  vww::put_u16(head + 4, length);
  put(head, sizeof head);
}

void FrameWriter::put(const uint8_t* data, size_t n) {
  crc_ = crc32_update(crc_, data, n);
  for (size_t i = 0; i < n; ++i) raw(data[i]);
}

void FrameWriter::put_u16(uint16_t v) {
  uint8_t b[2];
  vww::put_u16(b, v);
  put(b, 2);
}

void FrameWriter::put_u32(uint32_t v) {
  uint8_t b[4];
  vww::put_u32(b, v);
  put(b, 4);
}

void FrameWriter::put_u64(uint64_t v) {
  uint8_t b[8];
  vww::put_u64(b, v);
  put(b, 8);
}

void FrameWriter::put_f32(float v) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof bits);
  put_u32(bits);
}

size_t FrameWriter::str_size(const char* text) {
  size_t n = text != nullptr ? strlen(text) : 0;
  return 1 + (n > 255 ? 255 : n);
}

void FrameWriter::put_str(const char* text) {
  size_t n = str_size(text) - 1;
  put_u8(static_cast<uint8_t>(n));
  if (n != 0) put(reinterpret_cast<const uint8_t*>(text), n);
}

void FrameWriter::end() {
  uint8_t crc[kCrcSize];
  vww::put_u32(crc, crc32_final(crc_));
  for (uint8_t b : crc) raw(b);
  stage_[code_pos_] = code_;
  if (fill_ >= size_) flush_complete();
  stage_[fill_++] = 0;  // delimiter
  port_.write(stage_, fill_);
  port_.flush();
  fill_ = 0;
  code_pos_ = 0;
}

void FrameWriter::raw(uint8_t byte) {
  if (byte != 0) {
    if (fill_ >= size_) flush_complete();
    stage_[fill_++] = byte;
    ++code_;
    if (code_ != 0xFF) return;
  }
  stage_[code_pos_] = code_;  // close the block (zero byte or 254 data bytes)
  if (fill_ >= size_) flush_complete();
  code_pos_ = fill_;
  stage_[fill_++] = 0;
  code_ = 1;
}

void FrameWriter::flush_complete() {
  // Everything before the open block is final; the open block (at most 255 bytes) moves
  // to the front so that its code byte can still be patched.
  if (code_pos_ == 0) return;
  port_.write(stage_, code_pos_);
  size_t open = fill_ - code_pos_;
  memmove(stage_, stage_ + code_pos_, open);
  fill_ = open;
  code_pos_ = 0;
}

}  // namespace vww
