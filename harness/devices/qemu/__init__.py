"""The ``qemu`` backend: the firmware's Cortex-M4 build on QEMU's mps2-an386."""

from harness.devices.qemu.device import (
    BOOTCFG_ADDR,
    BOOTCFG_MAGIC,
    BOOTCFG_SIZE,
    QemuDevice,
    QemuOptions,
    boot_config,
    qemu_command,
)

__all__ = [
    "BOOTCFG_ADDR", "BOOTCFG_MAGIC", "BOOTCFG_SIZE", "QemuDevice", "QemuOptions", "boot_config",
    "qemu_command",
]
