"""Errors a user can cause.

Every exception derived from :class:`HarnessError` is turned by the CLI and the
pytest plugin into one clear line and a non-zero exit code, never a traceback:
a wrong port or a model too large for the board is a user's mistake, not a bug.
"""

from __future__ import annotations

#: ``hil bench`` exit status when the run completed but at least one image is an error row
EXIT_IMAGES_FAILED = 5
#: exit status of a run stopped by Ctrl-C or SIGTERM (rows saved; resume it); 128 + SIGINT
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """Base class for errors whose message is shown to the user as one line."""

    exit_code: int = 2


class ConfigError(HarnessError):
    """A board profile, zoo entry, matrix file or option is wrong or missing."""


class DataError(HarnessError):
    """A data set, manifest or image cannot be read or used."""


class ModelError(HarnessError):
    """A model file is missing, corrupt, not int8, or uses unsupported ops."""


class FitError(ModelError):
    """A model does not fit the flash or RAM of the board it is meant for."""


class LinkError(HarnessError):
    """The serial link failed: no port, no answer, or a peer that is not our firmware."""

    exit_code = 3


class DeviceError(HarnessError):
    """The device answered with an error frame, or reported facts we cannot accept."""

    exit_code = 3


class ToolMissing(HarnessError):
    """An external tool (PlatformIO, Renode, QEMU, a compiler) is not installed or unreachable."""

    exit_code = 4


class BuildError(HarnessError):
    """A firmware build ran and failed (compiler error, missing source, time-out)."""

    exit_code = 4
