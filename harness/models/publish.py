"""Publishing a trained, converted model into the zoo with its model card.

The shipped default model must be reproducible by the project's own pipeline and
honest about itself. This step takes a ``hil train`` folder that ``hil convert`` has
filled, measures the int8 model on the held-out split (test, else val) with a 95 %
Wilson interval, analyses it (MACs, flash, TFLM arena, fit per board), and writes the
model file, its training log, a MODEL_CARD.md and the zoo entry ``<name>.toml``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.boards import list_boards
from harness.errors import ModelError
from harness.models.convert import INT8_FILE, REPORT_FILE
from harness.models.training import EPOCHS_FILE, LOG_FILE


def publish(
    folder: Path, data: Path, name: str, zoo: Path, description: str, licence: str = "Apache-2.0"
) -> Path:
    """Copy the int8 model of ``folder`` into ``zoo/<name with _>/`` and write its card and entry."""
    from harness.models.analysis import analyze
    from harness.models.arrays import load_splits
    from harness.models.convert import int8_accuracy
    from harness.models.mobilenet import ArchConfig
    from harness.stats import wilson

    tflite = folder / INT8_FILE
    log_path = folder / LOG_FILE
    if not tflite.is_file() or not log_path.is_file():
        raise ModelError(f"{folder} needs {LOG_FILE} and {INT8_FILE}: run `hil train` and `hil convert`")
    record = json.loads(log_path.read_text("utf-8"))
    arch = ArchConfig.from_dict(record["config"]["arch"])
    splits = load_splits(data, arch.resolution, arch.channels, seed=int(record["config"]["seed"]))
    held, held_name = (splits.test, "test") if splits.test is not None else (splits.val, "val")
    acc = int8_accuracy(tflite.read_bytes(), held)
    k = int(round(acc * len(held)))
    ci = wilson(k, len(held))
    analysis = analyze(tflite, list_boards())

    sub = zoo / name.replace("-", "_")
    sub.mkdir(parents=True, exist_ok=True)
    model_name = f"{name.replace('-', '_')}_int8.tflite"
    shutil.copyfile(tflite, sub / model_name)
    for extra in (LOG_FILE, EPOCHS_FILE, REPORT_FILE):
        if (folder / extra).is_file():
            shutil.copyfile(folder / extra, sub / extra)
    facts = {
        "held_out": {
            "split": held_name,
            "images": len(held),
            "correct": k,
            "accuracy": acc,
            "ci95": [ci.low, ci.high],
        },  # fmt: skip
        "analysis": analysis.to_dict(),
    }
    (sub / "evaluation.json").write_text(json.dumps(facts, indent=2), "utf-8")
    sha = hashlib.sha256((sub / model_name).read_bytes()).hexdigest()
    conv = json.loads((folder / REPORT_FILE).read_text("utf-8")) if (folder / REPORT_FILE).is_file() else {}
    (sub / "MODEL_CARD.md").write_text(
        _card(
            name,
            description,
            record,
            analysis,
            held_name,
            len(held),
            k,
            acc,
            ci,
            _dataset_facts(data),
            licence,
            conv,
            data,
        ),
        "utf-8",
    )
    entry = zoo / f"{name}.toml"
    entry.write_text(_toml(name, description, arch, licence, f"{sub.name}/{model_name}", sha), "utf-8")
    return entry


def _toml(name: str, description: str, arch: Any, licence: str, file: str, sha: str) -> str:
    return f"""# Trained by this project's pipeline (`hil train`, `hil convert`, `hil publish`);
# see {file.split("/")[0]}/MODEL_CARD.md for the data, accuracy and cost.
name = "{name}"
description = "{description}"
format = "tflite-int8"
licence = "{licence}"

[architecture]
family = "mobilenet_v1"
alpha = {arch.alpha}
resolution = {arch.resolution}
channels = {arch.channels}
num_classes = {arch.num_classes}
head = "{arch.head.pool}"

[input]
dtype = "int8"
shape = [1, {arch.resolution}, {arch.resolution}, {arch.channels}]
colour = "{arch.colour}"
pixel = "uint8 pixel - 128"
labels = ["no_person", "person"]

[source]
origin = "project"
file = "{file}"
sha256 = "{sha}"
"""


def _card(
    name: str,
    description: str,
    record: dict[str, Any],
    a: Any,
    held_name: str,
    n: int,
    k: int,
    acc: float,
    ci: Any,
    dataset: str,
    licence: str,
    conv: dict[str, Any],
    data_dir: Path,
) -> str:
    cfg = record["config"]
    arch = cfg["arch"]
    d = record["data"]
    boards = "\n".join(
        f"| {b.board} | {'yes' if b.fit.fits else 'no: ' + b.fit.reason()} | {b.latency_ms:.0f} |"
        for b in a.boards
    )
    return f"""# Model card: {name}

{description}

## What it is
- MobileNetV1 family (this project's `harness.models.mobilenet`), alpha {arch["alpha"]},
  {arch["resolution"]}x{arch["resolution"]} {"RGB" if arch["channels"] == 3 else "grayscale"} input,
  {arch["blocks"]} depthwise-separable blocks, head: {arch["head"]["pool"]} pooling + softmax over 2 classes
  (index 0 no person, 1 person), like the MLPerf Tiny VWW model.
- Full-integer int8 (post-training quantisation), int8 input = uint8 pixel - 128
  (scale 1/255, zero point -128), int8 output.
- Trained from scratch by this project's pipeline ({record["mode"]}); no weights from any
  other model. Licence: {licence}.

## Data it was trained on
- {dataset}
- Splits used: {d["source"]}
- Training images: {d["train_images"]} (per class {d["train_class_counts"]}); validation per class
  {d["val_class_counts"]}; {held_name} per class {d.get("test_class_counts") or d["val_class_counts"]}.
- **This is synthetic data** (drawn figures on drawn backgrounds, `harness.data.synth`). The accuracy
  below says how well the model separates synthetic persons from synthetic distractors; it says
  nothing about real photographs. Do not use this model to claim VWW accuracy: it exists so that the
  harness runs end to end offline. For a real figure, benchmark the MLPerf reference model
  (`mlperf-vww-96`) or train on VWW (COCO) data.

## Accuracy (held out)
- int8 model on the {held_name} split: **{acc:.3f}** ({k}/{n}), 95 % Wilson interval
  {ci.low:.3f}-{ci.high:.3f}.
- Float model: val {record["val_accuracy"]:.3f}, test {_f(record["test_accuracy"])}.

## Training
- {cfg["epochs"]} epochs max, batch {cfg["batch_size"]}, Adam lr {cfg["learning_rate"]}, seed {cfg["seed"]},
  augmentation {"on" if cfg["augment"] else "off"}, class balancing: {cfg["balance"]},
  early stopping patience {cfg["patience"]} on val loss.
- Wall time {record["wall_seconds"]} s on a shared 2-core machine, {record["images_seen"]:,} images seen
  ({record["images_per_second"]} images/s). Per-epoch log: `{EPOCHS_FILE}`, full log: `{LOG_FILE}`.
- Versions: {record.get("versions", {})}.

## Cost
| figure | value |
|---|---|
| MACs | {a.total_macs:,} |
| parameters | {a.total_params:,} |
| flash (model file) | {a.flash_bytes:,} B |
| TFLM arena, measured on the 64-bit host | {a.arena_bytes:,} B |
| TFLM arena, 32-bit estimate | {a.arena_32bit_bytes:,} B |
| input buffer | {a.input_bytes:,} B |

| board | fits | estimated latency (ms, cost model) |
|---|---|---|
{boards}

{_conversion(conv)}
## Reproduce
```
{_reproduce(record, data_dir, name)}
```

Generated by `hil publish` on {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}.
"""


def _dataset_facts(data: Path) -> str:
    """Name and build parameters of the data set, so that a reader can rebuild it."""
    meta_path = data / "dataset.json"
    if not meta_path.is_file():
        return f"data set folder `{data.name}` (no dataset.json)"
    meta = json.loads(meta_path.read_text("utf-8"))
    params = meta.get("parameters", {})
    kind = "synthetic" if meta.get("synthetic") else "real"
    return (
        f"`{meta.get('name', data.name)}` ({kind}; build parameters {params}; "
        f"content sha256 {meta.get('content_sha256', '?')})"
    )


def _conversion(conv: dict[str, Any]) -> str:
    if not conv:
        return ""
    lo_hi = conv.get("int8_val_ci95") or [float("nan"), float("nan")]
    return (
        "## Conversion\n"
        f"- Post-training int8 quantisation with {conv['representative_images']} representative "
        f"images in {conv['seconds']} s; QAT epochs: {conv['qat_epochs']}.\n"
        f"- Validation ({conv['val_images']} images): float {conv['float_val_accuracy']:.3f}, int8 "
        f"{conv['int8_val_accuracy']:.3f} (95 % CI {lo_hi[0]:.3f}-{lo_hi[1]:.3f}).\n"
        f"- TFLM and LiteRT reference kernels gave identical int8 outputs on "
        f"{conv['tflm_identical']}/{conv['tflm_checked_images']} sample images.\n"
    )


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _reproduce(record: dict[str, Any], data: Path, name: str) -> str:
    """The commands that rebuild the data (when synthetic) and this model."""
    cfg = record["config"]
    arch = cfg["arch"]
    lines = []
    meta_path = data / "dataset.json"
    meta = json.loads(meta_path.read_text("utf-8")) if meta_path.is_file() else {}
    p = meta.get("parameters", {})
    if meta.get("synthetic") and p:
        gray = " --grayscale" if p.get("grayscale") else ""
        lines.append(f"hil data synth --n {p['n']} --seed {p['seed']} --size {p['size']}{gray} --out DATA")
    train = (
        f"hil train --data DATA --out RUN --alpha {arch['alpha']} --resolution {arch['resolution']}"
        f"{' --grayscale' if arch['channels'] == 1 else ''} --epochs {cfg['epochs']} "
        f"--batch-size {cfg['batch_size']} --lr {cfg['learning_rate']} --seed {cfg['seed']} "
        f"--patience {cfg['patience']} --balance {cfg['balance']}"
        f"{'' if cfg['augment'] else ' --no-augment'}"
    )
    lines += [train, "hil convert RUN --data DATA", f"hil publish RUN --data DATA --name {name}"]
    return "\n".join(lines)
