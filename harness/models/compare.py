"""Scratch versus transfer learning on the same data as the training set shrinks.

Transfer learning's claim is that a pretrained backbone reaches a given accuracy with
fewer labelled images and less compute. This runs both ways with identical settings,
seed and splits at each training-set fraction and reports wall time, images seen by the
optimiser and held-out accuracy with a 95 % interval, so the claim can be checked on the
user's own data rather than taken on trust.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness import console
from harness.errors import ConfigError
from harness.models.arrays import load_splits
from harness.models.training import TrainConfig, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompareRow:
    fraction: float
    mode: str
    train_images: int
    wall_s: float
    images_seen: int
    accuracy: float
    ci_low: float
    ci_high: float
    eval_split: str
    eval_images: int


def compare_training(cfg: TrainConfig, data: Path, fractions: list[float], out: Path) -> list[CompareRow]:
    """Train scratch and transfer at each fraction; write ``compare.json`` and ``compare.md``."""
    if not cfg.backbone:
        raise ConfigError("the comparison needs a backbone for its transfer-learning runs")
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ConfigError(f"fractions must be in (0, 1], got {fractions}")
    with console.progress("train-compare", 2 * len(fractions), unit="run") as bar:
        rows = _train_all(cfg, data, fractions, out, bar)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps([asdict(r) for r in rows], indent=2), "utf-8")
    (out / "compare.md").write_text(format_comparison(rows) + "\n", "utf-8")
    return rows


def _train_all(cfg: TrainConfig, data: Path, fractions: list[float], out: Path,
               bar: console.Bar) -> list[CompareRow]:
    """Every (fraction, scratch/transfer) run, counted on ``bar`` (minutes each: the bar, or
    in a pipe its progress lines, is all that shows the command is working)."""
    from harness.stats import wilson

    arch = cfg.arch
    bar.set_stats(now="reading the data set")
    splits = load_splits(data, arch.resolution, arch.channels, seed=cfg.seed)
    held = splits.test if splits.test is not None else splits.val
    held_name = "test" if splits.test is not None else "val"
    rows: list[CompareRow] = []
    for fraction in fractions:
        runs = {
            "scratch": replace(
                cfg, backbone=None, freeze_blocks=0, fine_tune_epochs=0, train_fraction=fraction
            ),  # fmt: skip
            "transfer": replace(cfg, train_fraction=fraction),
        }
        for mode, run_cfg in runs.items():
            folder = out / f"{mode}-{fraction:g}"
            bar.set_stats(now=f"{mode} at {fraction:g}")
            result = train(run_cfg, splits, folder)
            from harness.models.training import accuracy

            acc = accuracy(result.model, held)
            k = int(round(acc * len(held)))
            p = wilson(k, len(held))
            rows.append(CompareRow(fraction, mode, int(result.log["data"]["train_images"]),
                                   round(result.wall_s, 2), result.images_seen, acc, p.low,
                                   p.high, held_name, len(held)))  # fmt: skip
            log.info("%s at %g: %.3f in %.1f s", mode, fraction, acc, result.wall_s)
            bar.advance(1, last=f"{mode} at {fraction:g}: {acc:.3f}")
    return rows


def format_comparison(rows: list[CompareRow]) -> str:
    head = "| fraction | mode | train images | wall s | images seen | accuracy | 95 % CI |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.fraction:g} | {r.mode} | {r.train_images} | {r.wall_s:.1f} | "
            f"{r.images_seen:,} | {r.accuracy:.3f} | {r.ci_low:.3f}-{r.ci_high:.3f} |"
        )
    if rows:
        lines.append(f"\naccuracy on the {rows[0].eval_split} split ({rows[0].eval_images} images)")
    return "\n".join(lines)
