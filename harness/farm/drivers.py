"""Power, reset and flashing of a place through its labgrid drivers.

The place says what is attached (its resources); labgrid's drivers say how to use them.
This module picks the driver that fits what the place holds and calls it with a bound:

* power: a ``NetworkPowerPort`` (any of labgrid's power-switch models) through
  ``NetworkPowerDriver``;
* reset: a digital output wired to the reset line through ``DigitalOutputResetDriver``,
  else a power cycle when the place can switch power;
* flash: a ``NetworkUSBFlashableDevice`` through ``FlashScriptDriver``, which copies the
  script (for the Nano 33 BLE Sense a ``bossac`` wrapper, see docs/farm.md) and the
  firmware to the exporter and runs it there.

A place without a fitting resource gets one line naming what it does hold.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, LinkError
from harness.farm.client import FarmClient

log = logging.getLogger(__name__)

#: The bound on one driver action (a power switch's HTTP call, a flash script).
ACTION_TIMEOUT_S = 120.0
POWER_ACTIONS = ("on", "off", "cycle")
_DIGITAL_OUTPUTS = ("HttpDigitalOutput", "ModbusTCPCoil", "NetworkSysfsGPIO", "OneWirePIO",
                    "NetworkDeditecRelais8", "NetworkLXAIOBusPIO")


class PlaceDrivers:
    """The labgrid target of an acquired place, with its resources as labgrid made them.

    labgrid's ``RemotePlace`` resolves the place's resources through a client session;
    it is given this client's (the coordinator refuses a second stream from the same
    host/user, and the place is acquired by this one).
    """

    def __init__(self, place: str, client: FarmClient) -> None:
        from labgrid import Target
        from labgrid.remote.client import Error as LabgridError
        from labgrid.resource.remote import RemotePlace, RemotePlaceManager

        manager = RemotePlaceManager.get()
        manager.session = client.labgrid_session
        manager.loop = client.labgrid_session.loop
        self.place = place
        self.target = Target(place)
        try:
            RemotePlace(self.target, name=place)
        except LabgridError as exc:
            raise ConfigError(f"place {place}: {exc}") from None
        self.classes = sorted({type(r).__name__ for r in self.target.resources} - {"RemotePlace"})

    def _has(self, *classes: str) -> bool:
        return any(c in self.classes for c in classes)

    def _none(self, what: str) -> ConfigError:
        held = ", ".join(self.classes) or "nothing"
        return ConfigError(f"place {self.place} has no {what} (it holds {held}); see docs/farm.md")

    def _driver(self, cls_name: str, **kwargs: Any) -> Any:
        from labgrid.factory import target_factory

        cls = target_factory.drivers[cls_name]
        driver = cls(self.target, name=None, **kwargs)
        self.target.activate(driver)
        return driver

    def power(self, action: str) -> None:
        """Switch the place's power ``on``, ``off`` or ``cycle`` it."""
        if action not in POWER_ACTIONS:
            raise ConfigError(f"power action must be one of {', '.join(POWER_ACTIONS)}, not {action!r}")
        if not self._has("NetworkPowerPort"):
            raise self._none("power switch (NetworkPowerPort)")
        driver = self._driver("NetworkPowerDriver", delay=1.0)
        _bounded(getattr(driver, action), f"power {action} on place {self.place}")

    def reset(self) -> str:
        """Reset the board: its reset line where wired, else a power cycle; says which."""
        if self._has(*_DIGITAL_OUTPUTS):
            output = self._output_driver()
            self.target.activate(output)
            driver = self._driver("DigitalOutputResetDriver")
            _bounded(driver.reset, f"reset on place {self.place}")
            return "reset line"
        if self._has("NetworkPowerPort"):
            self.power("cycle")
            return "power cycle"
        raise self._none("reset or power driver (a digital output on the reset line, or NetworkPowerPort)")

    def _output_driver(self) -> Any:
        names = {"HttpDigitalOutput": "HttpDigitalOutputDriver", "ModbusTCPCoil": "ModbusCoilDriver",
                 "NetworkSysfsGPIO": "GpioDigitalOutputDriver", "OneWirePIO": "OneWirePIODriver",
                 "NetworkDeditecRelais8": "DeditecRelaisDriver", "NetworkLXAIOBusPIO": "LXAIOBusPIODriver"}
        cls = next(names[c] for c in _DIGITAL_OUTPUTS if c in self.classes)
        from labgrid.factory import target_factory

        return target_factory.drivers[cls](self.target, name=None)

    def flash(self, script: Path, firmware: Path) -> None:
        """Run ``script {device} {firmware}`` on the exporter through ``FlashScriptDriver``."""
        if not script.is_file():
            raise ConfigError(f"flash script {script} not found")
        if not firmware.is_file():
            raise ConfigError(f"firmware {firmware} not found")
        if not self._has("NetworkUSBFlashableDevice"):
            raise self._none("flashable device (NetworkUSBFlashableDevice)")
        from labgrid.util.managedfile import ManagedFile

        driver = self._driver("FlashScriptDriver")
        image = ManagedFile(str(firmware), driver.device)

        def run() -> None:
            image.sync_to_resource()
            driver.flash(script=str(script), args=["{device.devnode}", image.get_remote_path()])

        _bounded(run, f"flash on place {self.place}")


def _bounded(action: Callable[[], Any], what: str, timeout_s: float = ACTION_TIMEOUT_S) -> None:
    """Run a blocking labgrid call with a bound: some power backends set no timeout of their own."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="labgrid-driver", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise LinkError(f"{what}: no result within {timeout_s:g} s")
    if failure:
        exc = failure[0]
        raise LinkError(f"{what} failed: {type(exc).__name__}: {exc}") from None
    log.info("%s: done", what)
