// The mps2-an386 platform pieces the core needs: UART0 or the semihosting console as a
// vww::Port, SysTick as a vww::Timer counting instructions under `-icount shift=0`, and a
// GET_MEMORY probe.
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

// ARM semihosting's console (SYS_READ / SYS_WRITE on ":tt"), which QEMU connects to a
// chardev with `-semihosting-config enable=on,target=native,chardev=...`. QEMU's CMSDK UART
// holds one received byte and takes the next only on a turn of its main loop (~50 us of
// host time per byte); the console hands the guest up to 1 KiB per call, so an upload
// costs a few dozen calls instead of one main-loop turn per byte. Only under QEMU: on a
// board without a debugger the BKPT would fault. read() blocks until at least one byte
// is there (QEMU halts the CPU meanwhile), which the firmware's main loop allows: it does
// nothing but poll the server. Each call is one BKPT plus a few instructions of the port,
// never inside an inference, so the counted instructions of a measurement do not change.
class SemihostConsole final : public vww::Port {
 public:
  // Opens the console's input and output handles; false when QEMU refused them.
  bool init();
  size_t read(uint8_t* buf, size_t max) override;
  void write(const uint8_t* buf, size_t n) override;

 private:
  int in_ = -1;
  int out_ = -1;
  uint8_t buf_[1024];
  size_t head_ = 0;
  size_t tail_ = 0;
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

// The link the boot config names (bootcfg.h kBootFlagSemihost: the semihosting console;
// otherwise UART0 at 0x40004000), initialised. Without a boot config (flags 0) the UART.
vww::Port& open_link(uint16_t bootcfg_flags);

class Mps2Memory final : public vww::MemoryProbe {
 public:
  void read(vww::MemoryStats* stats) override;
};

}  // namespace mps2
