"""The ``native`` backend: the firmware built for the host, served on a pseudo-terminal."""

from harness.devices.native.device import NativeDevice, NativeOptions

__all__ = ["NativeDevice", "NativeOptions"]
