// Native runner: the portable core with the test-double engine, serving protocol v1 on a
// pseudo-terminal (default; the slave's path is printed as the first line of stdout) or on
// stdin/stdout (--stdio). The harness's `native` backend starts it; the fuzzer drives it.
//
// usage: vww_native_runner [--stdio] [--board ID] [--input-shape 1x96x96x3]
//                          [--max-payload N] [--credits N] [--fail-model]
//                          [--ops CONV_2D,DEPTHWISE_CONV_2D,...]
// --ops names the test double's fake layers after a real model's operators.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vww/server.h"
#include "vww/test_double.h"

#ifndef VWW_FIRMWARE_VERSION
#define VWW_FIRMWARE_VERSION "0.1.0"
#endif

namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

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
    while (n > 0 && !g_stop) {
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

int usage(const char* argv0) {
  fprintf(stderr,
          "usage: %s [--stdio] [--board ID] [--input-shape 1x96x96x3] [--max-payload N] "
          "[--credits N] [--fail-model] [--ops A,B,...]\n",
          argv0);
  return 2;
}

bool parse_shape(const char* text, uint32_t* dims, uint8_t* ndims) {
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

constexpr uint16_t kMaxOps = 64;
char g_ops_text[4096];
const char* g_ops[kMaxOps];

// Splits "A,B,C" (copied into static storage) into g_ops; returns the count, 0 on error.
uint16_t parse_ops(const char* text) {
  size_t n = strlen(text);
  if (n == 0 || n >= sizeof g_ops_text) return 0;
  memcpy(g_ops_text, text, n + 1);
  uint16_t count = 0;
  char* p = g_ops_text;
  while (*p != '\0') {
    if (count >= kMaxOps) return 0;
    g_ops[count++] = p;
    char* comma = strchr(p, ',');
    if (comma == nullptr) break;
    *comma = '\0';
    p = comma + 1;
  }
  return count;
}

int open_pty(int* slave_keep) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return -1;
  const char* name = ptsname(master);
  if (name == nullptr) return -1;
  // Hold the slave open ourselves, in raw mode: the line discipline must not touch the
  // bytes, and the master must not see a hang-up when the host closes and reopens.
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

}  // namespace

int main(int argc, char** argv) {
  bool use_stdio = false;
  bool fail_model = false;
  const char* board = "native";
  uint32_t dims[vww::kMaxDims] = {1, 96, 96, 3};
  uint8_t ndims = 4;
  unsigned long max_payload = 1024;
  unsigned long credits = 4;
  uint16_t n_ops = 0;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const bool has_value = i + 1 < argc;
    if (strcmp(a, "--stdio") == 0) use_stdio = true;
    else if (strcmp(a, "--fail-model") == 0) fail_model = true;
    else if (strcmp(a, "--board") == 0 && has_value) board = argv[++i];
    else if (strcmp(a, "--input-shape") == 0 && has_value) {
      if (!parse_shape(argv[++i], dims, &ndims)) return usage(argv[0]);
    } else if (strcmp(a, "--max-payload") == 0 && has_value) {
      max_payload = strtoul(argv[++i], nullptr, 10);
      if (max_payload < 16 || max_payload > 16384) return usage(argv[0]);
    } else if (strcmp(a, "--ops") == 0 && has_value) {
      n_ops = parse_ops(argv[++i]);
      if (n_ops == 0) return usage(argv[0]);
    } else if (strcmp(a, "--credits") == 0 && has_value) {
      credits = strtoul(argv[++i], nullptr, 10);
      if (credits < 1 || credits > 64) return usage(argv[0]);
    } else {
      return usage(argv[0]);
    }
  }

  prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the harness that started us
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);

  int in_fd = STDIN_FILENO;
  int out_fd = STDOUT_FILENO;
  int slave = -1;
  if (!use_stdio) {
    in_fd = out_fd = open_pty(&slave);
    if (in_fd < 0) {
      fprintf(stderr, "vww_native_runner: cannot open a pseudo-terminal: %s\n", strerror(errno));
      return 1;
    }
  }
  fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);

  static vww::TestDoubleEngine engine(dims, ndims, fail_model);
  engine.set_layers(g_ops, n_ops);
  static HostClock clock;
  static FdPort port(in_fd, out_fd);
  static vww::StaticProfiler<64> profiler(clock);
  static uint8_t rx[vww::Server::rx_size_for(16384)];
  static uint8_t tx[4096];
  vww::ServerConfig config;
  config.board = board;
  config.firmware_version = VWW_FIRMWARE_VERSION;
  config.clock_hz = clock.hz();
  config.capabilities = vww::kCapProfile | vww::kCapMemory;
  config.max_payload = static_cast<uint16_t>(max_payload);
  config.credits = static_cast<uint16_t>(credits);
  static vww::Server server(port, engine, clock, config,
                            {rx, vww::Server::rx_size_for(config.max_payload), tx, sizeof tx});
  server.set_profiler(&profiler);

  while (!g_stop) {
    struct pollfd p = {in_fd, POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    if (r < 0 && errno != EINTR) break;
    if (r > 0) server.poll();
    if (port.eof && use_stdio) break;
  }
  if (slave >= 0) close(slave);
  return 0;
}
