// The real firmware on the host: the wiring every board shares (src/vww_app.h) with
// board.h implemented by host_io.h (a pseudo-terminal for the link, CLOCK_MONOTONIC for
// the timer, static arena). The harness builds it per model through this folder's
// CMakeLists.txt; it is the fast, bit-exact way to run whole data sets through the same
// C++ the boards run (QEMU is the way to count Cortex-M4 instructions).
//
// usage: vww_native_tflm [--stdio] [--board ID]
// Without --stdio the pseudo-terminal's path is the first line of stdout.
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "board.h"
#include "host_io.h"
#include "vww_app.h"

namespace {

int g_in_fd = STDIN_FILENO;
int g_out_fd = STDOUT_FILENO;
host_io::HostClock g_clock;
alignas(16) uint8_t g_arena[vww_generated::kArenaSize];
alignas(16) uint8_t g_input[vww_generated::kInputBytes];

host_io::FdPort& fd_port() {
  static host_io::FdPort port(g_in_fd, g_out_fd);
  return port;
}

// Flash and RAM have no meaning on the host: only the engine's arena figures are reported.
class HostMemory final : public vww::MemoryProbe {
 public:
  void read(vww::MemoryStats* stats) override { (void)stats; }
};
HostMemory g_memory;

int usage(const char* argv0) {
  fprintf(stderr, "usage: %s [--stdio] [--board ID]\n", argv0);
  return 2;
}

}  // namespace

namespace board {
void begin() {}
vww::Port& port() { return fd_port(); }
vww::Timer& timer() { return g_clock; }
uint32_t clock_hz() { return g_clock.hz(); }
uint8_t* arena(size_t bytes) { return bytes <= sizeof g_arena ? g_arena : nullptr; }
uint8_t* input_stage(size_t bytes) { return bytes <= sizeof g_input ? g_input : nullptr; }
vww::Camera* camera() { return nullptr; }
vww::MemoryProbe* memory_probe() { return &g_memory; }
}  // namespace board

int main(int argc, char** argv) {
  bool use_stdio = false;
  const char* board_id = "native";
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--stdio") == 0) use_stdio = true;
    else if (strcmp(argv[i], "--board") == 0 && i + 1 < argc) board_id = argv[++i];
    else return usage(argv[0]);
  }
  host_io::Link link;
  if (!host_io::open_link(use_stdio, "vww_native_tflm", &link)) return 1;
  g_in_fd = link.in_fd;
  g_out_fd = link.out_fd;
  board::begin();
  vww_app::setup(board_id);
  host_io::serve_link(link, fd_port(), [] { vww_app::poll(); });
  return 0;
}
