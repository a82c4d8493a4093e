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
from collections import deque
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
    retryable_row,
    utc_now,
    writer_record,
)
from harness.bench.summary import format_summary
from harness.boards import Board
from harness.devices.base import Device, DeviceInfo
from harness.errors import EXIT_INTERRUPTED, DataError, DeviceError, HarnessError, LinkError, ModelError
from harness.link.protocol import LinkStats, ResendBudgetExceeded, TensorSpec, Watchdog
from harness.models.tflite_file import ModelInfo
from harness.units import LatencyBasis, cost_model_source, eembc_lap_basis, estimated_us, latency_basis

log = logging.getLogger(__name__)

#: engines that are not a model running anywhere (protocol test doubles): never benchmark them
REFUSED_ENGINES = frozenset({"test-double"})
HOST_REFERENCE_TIMEOUT_S = 120.0
#: The watchdog when neither the settings nor the run's request say (BenchRequest's default).
DEFAULT_WATCHDOG_S = 60.0


class LinkTooNoisy(LinkError):
    """The link needed more resends per image than the run's budget, for too long."""


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
    #: seconds without progress before the run fails; None: the request's (run.json), else 60
    watchdog_s: float | None = None
    #: resends one image may cost before it becomes an error row; None: 4 x its frames, at least 16
    image_resend_budget: int | None = None
    #: average resends per image over the last ``run_window_images`` images that stop the run;
    #: None: the frames one image takes (the link resends as much as it sends: half its capacity)
    run_resends_per_image: float | None = None
    run_window_images: int = 20
    #: fewer resends than this in the window never stop a run (a few unlucky images are noise)
    run_min_resends: int = 40
    #: nor fewer images: one image past its own budget is an error row, not a verdict on the link
    run_min_images: int = 5

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
            raise ModelError(f"{label}: --person-index {given} is outside its {n} outputs (0..{n - 1})")
        return given
    if n == 2:
        return 1
    if n == 1:
        return 0
    raise ModelError(f"{label}: first output has {n} values; a VWW model has 1 or 2 "
                     "(say which one is the person score with --person-index N)")


#: Why the model check cannot be made over EEMBC; stored in run.json as ``model_check``.
EEMBC_NO_HASH = "skipped: an EEMBC device reports no model hash (the protocol has no command for it)"


#: What run.json says in place of the memory figures and the per-layer profile over EEMBC.
EEMBC_UNAVAILABLE = "unavailable: the EEMBC protocol has no command for it"


def model_check(info: DeviceInfo) -> str:
    """How the device's model was checked against the run's, in words for run.json."""
    if info.protocol == "eembc" and not info.model_sha256:
        return EEMBC_NO_HASH
    return "sha256 reported by the device matches the model's"


def check_device(info: DeviceInfo, model: ModelInfo) -> None:
    """Refuse devices whose numbers would not be benchmark results of this model."""
    if info.engine in REFUSED_ENGINES:
        raise DeviceError(
            f"device engine is {info.engine!r}: a protocol test double, not a model; refusing to benchmark it"
        )
    if info.protocol == "eembc" and not info.model_sha256:
        log.info("model check %s", EEMBC_NO_HASH)
        return
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
        self.watchdog = Watchdog(self._watchdog_limit())
        self.image_budget = 16
        self.run_budget = 2.0
        #: link counters of the run's earlier sessions (a resumed run adds to them)
        self._link_before = {
            k: int(v) for k, v in ((self.manifest.get("link") or {}).get("counters") or {}).items()
            if isinstance(v, int) and not isinstance(v, bool)
        }
        #: (time, resends) after each image of this session, for the run's resend budget
        self._resend_window: deque[tuple[float, int]] = deque(maxlen=settings.run_window_images + 1)

    def _watchdog_limit(self) -> float:
        if self.settings.watchdog_s is not None:
            return float(self.settings.watchdog_s)
        stored = (self.manifest.get("request") or {}).get("watchdog")
        return float(stored) if isinstance(stored, int | float) and stored > 0 else DEFAULT_WATCHDOG_S

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
            if row.get("image_id") in self._done or retryable_row(row):
                continue
            self._remember(row["image_id"], row)
            self._writer.add(row)
            self._seq = max(self._seq, int(row.get("seq", -1)) + 1)
        self._writer.flush()
        self._journal.clear()
        # the errors of rows the link lost go: those images are measured again now
        self.errors = [e for e in self.errors if not self._lost_to_link(e)]

    def _lost_to_link(self, error: str) -> bool:
        image_id, sep, message = error.partition(": ")
        return bool(sep) and message.startswith("link: ") and image_id not in self._done

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
        latency = self._latency_block(info)
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
            # what an emulator's firmware was built from: TFLM tree version and checksum,
            # cache key, ELF sizes (empty for the sim and real boards)
            "firmware": dict(self.device.firmware),
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
            "latency_source": ("reported" if latency["kind"] == "reported" else
                               "estimated" if latency["estimated"] else info.latency_source),
            "latency": latency,
            "model_check": model_check(info),
            "host": mb.host(),
            "writer": writer_record(),  # lets a later reader tell a killed run (store.mark_if_abandoned)
            "versions": mb.versions(),
        })  # fmt: skip
        m.setdefault("profile", [])
        m.setdefault("memory", {})
        return m

    def _latency_block(self, info: DeviceInfo) -> dict[str, Any]:
        """run.json's ``latency``; over EEMBC the DUT's ``m-lap-us`` microseconds (the sim's: estimated)."""
        if info.protocol != "eembc":
            return latency_basis(info.timer.name, self.board, self.backend).to_dict()
        if self.backend == "sim":
            basis = LatencyBasis("eembc_lap_us", "estimated", "us", "us",
                                 f"EEMBC m-lap-us of the sim, {cost_model_source(self.board)}")
        elif self.backend == "qemu":
            cpi = (self.board.raw.get("cost_model") or {}).get("cpi")
            basis = LatencyBasis("eembc_lap_us", "estimated", "us", "us",
                                 f"EEMBC m-lap-us of the QEMU firmware: instruction counts x CPI {cpi} at "
                                 f"{self.board.clock_hz / 1e6:g} MHz (board profile {self.board.id})")
        elif self.backend == "native":
            basis = LatencyBasis("eembc_lap_us", "measured", "us", "us",
                                 "EEMBC m-lap-us of the native firmware: host time, not a board's")
        else:  # a device on a port: what the device says its timer is, if it says
            basis = eembc_lap_basis(info.timer.name.lower() if info.timer_announced else None)
        return basis.to_dict()

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
        link = self._link_record()
        if link is not None:
            self.manifest["link"] = link
        if status != "running":
            self.manifest["finished_utc"] = utc_now()
        self.folder.write_manifest(self.manifest)

    # -- the link ------------------------------------------------------------------------
    def _link_stats(self) -> LinkStats | None:
        stats = getattr(self.device, "link_stats", None)  # test doubles may lack it
        return stats if isinstance(stats, LinkStats) else None

    def _link_record(self) -> dict[str, Any] | None:
        """run.json ``link``: this run's link counters (all sessions), bytes per image, efficiency."""
        stats = self._link_stats()
        if stats is None and not self._link_before:
            return None
        now = stats.counters() if stats is not None else {}
        counters = {k: self._link_before.get(k, 0) + now.get(k, 0) for k in LinkStats.COUNTERS}
        wire = counters["bytes_sent"] + counters["bytes_received"]
        images = counters["inputs_sent"]
        return {
            "resends": counters["resends"], "crc_failures": counters["crc_failures"],
            "resyncs": counters["resyncs"], "timeouts": counters["timeouts"],
            "bytes_per_image": round(wire / images, 1) if images else None,
            "efficiency": round(counters["payload_bytes"] / wire, 4) if wire else None,
            "watchdog_s": self.watchdog.limit_s,
            "counters": counters,
        }  # fmt: skip

    def _frames_per_input(self, info: DeviceInfo) -> int:
        """Frames one image takes on a clean link: its input chunks and the INFER."""
        step = info.max_payload - 8
        nbytes = info.inputs[0].nbytes if info.inputs else 0
        return (-(-nbytes // step) if step > 0 and nbytes else 1) + 1

    def _guard_link(self, info: DeviceInfo) -> None:
        """Size the resend budgets by the frames an image takes, and give the session the
        run's watchdog and the per-image budget, where it takes them."""
        frames = self._frames_per_input(info)
        self.image_budget = self.settings.image_resend_budget or max(16, 4 * frames)
        self.run_budget = self.settings.run_resends_per_image or float(frames)
        session = getattr(self.device, "session", None)
        if session is None:
            return
        if hasattr(session, "watchdog"):
            session.watchdog = self.watchdog
        if hasattr(session, "resend_budget"):
            session.resend_budget = self.image_budget

    def _check_resend_budget(self) -> None:
        """Stop the run when the recent images needed more resends than the run's budget."""
        stats = self._link_stats()
        if stats is None:
            return
        self._resend_window.append((time.monotonic(), stats.resends))
        if len(self._resend_window) < 2:
            return
        (t0, r0), (t1, r1) = self._resend_window[0], self._resend_window[-1]
        images = len(self._resend_window) - 1
        resends = r1 - r0
        budget = self.run_budget
        enough = images >= self.settings.run_min_images and resends >= self.settings.run_min_resends
        if enough and resends > budget * images:
            raise LinkTooNoisy(
                f"link too noisy: {resends} resends in {t1 - t0:.1f} s over the last {images} images "
                f"(budget {budget:g} per image)"
            )

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
        except ResendBudgetExceeded as exc:
            if future is not None:
                future.cancel()
            return self._error_row(row, f"link: {exc}")
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
        basis = latency_basis(info.timer.name, self.board, self.backend)
        return estimated_us(float(inference.cycles_median), basis, self.board.clock_hz)

    def _collect_device_facts(self, info: DeviceInfo) -> None:
        from harness.link.protocol import Capability

        if info.protocol == "eembc":
            self.manifest["memory"] = {"unavailable": EEMBC_UNAVAILABLE}
            self.manifest["profile_unavailable"] = EEMBC_UNAVAILABLE
            return

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
            layers, info.clock_hz, latency_basis(info.timer.name, self.board, self.backend),
            self.board.clock_hz,
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
        self._guard_link(info)
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
        need_profile = not self.manifest.get("profile") and info.protocol != "eembc"
        self.watchdog.progress()
        self._check_resend_budget()  # the window starts at this session's first image
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
                    self.watchdog.progress()
                    bar.advance(1, **self._bar_stats())
                    self._check_resend_budget()
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
        link = self._link_stats()
        if link is not None:
            stats["resends"] = link.resends
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
