"""Device backends: one interface (:class:`~harness.devices.base.Device`), several ways to reach a board.

Each backend is a package (``sim``, ``serial``, ``native``, ``qemu``, ``renode``) that
registers one factory under its public name with its typed options
(:class:`~harness.devices.base.DeviceOptions` subclasses) when imported;
:func:`create_device` imports them lazily so that asking for ``sim`` does not load
emulator support.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.boards import Board
from harness.devices.base import (
    BACKENDS,
    Backend,
    Device,
    DeviceInfo,
    DeviceOptions,
    Inference,
    register_backend,
)
from harness.errors import ConfigError

#: backend name -> package that registers it
BACKEND_MODULES = {
    "sim": "harness.devices.sim",
    "serial": "harness.devices.serial",
    "native": "harness.devices.native",
    "qemu": "harness.devices.qemu",
    "renode": "harness.devices.renode",
}


def backend_names() -> list[str]:
    return list(BACKEND_MODULES)


def get_backend(name: str) -> Backend:
    """The registered backend ``name``, importing its package on first use."""
    module = BACKEND_MODULES.get(name)
    if module is None:
        raise ConfigError(f"unknown backend {name!r} (known: {', '.join(BACKEND_MODULES)})")
    if name not in BACKENDS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                raise ConfigError(f"backend {name!r} is not available in this build") from None
            raise
    return BACKENDS[name]


def create_device(backend: str, board: Board, options: DeviceOptions | None = None, **values: Any) -> Device:
    """A closed device of the given backend for ``board``; open it with ``with``.

    Give either the backend's options object or its fields as keywords.
    """
    return get_backend(backend).create(board, options, **values)


__all__ = [
    "Backend", "Device", "DeviceInfo", "DeviceOptions", "Inference", "backend_names", "create_device",
    "get_backend", "register_backend",
]
