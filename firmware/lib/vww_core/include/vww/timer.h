// The clock that RESULT cycles and profiler entries are counted with.
//
// One small interface so the benchmark loop reads the same everywhere: the DWT cycle
// counter on Cortex-M4 boards, CCOUNT on the ESP32, SysTick where DWT is absent (QEMU,
// where -icount makes it count instructions), host nanoseconds in the native runner.
// kind() tells the host which of these it is (protocol TimerKind), so reports can say
// "measured", "instructions" or "estimated".
#pragma once

#include <stdint.h>

#include "vww/protocol.h"

namespace vww {

class Timer {
 public:
  // Monotonic count since an arbitrary origin; wraps only after 2^64 ticks.
  virtual uint64_t now() = 0;
  // Ticks per second (the HELLO_RESP clock_hz when the board does not give another).
  virtual uint32_t hz() const = 0;
  virtual TimerKind kind() const = 0;
  // Called right before each timed repeat. A timer coarser than what it reports (SysTick
  // on QEMU ticks once per 40 instructions) waits here for a tick edge at an exact phase,
  // so that the same work always measures the same; cycle-exact timers do nothing.
  virtual void align() {}

 protected:
  ~Timer() = default;
};

}  // namespace vww
