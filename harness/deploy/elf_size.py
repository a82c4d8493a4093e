"""Flash and RAM use of a firmware image, read from its ELF.

The figures a build reports must be the linker's, not an estimate: they come from the
allocated sections of the ELF (pyelftools, no toolchain needed), summed the way GNU
``size`` does in its Berkeley format: ``text`` is allocated read-only content (code and
constants), ``data`` is initialised writable data (stored in flash, copied to RAM),
``bss`` is zero-initialised RAM. Flash = text + data, static RAM = data + bss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import ToolMissing

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHT_NOBITS = "SHT_NOBITS"


@dataclass(frozen=True)
class ElfSize:
    text: int
    data: int
    bss: int

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss

    def to_dict(self) -> dict[str, int]:
        return {"text": self.text, "data": self.data, "bss": self.bss,
                "flash": self.flash, "ram": self.ram}


def elf_size(path: Path) -> ElfSize:
    """Berkeley-style section sums of the ELF at ``path``."""
    try:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
    except ImportError:
        raise ToolMissing("pyelftools is not installed (pip install pyelftools)") from None
    if not path.is_file():
        raise ToolMissing(f"no firmware ELF at {path}: the build did not produce one")
    text = data = bss = 0
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            for section in elf.iter_sections():
                flags = int(section["sh_flags"])
                if not flags & SHF_ALLOC:
                    continue
                size = int(section["sh_size"])
                if section["sh_type"] == SHT_NOBITS:
                    bss += size
                elif flags & SHF_WRITE:
                    data += size
                else:
                    text += size
    except ELFError as exc:
        raise ToolMissing(f"{path} is not a readable ELF file: {exc}") from None
    return ElfSize(text=text, data=data, bss=bss)
