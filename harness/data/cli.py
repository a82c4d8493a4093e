"""``hil data``: build, import, audit and describe data sets.

Builders are imported inside the handlers so that ``hil --help`` and the other
commands stay fast.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from harness import paths
from harness.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give fractions like 0.8,0.1,0.1") from None
    if not 1 <= len(values) <= 3 or min(values) < 0 or abs(sum(values) - 1.0) > 1e-6:
        raise argparse.ArgumentTypeError(f"{text!r}: 1-3 non-negative fractions summing to 1")
    return values


def _add_image_options(p: argparse.ArgumentParser, size: int = 96) -> None:
    g = p.add_argument_group("image format")
    g.add_argument("--size", type=int, default=size, help=f"square side in pixels (default {size})")
    g.add_argument("--grayscale", action="store_true", help="store one-channel images (default RGB)")
    g.add_argument(
        "--fit",
        choices=("squash", "crop", "pad"),
        default="squash",
        help="how to make images square: squash keeps all content (default), crop cuts the "
        "centre, pad adds grey borders",
    )


def _add_build_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("build")
    g.add_argument("--out", type=Path, required=True, help="output folder")
    g.add_argument("--force", action="store_true", help="replace an earlier build in --out")
    g.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    g.add_argument(
        "--licenses",
        default=None,
        help="comma-separated licence ids to allow (default: all but those the use forbids); "
        "e.g. public-domain,cc0-1.0,cc-by-2.0",
    )
    g.add_argument(
        "--commercial",
        action="store_true",
        help="the data will be used commercially: drop non-commercial licences",
    )


def _check_size(size: int) -> None:
    from harness.data.build import MAX_SIZE, MIN_SIZE

    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ConfigError(f"--size {size} out of range ({MIN_SIZE}..{MAX_SIZE})")


def _image_options(args: argparse.Namespace):  # noqa: ANN202 - ImageOptions, imported lazily
    from harness.data.build import ImageOptions

    _check_size(args.size)
    return ImageOptions(size=args.size, fit=args.fit, grayscale=args.grayscale)


def _policy(args: argparse.Namespace):  # noqa: ANN202 - LicensePolicy, imported lazily
    from harness.data.licenses import LicensePolicy, parse_allow_list

    return LicensePolicy(allow=parse_allow_list(args.licenses), derivative=True, commercial=args.commercial)


def _summary(path: Path) -> str:
    from harness.data.dataset import Dataset

    ds = Dataset.open(path)
    c = ds.count()
    kind = "SYNTHETIC" if ds.synthetic else "real"
    skipped = sum(ds.meta.get("skipped", {}).values()) + sum(ds.meta.get("dropped_by_license", {}).values())
    return (
        f"{ds.name} ({kind}): {len(ds)} images, {c[1]} person / {c[0]} no person, "
        f"splits {', '.join(ds.splits())}; {skipped} skipped or dropped; {path}"
    )


def cmd_smoke(args: argparse.Namespace) -> int:
    from harness.data.smoke import build_smoke, default_dataset

    _check_size(args.size)
    if args.out is None and args.size == 96 and not args.grayscale:
        out = default_dataset(rebuild=True)
    else:
        name = f"smoke-{args.size}{'g' if args.grayscale else ''}"
        out = build_smoke(args.out or paths.cache_dir() / "datasets" / name, args.size, args.grayscale)
    print(_summary(out))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from harness.data.synth import build_synthetic

    _check_size(args.size)
    out = args.out or paths.cache_dir() / "datasets" / f"synthetic-s{args.seed}-n{args.n}"
    # Replacing an earlier synthetic build is harmless (it can be redrawn); anything else
    # in the folder needs --force.
    previous = out / "dataset.json"
    force = args.force or (previous.is_file() and '"synthetic": true' in previous.read_text("utf-8"))
    build_synthetic(out, args.n, args.seed, args.size, args.grayscale, args.splits, args.workers, force)
    print(_summary(out))
    return 0


def cmd_vww(args: argparse.Namespace) -> int:
    from harness.data.coco import build_vww

    out = build_vww(
        args.coco_root,
        args.out,
        year=args.year,
        threshold=args.threshold,
        split_mode=args.split_mode,
        minival_ids=args.minival_ids,
        minival_size=args.minival_size,
        fractions=args.split_fractions,
        ignore_crowd=args.ignore_crowd,
        opts=_image_options(args),
        policy=_policy(args),
        workers=args.workers,
        force=args.force,
        limit=args.limit,
    )
    print(_summary(out))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from harness.data.importer import import_dataset

    out = import_dataset(
        args.source,
        args.out,
        license_id=args.license,
        attribution=args.attribution,
        fractions=args.split_fractions,
        opts=_image_options(args),
        policy=_policy(args),
        workers=args.workers,
        force=args.force,
    )
    print(_summary(out))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from harness.data.privacy import CATEGORIES, audit_path

    totals = dict.fromkeys(CATEGORIES, 0)
    n = flagged = errors = 0
    rows: list[dict[str, object]] = []
    for path, result in audit_path(args.path):
        n += 1
        if isinstance(result, str):
            errors += 1
            rows.append({"file": str(path), "error": result})
            if not args.json:
                print(f"ERROR {result}")
            continue
        for c in result:
            totals[c] += 1
        if result:
            flagged += 1
        rows.append({"file": str(path), "found": result})
        if not args.json and (result or args.all):
            print(f"{path}: {', '.join(result) if result else 'clean'}")
    if args.json:
        print(
            json.dumps(
                {"images": n, "with_metadata": flagged, "errors": errors, "found": totals, "files": rows}
            )
        )
    else:
        found = ", ".join(f"{k} {v}" for k, v in totals.items() if v) or "nothing"
        print(f"audited {n} image(s): {flagged} with identifying metadata ({found}); {errors} unreadable")
    if n == 0:
        raise DataError(f"{args.path}: no image files found")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from harness.data.dataset import Dataset

    path = args.path or paths.cache_dir() / "datasets" / "smoke"
    if args.path is None and not path.exists():
        raise DataError(f"{path}: default smoke set not built yet (run: hil data smoke)")
    ds = Dataset.open(path)
    if ds.card_path is not None:
        print(ds.card_path.read_text(encoding="utf-8"))
    else:
        print(f"# {ds.name} (read in place, no card)\n")
        for split in ds.splits():
            c = ds.count(split)
            print(f"- {split}: {c[1]} person, {c[0]} no person")
        if ds.skipped:
            print("- skipped: " + ", ".join(f"{k} {v}" for k, v in ds.skipped.items()))
    print(f"content sha256: {ds.sha256}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """The data set in another tool's layout, preprocessed exactly as ``hil bench`` does it."""
    from harness.bench.api import load_model
    from harness.bench.preprocess import Preprocessor
    from harness.data.dataset import Dataset
    from harness.data.export import export_mlperf_tiny

    model = load_model(args.model)
    pre = Preprocessor.for_input(model.inputs[0], model.label)
    if (pre.height, pre.width, pre.channels) != (96, 96, 3):
        raise ConfigError(
            f"{model.label} takes {pre.height}x{pre.width}x{pre.channels}; MLPerf Tiny's vww01 is 96x96x3"
        )
    result = export_mlperf_tiny(Dataset.open(args.dataset), args.out, pre, split=args.split,
                                limit=args.limit, force=args.force)
    print(f"wrote {result.images} images for {model.label} to {result.folder} "
          f"(y_labels.csv; run the MLPerf Tiny runner with --dataset_path {args.out})")
    for line in result.skipped:
        print(f"skipped {line}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="build, import, audit and describe data sets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = dsub.add_parser("smoke", help="build the real-image smoke set from installed packages")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the user cache)")
    p.add_argument("--size", type=int, default=96, help="square side in pixels (default 96)")
    p.add_argument("--grayscale", action="store_true", help="store one-channel images")
    p.set_defaults(func=cmd_smoke)

    p = dsub.add_parser("synth", help="build a deterministic synthetic set")
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the user cache)")
    p.add_argument("--size", type=int, default=96, help="square side in pixels (default 96)")
    p.add_argument("--grayscale", action="store_true", help="draw and store grayscale images")
    p.add_argument(
        "--splits", type=_fractions, default=(0.8, 0.1, 0.1), help="train,val,test (default 0.8,0.1,0.1)"
    )
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="replace a non-synthetic build in --out")
    p.set_defaults(func=cmd_synth)

    p = dsub.add_parser("vww", help="build Visual Wake Words from a local COCO download")
    p.add_argument("--coco-root", type=Path, required=True, help="folder with annotations/ and images")
    p.add_argument(
        "--year", choices=("auto", "2014", "2017"), default="auto", help="COCO release (default auto)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.005,
        help="person when a person box covers more than this fraction of the image (default 0.005)",
    )
    p.add_argument(
        "--split-mode",
        choices=("paper", "coco", "random"),
        default="paper",
        help="paper: train+val minus minival / minival as test (default); coco: COCO's own "
        "train/val; random: hashed train/val/test by --split-fractions",
    )
    p.add_argument("--minival-ids", type=Path, default=None, help="file of minival image ids (paper mode)")
    p.add_argument("--minival-size", type=int, default=8059, help="hashed minival size when no id file")
    p.add_argument(
        "--split-fractions", type=_fractions, default=(0.8, 0.1, 0.1), help="for --split-mode random"
    )
    p.add_argument("--ignore-crowd", action="store_true", help="crowd boxes do not make an image 'person'")
    p.add_argument("--limit", type=int, default=None, help="build only the first N images")
    _add_image_options(p)
    _add_build_options(p)
    p.set_defaults(func=cmd_vww)

    p = dsub.add_parser("import", help="import labels.csv or person/non_person folders (or an archive)")
    p.add_argument("source", type=Path, help="folder or .zip/.tar.gz archive")
    p.add_argument("--license", default="unknown", help="licence id of the images (default unknown)")
    p.add_argument("--attribution", default="", help="attribution text for every image")
    p.add_argument(
        "--split-fractions",
        type=_fractions,
        default=None,
        help="hash images without a split column into train,val,test (default: one split 'all')",
    )
    _add_image_options(p)
    _add_build_options(p)
    p.set_defaults(func=cmd_import)

    p = dsub.add_parser("audit", help="report identifying metadata in the images under PATH")
    p.add_argument("path", type=Path, help="image file or folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all", action="store_true", help="list clean files too")
    p.set_defaults(func=cmd_audit)

    p = dsub.add_parser("export", help="write a data set in another tool's layout (MLPerf Tiny runner)")
    p.add_argument("dataset", type=Path, help="data set folder")
    p.add_argument("out", type=Path, help="output folder (receives vww01/)")
    p.add_argument("--format", choices=("mlperf-tiny",), default="mlperf-tiny",
                   help="layout: mlperf-tiny = vww01/y_labels.csv + one .bin per image (default)")
    p.add_argument("--model", default=None,
                   help="model whose input the images are preprocessed for (default: as hil bench)")
    p.add_argument("--split", default=None, help="only this split (default: all)")
    p.add_argument("--limit", type=int, default=None, help="at most this many images (default: all)")
    p.add_argument("--force", action="store_true", help="replace an earlier export in OUT")
    p.set_defaults(func=cmd_export)

    p = dsub.add_parser("info", help="print a data set's card")
    p.add_argument("path", type=Path, nargs="?", default=None, help="data set folder (default: smoke set)")
    p.set_defaults(func=cmd_info)
