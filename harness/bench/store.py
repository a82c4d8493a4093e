"""The run folder (schema v1, docs/results.md): rows in Parquet parts, a manifest, a summary.

Nothing measured may be lost to Ctrl-C or a killed process, so rows go to disk in small
batches, each batch a complete Parquet file written under a temporary name and renamed
into place (a rename is atomic: a reader sees the whole part or none of it). The manifest
is rewritten the same way. At the end the parts are consolidated into one
``results.parquet``; until then readers take the parts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shlex
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import ConfigError, DataError
from harness.paths import reports_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
RESULTS_NAME = "results.parquet"
MANIFEST_NAME = "run.json"
SUMMARY_NAME = "summary.txt"
DEVICE_LOG_NAME = "device.log"
SUBGROUP_PREFIX = "sg_"
_PART_RE = re.compile(r"^results-(\d+)\.parquet$")
#: An error row whose message starts so was lost to the link (its resend budget ran out),
#: not to the image or the model: ``--resume`` measures it again.
RETRYABLE_ERROR_PREFIX = "link: "


def retryable_row(row: dict[str, Any]) -> bool:
    """Whether a stored row is a link failure that a resume should measure again."""
    return row.get("status") == "error" and str(row.get("error") or "").startswith(RETRYABLE_ERROR_PREFIX)

#: the fixed columns, in order; ``sg_*`` columns follow
BASE_SCHEMA = pa.schema([
    ("seq", pa.int32()),
    ("image_id", pa.string()),
    ("path", pa.string()),
    ("split", pa.string()),
    ("label", pa.int8()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("output_q", pa.list_(pa.int32())),
    ("output_f", pa.list_(pa.float32())),
    ("score", pa.float32()),
    ("pred", pa.int8()),
    ("cycles", pa.int64()),
    ("latency_us", pa.float64()),
    ("host_output_q", pa.list_(pa.int32())),
    ("host_match", pa.bool_()),
])  # fmt: skip


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(board: str, backend: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{board}-{backend}-{secrets.token_hex(3)}"


def runs_root(out_dir: Path | None = None) -> Path:
    """Where run folders go: ``out_dir`` as given, else ``<reports_dir>/runs``."""
    return Path(out_dir) if out_dir is not None else reports_dir() / "runs"


def resume_command(folder: Path) -> str:
    """The ``hil bench --resume`` command that finds ``folder`` again, exactly as printed.

    A run id alone is looked up under the default runs folder, so a run written under
    ``--out DIR`` (or anywhere else) needs that ``--out`` on the resume command too.
    """
    folder = Path(folder)
    command = f"hil bench --resume {shlex.quote(folder.name)}"
    try:
        default = folder.parent.resolve() == runs_root().resolve()
    except OSError:
        default = False
    return command if default else f"{command} --out {shlex.quote(str(folder.parent))}"


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name in parentheses may hold spaces
    if len(fields) < 20:
        return None
    return -1 if fields[0] == "Z" else int(fields[19])  # a zombie has ended: -1 never matches


def writer_record() -> dict[str, Any]:
    """Who writes a run: run.json keeps it so that a later reader can tell a killed run."""
    pid = os.getpid()
    return {"pid": pid, "hostname": socket.gethostname(), "start_ticks": _start_ticks(pid)}


def writer_alive(manifest: dict[str, Any]) -> bool | None:
    """Whether the process that wrote ``manifest`` still runs; None when this host cannot tell.

    A pid alone could have been reused since, so the process's start time is compared too
    where /proc has it; a zombie (killed, not yet reaped) counts as ended.
    """
    writer = manifest.get("writer")
    if not isinstance(writer, dict) or writer.get("hostname") != socket.gethostname():
        return None
    pid = writer.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user's process
    except OSError:
        return None
    started, recorded = _start_ticks(pid), writer.get("start_ticks")
    if started == -1:
        return False
    if started is not None and isinstance(recorded, int) and started != recorded:
        return False
    return True


def mark_if_abandoned(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` of the run in ``folder``; a "running" run whose writer has died becomes "interrupted".

    A SIGKILLed run cannot say so itself, so whoever next reads it (``hil bench``, ``hil
    report``) does, on disk, once. Runs from other hosts, or without a writer record, are left
    as they are: nothing here can tell whether they still run.
    """
    if manifest.get("status") != "running" or writer_alive(manifest) is not False:
        return manifest
    writer = manifest.get("writer") or {}
    updated = dict(manifest)
    updated["status"] = "interrupted"
    note = (
        f"the process that wrote this run (pid {writer.get('pid')} on {writer.get('hostname')}) ended "
        f"without finishing it; marked interrupted at {utc_now()}"
    )
    updated["errors"] = [*(manifest.get("errors") or []), note]
    try:
        atomic_write_json(Path(folder) / MANIFEST_NAME, updated)
    except OSError as exc:
        log.warning("%s: cannot mark the abandoned run interrupted: %s", folder, exc.strerror)
    else:
        log.info("%s: %s", folder, note)
    return updated


def mark_abandoned_runs(root: Path) -> list[Path]:
    """Mark every abandoned "running" run directly under ``root``; returns their folders."""
    marked: list[Path] = []
    if not Path(root).is_dir():
        return marked
    for path in sorted(Path(root).glob(f"*/{MANIFEST_NAME}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("status") == "running":
            if mark_if_abandoned(path.parent, data).get("status") == "interrupted":
                marked.append(path.parent)
    return marked


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_table(path: Path, table: pa.Table) -> None:
    """Write a Parquet file under a temporary name and rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def part_files(folder: Path) -> list[Path]:
    parts = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _PART_RE.match(p.name))]
    return [p for _, p in sorted(parts)]


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts) as a table with the fixed columns typed as the schema says."""
    sg_names = sorted({k for r in rows for k in r if k.startswith(SUBGROUP_PREFIX)})
    arrays = [pa.array([r.get(f.name) for r in rows], type=f.type) for f in BASE_SCHEMA]
    fields = list(BASE_SCHEMA)
    for name in sg_names:
        arr = pa.array([r.get(name) for r in rows])
        arrays.append(arr)
        fields.append(pa.field(name, arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables, promote_options="permissive")


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing subgroup columns become nulls."""
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table.column(f.name).cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def read_results(folder: Path) -> pa.Table | None:
    """All rows of a run: ``results.parquet`` if present, else every part; None when none."""
    folder = Path(folder)
    final = folder / RESULTS_NAME
    if final.is_file():
        return pq.read_table(final)
    parts = part_files(folder)
    if not parts:
        return None
    return _concat([pq.read_table(p) for p in parts])


@dataclass
class RowWriter:
    """Buffers rows and writes them as a new Parquet part every ``batch_rows`` or ``batch_s``."""

    folder: Path
    batch_rows: int = 32
    batch_s: float = 5.0
    next_part: int = 0
    written: int = 0
    _buffer: list[dict[str, Any]] = field(default_factory=list)
    _last_flush: float = field(default_factory=time.monotonic)

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self.batch_rows or time.monotonic() - self._last_flush >= self.batch_s:
            self.flush()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        table = rows_table(self._buffer)
        path = self.folder / f"results-{self.next_part:05d}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        self.next_part += 1
        self.written += len(self._buffer)
        self._buffer.clear()


class RunFolder:
    """One run's folder: manifest, rows, summary and device log."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.manifest: dict[str, Any] = {}

    @property
    def run_id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, root: Path, run_id: str) -> RunFolder:
        path = Path(root) / run_id
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise ConfigError(f"run folder {path} already exists") from None
        except OSError as exc:
            raise ConfigError(f"cannot create run folder {path}: {exc.strerror}") from None
        return cls(path)

    @classmethod
    def find(cls, spec: str | Path, out_dir: Path | None = None) -> RunFolder:
        """A run given by id (looked up under the runs folder) or by path."""
        candidates = [Path(spec), runs_root(out_dir) / str(spec)]
        for c in candidates:
            if (c / MANIFEST_NAME).is_file():
                folder = cls(c)
                folder.manifest = mark_if_abandoned(c, folder.read_manifest())
                return folder
        raise ConfigError(
            f"no run {str(spec)!r} to resume (looked for {MANIFEST_NAME} in "
            f"{' and '.join(str(c) for c in candidates)})"
        )

    def read_manifest(self) -> dict[str, Any]:
        path = self.path / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable run manifest ({exc})") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}: run manifest is not a JSON object")
        return data

    def write_manifest(self, manifest: dict[str, Any] | None = None) -> None:
        if manifest is not None:
            self.manifest = manifest
        atomic_write_json(self.path / MANIFEST_NAME, self.manifest)

    def write_summary(self, text: str) -> None:
        atomic_write_bytes(self.path / SUMMARY_NAME, text.encode())

    def prepare_resume(self) -> tuple[pa.Table | None, int]:
        """Rows already measured, and the number of the next part file.

        A consolidated ``results.parquet`` holds every part it was made from (parts are
        deleted only after it is in place), so leftover parts are dropped and the file
        becomes part 0 again; new rows then go to the parts after it.
        """
        final = self.path / RESULTS_NAME
        if final.is_file():
            for p in part_files(self.path):
                p.unlink()
            os.replace(final, self.path / "results-00000.parquet")
        for stale in self.path.glob(".results-*.parquet.tmp"):
            stale.unlink()
        table = read_results(self.path)
        if table is not None:
            table = self._drop_retryable(table)
        parts = part_files(self.path)
        next_part = int(_PART_RE.match(parts[-1].name).group(1)) + 1 if parts else 0  # type: ignore[union-attr]
        return table, next_part

    def _drop_retryable(self, table: pa.Table) -> pa.Table:
        """``table`` without the rows the link lost, which are then measured again.

        The kept rows are written as ``results.parquet`` first (atomically), and only then
        the parts are removed and that file becomes part 0: a crash in between leaves a
        consolidated file that the next resume takes as it does after :meth:`consolidate`.
        """
        if "error" not in table.column_names or "status" not in table.column_names:
            return table
        import pyarrow.compute as pc

        lost = pc.and_(
            pc.equal(table["status"], "error"),
            pc.fill_null(pc.starts_with(table["error"], RETRYABLE_ERROR_PREFIX), False),
        )
        n_lost = pc.sum(pc.cast(lost, pa.int64())).as_py() or 0
        if not n_lost:
            return table
        kept = table.filter(pc.invert(lost))
        final = self.path / RESULTS_NAME
        atomic_write_table(final, kept)
        for part in part_files(self.path):
            part.unlink()
        os.replace(final, self.path / "results-00000.parquet")
        log.info("%s: %d rows lost to the link are measured again", self.path, n_lost)
        return kept

    def consolidate(self) -> int:
        """Merge the parts into ``results.parquet`` (atomically), then remove the parts.

        Parts are copied one at a time into a single writer, so memory stays that of one
        part however long the run was. Parts are already in ``seq`` order: each holds the
        rows measured after those of the part before it. Returns the number of rows.
        """
        parts = part_files(self.path)
        if not parts:
            table = read_results(self.path)
            return table.num_rows if table is not None else 0
        schema = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
        final = self.path / RESULTS_NAME
        tmp = final.with_name(f".{final.name}.tmp")
        rows = 0
        with pq.ParquetWriter(tmp, schema) as writer:
            for p in parts:
                table = conform(pq.read_table(p, use_threads=False), schema)
                writer.write_table(table)
                rows += table.num_rows
        os.replace(tmp, final)
        for p in parts:
            p.unlink()
        return rows


@dataclass
class LoadedRun:
    """A run folder read back: manifest, rows as Python lists per column, folder."""

    path: Path
    manifest: dict[str, Any]
    columns: dict[str, list[Any]]

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.manifest.get("metrics") or {})

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def image_ids(self) -> list[str]:
        return list(self.columns.get("image_id", []))


def load_run(folder: Path) -> LoadedRun:
    """Read a run folder written by :mod:`harness.bench.runner` (for tests and the plugin)."""
    run = RunFolder(Path(folder))
    table = read_results(run.path)
    columns: dict[str, list[Any]] = table.to_pydict() if table is not None else {}
    return LoadedRun(run.path, run.read_manifest(), columns)


def iter_column(table: pa.Table | None, name: str) -> Iterable[Any]:
    if table is None or name not in table.column_names:
        return []
    return table.column(name).to_pylist()
