"""The benchmark as a function: what ``hil bench``, ``hil nightly`` and the pytest plugin call.

Everything a user can get wrong (unknown board, a model that is not int8 or whose input is
not an image, a data set that is not one, a run to resume that measured another model or
data set) is checked here before a device is opened, so that a mistake costs a second
and one line, not a half-finished run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

from harness.bench.device_log import install_log_sink
from harness.bench.preprocess import Preprocessor
from harness.bench.request import BenchRequest
from harness.bench.runner import BenchSettings, Runner, check_device, person_index_for
from harness.bench.store import RunFolder, mark_abandoned_runs, new_run_id, runs_root, writer_alive
from harness.boards import Board, load_board
from harness.devices import get_backend
from harness.devices.base import Device
from harness.errors import ConfigError, DataError, HarnessError, ModelError
from harness.link.protocol import Protocol
from harness.models.tflite_file import ModelInfo

log = logging.getLogger(__name__)

__all__ = ["BenchRequest", "RemotePort", "bench_on_device", "load_dataset", "load_model", "make_device",
           "run_bench"]


class RemotePort(TypingProtocol):
    """A serial port someone else lends for the run (a board-farm place), held while in use.

    ``url`` is a pyserial URL valid for this holding only; ``record`` is what run.json
    keeps about where the board was (``place``).
    """

    @property
    def url(self) -> str: ...

    @property
    def record(self) -> dict[str, Any]: ...


#: Opens the place a request names and holds it for the ``with`` block
#: (``harness.farm.open_place`` in production); the bench knows nothing more of farms.
PlaceOpener = Callable[[BenchRequest], AbstractContextManager[RemotePort]]

def make_device(
    board: Board, backend: str, *, model: Path, port: str | None = None, baud: int | None = None,
    protocol: Protocol | str = Protocol.V1,
) -> Device:
    """A closed device of ``backend`` for ``board``, given the options that backend takes.

    Every backend takes the model (the sim loads it, emulators build for it, boards are
    checked against it) and the protocol; a port or baud is passed only to backends whose
    options declare them, and is a one-line error elsewhere.
    """
    spec = get_backend(backend)
    values: dict[str, Any] = {"model": model, "protocol": Protocol.parse(protocol)}
    accepts = {"port": spec.options.takes_port, "baud": spec.options.takes_baud}
    for name, value in (("port", port), ("baud", baud)):
        if value is None:
            continue
        if not accepts[name]:
            raise ConfigError(f"the {backend} backend does not take --{name}")
        values[name] = value
    return spec.create(board, **values)


def load_model(spec: str | Path | None, person_index: int | None = None) -> ModelInfo:
    """A zoo name, a path, or None (the shipped default) as a checked int8 model.

    ``person_index`` says which output is the person score, for models whose output
    is not VWW's [no person, person] (checked here, before any device starts).
    """
    try:
        from harness.models.zoo import resolve_model
    except ImportError:
        if spec is None:
            raise ModelError("no default model: the model zoo is not available; pass --model FILE") from None
        path = Path(spec)
    else:
        path = resolve_model(str(spec) if spec is not None else None)
    model = ModelInfo.from_file(path)
    model.require_int8_io()
    Preprocessor.for_input(model.inputs[0], model.label)
    person_index_for(model.outputs, person_index, model.label)
    return model


def load_dataset(path: str | Path | None) -> Any:
    from harness.data.dataset import Dataset

    if path is None:
        try:
            from harness.data.smoke import default_dataset
        except ImportError:
            raise DataError(
                "no data set given and the smoke set builder is not available; pass --data DIR"
            ) from None
        path = default_dataset()
    return Dataset.open(Path(path))


def settings_for(request: BenchRequest) -> BenchSettings:
    """The runner's measurement settings of a resolved request."""
    assert request.warmups is not None, "resolve the request first"
    return BenchSettings(
        threshold=request.threshold, warmups=request.warmups, repeats=request.repeats,
        split=request.split, limit=request.limit, watchdog_s=request.watchdog,
        person_index=request.person_index,
    )


def bench_on_device(
    device: Device,
    *,
    board: Board,
    backend: str,
    model: ModelInfo | Path,
    dataset: Any = None,
    out_dir: Path | None = None,
    settings: BenchSettings | None = None,
    request: BenchRequest | None = None,
    quiet: bool = True,
    folder: RunFolder | None = None,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """Benchmark an already created (open or closed) device; returns the run folder.

    The measurement settings come from ``settings`` or else from ``request`` (which is
    then stored in run.json); with neither, the backend's defaults.
    """
    model_info = model if isinstance(model, ModelInfo) else load_model(model)
    ds = dataset if dataset is not None and not isinstance(dataset, str | Path) else load_dataset(dataset)
    if request is not None:
        request = request.resolved()
        manifest = {**(manifest or {}), "request": request.to_dict(), "protocol": request.protocol.value}
    settings = settings or settings_for(request or BenchRequest(backend=backend).resolved())
    resume = folder is not None
    sink = install_log_sink(device)
    check_device(device.open(), model_info)  # before a folder exists: a refused device leaves none
    if folder is None:
        mark_abandoned_runs(runs_root(out_dir))  # runs killed earlier in this folder say so
        folder = RunFolder.create(runs_root(out_dir), new_run_id(board.id, backend))
    runner = Runner(
        device=device,
        board=board,
        backend=backend,
        model=model_info,
        dataset=ds,
        folder=folder,
        settings=settings,
        quiet=quiet,
        manifest=manifest,
        log_sink=sink,
    )
    return runner.run(resume=resume).path


class RunAlreadyComplete(HarnessError):
    """``--resume`` of a run that has a row for every planned image: nothing to do, not an error.

    Raised before the device starts, so the run folder (its rows, its finished time) is
    left exactly as it was; the CLI prints the message and exits 0.
    """

    exit_code = 0


def _complete(manifest: dict[str, Any]) -> bool:
    """A row for every planned image and none that the link lost (a resume measures those again)."""
    planned = (manifest.get("dataset") or {}).get("count")
    measured = (manifest.get("metrics") or {}).get("n")
    lost = any(": link: " in str(e) for e in manifest.get("errors") or [])
    return manifest.get("status") == "complete" and planned is not None and measured == planned and not lost


def _resume_target(resume: str | Path, out_dir: Path | None) -> tuple[RunFolder, dict[str, Any]]:
    folder = RunFolder.find(resume, out_dir)
    m = folder.manifest
    if m.get("schema_version") != 1:
        raise ConfigError(f"run {folder.path} has schema version {m.get('schema_version')!r}, not 1")
    if m.get("status") == "running" and writer_alive(m):
        raise ConfigError(
            f"run {folder.path} is still being written by pid {m['writer'].get('pid')}; "
            "wait for it to end (or stop it) before resuming"
        )
    return folder, m


def _resumed_request(request: BenchRequest, manifest: dict[str, Any]) -> BenchRequest:
    """The run's own request, with what may differ on resume taken from ``request``.

    A model or data set given again must hash the same as the run's (checked later); a
    real board may sit on another port now, and the run folder stays where it is.
    """
    stored = BenchRequest.from_manifest(manifest)
    if request.limit is not None and request.limit != stored.limit:
        # the run's image count is part of what it measured: a resume finishes that, no more
        # and no less; a different count is a different run
        kept = f"--limit {stored.limit}" if stored.limit is not None else "no --limit, every image"
        raise ConfigError(
            f"--limit {request.limit} does not go with --resume: the run continues as it was started "
            f"({kept}); start a new run to measure a different number of images"
        )
    return replace(
        stored,
        model=request.model if request.model is not None else stored.model,
        data=request.data if request.data is not None else stored.data,
        port=request.port if request.port is not None else stored.port,
        # a farm run acquires its place again: the place may now be served on another port
        place=request.place if request.place is not None else stored.place,
        coordinator=request.coordinator if request.coordinator is not None else stored.coordinator,
        place_wait=request.place_wait if request.place_wait else stored.place_wait,
        baud=request.baud if request.baud is not None else stored.baud,
        out_dir=request.out_dir if request.out_dir is not None else stored.out_dir,
        # a link that needs more patience this time: --watchdog given again wins
        watchdog=request.watchdog if request.watchdog != BenchRequest.watchdog else stored.watchdog,
        resume=request.resume,
    )


def run_bench(request: BenchRequest, *, quiet: bool = True, place_opener: PlaceOpener | None = None) -> Path:
    """Run one benchmark (or finish an interrupted one) and return its run folder.

    On resume (``request.resume``), the run's own stored request decides the board,
    backend, protocol, model, data set and settings; a model or data set given in
    ``request`` must hash the same as the run's. A request with a ``place`` is run on
    the port ``place_opener`` lends for it, acquired after every check and released on
    every way out.
    """
    folder: RunFolder | None = None
    manifest: dict[str, Any] | None = None
    if request.resume is not None:
        folder, manifest = _resume_target(request.resume, request.out_dir)
        request = _resumed_request(request, manifest)
        if _complete(manifest):
            n = (manifest.get("metrics") or {}).get("n")
            raise RunAlreadyComplete(
                f"run {folder.run_id} is already complete ({n} images, finished "
                f"{manifest.get('finished_utc') or 'earlier'}); nothing to resume: {folder.path}"
            )
    request = request.resolved()
    assert request.backend is not None and request.warmups is not None
    board_profile = load_board(request.board)
    model_info = load_model(request.model, request.person_index)
    ds = load_dataset(request.data)
    if manifest is not None and folder is not None:
        want_model = (manifest.get("model") or {}).get("sha256")
        if want_model and want_model != model_info.sha256:
            raise ConfigError(
                f"cannot resume {folder.run_id}: model sha256 {model_info.sha256} differs from "
                f"the run's {want_model}"
            )
        want_data = (manifest.get("dataset") or {}).get("sha256")
        if want_data and want_data != ds.sha256:
            raise ConfigError(
                f"cannot resume {folder.run_id}: data set sha256 {ds.sha256} differs from "
                f"the run's {want_data}"
            )
    settings = settings_for(request)
    if request.split is not None:
        next(iter(ds.iter_samples(request.split, 1)), None)  # an unknown split fails here, in one line
    record = {**(manifest or {}), "request": request.to_dict(), "protocol": request.protocol.value}
    if request.place is None:
        return _bench_on_port(request, request.port, record, board_profile, model_info, ds, settings, folder,
                              quiet)
    if place_opener is None:
        raise ConfigError("--place needs board-farm support (harness.farm): pip install -e '.[farm]'")
    with place_opener(request) as remote:
        record["place"] = remote.record
        return _bench_on_port(request, remote.url, record, board_profile, model_info, ds, settings, folder,
                              quiet)


def _bench_on_port(
    request: BenchRequest, port: str | None, record: dict[str, Any], board_profile: Board,
    model_info: ModelInfo, ds: Any, settings: BenchSettings, folder: RunFolder | None, quiet: bool,
) -> Path:
    assert request.backend is not None
    device = make_device(
        board_profile, request.backend, model=Path(model_info.path or ""), port=port,
        baud=request.baud, protocol=request.protocol,
    )
    try:
        return bench_on_device(
            device,
            board=board_profile,
            backend=request.backend,
            model=model_info,
            dataset=ds,
            out_dir=request.out_dir,
            settings=settings,
            quiet=quiet,
            folder=folder,
            manifest=record,
        )
    finally:
        device.close()
