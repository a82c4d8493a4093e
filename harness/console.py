"""How the console looks, decided in one place: progress bars, tables and error lines.

Every command draws its progress, summaries and errors through this module so that one
rule holds everywhere: on a terminal the user gets rich's live bars (with the rates that
matter for the job: images per second, accuracy, errors, mismatches, resends), tables and
a red error line; when the output is not a terminal, when ``CI`` is set, or with
``--quiet``, the output is plain text with no bars, no colour and no control codes, so CI
logs and pipes stay readable and diffable. Plain output is not silent output, though: a
bar or status line that lasts longer than a few seconds writes one line to stderr every
few seconds (``HIL_PROGRESS_EVERY`` seconds, default 5) saying what it is doing and how far
it got, so a pipe never shows minutes of nothing; ``--quiet`` silences that too.

The CLI calls :func:`configure` once with the global settings (``--quiet``, ``-v``);
library code then asks for a bar with :func:`progress` and never decides for itself.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

log = logging.getLogger(__name__)


@dataclass
class Settings:
    """What the command line asked for; read by every bar and error line."""

    quiet: bool = False
    verbose: int = 0


_settings = Settings()


def configure(*, quiet: bool = False, verbose: int = 0) -> None:
    """Set the global console settings (the CLI calls this once, after parsing)."""
    _settings.quiet = quiet
    _settings.verbose = verbose


def settings() -> Settings:
    return _settings


def is_plain(stream: TextIO | None = None) -> bool:
    """True when ``stream`` must get plain text: ``--quiet``, ``CI`` set, or not a terminal."""
    if _settings.quiet or os.environ.get("CI"):
        return True
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    try:
        return not (callable(isatty) and isatty())
    except ValueError:  # a closed stream
        return True


def make_console(stream: TextIO | None = None) -> Console:
    """A rich Console on ``stream`` (default stderr) that obeys the plain-output rule."""
    stream = stream if stream is not None else sys.stderr
    if is_plain(stream):
        return Console(
            file=stream, force_terminal=False, no_color=True, color_system=None,
            highlight=False, emoji=False, markup=False, soft_wrap=True,
        )  # fmt: skip
    return Console(file=stream, highlight=False, soft_wrap=True)


# --- progress ------------------------------------------------------------------------

#: seconds between two progress lines in plain output (and before the first one)
DEFAULT_EVERY_S = 5.0


def progress_every() -> float:
    """Seconds between progress lines in plain output: ``HIL_PROGRESS_EVERY``, default 5."""
    try:
        every = float(os.environ.get("HIL_PROGRESS_EVERY", DEFAULT_EVERY_S))
    except ValueError:
        return DEFAULT_EVERY_S
    return every if every > 0 else DEFAULT_EVERY_S


class Heartbeat:
    """A line on stderr every few seconds while plain-output work goes on.

    A pipe or a CI log has no live bar, and a step that takes minutes (compiling TFLM,
    training an epoch) otherwise shows nothing at all; each line says what is running and
    how far it got. Nothing is written for work shorter than the interval, so quick
    commands stay as quiet in a pipe as before.
    """

    def __init__(self, line: Callable[[], str], every: float | None = None) -> None:
        self._line = line
        self._every = every if every is not None else progress_every()
        self._stop = threading.Event()
        with _beating_lock:
            _beating.append(self)
        self._thread = threading.Thread(target=self._run, name="hil-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            with _beating_lock:
                if not _beating or _beating[-1] is not self:
                    continue  # work nested inside this one speaks for both
                text = " | ".join(h._line() for h in _beating)
            try:
                sys.stderr.write(f"hil: {text}\n")
                sys.stderr.flush()
            except (OSError, ValueError):  # a closed pipe: nobody is reading any more
                return

    def stop(self) -> None:
        self._stop.set()
        with _beating_lock:
            if self in _beating:
                _beating.remove(self)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


#: the heartbeats running now, outermost first (a build inside a nightly cell, a training
#: stage inside train-compare): only the innermost writes, one line naming them all
_beating: list[Heartbeat] = []
_beating_lock = threading.Lock()


def _plain_heartbeat(drawing: bool, line: Callable[[], str]) -> Heartbeat | None:
    """A heartbeat where nothing is drawn and the user did not ask for quiet."""
    if drawing or _settings.quiet:
        return None
    return Heartbeat(line)


def _elapsed(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"



class RateColumn(ProgressColumn):
    """Items per second in the task's own unit (``12.3 img/s``)."""

    def render(self, task: Task) -> Text:
        if task.fields.get("status"):
            return Text("")
        unit = str(task.fields.get("unit", "items"))
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"- {unit}/s", style="progress.data.speed")
        return Text(f"{speed:.1f} {unit}/s", style="progress.data.speed")


class StatsColumn(ProgressColumn):
    """The job's own figures (``acc 93.1%  errors 0  mismatches 0``), in the order given."""

    def render(self, task: Task) -> Text:
        stats: dict[str, Any] = task.fields.get("stats") or {}
        return Text("  ".join(f"{k} {v}" for k, v in stats.items()), style="cyan")


class CountColumn(MofNCompleteColumn):
    """``12/40`` for a bar; nothing for a status line, whose work has no count."""

    def render(self, task: Task) -> Text:
        return Text("") if task.fields.get("status") else super().render(task)


def _columns() -> list[ProgressColumn]:
    return [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        CountColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        StatsColumn(),
    ]


#: the live display every bar draws into while one is open (rich allows one at a time)
_live: Progress | None = None


def _shared_display(enabled: bool | None, console: Console | None) -> tuple[Progress | None, bool]:
    """The live display a bar or status line draws into (None: draw nothing), and whether
    this caller opened it (and so must stop it).

    rich allows one live display at a time: a bar or status opened inside another (a sweep's
    training runs, a build inside a nightly) becomes another line of the same display, and
    the outer one has already decided whether anything is drawn. ``enabled=None`` follows
    the module's rule: a terminal, not quiet, not CI.
    """
    global _live
    if enabled is None:
        if _live is not None:
            enabled = True
        elif console is not None:
            enabled = console.is_terminal and not _settings.quiet
        else:
            enabled = not _settings.quiet and not is_plain(sys.stderr)
    if not enabled:
        return None, False
    if _live is not None:
        return _live, False
    con = console if console is not None else make_console(sys.stderr)
    _live = Progress(*_columns(), console=con, transient=False)
    _live.start()
    return _live, True


class Bar:
    """One progress bar; in plain mode a line every few seconds instead (:class:`Heartbeat`),
    in quiet mode nothing, but it always counts.

    Use as a context manager, or call :meth:`close` on every path (the bench closes it
    before writing the interrupted manifest).
    """

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        unit: str = "items",
        completed: int = 0,
        console: Console | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.completed = completed
        self.stats: dict[str, Any] = {}
        self._start_count = completed
        self._t0 = time.monotonic()
        self._task: TaskID | None = None
        self._closed = False
        self._progress, self._owner = _shared_display(enabled, console)
        if self._progress is not None:
            self._task = self._progress.add_task(description, total=total, completed=completed, unit=unit,
                                                 stats={})
        self._heartbeat = _plain_heartbeat(self._progress is not None, self.progress_line)

    def progress_line(self) -> str:
        """Where the work is, for plain output: ``train stage1: 40/120 batch (8.1 batch/s), 35 s``."""
        elapsed = time.monotonic() - self._t0
        done = self.completed - self._start_count
        count = f"{self.completed}/{self.total}" if self.total else f"{self.completed}"
        rate = ""
        if elapsed > 0 and done:
            per_s = done / elapsed
            rate = f" ({per_s:.1f} {self.unit}/s)" if per_s >= 1 else f" ({1 / per_s:.1f} s/{self.unit})"
        extra = "".join(f", {k} {v}" for k, v in self.stats.items())
        return f"{self.description}: {count} {self.unit}{rate}, {_elapsed(elapsed)}{extra}"

    @property
    def drawing(self) -> bool:
        """True when a live bar is on screen (terminal, not quiet, not CI)."""
        return self._progress is not None

    def advance(self, n: int = 1, **stats: Any) -> None:
        """Count ``n`` more items and, optionally, replace the shown figures."""
        self.completed += n
        if stats:
            self.stats.update(stats)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=n, stats=dict(self.stats))

    def set_total(self, total: int | None) -> None:
        """Give the bar its length once it is known (Keras knows its steps only at the start)."""
        self.total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def set_stats(self, **stats: Any) -> None:
        self.stats.update(stats)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, stats=dict(self.stats))

    def close(self) -> None:
        """Stop drawing (idempotent) and log one line with the count and rate."""
        global _live
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._progress is not None:
            if self._owner:
                self._progress.stop()
                _live = None
            elif self._task is not None:
                self._progress.remove_task(self._task)  # an inner bar leaves the outer one alone
            self._progress = None
        if not self._closed:
            self._closed = True
            elapsed = time.monotonic() - self._t0
            done = self.completed - self._start_count
            rate = done / elapsed if elapsed > 0 else 0.0
            extra = "".join(f" {k} {v}" for k, v in self.stats.items())
            log.info("%s: %d %s in %.1f s (%.1f %s/s)%s",
                     self.description, done, self.unit, elapsed, rate, self.unit, extra)  # fmt: skip

    def __enter__(self) -> Bar:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def progress(
    description: str,
    total: int | None = None,
    *,
    unit: str = "items",
    completed: int = 0,
    console: Console | None = None,
    enabled: bool | None = None,
) -> Bar:
    """A progress bar for ``total`` items (``None``: unknown length) in ``unit``.

    ``enabled=None`` follows the rule of the module: a bar only on a terminal, without
    ``CI`` and without ``--quiet``.
    """
    return Bar(description, total, unit=unit, completed=completed, console=console, enabled=enabled)


def percent(value: float | None) -> str:
    """An accuracy for a bar's figures (``-`` before the first result)."""
    return "-" if value is None else f"{value:.1%}"


# --- status lines (work of unknown length) ---------------------------------------------


class Status:
    """A pulsing line for work with no count (a firmware build), and its outcome.

    It draws into the same live display as the bars, so a build started inside a
    nightly's bar is a second line of that display rather than a second live display,
    which rich refuses. In plain mode it draws nothing, writes a line every few seconds
    while it lasts (:class:`Heartbeat`), and logs its start and its outcome with the time
    taken (``-v`` shows them); ``--quiet`` leaves only the log.
    """

    def __init__(self, message: str, *, console: Console | None = None, enabled: bool | None = None) -> None:
        self.message = message
        self.step: str | None = None
        self.ok: bool | None = None
        self._t0 = time.monotonic()
        self._task: TaskID | None = None
        self._closed = False
        log.info("%s...", message)
        self._progress, self._owner = _shared_display(enabled, console)
        if self._progress is not None:
            self._task = self._progress.add_task(f"{message}...", total=None, status=True, stats={})
        self._heartbeat = _plain_heartbeat(self._progress is not None, self.progress_line)

    def progress_line(self) -> str:
        """What is running, for plain output: ``building ...: linking... (still running, 40 s)``."""
        step = f": {self.step}" if self.step else ""
        return f"{self.message}{step}... (still running, {_elapsed(self.elapsed)})"

    @property
    def drawing(self) -> bool:
        """True when the line is on screen (terminal, not quiet, not CI)."""
        return self._progress is not None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def update(self, step: str) -> None:
        """Say which step the work is at (``compiling``, ``linking``) after its message."""
        self.step = step
        log.info("%s: %s...", self.message, step)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{self.message}: {step}...")

    def close(self, ok: bool = True) -> None:
        """End the line with its outcome and time taken (idempotent)."""
        global _live
        if self._closed:
            return
        self._closed = True
        self.ok = ok
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        at = f" at {self.step}" if self.step and not ok else ""
        outcome = f"{'done' if ok else 'failed'}{at} in {self.elapsed:.1f} s"
        if self._progress is not None and self._task is not None:
            if self._owner:
                # the owner's line stays on screen, finished, with its outcome
                self._progress.update(self._task, description=f"{self.message}: {outcome}",
                                      total=1, completed=1)  # fmt: skip
                self._progress.stop()
                _live = None
            else:
                self._progress.remove_task(self._task)
            self._progress = None
        log.info("%s: %s", self.message, outcome)

    def __enter__(self) -> Status:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(ok=et is None)


def status(message: str, *, console: Console | None = None, enabled: bool | None = None) -> Status:
    """A status line for work of unknown length, e.g. ``status("building qemu image for
    vww-default (cached: no)")``; use it as a context manager so a failure is shown as one.

    ``enabled=None`` follows the rule of the module, like :func:`progress`.
    """
    return Status(message, console=console, enabled=enabled)


# --- tables ----------------------------------------------------------------------------


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> Table:
    """A table of ``rows``; numbers are right-aligned by the caller's formatting."""
    t = Table(title=title, show_edge=False, header_style="bold")
    for name in columns:
        t.add_column(name)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def print_table(t: Table, *, stream: TextIO | None = None, console: Console | None = None) -> None:
    """Print a table to stdout (plain text without colour when stdout is not a terminal)."""
    con = console if console is not None else make_console(stream if stream is not None else sys.stdout)
    con.print(t)


def plain_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> str:
    """``rows`` as aligned plain text: a header, then one line per row, columns two spaces
    apart, never cut or wrapped, so a CI log or a pipe keeps every figure whole and greppable."""
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(columns))]
    lines = [title] if title else []
    for r in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip())
    return "\n".join(lines) + "\n"


def print_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    stream: TextIO | None = None,
    console: Console | None = None,
) -> None:
    """A table of ``rows`` on stdout: rich on a terminal, :func:`plain_rows` text otherwise.

    Cells fold rather than crop on a narrow terminal: a figure cut short loses its unit.
    """
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    con = console if console is not None else make_console(stream if stream is not None else sys.stdout)
    if not con.is_terminal:
        con.file.write(plain_rows(columns, cells, title=title))
        con.file.flush()
        return
    t = _rows_table(columns, cells, title, compact=False)
    widths = fit_widths(columns, cells, con.width, _overhead(t))
    if widths is None:  # too wide for the boxed table: drop the borders, one space apart
        t = _rows_table(columns, cells, title, compact=True)
        widths = fit_widths(columns, cells, con.width, _overhead(t))
    if widths is not None:
        for col, w in zip(t.columns, widths, strict=True):
            col.width = w
    con.print(t)


def _rows_table(columns: Sequence[str], cells: list[list[str]], title: str | None,
                compact: bool) -> Table:
    from rich import box

    t = (Table(title=title, header_style="bold", title_justify="left", box=box.SIMPLE_HEAD,
               show_edge=False, padding=0, pad_edge=False)
         if compact else Table(title=title, header_style="bold", title_justify="left"))
    for name in columns:
        t.add_column(name, overflow="fold")
    for row in cells:
        t.add_row(*row)
    return t


def _overhead(t: Table) -> int:
    """Characters a table's borders and padding take on a line, beside its cells."""
    return t._extra_width + sum(t._get_padding_width(i) for i in range(len(t.columns)))


#: a word longer than this (a run id, a hash, a path) may be folded; shorter ones never are
FOLDABLE = 14


def _words(text: str) -> list[str]:
    return text.split() or [""]


def fit_widths(columns: Sequence[str], rows: Sequence[Sequence[str]], width: int,
               overhead: int) -> list[int] | None:
    """Column widths (content only) that fit ``width`` with no number or word folded, or
    None when even that is too wide.

    rich shrinks the widest columns first and folds whatever no longer fits, which on a
    120-column console split "333,288" into "333,28" and "8". Here every column gets at
    least its longest word (a run id may fold at :data:`FOLDABLE` characters), then the
    room left goes first to the columns of figures, so that a confidence interval stays
    on one line, and then to the rest.
    """
    table = [list(columns), *(list(r) for r in rows)]
    n = len(columns)
    least = [max(min(len(w), FOLDABLE) for r in table if i < len(r) for w in _words(r[i])) for i in range(n)]
    most = [max(len(r[i]) for r in table if i < len(r)) for i in range(n)]
    room = width - overhead
    if sum(most) <= room:
        return most
    if sum(least) > room:
        return None
    widths = list(least)
    figures = [all(_is_figure(r[i]) for r in rows if i < len(r) and r[i]) for i in range(n)]
    for first in (True, False):
        for i in range(n):
            if figures[i] == first:
                add = min(most[i] - widths[i], room - sum(widths))
                widths[i] += max(0, add)
    return widths


def _is_figure(text: str) -> bool:
    """A cell of digits and separators, perhaps with a unit (``333,288``, ``0.88 [0.79, 0.94]``)."""
    letters = [w for w in text.split() if any(c.isalpha() for c in w)]
    return any(c.isdigit() for c in text) and all(w in ("ms", "B", "KiB", "%") for w in letters)


def print_lines(
    lines: Iterable[str], *, stream: TextIO | None = None, console: Console | None = None
) -> None:
    """Notes under a table (each latency source once), as text with no markup."""
    con = console if console is not None else make_console(stream if stream is not None else sys.stdout)
    for line in lines:
        if con.is_terminal:
            con.print(Text(line, style="dim"))
        else:
            con.file.write(line + "\n")
    con.file.flush()


def fields_of(text: str) -> list[tuple[str, str]]:
    """Lines of ``label   value`` text (a run summary) as (label, value) pairs."""
    pairs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        label, _, value = line.strip().partition(" ")
        pairs.append((label, value.strip()))
    return pairs


def print_summary(text: str, *, title: str | None = None, stream: TextIO | None = None,
                  console: Console | None = None) -> None:
    """A labelled summary (``hil bench``'s summary.txt): a two-column table on a terminal,
    the text byte for byte otherwise, so a pipe or CI log gets exactly the saved file."""
    con = console if console is not None else make_console(stream if stream is not None else sys.stdout)
    if not con.is_terminal:
        con.file.write(text if text.endswith("\n") else text + "\n")
        con.file.flush()
        return
    from rich import box

    t = Table(title=title, show_header=False, box=box.ROUNDED, title_justify="left")
    t.add_column("field", style="bold", no_wrap=True)
    t.add_column("value", overflow="fold")
    for label, value in fields_of(text):
        t.add_row(label, value)
    con.print(t)


# --- errors ----------------------------------------------------------------------------


def print_error(
    prog: str,
    exc: BaseException,
    *,
    verbose: int | None = None,
    console: Console | None = None,
) -> None:
    """Report a user's error as one line: red on a terminal, ``prog: error: ...`` otherwise.

    The traceback is shown only with ``-vv``: a wrong port is a user's mistake, not a bug.
    """
    verbose = _settings.verbose if verbose is None else verbose
    con = console if console is not None else make_console(sys.stderr)
    line = f"{prog}: error: {exc}"
    if verbose >= 2:
        if con.is_terminal:
            from rich.traceback import Traceback

            con.print(Traceback.from_exception(type(exc), exc, exc.__traceback__))
        else:
            con.file.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    if con.is_terminal:
        con.print(Text(line, style="bold red"), soft_wrap=True)
    else:
        con.file.write(line + "\n")
        con.file.flush()
