// What TFLM asks of its target outside the Arduino port (whose system_setup.cpp is left out):
// DebugLog and InitializeTarget. Shared by the QEMU and native real-TFLM builds.
//
// On QEMU, TFLM's log lines are dropped: the firmware's only link carries the protocol, and
// a stray text line would be a torn frame to the host. The engine reports load failures
// through its status text instead (HELLO_RESP), which is where the host looks. The native
// build sends them to stderr (VWW_DEBUG_LOG_STDERR), which the harness logs at debug level.
#include <stdint.h>

#include "tensorflow/lite/micro/system_setup.h"

#if defined(VWW_DEBUG_LOG_UART)
// Debug builds for QEMU: TFLM's log lines go to the CMSDK UART at this address (UART1 of
// mps2-an386 is 0x40005000; run QEMU with a second -serial to see them).
extern "C" void DebugLog(const char* s) {
  volatile uint32_t* uart = reinterpret_cast<volatile uint32_t*>(VWW_DEBUG_LOG_UART);
  uart[2] = 1u;  // CTRL: TX enable
  for (; *s != '\0'; ++s) {
    while ((uart[1] & 1u) != 0) {
    }
    uart[0] = static_cast<uint8_t>(*s);
  }
}
#elif defined(VWW_DEBUG_LOG_STDERR)
#include <stdio.h>
extern "C" void DebugLog(const char* s) { fputs(s, stderr); }
#else
extern "C" void DebugLog(const char* s) { (void)s; }
#endif

namespace tflite {
void InitializeTarget() {}
}  // namespace tflite

// micro_time.cpp reads the port's microsecond counter; the firmware times layers with its
// own vww::Timer, so this only has to link.
namespace peripherals {
uint32_t MicrosecondsCounter() { return 0; }
}  // namespace peripherals
