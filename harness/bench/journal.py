"""Rows measured but not yet in a Parquet part, kept where a killed process cannot lose them.

Parts are written in batches because a Parquet file per row would be slow and leave
thousands of files; the journal bridges the gap: one JSON line per row, written and
flushed as soon as the row exists, emptied once its rows are in a part. A SIGKILL then
costs nothing measured, and ``--resume`` reads the journal back.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import IO, Any

from harness.bench.store import RunFolder

log = logging.getLogger(__name__)

JOURNAL_NAME = ".pending.jsonl"


class Journal:
    """Rows not yet in a Parquet part, one JSON line each, written as they are measured."""

    def __init__(self, folder: RunFolder) -> None:
        self.path = folder.path / JOURNAL_NAME
        self._fh: IO[str] | None = None

    def recover(self) -> list[dict[str, Any]]:
        """Rows a killed run left in the journal (a torn last line is dropped)."""
        if not self.path.is_file():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                log.warning("dropping a torn journal line in %s", self.path)
        return rows

    def append(self, row: dict[str, Any]) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()

    def clear(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so that ``kill`` ends the run as cleanly as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
