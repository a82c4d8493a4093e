"""Every board environment's C++ flags survive the Arduino core's function-like macros.

The Arduino mbed core (the Nano's) defines ``abs(x)`` as a macro in ``Arduino.h`` and then
reaches ``<chrono>`` through its own headers (``Wire.h`` -> ``mbed.h`` -> ``rtos/Kernel.h``);
under C++17 ``<chrono>`` declares ``abs(duration<Rep, Period>)`` and the macro breaks it
("macro "abs" passed 2 arguments"), which stopped every Nano build on the real core. The
fix lives in ``firmware/platformio.ini`` (a forced include, ``include/std_before_arduino.h``).

This check needs nothing fetched: it derives, from ``platformio.ini`` as PlatformIO resolves
it, the C++ command line PlatformIO would run for each environment (the core's own C++
flags, minus ``build_unflags``, plus ``build_flags`` sorted the way PlatformIO's SCons
``ParseFlags`` sorts them), and compiles a translation unit that first defines the core's
macros exactly as the core does, then includes ``<chrono>``, ``<functional>`` and the
firmware's headers.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.deploy import pio
from harness.paths import firmware_dir

PIO = shutil.which("pio") or ""

# What Arduino.h leaves behind in C++, copied in substance (definitions, order) from each core.
# ArduinoCore-mbed 3.5.4 (also 4.x): cores/arduino/Arduino.h includes api/ArduinoAPI.h
# (ArduinoCore-API 1.4.0: api/Common.h's macros and, in C++, min/max as templates), then
# undefines stdlib's abs and defines its own.
MBED_CORE_MACROS = r"""
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#define PI          3.1415926535897932384626433832795
#define DEG_TO_RAD  0.017453292519943295769236907684886
#define RAD_TO_DEG  57.295779513082320876798154814105
#ifndef constrain
#define constrain(amt,low,high) ((amt)<(low)?(low):((amt)>(high)?(high):(amt)))
#endif
#ifndef radians
#define radians(deg) ((deg)*DEG_TO_RAD)
#endif
#ifndef degrees
#define degrees(rad) ((rad)*RAD_TO_DEG)
#endif
#ifndef sq
#define sq(x) ((x)*(x))
#endif
#define lowByte(w) ((uint8_t) ((w) & 0xff))
#define highByte(w) ((uint8_t) ((w) >> 8))
#define bitRead(value, bit) (((value) >> (bit)) & 0x01)
#define bitSet(value, bit) ((value) |= (1UL << (bit)))
#define bitClear(value, bit) ((value) &= ~(1UL << (bit)))
#ifndef bit
#define bit(b) (1UL << (b))
#endif
template<class T, class L>
auto min(const T& a, const L& b) -> decltype((b < a) ? b : a) { return (b < a) ? b : a; }
template<class T, class L>
auto max(const T& a, const L& b) -> decltype((b < a) ? b : a) { return (a < b) ? b : a; }
#define word(...) makeWord(__VA_ARGS__)
#ifdef abs
#undef abs
#endif
#define abs(x) ((x)>0?(x):-(x))
#define interrupts()        __enable_irq()
#define noInterrupts()      __disable_irq()
"""

# arduino-esp32 2.0.x, cores/esp32/Arduino.h: the STL's abs/round/min/max are used in C++,
# the Arduino ones get a leading underscore.
ESP32_CORE_MACROS = r"""
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#define DEG_TO_RAD 0.017453292519943295769236907684886
#define RAD_TO_DEG 57.295779513082320876798154814105
#define _min(a,b) ((a)<(b)?(a):(b))
#define _max(a,b) ((a)>(b)?(a):(b))
#define _abs(x) ((x)>0?(x):-(x))
#define constrain(amt,low,high) ((amt)<(low)?(low):((amt)>(high)?(high):(amt)))
#define _round(x)     ((x)>=0?(long)((x)+0.5):(long)((x)-0.5))
#define radians(deg) ((deg)*DEG_TO_RAD)
#define degrees(rad) ((rad)*RAD_TO_DEG)
#define sq(x) ((x)*(x))
#define interrupts() sei()
#define noInterrupts() cli()
#include <algorithm>
#include <cmath>
using std::abs;
using std::isinf;
using std::isnan;
using std::max;
using std::min;
using ::round;
"""


@dataclass(frozen=True)
class Core:
    """One platform's Arduino core: its compiler, its own C++ flags, and its macros."""

    compiler: str
    cxxflags: tuple[str, ...]
    macros: str
    # Flags of the real target the stand-in compiler does not understand (Xtensa's -m...).
    drop_machine_flags: bool = False


CORES = {
    # ArduinoCore-mbed 3.5.4, variants/ARDUINO_NANO33BLE/cxxflags.txt (the flags that shape
    # parsing and the language; the rest are optimisation and section flags).
    "nordicnrf52": Core(
        compiler="arm-none-eabi-g++",
        cxxflags=("-fno-rtti", "-std=gnu++14", "-Os", "-Wall", "-Wextra",
                  "-Wno-missing-field-initializers", "-Wno-unused-parameter", "-fno-exceptions",
                  "-funsigned-char", "-mcpu=cortex-m4", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16",
                  "-mthumb"),
        macros=MBED_CORE_MACROS,
    ),
    # arduino-esp32 2.0.x as PlatformIO's espressif32 6.x builds it: gnu++11, no RTTI. No
    # Xtensa compiler is in any registry here, so the host's g++ stands in.
    "espressif32": Core(
        compiler="g++",
        cxxflags=("-std=gnu++11", "-fno-rtti", "-Os", "-Wall"),
        macros=ESP32_CORE_MACROS,
        drop_machine_flags=True,
    ),
}


def _parse(flags: list[str], project_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """Sort flags into (CXXFLAGS, CCFLAGS, defines) as SCons's ``ParseFlags`` does for PlatformIO.

    Only the forms platformio.ini uses are known; any other form fails the test, so a new kind
    of flag is looked at rather than silently mis-sorted.
    """
    cxx: list[str] = []
    cc: list[str] = []
    defines: list[str] = []
    tokens = [t for line in flags for t in shlex.split(line)]
    it = iter(tokens)
    for tok in it:
        if tok.startswith("-std="):
            if "++" in tok:
                cxx.append(tok)  # C's -std= goes to CFLAGS, which C++ never sees
        elif tok == "-include":
            path = next(it).replace("${PROJECT_DIR}", str(project_dir))
            cc += ["-include", path.replace("$PROJECT_DIR", str(project_dir))]
        elif tok.startswith("-D"):
            defines.append(tok)
        elif tok.startswith(("-U", "-m", "-f", "-W", "-O", "-g")):
            cc.append(tok)
        else:
            raise AssertionError(f"this check does not know how PlatformIO sorts {tok!r}")
    return cxx, cc, defines


def pio_cxx_command(core: Core, env: pio.EnvConfig, project_dir: Path) -> list[str]:
    """The C++ compile flags PlatformIO would use for ``env``: core flags, unflags, build flags.

    PlatformIO's C++ command is ``$CXX -o $TARGET -c $CXXFLAGS $CCFLAGS $_CCCOMCOM``: the core
    puts its flags in both scopes, ``build_unflags`` removes matching flags from every scope,
    ``build_flags`` are appended to the scope ``ParseFlags`` gives them.
    """
    unflags = set(t for line in env.options.get("build_unflags", []) for t in shlex.split(line))
    core_flags = [f for f in core.cxxflags if f not in unflags]
    cxx, cc, defines = _parse(list(env.options.get("build_flags", [])), project_dir)
    flags = core_flags + cxx + cc + defines
    if core.drop_machine_flags:
        flags = [f for f in flags if not f.startswith("-m")]
    return flags


def _translation_unit(core: Core, with_engine: bool) -> str:
    headers = ["<chrono>", "<functional>", '"vww/camera.h"', '"vww/engine.h"', '"vww/frame.h"',
               '"vww/port.h"', '"vww/profiler.h"', '"vww/protocol.h"', '"vww/server.h"',
               '"vww/timer.h"', '"vww/eembc.h"', '"board.h"', '"image_prep.h"',
               '"camera_input.h"']
    if with_engine:
        headers.append('"vww_app.h"')
    body = "\n".join(f"#include {h}" for h in headers)
    return f"// Arduino.h, as the core leaves it\n{core.macros}\n// then the firmware\n{body}\n"


def _include_dirs(with_engine: bool) -> list[str]:
    fw = firmware_dir()
    dirs = [fw / "lib" / "vww_core" / "include", fw / "lib" / "vww_tflm" / "include", fw / "src"]
    if with_engine:
        from harness.deploy.tflm_tree import find_tree

        src = find_tree().src
        dirs += [src, src / "third_party" / "flatbuffers" / "include"]
    return [f"-I{d}" for d in dirs]


def _tflm_tree_found() -> bool:
    from harness.deploy.tflm_tree import find_tree
    from harness.errors import HarnessError

    try:
        find_tree()
    except HarnessError:
        return False
    return True


def _compile(core: Core, flags: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    compiler = shutil.which(core.compiler)
    if compiler is None:
        pytest.skip(f"{core.compiler} is not installed")
    with_engine = _tflm_tree_found()
    tu = tmp_path / "core_macros.cpp"
    tu.write_text(_translation_unit(core, with_engine))
    # The engine's headers without the port's Arduino glue, as the emulator builds compile them.
    engine = ["-DVWW_TFLM_BARE_METAL", "-DARDUINO"] if with_engine else []
    return subprocess.run([compiler, *flags, *engine, *_include_dirs(with_engine), "-fsyntax-only",
                           str(tu)], capture_output=True, text=True, timeout=240)


def _environments() -> dict[str, pio.EnvConfig]:
    if not PIO:
        pytest.skip("PlatformIO (pio) is not installed")
    return pio.project_config(firmware_dir())


def _core_of(env: pio.EnvConfig) -> Core:
    name = env.platform.split("@")[0].split("/")[-1]
    assert name in CORES, f"{env.name}: no core macros known for platform {env.platform}"
    return CORES[name]


@pytest.mark.parametrize("env_name", ["nano33ble", "nano33ble_renode", "nano33ble_eembc",
                                      "esp32cam", "esp32cam_eembc"])
def test_each_environment_compiles_after_the_cores_macros(env_name: str, tmp_path: Path) -> None:
    env = _environments()[env_name]
    core = _core_of(env)
    flags = pio_cxx_command(core, env, firmware_dir())
    assert "-std=gnu++17" in flags and not {"-std=gnu++14", "-std=gnu++11"} & set(flags)
    proc = _compile(core, flags, tmp_path)
    errors = [line for line in proc.stderr.splitlines() if "error" in line][:3]
    assert proc.returncode == 0, f"{env_name}: {' '.join(flags)}\n" + "\n".join(errors)


def test_without_the_forced_include_the_mbed_core_breaks_chrono(tmp_path: Path) -> None:
    """The check can fail: the Nano's flags minus the fix reproduce the real core's error."""
    env = _environments()["nano33ble"]
    core = _core_of(env)
    flags = pio_cxx_command(core, env, firmware_dir())
    i = flags.index("-include")
    assert Path(flags[i + 1]).is_file(), flags[i + 1]
    proc = _compile(core, flags[:i] + flags[i + 2:], tmp_path)
    assert proc.returncode != 0
    assert 'macro "abs" passed 2 arguments' in proc.stderr
