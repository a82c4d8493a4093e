// Native EEMBC runner: the portable core's EEMBC / MLPerf Tiny command loop (vww/eembc.h)
// with the test-double engine, on a pseudo-terminal (default; the slave's path is printed
// as the first line of stdout) or on stdin/stdout (--stdio). It is runner/main.cpp with
// the other protocol: the MLPerf Tiny runner, `hil bench --protocol eembc` and the golden
// transcript tests talk to it. Lap times are the host's CLOCK_MONOTONIC.
//
// usage: vww_eembc_runner [--stdio] [--name NAME] [--model ID] [--input-shape 1x96x96x3]
//                         [--input-bytes N] [--no-subtract-128] [--prefix TEXT]
//                         [--decimals D] [--fail-model]
// --input-bytes makes one input N bytes (the golden transcripts' !input_bytes), at most
// the input shape's size; --prefix accepts commands behind EEMBC's "dut " passthrough.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../host_io.h"
#include "vww/eembc.h"
#include "vww/test_double.h"

namespace {

int usage(const char* argv0) {
  fprintf(stderr,
          "usage: %s [--stdio] [--name NAME] [--model ID] [--input-shape 1x96x96x3] "
          "[--input-bytes N] [--no-subtract-128] [--prefix TEXT] [--decimals D] "
          "[--fail-model]\n",
          argv0);
  return 2;
}

bool parse_ulong(const char* text, unsigned long lo, unsigned long hi, unsigned long* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bool use_stdio = false;
  bool fail_model = false;
  uint32_t dims[vww::kMaxDims] = {1, 96, 96, 3};
  uint8_t ndims = 4;
  vww::EembcConfig config;
  unsigned long input_bytes = 0;
  unsigned long decimals = config.decimals;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const bool has_value = i + 1 < argc;
    if (strcmp(a, "--stdio") == 0) use_stdio = true;
    else if (strcmp(a, "--fail-model") == 0) fail_model = true;
    else if (strcmp(a, "--no-subtract-128") == 0) config.subtract_128 = false;
    else if (strcmp(a, "--name") == 0 && has_value) config.name = argv[++i];
    else if (strcmp(a, "--model") == 0 && has_value) config.model = argv[++i];
    else if (strcmp(a, "--prefix") == 0 && has_value) config.prefix = argv[++i];
    else if (strcmp(a, "--input-shape") == 0 && has_value) {
      if (!host_io::parse_shape(argv[++i], dims, &ndims)) return usage(argv[0]);
    } else if (strcmp(a, "--input-bytes") == 0 && has_value) {
      if (!parse_ulong(argv[++i], 1, vww::TestDoubleEngine::kMaxInputBytes, &input_bytes))
        return usage(argv[0]);
    } else if (strcmp(a, "--decimals") == 0 && has_value) {
      if (!parse_ulong(argv[++i], 0, vww::EembcServer::kMaxDecimals, &decimals))
        return usage(argv[0]);
    } else {
      return usage(argv[0]);
    }
  }
  config.input_bytes = static_cast<uint32_t>(input_bytes);
  config.decimals = static_cast<uint8_t>(decimals);

  host_io::Link link;
  if (!host_io::open_link(use_stdio, "vww_eembc_runner", &link)) return 1;
  const int in_fd = link.in_fd;
  const int out_fd = link.out_fd;

  static vww::TestDoubleEngine engine(dims, ndims, fail_model);
  if (input_bytes > engine.input_spec(0).bytes && engine.status() == 0) {
    fprintf(stderr, "vww_eembc_runner: --input-bytes %lu is more than the input shape's %u\n",
            input_bytes, static_cast<unsigned>(engine.input_spec(0).bytes));
    return 2;
  }
  static host_io::HostClock clock;
  static host_io::FdPort port(in_fd, out_fd);
  static vww::EembcServer server(port, engine, clock, config);

  host_io::serve_link(link, port, [] { server.poll(); });
  return 0;
}
