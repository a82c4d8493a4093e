// Protocol v1 constants shared by every part of the firmware.
//
// The numbers mirror docs/protocol.md and harness/link/messages.py byte for byte; the
// golden frames in tests/golden/frames.txt are checked against both ends, so a change
// here without a change there fails the native tests.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vww {

constexpr uint8_t kProtocolVersion = 1;
constexpr size_t kHeaderSize = 6;  // type:u8 flags:u8 seq:u16 length:u16
constexpr size_t kCrcSize = 4;
constexpr size_t kFrameOverhead = kHeaderSize + kCrcSize;
constexpr uint16_t kNoSeq = 0xFFFF;       // error ref_seq: the request could not be identified
constexpr uint32_t kUnknownU32 = 0xFFFFFFFFu;
constexpr uint16_t kHelloMaxPayload = 256;  // what the host sends before it knows our limit

enum class MsgType : uint8_t {
  kHello = 0x01,
  kInputChunk = 0x02,
  kInfer = 0x03,
  kGetProfile = 0x04,
  kGetMemory = 0x05,
  kCapture = 0x07,
  kPing = 0x09,
  kAck = 0x80,
  kHelloResp = 0x81,
  kResult = 0x83,
  kProfile = 0x84,
  kMemory = 0x85,
  kLog = 0x86,
  kFrame = 0x88,
  kPong = 0x89,
  kError = 0xFF,
};

enum class ErrorCode : uint16_t {
  kNone = 0,
  kBadCrc = 1,
  kBadLength = 2,
  kTooLong = 3,
  kUnknownType = 4,
  kNotReady = 5,
  kOutOfOrder = 6,
  kInputTooLarge = 7,
  kInputIncomplete = 8,
  kInvokeFailed = 9,
  kUnsupported = 10,
  kModelError = 11,
  kBadArgument = 12,
  kBusy = 13,
  kBadFrame = 14,
};

// What RESULT cycles count (HELLO_RESP `timer`).
enum class TimerKind : uint8_t {
  kDwt = 0,
  kCcount = 1,
  kSysTick = 2,
  kInstructions = 3,
  kEstimated = 4,
  kHostClock = 5,
};

// HELLO_RESP `capabilities` bits.
enum Capability : uint16_t {
  kCapProfile = 1,
  kCapMemory = 2,
  kCapCamera = 4,
  kCapFrame = 8,
};

// TFLite TensorType codes used in tensor specs.
enum DType : uint8_t {
  kFloat32 = 0,
  kInt32 = 2,
  kUInt8 = 3,
  kInt16 = 7,
  kInt8 = 9,
};

enum class LogLevel : uint8_t { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

enum class PixelFormat : uint8_t { kGray8 = 0, kRgb888 = 1, kRgb565 = 2 };

constexpr uint8_t kInferFlagProfile = 1;
constexpr uint8_t kCaptureFlagSendFrame = 1;

}  // namespace vww
