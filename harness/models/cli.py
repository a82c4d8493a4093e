"""``hil models``, ``train``, ``train-compare``, ``convert``, ``publish``, ``analyze``, ``sweep``.

TensorFlow is imported inside the handlers that train or convert, never here:
``hil analyze`` and ``hil models`` run without it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness import console
from harness.errors import ConfigError
from harness.models.default import DEFAULT_MODEL_HELP

if TYPE_CHECKING:  # pragma: no cover
    from harness.models.mobilenet import ArchConfig
    from harness.models.training import TrainConfig

log = logging.getLogger(__name__)


def _quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ banners and Keras' notices out of the user's terminal."""
    from harness.models.tf_noise import quiet_tensorflow

    quiet_tensorflow()


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated integers, got {text!r}") from None


# -- hil models -------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from harness.models.zoo import fetch_bundle, list_zoo, resolve_model

    if args.action == "fetch":
        if not args.name:
            raise ConfigError("hil models fetch needs a name, e.g. `hil models fetch mlperf-vww`")
        for path in fetch_bundle(args.name):
            print(f"stored {path}")
        return 0

    entries = list_zoo()
    rows = []
    for e in entries:
        try:
            where = str(resolve_model(e.name))
        except Exception as exc:  # noqa: BLE001 - show why it is unavailable, keep listing
            where = f"not available: {exc}"
        a = e.architecture
        arch = f"a{a.get('alpha', '?')} {a.get('resolution', '?')}px {e.input.get('colour', '?')}"
        rows.append({"name": e.name, "format": e.format, "architecture": arch,
                     "origin": e.origin, "licence": e.licence, "file": where,
                     "description": e.description})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    head = f"{'name':<22} {'format':<13} {'architecture':<18} {'origin':<8} {'licence':<11} file"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['name']:<22} {r['format']:<13} {r['architecture']:<18} {r['origin']:<8} "
              f"{r['licence']:<11} {r['file']}")  # fmt: skip
    return 0


# -- hil train --------------------------------------------------------------------------
def _arch_from_args(args: argparse.Namespace) -> ArchConfig:
    from harness.models.mobilenet import ArchConfig, HeadConfig

    return ArchConfig(
        alpha=args.alpha, resolution=args.resolution, channels=1 if args.grayscale else 3,
        blocks=args.blocks,
        head=HeadConfig(pool=args.head_pool, dropout=args.dropout, hidden=args.hidden),
    )  # fmt: skip


def _train_config(args: argparse.Namespace, arch: ArchConfig) -> TrainConfig:
    from harness.models.training import TrainConfig

    backbone = None
    if args.backbone:
        from harness.models.zoo import resolve_model

        backbone = str(resolve_model(args.backbone))
    return TrainConfig(
        arch=arch, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        seed=args.seed, augment=not args.no_augment, balance=args.balance,
        patience=args.patience, train_fraction=args.train_fraction, backbone=backbone,
        freeze_blocks=_freeze_blocks(args, arch) if backbone else 0,
        fine_tune_epochs=args.fine_tune_epochs, fine_tune_lr=args.fine_tune_lr,
        deterministic=args.deterministic,
    )  # fmt: skip


def _freeze_blocks(args: argparse.Namespace, arch: ArchConfig) -> int:
    """The user's choice, else all but the last two blocks (11 of MobileNetV1's 13)."""
    if args.freeze_blocks is not None:
        return int(args.freeze_blocks)
    return max(1, arch.blocks - 2)


def _verbosity() -> int:
    return 1 if sys.stdout.isatty() else 2


def cmd_train(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    arch = _arch_from_args(args)
    cfg = _train_config(args, arch)
    with console.status(f"loading TensorFlow and {Path(args.data).name}"):
        import keras  # noqa: F401  (seconds to import: part of what this line waits for)

        from harness.models.arrays import load_splits
        from harness.models.training import train

        splits = load_splits(Path(args.data), arch.resolution, arch.channels, seed=args.seed)
    out = Path(args.out)
    result = train(cfg, splits, out, verbose=_verbosity())
    test = f", test {result.test_accuracy:.3f}" if result.test_accuracy is not None else ""
    print(f"trained {cfg.mode} model in {result.wall_s:.1f} s, {result.images_seen:,} images seen; "
          f"val accuracy {result.val_accuracy:.3f}{test}; saved to {out}")  # fmt: skip
    if args.convert:
        _convert(out, Path(args.data), arch, args.seed, None, args.check_images, 0)
    return 0


# -- hil convert ------------------------------------------------------------------------
def _convert(
    folder: Path, data: Path, arch: ArchConfig, seed: int, out: Path | None, check: int, qat: int
) -> None:
    from harness.models.arrays import load_splits
    from harness.models.convert import convert_folder

    with console.status(f"converting {folder.name} to int8 and checking it in TFLM"):
        splits = load_splits(data, arch.resolution, arch.channels, seed=seed)
        rep = splits.train
        report = convert_folder(folder, rep, splits.val, out=out, check_images=check, qat_epochs=qat,
                                train=splits.train)  # fmt: skip
    line = f"int8 model {report.tflite}: {report.size_bytes:,} B, converted in {report.seconds:.1f} s"
    print(line)
    print(f"TFLM vs LiteRT reference kernels: {report.tflm_identical}/{report.tflm_checked_images} "
          f"images with identical int8 outputs")  # fmt: skip
    if report.int8_val_accuracy is not None and report.int8_val_ci95 is not None:
        lo, hi = report.int8_val_ci95
        print(f"val accuracy ({report.val_images} images): float {report.float_val_accuracy:.3f}, "
              f"int8 {report.int8_val_accuracy:.3f} (95 % CI {lo:.3f}-{hi:.3f})")  # fmt: skip


def cmd_convert(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from harness.models.training import load_trained

    folder = Path(args.model)
    _model, arch, record = load_trained(folder)
    data = args.data or record.get("data", {}).get("path")
    if not data:
        raise ConfigError("give --data: the training data set to calibrate and validate on")
    seed = int(record.get("config", {}).get("seed", 0))
    _convert(folder, Path(data), arch, seed, Path(args.out) if args.out else None,
             args.check_images, args.qat_epochs)  # fmt: skip
    return 0


# -- hil publish ------------------------------------------------------------------------
def cmd_publish(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from harness.models.publish import publish
    from harness.paths import zoo_dir

    zoo = Path(args.zoo) if args.zoo else zoo_dir()
    entry = publish(Path(args.model), Path(args.data), args.name, zoo, args.description,
                    args.licence)  # fmt: skip
    print(f"published {args.name}: {entry} and {entry.parent / args.name.replace('-', '_')}/")
    return 0


# -- hil analyze ------------------------------------------------------------------------
def cmd_analyze(args: argparse.Namespace) -> int:
    from harness.boards import list_boards, load_board
    from harness.models.analysis import analyze, format_table
    from harness.models.zoo import resolve_model

    path = resolve_model(args.model)
    boards = [load_board(b) for b in args.board] if args.board else list_boards()
    result = analyze(path, boards, arena=not args.no_arena, timeout=args.timeout)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_table(result, per_layer=not args.summary))
    bad = [p for p in result.pairs if not p.agrees]
    return 1 if bad else 0


# -- hil train-compare ------------------------------------------------------------------
def cmd_compare(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from harness.models.compare import compare_training, format_comparison

    if not args.backbone:
        raise ConfigError("train-compare needs --backbone (a Keras file or zoo name)")
    arch = _arch_from_args(args)
    cfg = _train_config(args, arch)
    rows = compare_training(cfg, Path(args.data), _floats(args.fractions), Path(args.out))
    print(format_comparison(rows))
    return 0


# -- hil sweep --------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from harness.models.sweep import SweepGrid, format_sweep, run_sweep

    colours = [c.strip() for c in args.colours.split(",") if c.strip()]
    grid = SweepGrid(alphas=_floats(args.alphas), resolutions=_ints(args.resolutions),
                     colours=colours)  # fmt: skip
    points = run_sweep(grid, Path(args.data), Path(args.out), epochs=args.epochs,
                       batch_size=args.batch_size, seed=args.seed, blocks=args.blocks)  # fmt: skip
    print(format_sweep(points))
    print(f"table and Pareto plot in {args.out}")
    return 0


def _add_arch(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("architecture")
    g.add_argument("--alpha", type=float, default=0.25, help="depth multiplier (default 0.25)")
    g.add_argument("--resolution", type=int, default=96, help="input size in pixels (default 96)")
    g.add_argument("--grayscale", action="store_true", help="1-channel input (default RGB)")
    g.add_argument("--blocks", type=int, default=13,
                   help="depthwise-separable blocks, 1-13 (default 13, the full MobileNetV1)")  # fmt: skip
    g.add_argument("--head-pool", choices=("avg", "global"), default="avg",
                   help="pooling before the classifier (default avg)")  # fmt: skip
    g.add_argument("--dropout", type=float, default=0.0, help="dropout before the classifier (default 0)")
    g.add_argument("--hidden", type=int, default=0, help="hidden dense units in the head (default 0: none)")


def _add_training(p: argparse.ArgumentParser, epochs: int = 10, backbone_required: bool = False) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--data", required=True, help="data set folder (see `hil data`)")
    g.add_argument("--epochs", type=int, default=epochs, help=f"epochs (default {epochs})")
    g.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    g.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 0.002)")
    g.add_argument("--seed", type=int, default=0, help="seed for splits, init, shuffling (default 0)")
    g.add_argument("--no-augment", action="store_true", help="turn augmentation off (default on)")
    g.add_argument("--balance", choices=("weights", "oversample", "none"), default="weights",
                   help="class balancing (default: loss weights)")  # fmt: skip
    g.add_argument("--patience", type=int, default=4,
                   help="early-stopping patience in epochs on val loss, 0 = off (default 4)")  # fmt: skip
    g.add_argument("--train-fraction", type=float, default=1.0,
                   help="use this fraction of the training split (default 1)")  # fmt: skip
    g.add_argument("--deterministic", action="store_true",
                   help="bit-reproducible TF ops (slower; default off)")  # fmt: skip
    t = p.add_argument_group("transfer learning")
    t.add_argument("--backbone", required=backbone_required,
                   help="pretrained Keras model file or zoo name, e.g. mlperf-vww-96-keras"
                   + (" (required: the transfer side of the comparison)" if backbone_required
                      else " (default: none, train from scratch)"))
    t.add_argument("--freeze-blocks", type=int, default=None,
                   help="copy and freeze the stem and this many blocks (default: all but 2)")  # fmt: skip
    t.add_argument("--fine-tune-epochs", type=int, default=0,
                   help="then unfreeze everything and train this many epochs (default 0)")  # fmt: skip
    t.add_argument(
        "--fine-tune-lr", type=float, default=2e-4, help="fine-tune learning rate (default 0.0002)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model zoo, or fetch a published model (`fetch mlperf-vww`)")
    p.add_argument("action", nargs="?", choices=["list", "fetch"], default="list",
                   help="list (default) or fetch a published model into the model cache")
    p.add_argument("name", nargs="?", help="for fetch: mlperf-vww (int8 + float reference) or a zoo name")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a MobileNetV1-family model (scratch or transfer)")
    p.add_argument("--out", required=True, help="folder for the model and its training log")
    p.add_argument("--convert", action="store_true", help="convert to int8 afterwards")
    p.add_argument("--check-images", type=int, default=8,
                   help="images for the TFLM-vs-LiteRT check when converting (default 8)")  # fmt: skip
    _add_arch(p)
    _add_training(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-compare",
                       help="scratch vs transfer learning as the training set shrinks")  # fmt: skip
    p.add_argument("--out", required=True, help="folder for the runs and the comparison table")
    p.add_argument("--fractions", default="1,0.1,0.01",
                   help="training-set fractions (default 1,0.1,0.01)")  # fmt: skip
    _add_arch(p)
    _add_training(p, epochs=5, backbone_required=True)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("convert", help="full-integer int8 conversion of a trained model")
    p.add_argument("model", help="folder written by `hil train` (or its model.keras)")
    p.add_argument("--data", help="data set for calibration and validation (default: the training set)")
    p.add_argument("--out", help="output .tflite (default: <model folder>/model_int8.tflite)")
    p.add_argument("--qat-epochs", type=int, default=0,
                   help="quantisation-aware fine-tuning epochs first (default 0: PTQ only)")  # fmt: skip
    p.add_argument("--check-images", type=int, default=8,
                   help="images for the TFLM-vs-LiteRT check (default 8)")  # fmt: skip
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("publish", help="add a trained and converted model to the zoo with a model card")
    p.add_argument("model", help="folder written by `hil train` and `hil convert`")
    p.add_argument("--data", required=True, help="the data set it was trained on (held-out split used)")
    p.add_argument("--name", required=True, help="zoo name, e.g. vww-default")
    p.add_argument("--description", default="VWW model trained by this project",
                   help="one-line description for the zoo entry")  # fmt: skip
    p.add_argument("--licence", default="Apache-2.0", help="licence of the model (default Apache-2.0)")
    p.add_argument("--zoo", help="zoo folder (default: the repository's models/)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("analyze", help="MACs, params, arena, fit and estimated latency of a model")
    p.add_argument("model", nargs="?", help=f"int8 .tflite or zoo name (default: {DEFAULT_MODEL_HELP})")
    p.add_argument("--board", action="append", help="board id (repeatable; default: all boards)")
    p.add_argument("--no-arena", action="store_true", help="skip the TFLM arena run")
    p.add_argument("--summary", action="store_true", help="totals only, no per-layer table")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=float, default=120.0, help="TFLM child timeout in s (default 120)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("sweep", help="alpha x resolution x colour: train, convert, analyse, Pareto plot")
    p.add_argument("--data", required=True, help="data set folder")
    p.add_argument("--out", required=True, help="folder for the points, table and plot")
    p.add_argument("--alphas", default="0.25,0.5", help="depth multipliers (default 0.25,0.5)")
    p.add_argument("--resolutions", default="64,96", help="input sizes (default 64,96)")
    p.add_argument("--colours", default="rgb,gray", help="rgb and/or gray (default rgb,gray)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per point (default 3)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--blocks", type=int, default=13, help="blocks per model, 1-13 (default 13)")
    p.set_defaults(func=cmd_sweep)
