// Reset and exception vectors for the Cortex-M4 of QEMU's mps2-an386.
//
// Reset copies .data, zeroes .bss, paints the stack (so GET_MEMORY can report its high
// water mark), enables the FPU (the build uses the hard-float ABI), runs the C++ static
// constructors and calls main(). No C library start-up files are used.
#include <stdint.h>
#include <string.h>

extern "C" {
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();
int main();
void Reset_Handler();
void Default_Handler();
void SysTick_Handler();
void __cxa_pure_virtual() {
  for (;;) {
  }
}
}

constexpr uint32_t kStackPaint = 0xDEADBEEFu;

extern "C" void Default_Handler() {
  for (;;) {
  }
}

extern "C" void Reset_Handler() {
  memcpy(&_sdata, &_sidata, static_cast<size_t>(&_edata - &_sdata) * 4);
  memset(&_sbss, 0, static_cast<size_t>(&_ebss - &_sbss) * 4);
  // Paint the stack below the current frame (this function runs near its top).
  uint32_t* sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t* p = &_sstack; p < sp - 16; ++p) *p = kStackPaint;
  volatile uint32_t* cpacr = reinterpret_cast<volatile uint32_t*>(0xE000ED88u);
  *cpacr |= 0xFu << 20;  // CP10 and CP11: full access to the FPU
  __asm volatile("dsb\n isb");
  for (void (**f)() = __init_array_start; f < __init_array_end; ++f) (*f)();
  main();
  for (;;) {
  }
}

using Vector = void (*)();

__attribute__((section(".isr_vector"), used)) const Vector kVectors[16] = {
    reinterpret_cast<Vector>(&_estack),
    Reset_Handler,
    Default_Handler,  // NMI
    Default_Handler,  // HardFault
    Default_Handler,  // MemManage
    Default_Handler,  // BusFault
    Default_Handler,  // UsageFault
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    Default_Handler,  // SVCall
    Default_Handler,  // DebugMonitor
    nullptr,
    Default_Handler,  // PendSV
    SysTick_Handler,
};
