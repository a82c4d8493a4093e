"""Device backends: one interface (:class:`~harness.devices.base.Device`), several ways to reach a board.

Backends register themselves when their module is imported; :func:`create_device`
imports them lazily so that asking for ``sim`` does not load emulator support.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.boards import Board
from harness.devices.base import _BACKENDS, Device, DeviceInfo, Inference, register_backend
from harness.errors import ConfigError

#: backend name -> module that registers it
BACKEND_MODULES = {
    "sim": "harness.devices.sim",
    "serial": "harness.devices.serial_device",
    "native": "harness.devices.native",
    "qemu": "harness.devices.qemu",
    "renode": "harness.devices.renode",
}


def backend_names() -> list[str]:
    return list(BACKEND_MODULES)


def create_device(backend: str, board: Board, **options: Any) -> Device:
    """A closed device of the given backend for ``board``; open it with ``with``."""
    module = BACKEND_MODULES.get(backend)
    if module is None:
        raise ConfigError(f"unknown backend {backend!r} (known: {', '.join(BACKEND_MODULES)})")
    if backend not in _BACKENDS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                raise ConfigError(f"backend {backend!r} is not available in this build") from None
            raise
    return _BACKENDS[backend](board, **options)


__all__ = ["Device", "DeviceInfo", "Inference", "create_device", "backend_names", "register_backend"]
