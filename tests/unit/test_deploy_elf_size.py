"""ELF section sums agree with GNU size (Berkeley format) on a real Cortex-M object."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.deploy.elf_size import elf_size
from harness.errors import ToolMissing
from harness.skip_groups import tools_missing

GCC = shutil.which("arm-none-eabi-gcc") or ""
SIZE = shutil.which("arm-none-eabi-size") or ""

SOURCE = """
#include <stdint.h>
const uint8_t table[3000] = {1, 2, 3};
uint8_t initialised[700] = {9};
uint8_t zeroed[5000];
int main(void) { return table[zeroed[1]] + initialised[2]; }
"""


@pytest.mark.skipif(not GCC or not SIZE, reason=tools_missing(["arm-none-eabi-gcc", "arm-none-eabi-size"]))
def test_matches_gnu_size(tmp_path: Path) -> None:
    src = tmp_path / "fw.c"
    src.write_text(SOURCE)
    elf = tmp_path / "fw.elf"
    subprocess.run(
        [GCC, "-mcpu=cortex-m4", "-mthumb", "-O1", "--specs=nosys.specs", "-o", str(elf), str(src)],
        check=True, capture_output=True, timeout=120,
    )
    out = subprocess.run([SIZE, "-B", str(elf)], check=True, capture_output=True, text=True, timeout=60)
    text, data, bss = (int(x) for x in out.stdout.splitlines()[1].split()[:3])
    size = elf_size(elf)
    assert (size.text, size.data, size.bss) == (text, data, bss)
    assert size.flash == text + data and size.ram == data + bss
    assert size.text >= 3000 and size.data >= 700 and size.bss >= 5000


def test_missing_or_foreign_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="no firmware ELF"):
        elf_size(tmp_path / "firmware.elf")
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"not an elf at all" * 10)
    with pytest.raises(ToolMissing, match="not a readable ELF"):
        elf_size(junk)
