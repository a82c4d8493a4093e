"""Per-layer instruction counts from the real firmware in QEMU, for the cost-model fit.

QEMU with ``-icount shift=0`` counts guest instructions, deterministically; one inference
of each model gives one count per layer. The counts of CMSIS-NN's int8 kernels depend on
the layer's shapes (MACs, channels, output size), not on the weights or the input values
(the loops have no data-dependent branches except the activation clamps), so untrained
MobileNetV1 variants give the same per-layer counts as trained ones of the same shape;
that is why the fit can use freshly initialised depth-multiplier variants.

The counts are kept in a JSON file (``--save``, read back with ``--profiles``) so that a
fit can be rerun, and reviewed, without QEMU and without the models: each record holds what
the fit needs and nothing tied to one machine (format ``hil-qemu-layer-counts/2``)::

    {"name", "sha256", "engine", "instructions" (one whole inference, without profiling),
     "layers": [[index, op, instructions, macs, output_elements], ...]}

Format 1 files (a model path instead of MACs and output sizes) are read when their paths
still exist on this machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.boards import Board
from harness.calibration.fit import LayerSample
from harness.errors import HarnessError

log = logging.getLogger(__name__)


class CalibrationError(HarnessError):
    """The calibration cannot run: no real-firmware QEMU path, a model that does not run, bad data."""


COUNTS_FORMAT = "hil-qemu-layer-counts/2"
_COUNTS_FORMAT_1 = "hil-qemu-layer-counts/1"


def count_model(board: Board, name: str, model: Path) -> dict[str, Any]:
    """One record of the counts file: QEMU's counts for ``model`` joined with its layer shapes."""
    from harness.models.tflite_file import ModelInfo

    layers, whole, engine = qemu_layer_counts(board, model)
    shapes = {layer.index: layer for layer in ModelInfo.from_file(model).layers}
    rows = []
    for index, op, instructions in layers:
        layer = shapes.get(int(index))
        if layer is None or layer.op != op:
            raise CalibrationError(f"{name}: device layer {index} {op} does not match the model's layers")
        rows.append([int(index), op, int(instructions), int(layer.macs), int(layer.output_elements)])
    return {"name": name, "sha256": sha256_of(model), "engine": engine, "instructions": whole,
            "layers": rows}


def qemu_layer_counts(board: Board, model: Path) -> tuple[list[tuple[int, str, int]], int, str]:
    """(index, op, instructions) per layer of one inference of ``model``, the instructions of
    one whole inference without profiling (what `hil bench --backend qemu` reports: the
    layers plus the interpreter's work between them), and the engine name."""
    from harness.devices import create_device
    from harness.link.messages import TimerKind

    # instruction counts need the model to fit QEMU's memory map, not the board's
    device = create_device("qemu", board, model=model, fit_board=False)
    with device:
        info = device.open()
        if info.engine != "tflm" or info.timer is not TimerKind.INSTRUCTIONS:
            raise CalibrationError(
                f"the qemu backend answered engine {info.engine!r} with timer {info.timer.name.lower()}: "
                "calibration needs the real TFLM firmware counting instructions (-icount shift=0)"
            )
        spec = info.inputs[0]
        zeros = np.zeros(spec.shape, dtype=spec.dtype.numpy_name)
        whole = int(sum(device.infer(zeros).cycles))
        device.infer(zeros, profile=True)
        layers = device.profile()
    return [(lt.index, lt.op, int(lt.cycles)) for lt in layers], whole, info.engine


def samples_for(record: dict[str, Any], cpi: float) -> list[LayerSample]:
    """The fit's rows for one record of the counts file (cycles = instructions x ``cpi``)."""
    name = str(record["name"])
    out = []
    for row in record["layers"]:
        if len(row) != 5:
            raise CalibrationError(
                f"{name}: a layer row is {row!r}, not [index, op, instructions, macs, outputs]"
            )
        index, op, instructions, macs, outputs = row
        out.append(LayerSample(name, int(index), str(op), int(macs), int(outputs), float(instructions) * cpi))
    return out


def whole_cycles(record: dict[str, Any], cpi: float) -> float:
    """Cycles of one whole inference: its own count when the record has one, else the layers' sum."""
    whole = record.get("instructions")
    if not isinstance(whole, int | float) or whole <= 0:
        whole = sum(row[2] for row in record["layers"])
    return float(whole) * cpi


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_profiles(path: Path, records: list[dict[str, Any]]) -> None:
    """Write the counts file (see the module docstring), one layer per line for review."""
    path.parent.mkdir(parents=True, exist_ok=True)
    models = []
    for r in records:
        head = json.dumps({k: v for k, v in r.items() if k != "layers"})[:-1]
        rows = ",\n   ".join(json.dumps(row) for row in r["layers"])
        models.append(f'  {head}, "layers": [\n   {rows}\n  ]}}')
    path.write_text(f'{{"format": "{COUNTS_FORMAT}", "models": [\n' + ",\n".join(models) + "\n]}\n")


def load_profiles(path: Path) -> list[dict[str, Any]]:
    """The records of a counts file; a format 1 file is upgraded from its models' paths."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"cannot read layer counts from {path}: {exc}") from exc
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt not in (COUNTS_FORMAT, _COUNTS_FORMAT_1) or not isinstance(data.get("models"), list):
        raise CalibrationError(f"{path} is not a layer-count file written by `hil calibrate --save`")
    records = [dict(r) for r in data["models"]]
    for r in records:
        if not isinstance(r, dict) or not {"name", "layers"} <= set(r):
            raise CalibrationError(f"{path}: a model record lacks its name or layers")
    return records if fmt == COUNTS_FORMAT else [_upgrade(r, path) for r in records]


def _upgrade(record: dict[str, Any], source: Path) -> dict[str, Any]:
    """A format 1 record (layer shapes only through a model path) as format 2."""
    from harness.models.tflite_file import ModelInfo

    model = Path(str(record.get("path", "")))
    if not model.is_file():
        raise CalibrationError(
            f"{source} is a format 1 counts file and its model {record['name']} is not at {model}; "
            "rerun `hil calibrate --save` to write format 2 (layer shapes included, no paths)"
        )
    shapes = {layer.index: layer for layer in ModelInfo.from_file(model).layers}
    rows = []
    for index, op, instructions in record["layers"]:
        layer = shapes.get(int(index))
        if layer is None or layer.op != op:
            raise CalibrationError(f"{record['name']}: layer {index} {op} does not match {model}")
        rows.append([int(index), op, int(instructions), int(layer.macs), int(layer.output_elements)])
    out = {k: v for k, v in record.items() if k != "path"}
    out["layers"] = rows
    return out


def mobilenet_variant(alpha: float, folder: Path, resolution: int = 96) -> Path:
    """An untrained int8 MobileNetV1 of depth multiplier ``alpha`` (built once, then reused)."""
    path = folder / f"mobilenet-v1-a{alpha:g}-r{resolution}-untrained-int8.tflite"
    if path.is_file():
        return path
    from harness.models.arrays import Arrays
    from harness.models.convert import convert_int8
    from harness.models.mobilenet import ArchConfig, build_mobilenet_v1

    arch = ArchConfig(alpha=alpha, resolution=resolution)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, resolution, resolution, 3), dtype=np.uint8)
    model = build_mobilenet_v1(arch, seed=0, batch_size=1)
    _spread_logits(model, images)
    data = convert_int8(model, arch, Arrays(images, np.zeros(16, np.int64)))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _spread_logits(model: Any, images: np.ndarray) -> None:
    """Scale an untrained classifier so its logits spread over a few units.

    Freshly initialised, the network's logits are all near zero; the int8 converter then
    gives the softmax input a scale so small that TFLM refuses the model. Scaling the last
    layer's kernel changes no layer's shape, so the instruction counts stay those of the
    architecture, which is all the calibration needs from these variants.
    """
    import keras

    layer = model.get_layer("classifier")
    logits_model = keras.Model(model.inputs, layer.input)
    features = np.asarray(logits_model(images.astype(np.float32) / 255.0, training=False))
    kernel, bias = layer.get_weights()
    spread = float(np.std(features @ kernel)) or 1.0
    layer.set_weights([kernel * (2.0 / spread), bias])


def default_models(alphas: Sequence[float], variant_dir: Path) -> list[tuple[str, Path]]:
    """The zoo's int8 models that are present, the MLPerf reference, and the MobileNet variants."""
    from harness.models.zoo import entry_file, list_zoo
    from harness.paths import reference_models_dir

    out: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for entry in list_zoo():
        if entry.format != "tflite-int8":
            continue
        try:
            path = entry_file(entry)
        except HarnessError as exc:
            log.info("zoo model %s skipped: %s", entry.name, exc)
            continue
        out.append((entry.name, path))
        seen.add(sha256_of(path))
    ref = reference_models_dir()
    if ref is not None and (ref / "mlperf_tiny_vww_96_int8.tflite").is_file():
        path = ref / "mlperf_tiny_vww_96_int8.tflite"
        if sha256_of(path) not in seen:
            out.append(("mlperf-vww-96-reference", path))
    return out + variant_models(alphas, variant_dir)


def variant_models(alphas: Sequence[float], variant_dir: Path) -> list[tuple[str, Path]]:
    """The untrained MobileNetV1 variants of these depth multipliers, named for the counts file."""
    return [(f"mobilenet-v1-a{alpha:g}-untrained", mobilenet_variant(alpha, variant_dir)) for alpha in alphas]
