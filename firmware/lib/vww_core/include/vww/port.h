// Byte I/O between the core and whatever carries the link (UART, USB CDC, pty, socket).
//
// The core never blocks on reading: Server::poll() asks for what is there and returns.
// write() may block until the bytes are handed to the transport; the core calls it with
// whole COBS blocks (up to its tx buffer size) so a driver can batch them.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vww {

class Port {
 public:
  // Copies up to `max` received bytes into `buf`; returns how many (0 when none waiting).
  virtual size_t read(uint8_t* buf, size_t max) = 0;
  // Sends `n` bytes; returns when the transport has taken all of them.
  virtual void write(const uint8_t* buf, size_t n) = 0;
  // Pushes out anything the transport still buffers (called at the end of every frame).
  virtual void flush() {}

 protected:
  ~Port() = default;
};

}  // namespace vww
