"""The ``renode`` backend: the real firmware ELF in Renode, behind a socket terminal."""

from harness.devices.renode.device import RenodeDevice, RenodeOptions, renode_executable

__all__ = ["RenodeDevice", "RenodeOptions", "renode_executable"]
