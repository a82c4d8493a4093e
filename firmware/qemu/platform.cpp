// mps2-an386 UART, SysTick timer and memory probe; see platform.h.
#include "platform.h"

#include "bootcfg.h"

extern "C" {
extern uint32_t _sstack, _estack, _ebss, _ram_start, _ram_end, _flash_size, _flash_used;
void SysTick_Handler();
}

namespace {

constexpr uint32_t kData = 0x00;
constexpr uint32_t kState = 0x04;
constexpr uint32_t kCtrl = 0x08;
constexpr uint32_t kBaudDiv = 0x10;
constexpr uint32_t kStateTxFull = 1u << 0;
constexpr uint32_t kStateRxFull = 1u << 1;
constexpr uint32_t kCtrlTxEn = 1u << 0;
constexpr uint32_t kCtrlRxEn = 1u << 1;

struct SysTickRegs {
  volatile uint32_t ctrl;
  volatile uint32_t load;
  volatile uint32_t val;
  volatile uint32_t calib;
};
SysTickRegs* const kSysTick = reinterpret_cast<SysTickRegs*>(0xE000E010u);
volatile uint32_t* const kIcsr = reinterpret_cast<volatile uint32_t*>(0xE000ED04u);
constexpr uint32_t kReload = 0x00FFFFFFu;
constexpr uint32_t kIcsrPendStSet = 1u << 26;

volatile uint32_t g_wraps = 0;

}  // namespace

extern "C" void SysTick_Handler() { g_wraps = g_wraps + 1; }

namespace mps2 {

void CmsdkUart::init() {
  reg(kBaudDiv) = 16;  // the smallest divisor the UART accepts; QEMU ignores the rate
  reg(kCtrl) = kCtrlTxEn | kCtrlRxEn;
}

size_t CmsdkUart::read(uint8_t* buf, size_t max) {
  size_t n = 0;
  while (n < max && (reg(kState) & kStateRxFull) != 0) buf[n++] = static_cast<uint8_t>(reg(kData));
  return n;
}

void CmsdkUart::write(const uint8_t* buf, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    while ((reg(kState) & kStateTxFull) != 0) {
    }
    reg(kData) = buf[i];
  }
}

namespace {

// ARM semihosting operations (ARM "Semihosting for AArch32 and AArch64", v2).
constexpr uint32_t kSysOpen = 0x01;
constexpr uint32_t kSysWrite = 0x05;
constexpr uint32_t kSysRead = 0x06;
constexpr uint32_t kOpenRead = 0;    // "r"
constexpr uint32_t kOpenWrite = 4;   // "w"

// One semihosting call: r0 = operation, r1 = its parameter block; the result in r0.
int32_t semihost(uint32_t op, const void* args) {
  register uint32_t r0 __asm("r0") = op;
  register const void* r1 __asm("r1") = args;
  __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return static_cast<int32_t>(r0);
}

int open_console(uint32_t mode) {
  static const char kTt[] = ":tt";
  const uint32_t args[3] = {reinterpret_cast<uintptr_t>(kTt), mode, sizeof kTt - 1};
  return semihost(kSysOpen, args);
}

}  // namespace

bool SemihostConsole::init() {
  in_ = open_console(kOpenRead);
  out_ = open_console(kOpenWrite);
  return in_ >= 0 && out_ >= 0;
}

// Hands out what an earlier call buffered; otherwise one SYS_READ of up to 1 KiB, which
// returns as soon as the console holds any byte (it answers with the count NOT read).
size_t SemihostConsole::read(uint8_t* buf, size_t max) {
  if (head_ == tail_) {
    const uint32_t args[3] = {static_cast<uint32_t>(in_), reinterpret_cast<uintptr_t>(buf_),
                              sizeof buf_};
    const int32_t left = semihost(kSysRead, args);
    if (left < 0 || static_cast<size_t>(left) >= sizeof buf_) return 0;
    head_ = 0;
    tail_ = sizeof buf_ - static_cast<size_t>(left);
  }
  size_t n = tail_ - head_;
  if (n > max) n = max;
  for (size_t i = 0; i < n; ++i) buf[i] = buf_[head_ + i];
  head_ += n;
  return n;
}

void SemihostConsole::write(const uint8_t* buf, size_t n) {
  while (n > 0) {
    const uint32_t args[3] = {static_cast<uint32_t>(out_), reinterpret_cast<uintptr_t>(buf),
                              static_cast<uint32_t>(n)};
    const int32_t left = semihost(kSysWrite, args);
    if (left < 0 || static_cast<size_t>(left) >= n) return;  // the host took nothing: drop
    buf += n - static_cast<size_t>(left);
    n = static_cast<size_t>(left);
  }
}

vww::Port& open_link(uint16_t bootcfg_flags) {
  static CmsdkUart uart(0x40004000u);
  static SemihostConsole console;
  if ((bootcfg_flags & kBootFlagSemihost) != 0 && console.init()) return console;
  uart.init();
  return uart;
}

void SysTickTimer::start() {
  kSysTick->load = kReload;
  kSysTick->val = 0;
  kSysTick->ctrl = 0x7;  // processor clock, interrupt on wrap, enabled
}

uint64_t SysTickTimer::now() {
  uint32_t wraps;
  uint32_t val;
  bool pending;
  do {
    wraps = g_wraps;
    val = kSysTick->val;
    pending = (*kIcsr & kIcsrPendStSet) != 0;
  } while (wraps != g_wraps);
  // A wrap whose interrupt has not run yet: the counter already restarted from the top.
  if (pending && val > kReload / 2) ++wraps;
  const uint64_t ticks = (static_cast<uint64_t>(wraps) << 24) + (kReload - val);
  return ticks * kInstructionsPerTick;
}

// Reads SysTick's counter once every 41 instructions: each read lands one instruction
// later in the 40-instruction tick than the one before, so the first pair of reads that
// are two ticks apart has its second read exactly on a tick edge. Whatever ran before
// (a variable number of UART polls), the code after this returns at the same phase of
// the tick, and a measurement of the same work gives the same count. Interrupts are off
// so that the SysTick handler cannot shift a read; the loop leaves after at most 40
// iterations (about 1,600 instructions), or 80 when the counter reloads meanwhile.
void SysTickTimer::align() {
  __asm volatile(
      "cpsid i\n"
      "ldr r1, [%0]\n"
      "1:\n"
      ".rept 36\n"
      "nop\n"
      ".endr\n"
      "ldr r2, [%0]\n"
      "sub r3, r1, r2\n"
      "mov r1, r2\n"
      "cmp r3, #2\n"
      "bne 1b\n"
      "cpsie i\n"
      :
      : "r"(&kSysTick->val)
      : "r1", "r2", "r3", "cc", "memory");
}

void Mps2Memory::read(vww::MemoryStats* stats) {
  const uint32_t* p = &_sstack;
  while (p < &_estack && *p == 0xDEADBEEFu) ++p;
  const uint32_t ram_start = reinterpret_cast<uintptr_t>(&_ram_start);
  const uint32_t ram_end = reinterpret_cast<uintptr_t>(&_ram_end);
  stats->ram_total = ram_end - ram_start;
  stats->ram_free = ram_end - reinterpret_cast<uintptr_t>(&_estack);
  stats->stack_used = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&_estack) -
                                            reinterpret_cast<uintptr_t>(p));
  stats->flash_total = reinterpret_cast<uintptr_t>(&_flash_size);
  stats->flash_used = reinterpret_cast<uintptr_t>(&_flash_used);
}

}  // namespace mps2
