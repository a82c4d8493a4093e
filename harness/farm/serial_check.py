"""Which ``serial`` package is installed, and whether its RFC 2217 client is whole.

labgrid depends on ``pyserial-labgrid``, a patched pyserial that installs the same
``serial`` package as pyserial: whichever was installed last owns the files, and ``pip
check`` sees no conflict. Either one's RFC 2217 client serves the harness (it opens
``rfc2217://host:port?ign_set_control``), but uninstalling one of the two removes files
the other still lists, leaving a ``serial`` package without ``rfc2217``. This module says
which distribution's files are in place and fails in one line, with the repair, when the
client is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from harness.errors import ToolMissing

REPAIR = "pip install --force-reinstall --no-deps pyserial-labgrid (or pyserial)"


@dataclass(frozen=True)
class SerialClient:
    distribution: str  # the distribution whose rfc2217.py is the one installed
    version: str
    path: Path


def _owner(path: Path) -> tuple[str, str]:
    """The installed distribution whose RECORD lists ``path`` with its current content."""
    import base64
    import hashlib

    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    fallback = ("unknown", "?")
    for name in ("pyserial-labgrid", "pyserial"):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or []:
            if f.name == path.name and f.parent.name == "serial" and Path(str(dist.locate_file(f))) == path:
                if f.hash is not None and f.hash.value == digest:
                    return name, dist.version
                fallback = (name, dist.version)
    return fallback


def rfc2217_client() -> SerialClient:
    """The installed RFC 2217 client; ToolMissing in one line when it is broken or absent."""
    try:
        import serial.rfc2217 as rfc2217
    except ImportError as exc:
        raise ToolMissing(f"the serial package has no working RFC 2217 client ({exc}); {REPAIR}") from None
    if not hasattr(rfc2217, "Serial") or not hasattr(rfc2217.Serial, "from_url"):
        raise ToolMissing(f"serial.rfc2217 at {rfc2217.__file__} is incomplete; {REPAIR}")
    path = Path(str(rfc2217.__file__)).resolve()
    name, version = _owner(path)
    return SerialClient(name, version, path)
