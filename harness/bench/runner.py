"""Stream a data set through a device, one image at a time, and keep every measured row.

Per image: decode (a corrupt file becomes an error row and the run goes on), preprocess
to the model's input, start the host reference in its worker thread, run the device,
compare, write the row. Rows go first to a line journal (one ``write`` per row, so even
SIGKILL loses nothing measured) and then, in batches, to Parquet parts; the journal is
emptied once its rows are in a part. Nothing but the current image is held in memory,
besides the few scalars per row that the running metrics need.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness import console
from harness.bench import manifest as mb
from harness.bench.device_log import DeviceLogSink, install_log_sink
from harness.bench.journal import Journal, sigterm_as_interrupt
from harness.bench.metrics import RunningTally, compute_metrics
from harness.bench.preprocess import Preprocessor
from harness.bench.reference import HostReference
from harness.bench.store import (
    SCHEMA_VERSION,
    SUBGROUP_PREFIX,
    RowWriter,
    RunFolder,
    iter_column,
    resume_command,
    utc_now,
    writer_record,
)
from harness.bench.summary import format_summary
from harness.boards import Board
from harness.devices.base import Device, DeviceInfo
from harness.errors import EXIT_INTERRUPTED, DataError, DeviceError, HarnessError, ModelError
from harness.link.protocol import TensorSpec
from harness.models.tflite_file import ModelInfo
from harness.units import estimated_us, latency_basis

log = logging.getLogger(__name__)

#: engines that are not a model running anywhere (protocol test doubles): never benchmark them
REFUSED_ENGINES = frozenset({"test-double"})
HOST_REFERENCE_TIMEOUT_S = 120.0


class BenchInterrupted(HarnessError):
    """Ctrl-C or SIGTERM: the rows so far are saved and the run can be resumed."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, folder: RunFolder, rows: int) -> None:
        super().__init__(
            f"interrupted: {rows} rows saved in {folder.path}; resume with {resume_command(folder.path)}"
        )
        self.folder = folder
        self.rows = rows


@dataclass(frozen=True)
class BenchSettings:
    threshold: float = 0.5
    warmups: int = 1
    repeats: int = 1
    split: str | None = None
    limit: int | None = None
    person_index: int | None = None

    def to_dict(self, person_index: int) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "person_index": person_index,
            "warmups": self.warmups,
            "repeats": self.repeats,
            "split": self.split,
            "limit": self.limit,
        }


def person_index_for(outputs: tuple[TensorSpec, ...], given: int | None, label: str) -> int:
    """Which output element is the person score: [no person, person] -> 1, a single score -> 0."""
    if not outputs:
        raise ModelError(f"{label} has no output")
    n = outputs[0].elements
    if given is not None:
        if not 0 <= given < n:
            raise ModelError(f"{label}: person index {given} is outside its {n} outputs")
        return given
    if n == 2:
        return 1
    if n == 1:
        return 0
    raise ModelError(f"{label}: first output has {n} values; a VWW model has 1 or 2 (give the person index)")


def check_device(info: DeviceInfo, model: ModelInfo) -> None:
    """Refuse devices whose numbers would not be benchmark results of this model."""
    if info.engine in REFUSED_ENGINES:
        raise DeviceError(
            f"device engine is {info.engine!r}: a protocol test double, not a model; refusing to benchmark it"
        )
    if info.model_sha256.lower() != model.sha256.lower():
        raise DeviceError(
            f"device runs model sha256 {info.model_sha256}, expected {model.sha256} ({model.label}); "
            "flash the expected model or pass the one the device has with --model"
        )


def _dequantise(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    return ((values.astype(np.float64) - spec.zero_point) * spec.scale).astype(np.float32)


def _flat_q(outputs: tuple[np.ndarray, ...]) -> list[int]:
    return [int(v) for arr in outputs for v in np.asarray(arr).ravel()]


class Runner:
    """One benchmark run of a data set on an open device, into a run folder."""

    def __init__(
        self,
        *,
        device: Device,
        board: Board,
        backend: str,
        model: ModelInfo,
        dataset: Any,
        folder: RunFolder,
        settings: BenchSettings,
        quiet: bool = True,
        manifest: dict[str, Any] | None = None,
        manifest_every_s: float = 10.0,
        log_sink: DeviceLogSink | None = None,
    ) -> None:
        self.device = device
        self.board = board
        self.backend = backend
        self.model = model
        self.dataset = dataset
        self.folder = folder
        self.settings = settings
        self.quiet = quiet
        self.manifest: dict[str, Any] = manifest or {}
        self.manifest_every_s = manifest_every_s
        self.preprocess = Preprocessor.for_input(model.inputs[0], model.label)
        self.person_index = person_index_for(model.outputs, settings.person_index, model.label)
        self.errors: list[str] = list(self.manifest.get("errors") or [])
        self._metric_cols: dict[str, list[Any]] = {
            k: [] for k in ("status", "label", "pred", "latency_us", "cycles", "host_match")
        }
        self.tally = RunningTally()
        self._host_max_diff = 0
        self._done: set[str] = set()
        self._seq = 0
        self._journal = Journal(folder)
        self._writer = RowWriter(folder.path)
        self.log_sink = log_sink

    # -- resume --------------------------------------------------------------------------
    def _take_existing(self) -> None:
        """Load the rows of an interrupted run (parts + journal) so they are kept, not redone."""
        table, next_part = self.folder.prepare_resume()
        self._writer.next_part = next_part
        ids = list(iter_column(table, "image_id"))
        cols = {k: list(iter_column(table, k)) for k in (*self._metric_cols, "output_q", "host_output_q")}
        for i, image_id in enumerate(ids):
            self._remember(image_id, {k: v[i] for k, v in cols.items() if len(v) == len(ids)})
        seqs = [s for s in iter_column(table, "seq") if s is not None]
        self._seq = max(seqs) + 1 if seqs else 0
        for row in self._journal.recover():
            if row.get("image_id") in self._done:
                continue
            self._remember(row["image_id"], row)
            self._writer.add(row)
            self._seq = max(self._seq, int(row.get("seq", -1)) + 1)
        self._writer.flush()
        self._journal.clear()

    def _remember(self, image_id: str, row: dict[str, Any]) -> None:
        self._done.add(image_id)
        dev_q, host_q = row.get("output_q"), row.get("host_output_q")
        if dev_q and host_q and len(dev_q) == len(host_q):
            diff = max(abs(int(a) - int(b)) for a, b in zip(dev_q, host_q, strict=True))
            self._host_max_diff = max(self._host_max_diff, diff)
        for k, values in self._metric_cols.items():
            values.append(row.get(k))
        self.tally.add(
            row.get("status") or "error", int(row.get("label") or 0), row.get("pred"), row.get("host_match")
        )

    # -- manifest ------------------------------------------------------------------------
    def _base_manifest(self, info: DeviceInfo) -> dict[str, Any]:
        m = dict(self.manifest)
        m.update({
            "schema_version": SCHEMA_VERSION,
            "run_id": self.folder.run_id,
            "status": "running",
            "created_utc": m.get("created_utc") or utc_now(),
            "finished_utc": None,
            "board": mb.board_dict(self.board),
            "backend": self.backend,
            "port": self.device.port_url,
            "device": info.to_dict(),
            "model": mb.model_dict(self.model),
            "dataset": {
                "path": str(self.dataset.root), "name": self.dataset.name, "sha256": self.dataset.sha256,
                "count": self._planned_count(), "synthetic": bool(self.dataset.synthetic),
            },
            "settings": self.settings.to_dict(self.person_index),
            "preprocessing": {
                "resize": "centre crop to the input's aspect ratio, then bilinear resize",
                "colour": "rgb" if self.preprocess.channels == 3 else "grayscale (ITU-R 601 luma)",
                "pixel": self.preprocess.convention,
                "quantisation": {"scale": self.preprocess.scale, "zero_point": self.preprocess.zero_point},
            },
            "latency_source": info.latency_source,
            "latency": latency_basis(info.timer.name, self.board).to_dict(),
            "host": mb.host(),
            "writer": writer_record(),  # lets a later reader tell a killed run (store.mark_if_abandoned)
            "versions": mb.versions(),
        })  # fmt: skip
        m.setdefault("profile", [])
        m.setdefault("memory", {})
        return m

    def _planned_count(self) -> int:
        return sum(1 for _ in self.dataset.iter_samples(self.settings.split, self.settings.limit))

    def _with_resume_hint(self, exc: HarnessError) -> HarnessError:
        """The same error, saying where the rows are and how to finish the run."""
        hint = (
            f"{exc}; {len(self._done)} rows saved in {self.folder.path}; "
            f"resume with {resume_command(self.folder.path)}"
        )
        try:
            return type(exc)(hint)
        except TypeError:  # a subclass with another constructor keeps its own message
            return exc

    def _write_manifest(self, status: str, failure: str | None = None) -> None:
        if failure:
            self.errors.append(failure)
        self.manifest["status"] = status
        metrics = compute_metrics(**self._metric_cols)
        metrics["host_max_abs_diff_q"] = self._host_max_diff
        metrics.update(mb.latency_metrics(self.manifest.get("latency"), self._metric_cols["cycles"]))
        self.manifest["metrics"] = metrics
        self.manifest["errors"] = self.errors
        self.manifest["rows_written"] = len(self._done)
        if status != "running":
            self.manifest["finished_utc"] = utc_now()
        self.folder.write_manifest(self.manifest)

    # -- measuring -----------------------------------------------------------------------
    def _error_row(self, row: dict[str, Any], message: str) -> dict[str, Any]:
        row.update({"status": "error", "error": message})
        self.errors.append(f"{row['image_id']}: {message}")
        return row

    def _measure(
        self, sample: Any, ref: HostReference | None, info: DeviceInfo, profile: bool
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "seq": self._seq,
            "image_id": sample.id,
            "path": sample.rel_path,
            "split": sample.split,
            "label": int(sample.label),
            "status": "ok",
            "error": None,
        }
        for key, value in sample.subgroups.items():
            row[f"{SUBGROUP_PREFIX}{key}"] = value
        try:
            tensor = self.preprocess(sample.load_rgb())
        except DataError as exc:
            return self._error_row(row, str(exc))
        future = ref.submit(tensor) if ref is not None else None
        try:
            inference = self.device.infer(
                tensor, warmups=self.settings.warmups, repeats=self.settings.repeats, profile=profile
            )
        except DeviceError as exc:
            if future is not None:
                future.cancel()
            return self._error_row(row, f"device: {exc}")
        out_q = _flat_q(inference.outputs)
        out_f = [
            float(v)
            for arr, spec in zip(inference.outputs, info.outputs, strict=False)
            for v in _dequantise(np.asarray(arr).ravel(), spec)
        ]
        score = out_f[self.person_index]
        row.update({
            "output_q": out_q, "output_f": out_f, "score": score,
            "pred": int(score >= self.settings.threshold),
            "cycles": inference.cycles_median, "latency_us": self._latency_us(inference, info),
        })  # fmt: skip
        if future is not None:
            host_q = _flat_q(future.result(timeout=HOST_REFERENCE_TIMEOUT_S))
            row["host_output_q"] = host_q
            row["host_match"] = host_q == out_q
        return row

    def _latency_us(self, inference: Any, info: DeviceInfo) -> float | None:
        """The row's time: measured, or for an instruction counter instructions x CPI / board clock."""
        if info.timer.name != "INSTRUCTIONS":
            return float(inference.latency_us)
        basis = latency_basis(info.timer.name, self.board)
        return estimated_us(float(inference.cycles_median), basis, self.board.clock_hz)

    def _collect_device_facts(self, info: DeviceInfo) -> None:
        from harness.link.protocol import Capability

        if Capability.MEMORY in info.capabilities:
            try:
                mem = self.device.memory()
            except DeviceError as exc:
                self.errors.append(f"memory: {exc}")
                mem = None
        else:
            mem = None
        self.manifest["memory"] = mb.memory_dict(self.board, info, self.model, mem)

    def _collect_profile(self, info: DeviceInfo) -> None:
        try:
            layers = self.device.profile()
        except DeviceError as exc:
            self.errors.append(f"profile: {exc}")
            return
        self.manifest["profile"] = mb.profile_list(
            layers, info.clock_hz, latency_basis(info.timer.name, self.board), self.board.clock_hz
        )

    def _host_reference(self) -> HostReference | None:
        try:
            return HostReference(self.model.data, self.model.label)
        except ModelError as exc:
            self.errors.append(f"host reference: {exc}")
            log.warning("%s; running without host comparison", exc)
            return None

    def run(self, resume: bool = False) -> RunFolder:
        if self.log_sink is None:
            self.log_sink = install_log_sink(self.device)
        info = self.device.open()
        if self.log_sink is not None:
            self.log_sink.attach(self.folder)
        check_device(info, self.model)
        self.manifest = self._base_manifest(info)
        if resume:
            self._take_existing()
        else:
            self._write_manifest("running")
        self._collect_device_facts(info)
        planned = self.manifest["dataset"]["count"]
        remaining = max(0, planned - len(self._done))
        ref = self._host_reference()
        bar = console.progress(
            f"{self.board.id}/{self.backend}",
            planned,
            unit="img",
            completed=planned - remaining,
            enabled=False if self.quiet else None,
        )
        last_manifest = time.monotonic()
        need_profile = not self.manifest.get("profile")
        try:
            with sigterm_as_interrupt():
                self._write_manifest("running")
                for sample in self.dataset.iter_samples(self.settings.split, self.settings.limit):
                    if sample.id in self._done:
                        continue
                    row = self._measure(sample, ref, info, profile=need_profile)
                    if need_profile and row["status"] == "ok":
                        self._collect_profile(info)
                        need_profile = False
                    self._keep(row)
                    bar.advance(1, **self._bar_stats())
                    if time.monotonic() - last_manifest >= self.manifest_every_s:
                        self._write_manifest("running")
                        last_manifest = time.monotonic()
        except KeyboardInterrupt:
            bar.close()
            self._finish_rows()
            self._write_manifest("interrupted")
            self.folder.write_summary(format_summary(self.manifest))
            raise BenchInterrupted(self.folder, len(self._done)) from None
        except BaseException as exc:
            bar.close()
            self._finish_rows()
            self._write_manifest("failed", str(exc) if isinstance(exc, HarnessError) else None)
            if isinstance(exc, HarnessError) and self._done:
                raise self._with_resume_hint(exc) from None
            raise
        finally:
            if ref is not None:
                ref.close()
            if self.log_sink is not None:
                self.log_sink.close()
        bar.close()
        self._finish_rows()
        self.folder.consolidate()
        self._write_manifest("complete")
        self.folder.write_summary(format_summary(self.manifest))
        return self.folder

    def _bar_stats(self) -> dict[str, Any]:
        """The figures the bar shows beside img/s; resends only for links that count them."""
        stats: dict[str, Any] = {
            "acc": console.percent(self.tally.accuracy),
            "errors": self.tally.errors,
            "mismatches": self.tally.mismatches,
        }
        link = getattr(self.device, "link_stats", None)  # test doubles may lack it
        if link is not None:
            stats["resends"] = link.retries
        return stats

    def _keep(self, row: dict[str, Any]) -> None:
        """Put a measured row where an interrupt cannot lose it.

        The writer's buffer is filled first, so Ctrl-C at any point still flushes the row;
        the journal line follows, so a SIGKILL after this call cannot lose it either. A
        row that reaches both a part and the journal is de-duplicated by image id on resume.
        """
        before = self._writer.next_part
        self._writer.add(row)
        self._seq += 1
        self._remember(row["image_id"], row)
        if self._writer.next_part != before:
            self._journal.clear()
        else:
            self._journal.append(row)

    def _finish_rows(self) -> None:
        """Move buffered rows into a Parquet part; the journal keeps them until that is done."""
        self._writer.flush()
        self._journal.clear()
