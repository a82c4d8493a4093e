"""Running PlatformIO for the firmware, with the failure that matters said in one line.

PlatformIO installs a platform (toolchain, framework, libraries) from its registry the
first time an environment is built. Where that registry cannot be reached, ``pio run``
retries for about a minute and then prints a page of traceback. This module checks the
two facts that decide it beforehand, in well under a few seconds: is the platform already
installed locally, and if not, does the registry answer a TCP connect. Only then does it
run PlatformIO, always with a timeout.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ToolMissing

log = logging.getLogger(__name__)

REGISTRY_HOST = "api.registry.platformio.org"
REGISTRY_PORT = 443
PROBE_TIMEOUT_S = 3.0
CONFIG_TIMEOUT_S = 60.0
BUILD_TIMEOUT_S = 1800.0
UPLOAD_TIMEOUT_S = 300.0


def pio_executable() -> str:
    """The ``pio`` command, or ToolMissing with how to get it."""
    for name in ("pio", "platformio"):
        found = shutil.which(name)
        if found:
            return found
    raise ToolMissing("PlatformIO is not installed (pip install platformio)")


def core_dir() -> Path:
    """PlatformIO's home (``PLATFORMIO_CORE_DIR``, default ~/.platformio)."""
    env = os.environ.get("PLATFORMIO_CORE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".platformio"


def platform_installed(platform: str) -> bool:
    """Whether ``platform`` (e.g. ``nordicnrf52`` or ``nordicnrf52@10.5.0``) is installed."""
    name = platform.split("@", 1)[0].strip().rsplit("/", 1)[-1]
    folder = core_dir() / "platforms"
    if not folder.is_dir():
        return False
    return any(p.name == name or p.name.startswith(f"{name}@") for p in folder.iterdir())


def registry_address() -> tuple[str, int]:
    """Where the registry is probed: ``HIL_PIO_REGISTRY`` (``host:port``), else PlatformIO's.

    The override lets a test suite stand an unreachable registry on a loopback port, so
    that tests never send a packet off the machine.
    """
    value = os.environ.get("HIL_PIO_REGISTRY", "")
    host, sep, port = value.rpartition(":")
    if sep and host and port.isdigit():
        return host, int(port)
    return REGISTRY_HOST, REGISTRY_PORT


def registry_reachable(host: str | None = None, port: int | None = None,
                       timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A TCP connect to the registry within ``timeout`` seconds (DNS included)."""
    if host is None or port is None:
        host, port = registry_address()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class EnvConfig:
    """The settings of one ``[env:NAME]`` after PlatformIO resolved ``extends`` and ``[env]``."""

    name: str
    options: dict[str, Any]

    @property
    def platform(self) -> str:
        return str(self.options.get("platform", ""))


def project_config(firmware_dir: Path, timeout: float = CONFIG_TIMEOUT_S) -> dict[str, EnvConfig]:
    """Every environment of the project, as ``pio project config`` resolves them (offline)."""
    exe = pio_executable()
    try:
        proc = subprocess.run(
            [exe, "project", "config", "-d", str(firmware_dir), "--json-output"],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolMissing(f"`pio project config` did not answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise ConfigError(f"PlatformIO rejects {firmware_dir}/platformio.ini: {last[-1] if last else '?'}")
    envs: dict[str, EnvConfig] = {}
    for section, items in json.loads(proc.stdout):
        if section.startswith("env:"):
            name = section[4:]
            envs[name] = EnvConfig(name, {k: v for k, v in items})
    return envs


def env_config(firmware_dir: Path, env: str) -> EnvConfig:
    envs = project_config(firmware_dir)
    if env not in envs:
        raise ConfigError(f"platformio.ini has no environment {env!r} (has: {', '.join(sorted(envs))})")
    return envs[env]


def ensure_buildable(firmware_dir: Path, env: str) -> EnvConfig:
    """Fail in one line, within seconds, where PlatformIO could only hang on its registry."""
    cfg = env_config(firmware_dir, env)
    platform = cfg.platform
    if not platform:
        raise ConfigError(f"environment {env!r} names no platform")
    if not platform_installed(platform) and not registry_reachable():
        raise ToolMissing(
            f"PlatformIO cannot reach its registry to install platform {platform}; "
            "build on a machine with internet access"
        )
    return cfg


def run(firmware_dir: Path, env: str, targets: tuple[str, ...] = (), upload_port: str | None = None,
        timeout: float = BUILD_TIMEOUT_S) -> None:
    """``pio run -d firmware -e ENV [-t T] [--upload-port P]``, its output logged, with a timeout."""
    cmd = [pio_executable(), "run", "-d", str(firmware_dir), "-e", env]
    for t in targets:
        cmd += ["-t", t]
    if upload_port:
        cmd += ["--upload-port", upload_port]
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        what = "upload" if "upload" in targets else "build"
        raise ToolMissing(f"PlatformIO {what} of {env} did not finish within {timeout:.0f} s") from None
    for line in proc.stdout.splitlines():
        log.debug("pio: %s", line)
    if proc.returncode != 0:
        raise ToolMissing(f"PlatformIO failed for {env}: {_failure_line(proc.stdout + proc.stderr)}")


def _failure_line(text: str) -> str:
    """The most telling line of a failed PlatformIO run (compiler error, missing package)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for marker in ("error:", "Error:", "UnknownPackageError", "HTTPClientError", "Could not"):
        for ln in lines:
            if marker in ln:
                return ln[:240]
    return lines[-1][:240] if lines else "no output"
