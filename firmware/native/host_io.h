// What every native (host) build of the firmware needs from the host: a Port over file
// descriptors, a nanosecond Timer, and a raw pseudo-terminal the harness opens like a
// board's serial port. Shared by the test-double runner (runner/main.cpp) and the
// real-TFLM runner (tflm/tflm_main.cpp), so both behave the same on the wire.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vww/engine.h"
#include "vww/port.h"
#include "vww/timer.h"

namespace host_io {

// Set by SIGTERM/SIGINT; the serving loops and blocked writes check it.
inline volatile sig_atomic_t& stop_flag() {
  static volatile sig_atomic_t stop = 0;
  return stop;
}

inline void on_signal(int) { stop_flag() = 1; }

class FdPort : public vww::Port {
 public:
  FdPort(int in_fd, int out_fd) : in_(in_fd), out_(out_fd) {}

  size_t read(uint8_t* buf, size_t max) override {
    ssize_t n = ::read(in_, buf, max);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) eof = true;
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) eof = true;
    return 0;
  }

  void write(const uint8_t* buf, size_t n) override {
    while (n > 0 && !stop_flag()) {
      ssize_t w = ::write(out_, buf, n);
      if (w > 0) {
        buf += w;
        n -= static_cast<size_t>(w);
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        struct pollfd p = {out_, POLLOUT, 0};
        ::poll(&p, 1, 100);
      } else {
        eof = true;  // the reader went away: drop the rest
        return;
      }
    }
  }

  bool eof = false;

 private:
  int in_;
  int out_;
};

// CLOCK_MONOTONIC in nanoseconds: wall time on the host, reported as TimerKind kHostClock.
class HostClock : public vww::Timer {
 public:
  uint64_t now() override {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  }
  uint32_t hz() const override { return 1000000000u; }
  vww::TimerKind kind() const override { return vww::TimerKind::kHostClock; }
};

// Opens a pseudo-terminal, prints the slave's path as the first line of stdout and returns
// the master (-1 on failure). The slave stays open here, in raw mode, so that the line
// discipline never touches the bytes and the master sees no hang-up when the host closes
// and reopens it.
inline int open_pty(int* slave_keep) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return -1;
  const char* name = ptsname(master);
  if (name == nullptr) return -1;
  int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) return -1;
  struct termios tio;
  if (tcgetattr(slave, &tio) == 0) {
    cfmakeraw(&tio);
    tcsetattr(slave, TCSANOW, &tio);
  }
  *slave_keep = slave;
  printf("%s\n", name);
  fflush(stdout);
  return master;
}

// "1x96x96x3" as dims (at most vww::kMaxDims, each 1..1,000,000); false on anything else.
inline bool parse_shape(const char* text, uint32_t* dims, uint8_t* ndims) {
  *ndims = 0;
  const char* p = text;
  while (*p != '\0') {
    if (*ndims >= vww::kMaxDims) return false;
    char* end = nullptr;
    unsigned long v = strtoul(p, &end, 10);
    if (end == p || v == 0 || v > 1000000) return false;
    dims[(*ndims)++] = static_cast<uint32_t>(v);
    p = end;
    if (*p == 'x') ++p;
    else if (*p != '\0') return false;
  }
  return *ndims > 0;
}

// Signals a runner handles: stop cleanly on TERM/INT, ignore PIPE.
inline void install_signals() {
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
}

// The link a runner serves: a pseudo-terminal (default) or stdin/stdout.
struct Link {
  int in_fd = STDIN_FILENO;
  int out_fd = STDOUT_FILENO;
  int slave = -1;  // held open by the runner (see open_pty)
  bool stdio = false;
};

// What every runner does before serving: die with the harness that started it, stop cleanly
// on TERM/INT, open its link (printing the pty's path) and make reads non-blocking. False,
// after one line on stderr naming `who`, when no pseudo-terminal can be had.
inline bool open_link(bool use_stdio, const char* who, Link* link) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  install_signals();
  link->stdio = use_stdio;
  if (!use_stdio) {
    link->in_fd = link->out_fd = open_pty(&link->slave);
    if (link->in_fd < 0) {
      fprintf(stderr, "%s: cannot open a pseudo-terminal: %s\n", who, strerror(errno));
      return false;
    }
  }
  fcntl(link->in_fd, F_SETFL, fcntl(link->in_fd, F_GETFL) | O_NONBLOCK);
  return true;
}

// Calls `serve()` whenever the link has input, until a signal stops the runner or, on
// stdio, the input ends; then releases the pty.
template <typename Serve>
inline void serve_link(const Link& link, const FdPort& port, Serve serve) {
  while (!stop_flag()) {
    struct pollfd p = {link.in_fd, POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    if (r < 0 && errno != EINTR) break;
    if (r > 0) serve();
    if (port.eof && link.stdio) break;
  }
  if (link.slave >= 0) close(link.slave);
}

}  // namespace host_io
