// AI-Thinker ESP32-CAM (ESP32, Xtensa LX6 at 240 MHz, 4 MB PSRAM).
//
// Link: UART0 (the USB-UART adapter) at 921600 baud. Clock: CCOUNT, widened to 64 bits.
// Arena and camera frame in PSRAM (allocated once at start-up, never freed); the model
// stays in flash. Camera: OV2640 through the esp32-camera driver the Arduino core ships,
// QQVGA RGB565, pins of the AI-Thinker module.
#if defined(VWW_BOARD_ESP32CAM)

#include <Arduino.h>
#include <esp_camera.h>
#include <esp_heap_caps.h>

#include <string.h>

#include "board.h"
#include "camera_input.h"
#include "stream_port.h"

namespace board {

namespace {

// 921600 for protocol v1's uploads; the EEMBC build sets 115200, the runner's default.
#ifndef VWW_LINK_BAUD
#define VWW_LINK_BAUD 921600u
#endif
constexpr uint32_t kBaud = VWW_LINK_BAUD;
constexpr uint16_t kFrameW = 160;
constexpr uint16_t kFrameH = 120;

class CcountTimer : public vww::Timer {
 public:
  void begin() { last_ = ESP.getCycleCount(); }
  uint64_t now() override {
    const uint32_t r = ESP.getCycleCount();
    high_ += static_cast<uint32_t>(r - last_);  // wraps every 17.9 s at 240 MHz; read often
    last_ = r;
    return high_;
  }
  uint32_t hz() const override { return static_cast<uint32_t>(getCpuFrequencyMhz()) * 1000000u; }
  vww::TimerKind kind() const override { return vww::TimerKind::kCcount; }

 private:
  uint32_t last_ = 0;
  uint64_t high_ = 0;
};

StreamPort g_port(Serial);
CcountTimer g_timer;

class EspMemory : public vww::MemoryProbe {
 public:
  void read(vww::MemoryStats* s) override {
    s->ram_total = ESP.getHeapSize() + ESP.getPsramSize();
    s->ram_free = ESP.getFreeHeap() + ESP.getFreePsram();
    s->flash_total = ESP.getFlashChipSize();
    s->flash_used = ESP.getSketchSize();
  }
};
EspMemory g_memory;

class Ov2640Camera : public vww::Camera {
 public:
  bool begin() {
    frame_ = static_cast<uint8_t*>(
        heap_caps_malloc(static_cast<size_t>(kFrameW) * kFrameH * 2, MALLOC_CAP_SPIRAM));
    if (frame_ == nullptr) return false;
    camera_config_t c = {};
    c.pin_pwdn = 32;
    c.pin_reset = -1;
    c.pin_xclk = 0;
    c.pin_sccb_sda = 26;
    c.pin_sccb_scl = 27;
    c.pin_d7 = 35;
    c.pin_d6 = 34;
    c.pin_d5 = 39;
    c.pin_d4 = 36;
    c.pin_d3 = 21;
    c.pin_d2 = 19;
    c.pin_d1 = 18;
    c.pin_d0 = 5;
    c.pin_vsync = 25;
    c.pin_href = 23;
    c.pin_pclk = 22;
    c.xclk_freq_hz = 20000000;
    c.ledc_timer = LEDC_TIMER_0;
    c.ledc_channel = LEDC_CHANNEL_0;
    c.pixel_format = PIXFORMAT_RGB565;
    c.frame_size = FRAMESIZE_QQVGA;
    c.jpeg_quality = 12;
    c.fb_count = 1;
    c.fb_location = CAMERA_FB_IN_PSRAM;
    c.grab_mode = CAMERA_GRAB_LATEST;
    ready_ = esp_camera_init(&c) == ESP_OK;
    return ready_;
  }
  bool capture(vww::Engine& engine, vww::FrameView* frame) override {
    if (!ready_) return false;
    camera_fb_t* fb = esp_camera_fb_get();
    if (fb == nullptr) return false;
    const bool ok = fb->width == kFrameW && fb->height == kFrameH &&
                    fb->len == static_cast<size_t>(kFrameW) * kFrameH * 2;
    if (ok) memcpy(frame_, fb->buf, fb->len);
    esp_camera_fb_return(fb);
    if (!ok) return false;
    vww_img::swap_rgb565_bytes(frame_, static_cast<size_t>(kFrameW) * kFrameH);
    return frame_to_input(engine, frame_, kFrameW, kFrameH, vww_img::Format::kRgb565, frame);
  }

 private:
  uint8_t* frame_ = nullptr;
  bool ready_ = false;
};
Ov2640Camera g_camera;
bool g_camera_ok = false;

}  // namespace

void begin() {
  Serial.setRxBufferSize(4096);
  Serial.begin(kBaud);
  g_timer.begin();
  g_camera_ok = g_camera.begin();
}

vww::Port& port() { return g_port; }
vww::Timer& timer() { return g_timer; }
uint32_t clock_hz() { return static_cast<uint32_t>(getCpuFrequencyMhz()) * 1000000u; }

uint8_t* arena(size_t bytes) {
  // Start-up allocation only: the arena lives as long as the firmware.
  return static_cast<uint8_t*>(
      heap_caps_aligned_alloc(16, bytes, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT));
}

uint8_t* input_stage(size_t bytes) {
  return static_cast<uint8_t*>(
      heap_caps_aligned_alloc(16, bytes, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT));
}

vww::Camera* camera() { return g_camera_ok ? &g_camera : nullptr; }
vww::MemoryProbe* memory_probe() { return &g_memory; }

}  // namespace board

#endif  // VWW_BOARD_ESP32CAM
