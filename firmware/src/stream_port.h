// vww::Port over an Arduino Stream (USB CDC Serial, a HardwareSerial UART).
#pragma once

#include <Arduino.h>

#include "vww/port.h"

namespace board {

class StreamPort : public vww::Port {
 public:
  explicit StreamPort(Stream& stream) : stream_(stream) {}

  size_t read(uint8_t* buf, size_t max) override {
    const int avail = stream_.available();
    if (avail <= 0) return 0;
    size_t n = static_cast<size_t>(avail) < max ? static_cast<size_t>(avail) : max;
    return stream_.readBytes(reinterpret_cast<char*>(buf), n);
  }
  void write(const uint8_t* buf, size_t n) override { stream_.write(buf, n); }
  void flush() override { stream_.flush(); }

 private:
  Stream& stream_;
};

}  // namespace board
