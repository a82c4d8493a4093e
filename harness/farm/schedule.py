"""Spread work items (nightly cells) over the free places whose tags match their board.

Each free place matching a board gets one worker thread; a worker takes the next item
for its board, runs it on its place, and takes another, so a place runs one item at a
time and places run in parallel. An item that fails on a place ends as that item's own
failure and retires the place for the rest of the night (a board that fell off its hub
should not eat every remaining cell); the other places carry on. Items whose board has no
free place, or whose places have all retired, end with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from harness.farm.client import connected
from harness.farm.lease import release_quietly

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

#: The place tag that names the board profile a place holds.
BOARD_TAG = "board"


@dataclass
class PlacePool(Generic[Item, Result]):
    """The free places of a coordinator, grouped by the board they hold.

    ``run_on(item, place)`` runs one item on a place (the place is acquired and released
    inside it); ``no_place(item, reason)`` is an item's result when no place can take it;
    ``failed(result)`` says whether the place should retire after that result.
    """

    coordinator: str | None
    run_on: Callable[[Item, str], Result]
    no_place: Callable[[Item, str], Result]
    failed: Callable[[Result], bool]
    board_tag: str = BOARD_TAG

    def free_places(self, boards: set[str]) -> dict[str, list[str]]:
        """Board -> names of the places tagged with it that nobody holds now."""
        with connected(self.coordinator) as client:
            places = client.places()
        out: dict[str, list[str]] = {b: [] for b in boards}
        for p in sorted(places, key=lambda p: p.name):
            board = p.tags.get(self.board_tag)
            if board in out:
                if p.acquired is None:
                    out[board].append(p.name)
                else:
                    log.info("place %s (%s) is held by %s: not used tonight", p.name, board, p.acquired)
        return out

    def _release_ours(self, names: list[str]) -> None:
        with connected(self.coordinator) as client:
            held = {p.name for p in client.places() if p.acquired == client.identity}
            for name in names:
                if name in held:
                    release_quietly(client, name)

    def run(self, items: Sequence[Item], board_of: Callable[[Item], str],
            on_done: Callable[[Item, Result], None] | None = None) -> list[Result]:
        """Run every item on a place of its board; results come back in the items' order."""
        with connected(self.coordinator):  # one session for the night: every cell's lease shares it
            return self._run(items, board_of, on_done)

    def _run(self, items: Sequence[Item], board_of: Callable[[Item], str],
             on_done: Callable[[Item, Result], None] | None) -> list[Result]:
        boards = {board_of(i) for i in items}
        places = self.free_places(boards)
        results: dict[int, Result] = {}
        queues: dict[str, deque[int]] = {b: deque() for b in boards}
        for n, item in enumerate(items):
            queues[board_of(item)].append(n)
        lock = threading.Lock()
        stop = threading.Event()
        retired: dict[str, list[str]] = {b: [] for b in boards}

        def finish(n: int, result: Result) -> None:
            with lock:
                results[n] = result
            if on_done is not None:
                on_done(items[n], result)

        def worker(board: str, place: str) -> None:
            while not stop.is_set():
                with lock:
                    if not queues[board]:
                        return
                    n = queues[board].popleft()
                log.info("place %s takes %s", place, items[n])
                try:
                    result = self.run_on(items[n], place)
                except Exception as exc:  # noqa: BLE001 - a broken place must not stop the others
                    log.exception("place %s failed", place)
                    result = self.no_place(items[n], f"place {place} failed: {type(exc).__name__}: {exc}")
                finish(n, result)
                if self.failed(result):
                    with lock:
                        retired[board].append(place)
                    log.warning("place %s retired for this run after a failed item", place)
                    return

        threads = [threading.Thread(target=worker, args=(b, p), name=f"place-{p}", daemon=True)
                   for b, names in places.items() for p in names]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        except BaseException:
            # Ctrl-C (or SIGTERM) reaches this thread only: take no new items and free the
            # places the workers hold (their runs then end on the closed port), so that
            # no place stays acquired by a process that is going away
            stop.set()
            self._release_ours([p for names in places.values() for p in names])
            raise
        for board, queue in queues.items():
            if not places[board]:
                reason = f"no free place tagged {self.board_tag}={board}"
            else:
                reason = f"every place for {board} failed ({', '.join(retired[board])})"
            while queue:
                n = queue.popleft()
                finish(n, self.no_place(items[n], reason))
        return [results[n] for n in range(len(items))]
