"""Board farms: run benches, pytest sessions and nightly cells on labgrid places.

A lab shares its boards through a labgrid coordinator; each board is a *place* with tags
(``board=nano33``) whose serial port an exporter serves with ser2net over RFC 2217. This
package is the harness's only contact with labgrid:

* ``client`` - a blocking, time-bounded connection to the coordinator;
* ``lease`` - acquire a place (by name or by tags, waiting with a bound), read its serial
  port after every acquire, release it on every way out;
* ``drivers`` - power, reset and flashing through the place's labgrid drivers;
* ``schedule`` - spread nightly cells over the free places that match their board;
* ``serial_check`` - that the ``serial`` package left by labgrid's install still has a
  working RFC 2217 client.

The bench, the pytest plugin and nightly reach it through :func:`open_place` (the
bench's ``PlaceOpener``) and :class:`~harness.farm.schedule.PlacePool`; labgrid itself is
imported only when a place is asked for.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.bench.request import BenchRequest
    from harness.farm.lease import PlaceLease


def open_place(request: BenchRequest) -> AbstractContextManager[PlaceLease]:
    """Hold the place a bench request names (``run_bench(..., place_opener=open_place)``)."""
    from harness.farm.lease import hold_place

    assert request.place is not None
    return hold_place(request.place, coordinator=request.coordinator, wait_s=request.place_wait)


__all__ = ["open_place"]
