// The real firmware on QEMU's mps2-an386: the wiring every board shares (src/vww_app.h),
// with board.h implemented by the mps2 platform (UART0 or the semihosting console, SysTick counting instructions
// under -icount shift=0, static arena). The harness builds it per model through
// firmware/qemu/CMakeLists.txt and passes the board id to report in the boot config.
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "bootcfg.h"
#include "platform.h"
#include "vww_app.h"

extern "C" volatile mps2::BootConfig g_bootcfg;  // placed by mps2_an386.ld

#ifndef VWW_EEMBC_TICKS_PER_S
#define VWW_EEMBC_TICKS_PER_S 0
#endif

namespace {

mps2::SysTickTimer g_timer;

// EEMBC's m-lap-us is a time; under -icount the timer counts instructions. The harness
// passes the board's instructions per second (clock / CPI from the board profile), so the
// lap times the MLPerf Tiny runner reads are the board's estimated microseconds, the same
// estimate `hil bench --backend qemu` prints, instead of instructions at mps2's 25 MHz.
class BoardSecondsTimer final : public vww::Timer {
 public:
  explicit BoardSecondsTimer(vww::Timer& inner) : inner_(inner) {}
  uint64_t now() override { return inner_.now(); }
  uint32_t hz() const override {
    return VWW_EEMBC_TICKS_PER_S > 0 ? static_cast<uint32_t>(VWW_EEMBC_TICKS_PER_S) : inner_.hz();
  }
  vww::TimerKind kind() const override { return inner_.kind(); }
  void align() override { inner_.align(); }

 private:
  vww::Timer& inner_;
};
BoardSecondsTimer g_eembc_timer(g_timer);
vww::Port* g_link = nullptr;
mps2::Mps2Memory g_memory;
alignas(16) uint8_t g_arena[vww_generated::kArenaSize];
alignas(16) uint8_t g_input[vww_generated::kInputBytes];
char g_board[sizeof g_bootcfg.board] = "qemu-mps2-an386";

const char* board_id() {
  const auto* cfg = const_cast<const mps2::BootConfig*>(&g_bootcfg);
  if (cfg->magic == mps2::kBootConfigMagic && cfg->board[0] != '\0') {
    size_t i = 0;
    for (; i + 1 < sizeof g_board && cfg->board[i] != '\0'; ++i) g_board[i] = cfg->board[i];
    g_board[i] = '\0';
  }
  return g_board;
}

}  // namespace

namespace board {
void begin() {
  const auto* cfg = const_cast<const mps2::BootConfig*>(&g_bootcfg);
  g_link = &mps2::open_link(cfg->magic == mps2::kBootConfigMagic ? cfg->flags : 0);
  g_timer.start();
}
vww::Port& port() { return *g_link; }
vww::Timer& timer() {
#if VWW_PROTOCOL_EEMBC
  return g_eembc_timer;
#else
  return g_timer;
#endif
}
uint32_t clock_hz() { return mps2::kSysClkHz; }
uint8_t* arena(size_t bytes) { return bytes <= sizeof g_arena ? g_arena : nullptr; }
uint8_t* input_stage(size_t bytes) { return bytes <= sizeof g_input ? g_input : nullptr; }
vww::Camera* camera() { return nullptr; }
vww::MemoryProbe* memory_probe() { return &g_memory; }
}  // namespace board

int main() {
  board::begin();
  vww_app::setup(board_id());
  for (;;) vww_app::poll();
}
