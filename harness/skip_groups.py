"""Skip reasons that name the third-party piece a test went without, and one line that sums them.

A green test run says nothing about the tests it skipped. The real-firmware tests need a
TFLM tree, the EEMBC tests the official MLPerf Tiny runner, others QEMU, an ARM compiler,
Renode, Chromium or a board; on a machine without them those tests skip, and a reader of
CI must see that at once rather than find it in a page of ``-ra`` lines. So every such
skip reason starts with a tag, ``[needs GROUP]`` (built by :func:`needs`), and the pytest
plugin ends the run with :func:`summary_line` over the reasons it actually saw: which
groups were skipped and how many tests each, or that none were.

The tags are read back from the skip reasons, never from a list of what is installed:
the line reports what did not run, not what a probe guesses.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

TFLM_TREE = "TFLM tree"
MLPERF_RUNNER = "MLPerf Tiny runner"
REFERENCE_MODELS = "MLPerf reference models"
QEMU = "QEMU"
ARM_COMPILER = "ARM compiler"
HOST_COMPILER = "cmake/g++"
CLANG = "clang++"
RENODE = "Renode"
CHROMIUM = "Chromium"
PLATFORMIO = "PlatformIO"
TENSORFLOW = "TensorFlow"
PYCOCOTOOLS = "pycocotools"
LABGRID = "labgrid"
SER2NET = "ser2net"
BOARD = "a board"

TAG = re.compile(r"\[needs ([^\]]+)\]")

#: executable -> group, for reasons built from a list of tools that are not on PATH
TOOL_GROUPS = {
    "qemu-system-arm": QEMU,
    "arm-none-eabi-gcc": ARM_COMPILER,
    "arm-none-eabi-g++": ARM_COMPILER,
    "arm-none-eabi-size": ARM_COMPILER,
    "cmake": HOST_COMPILER,
    "g++": HOST_COMPILER,
    "make": HOST_COMPILER,
    "clang++": CLANG,
    "renode": RENODE,
    "chromium": CHROMIUM,
    "pio": PLATFORMIO,
    "ser2net": SER2NET,
}

#: what a one-line harness error names -> group (checked in order; first match wins)
_MESSAGE_GROUPS = (
    ("TFLM tree", TFLM_TREE),
    ("arm-none-eabi", ARM_COMPILER),
    ("qemu-system-arm", QEMU),
    ("Renode", RENODE),
    ("PlatformIO", PLATFORMIO),
    ("cmake", HOST_COMPILER),
    ("g++", HOST_COMPILER),
)


def needs(group: str, why: str) -> str:
    """A skip reason tagged with the group whose absence caused it."""
    return f"[needs {group}] {why}"


def tools_missing(tools: Iterable[str], why: str = "") -> str:
    """``[needs QEMU] [needs ARM compiler] qemu-system-arm, arm-none-eabi-g++ not installed...``."""
    absent = list(tools)
    groups = list(dict.fromkeys(TOOL_GROUPS.get(t, t) for t in absent))
    tags = " ".join(f"[needs {g}]" for g in groups)
    return f"{tags} {', '.join(absent)} not installed{why}"


def needs_from_message(message: str) -> str:
    """A harness error's one line (a tool or tree that is missing) tagged with its group.

    Used where a skip passes on a ``ToolMissing`` raised deep in a build: the message
    names the piece, so the group is read from it; a message naming none stays untagged.
    """
    if TAG.search(message):
        return message
    for needle, group in _MESSAGE_GROUPS:
        if needle in message:
            return needs(group, message)
    return message


def groups_of(reason: str) -> list[str]:
    """The groups a skip reason is tagged with (none for an ordinary skip)."""
    return TAG.findall(reason)


def summary_line(reasons: Iterable[str]) -> str:
    """One line: the groups skipped for want of third-party code or tools, most tests first."""
    counts: Counter[str] = Counter()
    for reason in reasons:
        for group in dict.fromkeys(groups_of(reason)):
            counts[group] += 1
    if not counts:
        return "third-party code and tools: no test skipped for want of them"
    parts = [f"{group} ({n} test{'s' if n != 1 else ''})"
             for group, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return ("NOT RUN for want of third-party code or tools: " + ", ".join(parts)
            + " (README: Optional third-party pieces)")
