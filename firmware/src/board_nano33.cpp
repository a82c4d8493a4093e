// Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F at 64 MHz).
//
// Link: USB CDC (Serial) on the board; Serial1 (the hardware UART) in the Renode build,
// because Renode does not emulate the nRF52840's USB device. Clock: the DWT cycle counter,
// widened to 64 bits; where CYCCNT does not run (some emulators) the timer falls back to
// micros() scaled to the core clock and says so (TimerKind::kSysTick). Camera: the OV7675
// through Arduino_OV767X at QCIF RGB565; none in the Renode build (the shield uses
// Serial1's pins).
#if defined(VWW_BOARD_NANO33)

#include <Arduino.h>

#include "board.h"
#include "camera_input.h"
#include "generated/model_config.h"
#include "stream_port.h"

#if !defined(VWW_NO_CAMERA)
#include <Arduino_OV767X.h>
#endif

namespace board {

namespace {

constexpr uint32_t kClockHz = 64000000u;
constexpr uint32_t kBaud = 115200u;

volatile uint32_t* const kDemcr = reinterpret_cast<volatile uint32_t*>(0xE000EDFCu);
volatile uint32_t* const kDwtCtrl = reinterpret_cast<volatile uint32_t*>(0xE0001000u);
volatile uint32_t* const kDwtCyccnt = reinterpret_cast<volatile uint32_t*>(0xE0001004u);

class DwtTimer : public vww::Timer {
 public:
  void begin() {
    *kDemcr |= (1u << 24);     // TRCENA: enable the DWT block
    *kDwtCyccnt = 0;
    *kDwtCtrl |= 1u;           // CYCCNTENA
    const uint32_t a = *kDwtCyccnt;
    for (volatile int i = 0; i < 1000; ++i) {
    }
    dwt_runs_ = *kDwtCyccnt != a;
    last_ = raw();
  }
  uint64_t now() override {
    const uint32_t r = raw();
    high_ += static_cast<uint32_t>(r - last_);  // wraps every 67 s at 64 MHz; read often
    last_ = r;
    return high_;
  }
  uint32_t hz() const override { return kClockHz; }
  vww::TimerKind kind() const override {
    return dwt_runs_ ? vww::TimerKind::kDwt : vww::TimerKind::kSysTick;
  }

 private:
  uint32_t raw() const { return dwt_runs_ ? *kDwtCyccnt : micros() * (kClockHz / 1000000u); }
  bool dwt_runs_ = false;
  uint32_t last_ = 0;
  uint64_t high_ = 0;
};

#if defined(VWW_LINK_SERIAL1)
#define VWW_LINK Serial1
#else
#define VWW_LINK Serial
#endif

StreamPort g_port(VWW_LINK);
DwtTimer g_timer;
alignas(16) uint8_t g_arena[vww_generated::kArenaSize];
alignas(16) uint8_t g_input[vww_generated::kInputBytes];

class NanoMemory : public vww::MemoryProbe {
 public:
  void read(vww::MemoryStats* s) override {
    s->ram_total = 262144u;
    s->flash_total = 1048576u;
  }
};
NanoMemory g_memory;

#if !defined(VWW_NO_CAMERA)
// QCIF RGB565: 176 x 144 x 2 = 50,688 bytes, the only frame buffer.
constexpr uint16_t kFrameW = 176;
constexpr uint16_t kFrameH = 144;
uint8_t g_frame[kFrameW * kFrameH * 2];

class Ov7675Camera : public vww::Camera {
 public:
  bool begin() {
    ready_ = OV7675_begin();
    return ready_;
  }
  bool capture(vww::Engine& engine, vww::FrameView* frame) override {
    if (!ready_) return false;
    ::Camera.readFrame(g_frame);
    vww_img::swap_rgb565_bytes(g_frame, static_cast<size_t>(kFrameW) * kFrameH);
    return frame_to_input(engine, g_frame, kFrameW, kFrameH, vww_img::Format::kRgb565, frame);
  }

 private:
  static bool OV7675_begin() { return ::Camera.begin(QCIF, RGB565, 1) != 0; }
  bool ready_ = false;
};
Ov7675Camera g_camera;
bool g_camera_ok = false;
#endif

}  // namespace

void begin() {
  VWW_LINK.begin(kBaud);
  g_timer.begin();
#if !defined(VWW_NO_CAMERA)
  g_camera_ok = g_camera.begin();
#endif
}

vww::Port& port() { return g_port; }
vww::Timer& timer() { return g_timer; }
uint32_t clock_hz() { return kClockHz; }

uint8_t* arena(size_t bytes) { return bytes <= sizeof(g_arena) ? g_arena : nullptr; }
uint8_t* input_stage(size_t bytes) { return bytes <= sizeof(g_input) ? g_input : nullptr; }

vww::Camera* camera() {
#if !defined(VWW_NO_CAMERA)
  return g_camera_ok ? &g_camera : nullptr;
#else
  return nullptr;
#endif
}

vww::MemoryProbe* memory_probe() { return &g_memory; }

}  // namespace board

#endif  // VWW_BOARD_NANO33
