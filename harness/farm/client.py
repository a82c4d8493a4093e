"""A blocking, time-bounded client of a labgrid coordinator.

labgrid's :class:`~labgrid.remote.client.ClientSession` is asyncio over gRPC and keeps
its view of places and resources up to date only while its event loop runs. A bench
holds a place for minutes while doing blocking serial I/O, so the session lives here on
its own event loop in a daemon thread: the coordinator's updates (a place taken, an
exporter gone, a serial port moved) arrive during the run, and every call from the
bench's thread is a coroutine submitted to that loop with a deadline, so no wait on the
coordinator is unbounded.

labgrid is imported only when a client is made: without the ``farm`` extra the rest of
the harness works and asking for a place is one line saying what to install.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from harness.errors import ConfigError, LinkError, ToolMissing

log = logging.getLogger(__name__)

T = TypeVar("T")

#: labgrid's own default coordinator address and the variable its client reads.
DEFAULT_COORDINATOR = "127.0.0.1:20408"
COORDINATOR_ENV = "LG_COORDINATOR"
#: The bound on one call to the coordinator (connect, a view).
CALL_TIMEOUT_S = 10.0
#: The bound on acquire and release: the coordinator waits up to 10 s for each exporter
#: (a stopped host) and then goes on, so a client must wait longer than that.
PLACE_CALL_TIMEOUT_S = 25.0
INSTALL_HINT = "pip install -e '.[farm]'"


def coordinator_address(option: str | None) -> str:
    """The coordinator to use: the option, else ``LG_COORDINATOR`` as labgrid's client reads it."""
    return option or os.environ.get(COORDINATOR_ENV) or DEFAULT_COORDINATOR


def require_labgrid() -> None:
    """Fail in one line when labgrid (the ``farm`` extra) is not installed."""
    try:
        import labgrid.remote.client  # noqa: F401
    except ImportError as exc:
        raise ToolMissing(f"board farms need labgrid ({exc}); install it with {INSTALL_HINT}") from None


class _LabgridRootRecords(logging.Filter):
    """labgrid's client logs to the root logger (a coordinator gone, with a traceback);
    the harness reports those failures itself in one line, so they go to debug here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "/labgrid/" not in record.pathname.replace("\\", "/"):
            return True
        log.debug("labgrid: %s", record.getMessage())
        return False


def _quiet_labgrid_root_logging() -> None:
    root = logging.getLogger()
    if not any(isinstance(f, _LabgridRootRecords) for f in root.filters):
        root.addFilter(_LabgridRootRecords())


@dataclass(frozen=True)
class PlaceView:
    """A place as the coordinator last described it (a snapshot, safe to keep)."""

    name: str
    tags: dict[str, str]
    acquired: str | None  # "host/user" of the holder, or None when free
    matches: list[str]
    acquired_resources: list[tuple[str, str, str, str]]
    reservation: str | None = None

    def has_tags(self, wanted: dict[str, str]) -> bool:
        return all(self.tags.get(k) == v for k, v in wanted.items())


@dataclass(frozen=True)
class ResourceView:
    """One exported resource of an acquired place: where it is and whether it is there."""

    exporter: str
    group: str
    cls: str
    name: str
    avail: bool
    params: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"{self.exporter}/{self.group}/{self.cls}/{self.name}"


class FarmClient:
    """One connection to a labgrid coordinator, usable from any thread; close it when done."""

    def __init__(self, address: str | None = None, *, timeout_s: float = CALL_TIMEOUT_S) -> None:
        require_labgrid()
        self.address = coordinator_address(address)
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="labgrid-client", daemon=True)
        self._thread.start()
        self._session: Any = None
        _quiet_labgrid_root_logging()
        try:
            self._session = self._call(self._start_session, what=f"connect to coordinator {self.address}")
        except ConfigError:
            self._stop_loop()
            raise LinkError(f"cannot reach the labgrid coordinator at {self.address}: is it running? "
                            f"(--coordinator or {COORDINATOR_ENV})") from None
        except BaseException:
            self._stop_loop()
            raise

    # -- plumbing ----------------------------------------------------------------------
    def _call(self, make: Callable[[], Awaitable[T]], *, what: str, timeout_s: float | None = None) -> T:
        """Run a coroutine on the session's loop, bounded; labgrid's errors become one line."""
        from labgrid.remote.client import Error as LabgridError

        limit = self.timeout_s if timeout_s is None else timeout_s

        async def bounded() -> T:
            return await asyncio.wait_for(make(), limit)

        future = asyncio.run_coroutine_threadsafe(bounded(), self._loop)
        try:
            return future.result(limit + 1.0)
        except (asyncio.TimeoutError, FutureTimeout):
            future.cancel()
            raise LinkError(
                f"labgrid coordinator {self.address}: no answer within {limit:g} s to {what}"
            ) from None
        except LabgridError as exc:
            raise ConfigError(f"labgrid coordinator {self.address}: {exc}") from None
        except ConnectionError as exc:
            raise LinkError(f"labgrid coordinator {self.address}: {what}: {exc}") from None

    async def _start_session(self) -> Any:
        from labgrid.remote.client import ClientSession
        from labgrid.util.proxy import proxymanager

        address = proxymanager.get_grpc_address(self.address, default_port=20408)
        session = ClientSession(address, asyncio.get_running_loop())
        await session.start()
        return session

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    def close(self) -> None:
        """Stop the session and its thread (bounded; a dead coordinator does not hang it)."""
        session, self._session = self._session, None
        if session is not None:
            async def stop() -> None:
                await session.stop()
                await session.close()

            try:
                self._call(stop, what="disconnect", timeout_s=3.0)
            except Exception as exc:  # noqa: BLE001 - closing must not raise over the real error
                log.debug("closing the labgrid session: %s", exc)
        self._stop_loop()

    def __enter__(self) -> FarmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """False once the coordinator's stream has ended (coordinator stopped or unreachable)."""
        return self._session is not None and not self._session.stopping.is_set()

    @property
    def labgrid_session(self) -> Any:
        """labgrid's own ``ClientSession`` (its loop runs in this client's thread)."""
        return self._session

    @property
    def identity(self) -> str:
        """``host/user`` as the coordinator records this client's acquisitions."""
        s = self._session
        return f"{s.gethostname()}/{s.getuser()}"

    # -- views -------------------------------------------------------------------------
    def places(self) -> list[PlaceView]:
        """Every place, as of the coordinator's latest update."""

        async def read() -> list[PlaceView]:
            await self._session.sync_with_coordinator()
            return [_place_view(p) for p in self._session.places.values()]

        return self._call(read, what="list places")

    def place(self, name: str) -> PlaceView:
        for p in self.places():
            if p.name == name:
                return p
        raise ConfigError(f"no place named {name!r} at coordinator {self.address}")

    def place_resources(self, name: str) -> list[ResourceView]:
        """The resources an acquired place holds, each with its exporter's current view.

        A resource whose exporter has gone (an orphaned place) is listed with
        ``avail=False`` and no parameters, so the caller can say which exporter is missing.
        """

        async def read() -> list[ResourceView]:
            await self._session.sync_with_coordinator()
            place = self._session.places.get(name)
            if place is None:
                raise ConfigError(f"no place named {name!r} at coordinator {self.address}")
            out = []
            for exporter, group, cls, res_name in place.acquired_resources:
                entry = self._session.resources.get(exporter, {}).get(group, {}).get(res_name)
                if entry is None or not entry.data:
                    out.append(ResourceView(exporter, group, cls, res_name, False, {}))
                    continue
                out.append(ResourceView(exporter, group, entry.cls, res_name, bool(entry.avail),
                                        dict(entry.args), dict(entry.extra or {})))
            return out

        return self._call(read, what=f"read the resources of place {name}")

    # -- actions -----------------------------------------------------------------------
    def acquire(self, name: str) -> None:
        """Acquire a place for this host/user; a place that is taken raises ``PlaceBusy``."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        async def acquire() -> None:
            try:
                await self._session.stub.AcquirePlace(pb2.AcquirePlaceRequest(placename=name))
            except grpc.aio.AioRpcError as exc:
                await self._session.sync_with_coordinator()
                place = self._session.places.get(name)
                holder = place.acquired if place is not None else None
                raise PlaceBusy(name, holder, exc.details() or str(exc.code())) from None
            await self._session.sync_with_coordinator()

        self._call(acquire, what=f"acquire place {name}", timeout_s=PLACE_CALL_TIMEOUT_S)

    def release(self, name: str) -> None:
        """Release a place this client holds."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        async def release() -> None:
            try:
                await self._session.stub.ReleasePlace(pb2.ReleasePlaceRequest(placename=name))
            except grpc.aio.AioRpcError as exc:
                raise ConfigError(f"could not release place {name}: {exc.details()}") from None
            await self._session.sync_with_coordinator()

        self._call(release, what=f"release place {name}", timeout_s=PLACE_CALL_TIMEOUT_S)


    def add_place(self, name: str, matches: list[str], tags: dict[str, str]) -> None:
        """Create a place with resource matches (``exporter/group/cls[/name]``) and tags,
        as ``labgrid-client create``, ``add-match`` and ``set-tags`` do, in one session."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        async def add() -> None:
            stub = self._session.stub
            try:
                await stub.AddPlace(pb2.AddPlaceRequest(name=name))
                for pattern in matches:
                    await stub.AddPlaceMatch(pb2.AddPlaceMatchRequest(placename=name, pattern=pattern))
                await stub.SetPlaceTags(pb2.SetPlaceTagsRequest(placename=name, tags=tags))
            except grpc.aio.AioRpcError as exc:
                raise ConfigError(f"could not create place {name}: {exc.details()}") from None
            await self._session.sync_with_coordinator()

        self._call(add, what=f"create place {name}")


    def delete_place(self, name: str) -> None:
        """Remove a place from the coordinator (``labgrid-client delete``)."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        async def delete() -> None:
            try:
                await self._session.stub.DeletePlace(pb2.DeletePlaceRequest(name=name))
            except grpc.aio.AioRpcError as exc:
                raise ConfigError(f"could not delete place {name}: {exc.details()}") from None
            await self._session.sync_with_coordinator()

        self._call(delete, what=f"delete place {name}")


_shared: dict[str, tuple[FarmClient, int]] = {}
_shared_lock = threading.Lock()


@contextmanager
def connected(address: str | None = None) -> Iterator[FarmClient]:
    """This process's one client of a coordinator, shared by threads and released by the last.

    The coordinator keys client streams by their TCP peer, and gRPC lets channels of one
    process share a connection: a second session from the same process is refused. So
    parallel nightly cells, and labgrid's own drivers, use this one session.
    """
    addr = coordinator_address(address)
    with _shared_lock:
        client, users = _shared.get(addr, (None, 0))
        if client is None or not client.connected:
            client, users = FarmClient(addr), 0
        _shared[addr] = (client, users + 1)
    try:
        yield client
    finally:
        with _shared_lock:
            held, users = _shared[addr]
            if users <= 1:
                del _shared[addr]
                held.close()
            else:
                _shared[addr] = (held, users - 1)


class PlaceBusy(ConfigError):
    """The place is held by someone else (or cannot be acquired right now)."""

    def __init__(self, name: str, holder: str | None, detail: str, *, suffix: str = "") -> None:
        who = f"held by {holder}" if holder else detail
        super().__init__(f"place {name} is {who}{suffix}")
        self.place = name
        self.holder = holder


def _place_view(p: Any) -> PlaceView:
    return PlaceView(
        name=p.name, tags=dict(p.tags), acquired=p.acquired or None, matches=[repr(m) for m in p.matches],
        acquired_resources=[tuple(r) for r in p.acquired_resources],  # type: ignore[misc]
        reservation=p.reservation or None,
    )
