"""The parts of run.json that describe where and with what a run was measured.

A number in a report is only worth as much as what it says about its conditions: the
board, the firmware and model hashes, the data set hash, the host and the versions of the
libraries that produced the reference outputs. These builders collect them.
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import socket
import sys
from collections.abc import Sequence
from typing import Any

from harness.boards import Board, check_fit
from harness.devices.base import DeviceInfo
from harness.link.protocol import UNKNOWN_U32, LayerTime, Memory
from harness.models.tflite_file import ModelInfo

log = logging.getLogger(__name__)

_VERSION_PACKAGES = {
    "harness": "vww-hil-harness",
    "tflite_micro": "tflite-micro",
    "ai_edge_litert": "ai-edge-litert",
    "numpy": "numpy",
    "pyarrow": "pyarrow",
}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, dist in _VERSION_PACKAGES.items():
        try:
            out[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[key] = None
    return out


def host() -> dict[str, str]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }


def board_dict(board: Board) -> dict[str, Any]:
    return {
        "id": board.id,
        "name": board.name,
        "clock_hz": board.clock_hz,
        "ram_bytes": board.ram_bytes,
        "flash_bytes": board.flash_bytes,
        "psram_bytes": board.psram_bytes,
    }


def zoo_name(sha256: str) -> str | None:
    """The zoo entry whose file has this hash, so runs of a zoo model carry its name."""
    try:
        from harness.models.zoo import list_zoo

        return next((e.name for e in list_zoo() if e.sha256 == sha256), None)
    except Exception:  # a broken zoo entry must not stop a benchmark; the file name will do
        log.debug("zoo lookup failed", exc_info=True)
        return None


def model_dict(model: ModelInfo) -> dict[str, Any]:
    name = zoo_name(model.sha256) or (model.path.stem if model.path else "model")
    return {
        "path": str(model.path.resolve()) if model.path else None,
        "name": name,
        "sha256": model.sha256,
        "bytes": model.size,
    }


def _known(value: int) -> int | None:
    return None if value == UNKNOWN_U32 else int(value)


def memory_dict(board: Board, info: DeviceInfo, model: ModelInfo, mem: Memory | None) -> dict[str, Any]:
    """Arena and memory figures, from the device's MEMORY answer where it gave one."""
    arena_size = _known(mem.arena_size) if mem else None
    arena_used = _known(mem.arena_used) if mem else None
    arena_size = arena_size if arena_size is not None else info.arena_size
    arena_used = arena_used if arena_used is not None else info.arena_used
    input_bytes = sum(s.nbytes for s in info.inputs)
    fit = check_fit(board, model.size, arena_used or 0, input_bytes)
    out: dict[str, Any] = {
        "arena_size": arena_size,
        "arena_used": arena_used,
        "model_bytes": model.size,
        "input_bytes": input_bytes,
        "ram_bytes": board.ram_bytes,
        "flash_bytes": board.flash_bytes,
        "ram_for_arena": board.ram_for_arena,
        "flash_for_model": board.flash_for_model,
        "fits": fit.fits,
    }
    if mem is not None:
        for key in ("ram_total", "ram_free", "stack_used", "flash_total", "flash_used"):
            out[f"device_{key}"] = _known(getattr(mem, key))
    return out


def profile_list(
    layers: list[LayerTime], clock_hz: int, basis: Any = None, board_clock_hz: int = 0
) -> list[dict[str, Any]]:
    """Per-layer figures with their unit: cycles and a time, or instructions and an estimated time.

    For an instruction counter (QEMU) ``cycles`` keeps the raw count for old readers, while
    ``instructions`` names it and ``us`` is instructions x CPI / the board's clock (None without
    a CPI figure); ``us_estimated`` says whether ``us`` is an estimate.
    """
    from harness.units import estimated_us

    out = []
    for lt in layers:
        entry: dict[str, Any] = {"index": lt.index, "op": lt.op, "cycles": int(lt.cycles)}
        if basis is not None and basis.count_unit == "instructions":
            entry["instructions"] = int(lt.cycles)
            entry["us"] = estimated_us(float(lt.cycles), basis, board_clock_hz)
        else:
            entry["us"] = lt.cycles * 1e6 / clock_hz if clock_hz else None
        entry["unit"] = basis.count_unit if basis is not None else "cycles"
        entry["us_estimated"] = bool(basis.estimated) if basis is not None else None
        out.append(entry)
    return out


def latency_metrics(block: dict[str, Any] | None, counts: Sequence[Any]) -> dict[str, Any]:
    """The unit and source of the metrics' latency figures, and instruction percentiles for QEMU.

    ``latency_us_*`` are a time in microseconds (measured, or estimated when
    ``latency_estimated``), or None for an instruction counter without a CPI figure.
    """
    from harness.bench.metrics import percentile

    block = block or {}
    out: dict[str, Any] = {
        "latency_unit": block.get("time_unit"),
        "latency_estimated": block.get("estimated"),
        "latency_label": block.get("label"),
    }
    if block.get("count_unit") == "instructions":
        vals = [float(v) for v in counts if v is not None]
        out.update({f"instructions_p{q}": percentile(vals, q) for q in (50, 90, 99)})
    return out
