"""The ``serial`` backend: a real board (or anything speaking a host protocol) on a port."""

from harness.devices.serial.device import SerialDevice, SerialOptions, locate_port, present_ports

__all__ = ["SerialDevice", "SerialOptions", "locate_port", "present_ports"]
