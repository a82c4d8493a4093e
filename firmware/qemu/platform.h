// The mps2-an386 platform pieces the core needs: UART0 as a vww::Port, SysTick as a
// vww::Timer counting instructions under `-icount shift=0`, and a GET_MEMORY probe.
#pragma once

#include <stdint.h>

#include "vww/port.h"
#include "vww/server.h"
#include "vww/timer.h"

namespace mps2 {

// SYSCLK of the AN385/AN386 FPGA images (QEMU hw/arm/mps2.c: SYSCLK_FRQ 25 MHz).
constexpr uint32_t kSysClkHz = 25000000;
// With -icount shift=0 QEMU advances virtual time by 1 ns per instruction, and SysTick on
// the processor clock ticks every 40 ns of virtual time: 40 instructions per tick.
constexpr uint32_t kInstructionsPerTick = 1000000000u / kSysClkHz;

// ARM CMSDK APB UART (QEMU hw/char/cmsdk-apb-uart.c); UART0 at 0x40004000 on AN386.
class CmsdkUart final : public vww::Port {
 public:
  explicit CmsdkUart(uintptr_t base) : base_(base) {}
  void init();
  size_t read(uint8_t* buf, size_t max) override;
  void write(const uint8_t* buf, size_t n) override;

 private:
  volatile uint32_t& reg(uint32_t offset) const {
    return *reinterpret_cast<volatile uint32_t*>(base_ + offset);
  }
  uintptr_t base_;
};

// SysTick (24 bits, reloaded) extended to 64 bits by counting wraps in its interrupt.
class SysTickTimer final : public vww::Timer {
 public:
  void start();
  uint64_t now() override;
  uint32_t hz() const override { return kSysClkHz; }
  vww::TimerKind kind() const override { return vww::TimerKind::kInstructions; }
  // Phase-locks to a SysTick edge (see platform.cpp) so that counts are deterministic.
  void align() override;
};

class Mps2Memory final : public vww::MemoryProbe {
 public:
  void read(vww::MemoryStats* stats) override;
};

}  // namespace mps2
