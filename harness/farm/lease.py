"""Holding a place for a run: acquire (by name or by tags, waiting with a bound), find its
serial port, release on every way out.

A place's serial port is exported by ser2net on the exporter's host, on a TCP port chosen
when the place is acquired; a restarted exporter serves it on another one. So the host
and port are read after every acquire, never stored for reuse, and what the run records
(``run.json`` ``place``) is the place's name plus where it was this time.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, LinkError
from harness.farm.client import FarmClient, PlaceBusy, PlaceView, ResourceView, connected
from harness.farm.serial_check import rfc2217_client

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

#: How often a waiting acquire looks for a free place again (labgrid's own ``reserve
#: --wait`` polls once a second; the coordinator pushes place changes in between).
POLL_S = 0.5
#: How long an acquired place may take to publish its serial port (ser2net starting).
PORT_READY_S = 10.0
SERIAL_CLASSES = ("NetworkSerialPort",)


@dataclass(frozen=True)
class PlaceQuery:
    """A place by name (``nano33-a``) or any place whose tags match (``board=nano33,lab=x``)."""

    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> PlaceQuery:
        text = text.strip()
        if not text:
            raise ConfigError("--place needs a place name or tags such as board=nano33")
        if "=" not in text:
            return cls(name=text)
        tags: dict[str, str] = {}
        for pair in text.split(","):
            key, sep, value = pair.strip().partition("=")
            if not sep or not key or not value:
                raise ConfigError(f"--place {text!r}: '{pair}' is not a tag such as board=nano33")
            tags[key] = value
        return cls(tags=tags)

    def matches(self, place: PlaceView) -> bool:
        return place.name == self.name if self.name is not None else place.has_tags(self.tags)

    def __str__(self) -> str:
        return self.name if self.name is not None else ",".join(f"{k}={v}" for k, v in self.tags.items())


@dataclass(frozen=True)
class SerialEndpoint:
    """Where an acquired place's serial port is reachable now, as a pyserial URL."""

    place: str
    resource: ResourceView
    host: str
    port: int
    url: str
    forwarded: bool  # reached through an SSH forward (isolated exporter or LG_PROXY)

    def record(self, coordinator: str, tags: dict[str, str]) -> dict[str, Any]:
        """What run.json keeps: the place, its tags, the exporter host and the resource."""
        return {
            "name": self.place, "tags": dict(tags), "coordinator": coordinator,
            "exporter": self.resource.exporter, "exporter_host": self.resource.params.get("host"),
            "resource": self.resource.path, "url": self.url, "forwarded": self.forwarded,
            "acquired_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def serial_endpoint(client: FarmClient, place: str, *, ready_s: float = PORT_READY_S) -> SerialEndpoint:
    """The serial port of an acquired place, waiting (bounded) for ser2net to publish it.

    A resource whose exporter is gone makes the place orphaned: that is one line naming
    the exporter, not a connection attempt to a port nobody serves.
    """
    deadline = time.monotonic() + ready_s
    while True:
        resources = client.place_resources(place)
        serial = [r for r in resources if r.cls in SERIAL_CLASSES]
        if not resources:
            matches = client.place(place).matches
            if not matches:
                raise ConfigError(f"place {place} has no resource matches: add one for its serial port "
                                  "(labgrid-client -p PLACE add-match EXPORTER/GROUP/NetworkSerialPort)")
            exporters = ", ".join(sorted({m.split("/")[0] for m in matches}))
            raise LinkError(f"place {place} is orphaned: no exporter serves {', '.join(matches)} "
                            f"(is exporter {exporters} running?)")
        if not serial:
            classes = ", ".join(sorted({r.cls for r in resources}))
            raise ConfigError(f"place {place} has no serial port (NetworkSerialPort); it holds {classes}")
        res = serial[0]
        if not res.params and not res.avail:
            raise LinkError(f"place {place} is orphaned: exporter {res.exporter} no longer serves "
                            f"{res.path} (exporter stopped or disconnected)")
        if res.avail and res.params.get("port"):
            return _endpoint(place, res)
        if time.monotonic() >= deadline:
            state = "is not available" if not res.avail else "has no TCP port yet"
            raise LinkError(f"place {place}: serial port {res.path} {state} after {ready_s:g} s "
                            f"(is exporter {res.exporter} running?)")
        time.sleep(POLL_S / 5)


def _endpoint(place: str, res: ResourceView) -> SerialEndpoint:
    """Host and port through labgrid's proxy manager, which sets up the SSH forward an
    isolated exporter (``labgrid-exporter --isolated``) or ``LG_PROXY`` asks for."""
    from labgrid.resource.serialport import NetworkSerialPort
    from labgrid.util.proxy import proxymanager

    protocol = str(res.params.get("protocol") or "rfc2217")
    probe = NetworkSerialPort(target=None, name=res.name, host=str(res.params["host"]),
                              port=int(res.params["port"]), speed=int(res.params.get("speed") or 115200),
                              protocol=protocol)
    probe.extra = res.extra
    host, port = proxymanager.get_host_and_port(probe)
    forwarded = (host, port) != (probe.host, probe.port)
    if protocol == "raw":
        url = f"socket://{host}:{port}"
    else:
        # a pty or USB port behind ser2net answers no modem-control option: without
        # ign_set_control pyserial waits for it and fails ("timeout ... option 'control'")
        url = f"rfc2217://{host}:{port}?ign_set_control"
    return SerialEndpoint(place, res, str(host), int(port), url, forwarded)


def acquire_matching(client: FarmClient, query: PlaceQuery, *, wait_s: float) -> PlaceView:
    """Acquire the named place, or any free place matching the tags, waiting up to ``wait_s``.

    A place held by someone else ends the wait with one line naming the holder; a place
    this user already holds (from a run that died without releasing it) is said to be
    stale, with the command that frees it, since labgrid cannot tell a live holder from a
    dead one.
    """
    deadline = time.monotonic() + max(0.0, wait_s)
    logged = False
    while True:
        candidates = [p for p in client.places() if query.matches(p)]
        if not candidates:
            what = f"named {query.name!r}" if query.name else f"tagged {query}"
            raise ConfigError(f"no place {what} at coordinator {client.address}")
        free = sorted((p for p in candidates if p.acquired is None), key=lambda p: p.name)
        for place in free:
            try:
                client.acquire(place.name)
            except PlaceBusy:
                continue  # another client was quicker: try the next one
            log.info("acquired place %s", place.name)
            return client.place(place.name)
        if time.monotonic() >= deadline:
            raise _busy_error(client, query, candidates, wait_s)
        if not logged:
            holders = ", ".join(f"{p.name} by {p.acquired}" for p in candidates)
            log.warning("waiting up to %g s for place %s (held: %s)", wait_s, query, holders)
            logged = True
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def _busy_error(client: FarmClient, query: PlaceQuery, held: list[PlaceView], wait_s: float) -> ConfigError:
    me = client.identity
    mine = [p for p in held if p.acquired == me]
    if query.name is not None and mine:
        return ConfigError(
            f"place {query.name} is already held by you ({me}), stale from an earlier run? "
            f"free it with: labgrid-client -x {client.address} -p {query.name} release")
    waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
    holders = ", ".join(f"{p.name} by {p.acquired}" for p in held)
    if query.name is not None:
        return PlaceBusy(query.name, held[0].acquired, "busy", suffix=waited)
    return ConfigError(f"no free place tagged {query}{waited}: all are held ({holders})")


@dataclass
class PlaceLease:
    """A place this process holds, with its serial port as found at acquire time."""

    client: FarmClient
    place: PlaceView
    endpoint: SerialEndpoint

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def record(self) -> dict[str, Any]:
        return self.endpoint.record(self.client.address, self.place.tags)


def release_quietly(client: FarmClient, name: str) -> None:
    """Release, bounded; a failure is logged (the run's own outcome is what to report)."""
    try:
        client.release(name)
        log.info("released place %s", name)
    except Exception as exc:  # noqa: BLE001 - releasing must never hide the run's error
        log.warning("could not release place %s: %s", name, exc)


@contextmanager
def hold_place(query: PlaceQuery | str, *, coordinator: str | None = None, wait_s: float = 0.0,
               client: FarmClient | None = None) -> Iterator[PlaceLease]:
    """Acquire a place for the ``with`` block and release it on every way out.

    Ctrl-C, SIGTERM (which the bench turns into an exception), errors and a normal end all
    leave through ``finally``; a client made here is closed there too.
    """
    q = PlaceQuery.parse(query) if isinstance(query, str) else query
    rfc2217_client()  # a serial package broken by the pyserial/pyserial-labgrid overlap: one line
    with ExitStack() as stack:
        c = client or stack.enter_context(connected(coordinator))
        place = acquire_matching(c, q, wait_s=wait_s)
        try:
            lease = PlaceLease(c, place, serial_endpoint(c, place.name))
            log.info("place %s: serial port %s (%s)", place.name, lease.url, lease.endpoint.resource.path)
            yield lease
        finally:
            release_quietly(c, place.name)
