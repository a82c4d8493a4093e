"""The benchmark as a function: what ``hil bench``, ``hil nightly`` and the pytest plugin call.

Everything a user can get wrong (unknown board, a model that is not int8 or whose input is
not an image, a data set that is not one, a run to resume that measured another model or
data set) is checked here before a device is opened, so that a mistake costs a second
and one line, not a half-finished run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from harness.bench.device_log import install_log_sink
from harness.bench.preprocess import Preprocessor
from harness.bench.runner import BenchSettings, Runner, check_device, person_index_for
from harness.bench.store import RunFolder, new_run_id, runs_root
from harness.boards import Board, load_board
from harness.devices import get_backend
from harness.devices.base import Device
from harness.errors import ConfigError, DataError, ModelError
from harness.link.protocol import Protocol
from harness.models.tflite_file import ModelInfo

log = logging.getLogger(__name__)

DEFAULT_BOARD = "nano33"


def default_warmups(backend: str) -> int:
    """One warm-up on real and emulated boards (caches, lazy init); none on the sim.

    The sim's cycles are an estimate from the cost model, the same on every call, so a
    warm-up there would only double the time of a run.
    """
    return 0 if backend == "sim" else 1


def default_backend(port: str | None) -> str:
    """A port means a real board on it; without one the simulated board stands in."""
    return "serial" if port else "sim"


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
    for name, value, accepted in (("port", port, spec.options.takes_port), ("baud", baud, spec.options.takes_baud)):
        if value is None:
            continue
        if not accepted:
            raise ConfigError(f"the {backend} backend does not take --{name}")
        values[name] = value
    return spec.create(board, **values)


def load_model(spec: str | Path | None) -> ModelInfo:
    """A zoo name, a path, or None (the shipped default) as a checked int8 model."""
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
    person_index_for(model.outputs, None, model.label)
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


def _check_settings(limit: int | None, threshold: float, warmups: int, repeats: int) -> None:
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}")
    if warmups < 0:
        raise ConfigError(f"--warmups must be 0 or more, not {warmups}")
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, not {repeats}")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold must be between 0 and 1, not {threshold}")


def bench_on_device(
    device: Device,
    *,
    board: Board,
    backend: str,
    model: ModelInfo | Path,
    dataset: Any = None,
    out_dir: Path | None = None,
    settings: BenchSettings | None = None,
    limit: int | None = None,
    quiet: bool = True,
    folder: RunFolder | None = None,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """Benchmark an already created (open or closed) device; returns the run folder."""
    model_info = model if isinstance(model, ModelInfo) else load_model(model)
    ds = dataset if dataset is not None and not isinstance(dataset, str | Path) else load_dataset(dataset)
    settings = settings or BenchSettings(limit=limit, warmups=default_warmups(backend))
    resume = folder is not None
    sink = install_log_sink(device)
    check_device(device.open(), model_info)  # before a folder exists: a refused device leaves none
    if folder is None:
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


def _resume_target(resume: str | Path, out_dir: Path | None) -> tuple[RunFolder, dict[str, Any]]:
    folder = RunFolder.find(resume, out_dir)
    m = folder.manifest
    if m.get("schema_version") != 1:
        raise ConfigError(f"run {folder.path} has schema version {m.get('schema_version')!r}, not 1")
    return folder, m


def run_bench(
    board: str = DEFAULT_BOARD,
    backend: str | None = "sim",
    model: str | Path | None = None,
    dataset: str | Path | None = None,
    out_dir: Path | None = None,
    limit: int | None = None,
    threshold: float = 0.5,
    warmups: int | None = None,
    repeats: int = 1,
    quiet: bool = True,
    port: str | None = None,
    baud: int | None = None,
    resume: str | Path | None = None,
    split: str | None = None,
) -> Path:
    """Run one benchmark (or finish an interrupted one) and return its run folder.

    On resume, the run's own manifest decides the board, backend, model, data set and
    settings; a model or data set given here must hash the same as the run's.
    """
    folder: RunFolder | None = None
    manifest: dict[str, Any] | None = None
    if resume is not None:
        folder, manifest = _resume_target(resume, out_dir)
        s = manifest.get("settings") or {}
        board = (manifest.get("board") or {}).get("id", board)
        backend = manifest.get("backend", backend)
        model = model if model is not None else (manifest.get("model") or {}).get("path")
        dataset = dataset if dataset is not None else (manifest.get("dataset") or {}).get("path")
        threshold = float(s.get("threshold", threshold))
        warmups = s.get("warmups", warmups)
        repeats = int(s.get("repeats", repeats))
        split = s.get("split", split)
        limit = s.get("limit", limit)
    backend = backend or default_backend(port)
    warmups = default_warmups(backend) if warmups is None else int(warmups)
    _check_settings(limit, threshold, warmups, repeats)
    board_profile = load_board(board)
    model_info = load_model(model)
    ds = load_dataset(dataset)
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
    settings = BenchSettings(threshold=threshold, warmups=warmups, repeats=repeats, split=split, limit=limit)
    if split is not None:
        next(iter(ds.iter_samples(split, 1)), None)  # an unknown split fails here, in one line
    device = make_device(board_profile, backend, model=Path(model_info.path or ""), port=port, baud=baud)
    try:
        return bench_on_device(
            device,
            board=board_profile,
            backend=backend,
            model=model_info,
            dataset=ds,
            out_dir=out_dir,
            settings=settings,
            quiet=quiet,
            folder=folder,
            manifest=manifest,
        )
    finally:
        device.close()
