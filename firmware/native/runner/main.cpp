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

#include "../host_io.h"
#include "vww/server.h"
#include "vww/test_double.h"

#ifndef VWW_FIRMWARE_VERSION
#define VWW_FIRMWARE_VERSION "0.1.0"
#endif

namespace {

int usage(const char* argv0) {
  fprintf(stderr,
          "usage: %s [--stdio] [--board ID] [--input-shape 1x96x96x3] [--max-payload N] "
          "[--credits N] [--fail-model] [--ops A,B,...]\n",
          argv0);
  return 2;
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
      if (!host_io::parse_shape(argv[++i], dims, &ndims)) return usage(argv[0]);
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

  host_io::Link link;
  if (!host_io::open_link(use_stdio, "vww_native_runner", &link)) return 1;
  const int in_fd = link.in_fd;
  const int out_fd = link.out_fd;

  static vww::TestDoubleEngine engine(dims, ndims, fail_model);
  engine.set_layers(g_ops, n_ops);
  static host_io::HostClock clock;
  static host_io::FdPort port(in_fd, out_fd);
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

  host_io::serve_link(link, port, [] { server.poll(); });
  return 0;
}
