// Forced into every translation unit by platformio.ini (`-include`), before any source's
// own first line, so that the C++ standard headers below are complete before the Arduino
// core's function-like macros exist.
//
// Why: the Arduino mbed core's Arduino.h defines `abs(x)` as a macro (ArduinoCore-mbed
// 3.5.4 and 4.x, cores/arduino/Arduino.h). Under C++17, <chrono> declares
// `abs(duration<Rep, Period>)`, and the macro turns that declaration into "macro "abs"
// passed 2 arguments" wherever <chrono> is first reached after Arduino.h - and the core
// itself reaches it after Arduino.h (Wire.h -> mbed.h -> rtos/Kernel.h -> <chrono>), as do
// mbed's callbacks through <functional>. Every libstdc++ header has an include guard, so
// once it is complete here the later #include is a no-op and the macro never meets it.
// libstdc++ 8 (PlatformIO's toolchain) and 12 (Debian) declare the same overload.
//
// Guarded by __cplusplus: the flag reaches C and assembler sources too, where this is empty.
// tests/unit/test_firmware_core_macros.py compiles every environment's C++ flags against the
// core's macros and fails if this header stops being forced in.
#pragma once

#ifdef __cplusplus
#include <chrono>
#include <functional>
#endif
