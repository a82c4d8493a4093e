"""Training a MobileNetV1-family model, from scratch or from a pretrained backbone.

One function, :func:`train`, runs both ways so that the comparison command measures
the two under identical data, augmentation, schedule and seed. What it produces is a
folder that holds everything needed to reproduce and judge the model: the float Keras
model, the architecture, the data and settings, the per-epoch history, wall time and
the number of images the optimiser saw (the cost transfer learning claims to save).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import console
from harness.errors import ConfigError
from harness.models.arrays import Arrays, Splits, stratified_fraction
from harness.models.mobilenet import ArchConfig, build_mobilenet_v1

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
LOG_FILE = "training_log.json"
EPOCHS_FILE = "epochs.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (all of them end up in the training log)."""

    arch: ArchConfig = field(default_factory=ArchConfig)
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int = 0
    augment: bool = True
    balance: str = "weights"  # "weights", "oversample" or "none"
    patience: int = 4  # early stopping on val loss; 0 disables
    train_fraction: float = 1.0
    backbone: str | None = None  # a Keras file; None trains from scratch
    freeze_blocks: int = 0  # with a backbone: stem + this many blocks copied and frozen
    fine_tune_epochs: int = 0  # with a backbone: then unfreeze all and train this long
    fine_tune_lr: float = 2e-4
    deterministic: bool = False  # TF op determinism: reproducible to the bit, slower

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, not {self.batch_size}")
        if self.balance not in ("weights", "oversample", "none"):
            raise ConfigError(f"balance must be weights, oversample or none, not {self.balance!r}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ConfigError(f"train fraction must be in (0, 1], not {self.train_fraction}")
        if self.freeze_blocks and not self.backbone:
            raise ConfigError("--freeze-blocks needs a --backbone to copy the blocks from")
        if self.freeze_blocks < 0 or self.freeze_blocks > self.arch.blocks:
            raise ConfigError(f"freeze blocks must be 0..{self.arch.blocks}, not {self.freeze_blocks}")

    @property
    def mode(self) -> str:
        return "transfer" if self.backbone else "scratch"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["arch"] = self.arch.to_dict()
        return d


@dataclass
class TrainResult:
    model: Any  # keras.Model
    out_dir: Path | None
    history: list[dict[str, float]]
    wall_s: float
    images_seen: int
    val_accuracy: float
    test_accuracy: float | None
    log: dict[str, Any]


def _augment_fn(seed: int, channels: int) -> Any:
    """Label-preserving augmentation: flips, small shifts, brightness and contrast.

    A person stays a person under all of them; rotations and big crops are avoided
    because they can cut a small person out of the frame and make the label wrong.
    """
    import tensorflow as tf

    def aug(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        shape = tf.shape(x)
        x = tf.image.random_flip_left_right(x, seed=seed)
        pad = tf.maximum(shape[0] // 12, 1)
        x = tf.image.resize_with_crop_or_pad(x, shape[0] + 2 * pad, shape[1] + 2 * pad)
        x = tf.image.random_crop(x, [shape[0], shape[1], channels], seed=seed + 1)
        x = tf.image.random_brightness(x, 0.15, seed=seed + 2)
        x = tf.image.random_contrast(x, 0.8, 1.2, seed=seed + 3)
        return tf.clip_by_value(x, 0.0, 1.0), y

    return aug


def make_dataset(
    arr: Arrays, batch_size: int, shuffle: bool, augment: bool, seed: int, channels: int
) -> tf.data.Dataset:
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((arr.x, arr.y))
    if shuffle:
        ds = ds.shuffle(len(arr), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
    if augment:
        ds = ds.map(_augment_fn(seed, channels), num_parallel_calls=1)
    return ds.batch(batch_size).prefetch(2)


def _oversample(arr: Arrays, seed: int) -> Arrays:
    """Repeat images of the rarer classes until every class is as common as the largest."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(arr.y)
    idx = [np.flatnonzero(arr.y == c) for c in range(len(counts)) if counts[c]]
    target = max(len(i) for i in idx)
    parts = [np.concatenate([i, rng.choice(i, target - len(i))]) for i in idx]
    order = np.concatenate(parts)
    rng.shuffle(order)
    return arr.subset(order)


def class_weights(y: np.ndarray, num_classes: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=num_classes).astype(float)
    n = counts.sum()
    return {c: float(n / (num_classes * counts[c])) if counts[c] else 0.0 for c in range(num_classes)}


class _Recorder:
    """Keras callback factory: counts images seen, logs each epoch, appends to epochs.jsonl."""

    @staticmethod
    def make(out: Path | None, stage: str, state: dict[str, Any]) -> keras.callbacks.Callback:
        import keras

        class Recorder(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.t0 = 0.0

            def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                self.t0 = time.perf_counter()

            def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
                state["batches"] += 1

            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                row = {"stage": stage, "epoch": state["epoch"] + 1,
                       "seconds": round(time.perf_counter() - self.t0, 3)}  # fmt: skip
                row.update({k: round(float(v), 5) for k, v in (logs or {}).items()})
                state["epoch"] += 1
                state["history"].append(row)
                log.info("%s epoch %d: %s", stage, row["epoch"], row)
                if out is not None:
                    with (out / EPOCHS_FILE).open("a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")

        return Recorder()


class _ProgressBar:
    """Keras callback factory: drives the console's bar over a stage's batches (loss, accuracy)."""

    @staticmethod
    def make(bar: console.Bar, epochs: int) -> keras.callbacks.Callback:
        import keras

        class ProgressBar(keras.callbacks.Callback):
            def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
                steps = (self.params or {}).get("steps")
                bar.set_total(int(steps) * epochs if steps else None)

            def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                bar.set_stats(epoch=f"{epoch + 1}/{epochs}")

            def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
                logs = logs or {}
                shown = {k: f"{float(logs[k]):.3f}" for k in ("loss", "accuracy") if k in logs}
                bar.advance(1, **shown)

            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                if logs and "val_accuracy" in logs:
                    bar.set_stats(val_acc=f"{float(logs['val_accuracy']):.3f}")

        return ProgressBar()


def accuracy(model: keras.Model, arr: Arrays, batch_size: int = 64) -> float:
    probs = predict(model, arr, batch_size)
    return float((probs.argmax(axis=1) == arr.y).mean())


def predict(model: keras.Model, arr: Arrays, batch_size: int = 64) -> np.ndarray:
    x = arr.x.astype(np.float32) / 255.0
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def _fit(
    model: keras.Model,
    train_ds: Any,
    val_ds: Any,
    epochs: int,
    lr: float,
    cfg: TrainConfig,
    weights: dict[int, float] | None,
    out: Path | None,
    stage: str,
    state: dict[str, Any],
    verbose: int,
) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks: list[keras.callbacks.Callback] = [_Recorder.make(out, stage, state)]
    if cfg.patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=cfg.patience,
                restore_best_weights=True,
                start_from_epoch=min(3, epochs // 2),
            )
        )
    if out is not None:
        ckpt = out / "checkpoints"
        ckpt.mkdir(exist_ok=True)
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(ckpt / f"{stage}-best.keras"), monitor="val_loss", save_best_only=True
            )
        )
    with console.progress(f"train {stage}", None, unit="batch") as bar:
        # our bar replaces Keras's own; in a pipe it counts for the progress lines
        callbacks.append(_ProgressBar.make(bar, epochs))
        if bar.drawing:
            verbose = 0
        model.fit(
            train_ds, validation_data=val_ds, epochs=epochs, class_weight=weights,
            callbacks=callbacks, verbose=verbose,
        )  # fmt: skip


def train(cfg: TrainConfig, splits: Splits, out_dir: Path | None = None, verbose: int = 0) -> TrainResult:
    """Train per ``cfg`` and, when ``out_dir`` is given, save the model and its log there."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / EPOCHS_FILE).unlink(missing_ok=True)

    arch = cfg.arch
    train_arr = stratified_fraction(splits.train, cfg.train_fraction, cfg.seed)
    weights = None
    if cfg.balance == "oversample":
        train_arr = _oversample(train_arr, cfg.seed)
    elif cfg.balance == "weights":
        weights = class_weights(train_arr.y, arch.num_classes)
    _check_shape(train_arr, arch)
    batch = min(cfg.batch_size, len(train_arr))
    train_ds = make_dataset(train_arr, batch, True, cfg.augment, cfg.seed, arch.channels)
    val_ds = make_dataset(splits.val, 64, False, False, cfg.seed, arch.channels)

    model = build_mobilenet_v1(arch, seed=cfg.seed)
    transfer_info: dict[str, Any] = {}
    if cfg.backbone:
        from harness.models.transfer import copy_backbone, set_frozen

        transfer_info = copy_backbone(model, Path(cfg.backbone), arch, cfg.freeze_blocks)
        set_frozen(model, cfg.freeze_blocks)

    state: dict[str, Any] = {"batches": 0, "epoch": 0, "history": []}
    t0 = time.perf_counter()
    stage = "transfer" if cfg.backbone else "scratch"
    _fit(model, train_ds, val_ds, cfg.epochs, cfg.learning_rate, cfg, weights, out_dir, stage,
         state, verbose)  # fmt: skip
    images_seen = _images_seen(state, len(train_arr), batch)
    if cfg.backbone and cfg.fine_tune_epochs > 0:
        from harness.models.transfer import set_frozen

        set_frozen(model, 0)
        before = state["batches"]
        _fit(model, train_ds, val_ds, cfg.fine_tune_epochs, cfg.fine_tune_lr, cfg, weights,
             out_dir, "fine-tune", state, verbose)  # fmt: skip
        images_seen += _images_seen({"batches": state["batches"] - before}, len(train_arr), batch)
    wall = time.perf_counter() - t0

    val_acc = accuracy(model, splits.val)
    test_acc = accuracy(model, splits.test) if splits.test is not None else None
    record = {
        "mode": cfg.mode,
        "config": cfg.to_dict(),
        "data": {
            "source": splits.source,
            "path": str(splits.root) if splits.root else None,
            "train_images": len(train_arr),
            "train_class_counts": train_arr.class_counts(arch.num_classes),
            "val_class_counts": splits.val.class_counts(arch.num_classes),
            "test_class_counts": (
                splits.test.class_counts(arch.num_classes) if splits.test is not None else None
            ),
        },
        "transfer": transfer_info,
        "history": state["history"],
        "wall_seconds": round(wall, 2),
        "images_seen": images_seen,
        "images_per_second": round(images_seen / wall, 1) if wall > 0 else None,
        "val_accuracy": val_acc,
        "test_accuracy": test_acc,
        "params": int(model.count_params()),
        "versions": _versions(),
    }
    if out_dir is not None:
        model.save(out_dir / MODEL_FILE)
        (out_dir / LOG_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        log.info("saved %s and %s", out_dir / MODEL_FILE, out_dir / LOG_FILE)
    return TrainResult(model, out_dir, state["history"], wall, images_seen, val_acc, test_acc,
                       record)  # fmt: skip


def _images_seen(state: dict[str, Any], n: int, batch: int) -> int:
    """Batches run times batch size, less the short last batch of each epoch."""
    per_epoch_batches = math.ceil(n / batch)
    full_epochs, rest = divmod(int(state["batches"]), per_epoch_batches)
    return full_epochs * n + rest * batch


def _check_shape(arr: Arrays, arch: ArchConfig) -> None:
    if arr.x.shape[1:] != arch.input_shape:
        raise ConfigError(f"images are {arr.x.shape[1:]} but the model takes {arch.input_shape}")


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}


#: how a file starts: a .keras archive is a zip, a legacy Keras model HDF5
_KERAS_MAGIC = (b"PK\x03\x04", b"\x89HDF\r\n\x1a\n")


def _require_keras_file(path: Path) -> None:
    """Say what a file is when it is not a Keras model, before TensorFlow spends seconds on it."""
    from harness.errors import ModelError

    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head[4:8] == b"TFL3":
        raise ModelError(
            f"{path} is a TFLite model, already converted: `hil convert` takes the folder "
            "`hil train` wrote (or its model.keras); benchmark a .tflite with `hil bench --model`"
        )
    if not head.startswith(_KERAS_MAGIC):
        raise ModelError(
            f"{path} is not a Keras model (.keras or .h5): give the folder `hil train` wrote"
        )


def load_trained(folder: Path) -> tuple[keras.Model, ArchConfig, dict[str, Any]]:
    """The float model, its architecture and its training log from a ``hil train`` folder."""
    from harness.errors import ModelError

    model_path = folder / MODEL_FILE if folder.is_dir() else folder
    log_path = (folder if folder.is_dir() else folder.parent) / LOG_FILE
    if not model_path.is_file():
        raise ModelError(f"{model_path} not found: give the folder `hil train` wrote")
    _require_keras_file(model_path)
    import keras

    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        why = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(
            f"cannot load Keras model {model_path}: {type(exc).__name__}" + (f": {why}" if why else "")
        ) from None
    record: dict[str, Any] = {}
    if log_path.is_file():
        record = json.loads(log_path.read_text(encoding="utf-8"))
    if "config" in record:
        arch = ArchConfig.from_dict(record["config"]["arch"])
    else:
        shape = model.input_shape
        arch = ArchConfig(resolution=int(shape[1]), channels=int(shape[3]),
                          num_classes=int(model.output_shape[-1]))  # fmt: skip
    return model, arch, record
