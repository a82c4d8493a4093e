"""Hardware-in-the-loop benchmarking harness for TinyML Visual Wake Words models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vww-hil-harness")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
