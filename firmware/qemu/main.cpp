// The portable core on QEMU's mps2-an386 with the test-double engine: protocol v1 on the
// semihosting console or UART0 (boot config flag), cycles counted as instructions (QEMU
// -icount shift=0). The harness's `qemu` backend builds this with the Makefile next to it
// and runs it, passing the board id, input shape and layer names in a boot config block
// (bootcfg.h).
#include <new>

#include "bootcfg.h"
#include "platform.h"
#include "vww/server.h"
#include "vww/test_double.h"

#ifndef VWW_FIRMWARE_VERSION
#define VWW_FIRMWARE_VERSION "0.1.0"
#endif
#ifndef VWW_BOARD
#define VWW_BOARD "qemu-mps2-an386"
#endif

extern "C" volatile mps2::BootConfig g_bootcfg;  // placed by mps2_an386.ld

namespace {

constexpr uint16_t kMaxPayload = 1024;
constexpr uint16_t kMaxOps = 64;

mps2::SysTickTimer g_timer;
mps2::Mps2Memory g_memory;
vww::StaticProfiler<kMaxOps> g_profiler(g_timer);
uint8_t g_rx[vww::Server::rx_size_for(kMaxPayload)];
uint8_t g_tx[vww::Server::kMinTxSize];
const char* g_ops[kMaxOps];
char g_board[sizeof g_bootcfg.board];

// Engine and server are built in main(), once the boot config has been read.
alignas(vww::TestDoubleEngine) uint8_t g_engine_mem[sizeof(vww::TestDoubleEngine)];
alignas(vww::Server) uint8_t g_server_mem[sizeof(vww::Server)];

const mps2::BootConfig* boot_config() {
  const mps2::BootConfig* cfg = const_cast<const mps2::BootConfig*>(&g_bootcfg);
  return cfg->magic == mps2::kBootConfigMagic ? cfg : nullptr;
}

uint16_t read_ops(const mps2::BootConfig* cfg) {
  uint16_t n = 0;
  size_t pos = 0;
  while (n < cfg->n_ops && n < kMaxOps && pos < sizeof cfg->ops && cfg->ops[pos] != '\0') {
    g_ops[n++] = &cfg->ops[pos];
    while (pos < sizeof cfg->ops && cfg->ops[pos] != '\0') ++pos;
    ++pos;
  }
  return pos <= sizeof cfg->ops ? n : 0;
}

}  // namespace

int main() {
  const mps2::BootConfig* cfg = boot_config();
  vww::Port& link = mps2::open_link(cfg != nullptr ? cfg->flags : 0);
  g_timer.start();
  vww::ServerConfig config;
  config.board = VWW_BOARD;
  if (cfg != nullptr && cfg->board[0] != '\0') {
    for (size_t i = 0; i + 1 < sizeof g_board && cfg->board[i] != '\0'; ++i) g_board[i] = cfg->board[i];
    config.board = g_board;
  }
  config.firmware_version = VWW_FIRMWARE_VERSION;
  config.clock_hz = mps2::kSysClkHz;
  config.capabilities = vww::kCapProfile | vww::kCapMemory;
  config.max_payload = kMaxPayload;
  config.credits = 4;

  uint32_t dims[vww::kMaxDims] = {};
  uint8_t ndims = 0;
  if (cfg != nullptr && cfg->ndims <= vww::kMaxDims) {
    ndims = cfg->ndims;
    for (uint8_t i = 0; i < ndims; ++i) dims[i] = cfg->dims[i];
  }
  const bool fail_model = cfg != nullptr && (cfg->flags & mps2::kBootFlagFailModel) != 0;
  auto* engine =
      new (g_engine_mem) vww::TestDoubleEngine(ndims != 0 ? dims : nullptr, ndims, fail_model);
  if (cfg != nullptr) engine->set_layers(g_ops, read_ops(cfg));

  auto* server = new (g_server_mem)
      vww::Server(link, *engine, g_timer, config, {g_rx, sizeof g_rx, g_tx, sizeof g_tx});
  server->set_profiler(&g_profiler);
  server->set_memory_probe(&g_memory);
  for (;;) server->poll();
}
