"""Flash and RAM cost of the firmware's portable core on Cortex-M4, from the ARM ELF.

Builds firmware/qemu (the core + test-double engine + mps2-an386 start-up, no TFLM, no
model) with arm-none-eabi-gcc -Os and attributes every linked input section to the
object it came from (the linker map), so the core's own bytes are separated from the
test double, the platform code and newlib:

* flash: text + rodata + data of the core objects (framing, server), and with the C
  library routines they pull in (memcpy, memmove, memset, strlen);
* RAM beyond the protocol buffers it announces (rx frame buffer, tx staging buffer): the
  Server object, the profiler table and the stack high-water mark measured on QEMU after
  an upload, an inference and a profile fetch.

Targets (issue 5): core < 16 KiB flash, < 4 KiB RAM beyond the buffers.

    python benchmarks/bench_core_size.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

FLASH_TARGET = 16 * 1024
RAM_TARGET = 4 * 1024
CORE_OBJECTS = ("frame.o", "server.o")
LIBC_ROUTINES = ("memcpy", "memmove", "memset", "strlen")

_SECTION = re.compile(r"^ (\.\S+|COMMON)\s*$")
_ENTRY = re.compile(r"^ (\.\S+|COMMON)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)")


def section_kind(name: str) -> str | None:
    if name.startswith((".text", ".rodata")):
        return "text"
    if name.startswith(".data"):
        return "data"
    if name.startswith((".bss", "COMMON")):
        return "bss"
    return None


def parse_map(path: Path) -> dict[str, dict[str, int]]:
    """Bytes per object file (basename, or archive(member)) and section kind, from a GNU ld map."""
    sizes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    text = path.read_text(errors="replace")
    body = text.split("Linker script and memory map", 1)[-1]
    pending: str | None = None
    for line in body.splitlines():
        m = _ENTRY.match(line)
        if m:
            name = m.group(1) or pending
            pending = None
            addr, size, origin = int(m.group(2), 16), int(m.group(3), 16), m.group(4)
            kind = section_kind(name or "")
            if kind and size and addr and not origin.startswith("0x"):
                sizes[Path(origin).name][kind] += size
            continue
        s = _SECTION.match(line)
        pending = s.group(1) if s else None
    return sizes


def symbol_sizes(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", "-S", "-C", str(elf)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4:
            sizes[parts[3].replace("(anonymous namespace)::", "")] = int(parts[1], 16)
    return sizes


def measured_stack() -> int | None:
    """Stack high-water mark after a session on QEMU (None where QEMU is missing)."""
    import shutil

    import numpy as np

    from harness.boards import load_board
    from harness.devices import create_device

    if shutil.which("qemu-system-arm") is None:
        return None
    with create_device("qemu", load_board("nano33"), test_double=True) as dev:
        spec = dev.info.inputs[0]
        dev.infer(np.zeros(spec.shape, np.int8), warmups=1, repeats=2, profile=True)
        dev.profile()
        return int(dev.memory().stack_used)


def main() -> int:
    from harness.deploy.emulators import build_qemu_firmware, qemu_build_dir
    from harness.errors import HarnessError

    try:
        elf = build_qemu_firmware()
    except HarnessError as exc:
        print(f"bench_core_size: {exc}", file=sys.stderr)
        return 1
    sizes = parse_map(qemu_build_dir() / "vww_qemu.map")
    syms = symbol_sizes(elf)

    def total(objs: list[str], kind: str) -> int:
        return sum(sizes[o].get(kind, 0) for o in objs)

    core = list(CORE_OBJECTS)
    libc = [o for o in sizes if any(o.endswith(f"({r}.o)") or f"-{r}.o)" in o or f"({r}" in o
                                    for r in LIBC_ROUTINES)]
    whole = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True,
                           timeout=60, check=True).stdout.splitlines()[1].split()
    print(f"ELF {elf}")
    print(f"  whole image (core + test double + mps2 start-up + newlib): text {whole[0]} B, "
          f"data {whole[1]} B, bss {whole[2]} B (bss includes the 16 KiB stack and the test "
          f"double's 64 KiB input buffer)")
    print("  per object (text+rodata / data / bss):")
    for name in sorted(sizes, key=lambda o: -sum(sizes[o].values())):
        s = sizes[name]
        if sum(s.values()) >= 16:
            print(f"    {name:40s} {s.get('text', 0):6d} {s.get('data', 0):5d} {s.get('bss', 0):6d}")

    core_text, core_data, core_bss = total(core, "text"), total(core, "data"), total(core, "bss")
    libc_text = total(libc, "text")
    flash = core_text + core_data
    flash_with_libc = flash + libc_text
    server = syms.get("g_server_mem", 0)
    profiler = syms.get("g_profiler", 0)
    rx, tx = syms.get("g_rx", 0), syms.get("g_tx", 0)
    stack = measured_stack()
    ram = core_data + core_bss + server + profiler + (stack or 0)

    print("\nportable core (frame.o + server.o):")
    print(f"  text+rodata {core_text} B, data {core_data} B, bss {core_bss} B")
    print(f"  flash: {flash} B = {flash / FLASH_TARGET:.0%} of the {FLASH_TARGET} B target "
          f"({flash_with_libc} B = {flash_with_libc / FLASH_TARGET:.0%} with "
          f"{', '.join(LIBC_ROUTINES)} from newlib: {libc_text} B)")
    print(f"  protocol buffers announced (not counted): rx {rx} B (max_payload 1024 + 10), tx {tx} B")
    print(f"  RAM beyond them: Server object {server} B + profiler table {profiler} B (64 layers) "
          f"+ static data {core_data + core_bss} B + stack high-water "
          + (f"{stack} B" if stack is not None else "not measured (no QEMU)"))
    print(f"  = {ram} B = {ram / RAM_TARGET:.0%} of the {RAM_TARGET} B target")
    ok = flash_with_libc < FLASH_TARGET and ram < RAM_TARGET
    print(f"\nflash ratio {flash_with_libc / FLASH_TARGET:.2f}, RAM ratio {ram / RAM_TARGET:.2f}: "
          + ("both under target" if ok else "OVER TARGET"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
