"""Sweep alpha x resolution x colour: train, convert, analyse, and plot the trade-off.

Each point is trained on a short schedule, converted to int8 and analysed (flash, TFLM
arena, cost-model latency per board, int8 accuracy on the validation split). A point
that fits no board, or fails to convert, is recorded with the reason and the sweep goes
on: the table is the product, and a too-large point is a finding, not a crash.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import console
from harness.boards import list_boards
from harness.errors import ConfigError, HarnessError
from harness.models.mobilenet import ArchConfig
from harness.plot_fit import fit_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepGrid:
    alphas: list[float]
    resolutions: list[int]
    colours: list[str]

    def __post_init__(self) -> None:
        bad = [c for c in self.colours if c not in ("rgb", "gray")]
        if bad or not self.colours:
            raise ConfigError(f"colours must be rgb and/or gray, not {self.colours}")
        if not self.alphas or not self.resolutions:
            raise ConfigError("a sweep needs at least one alpha and one resolution")

    def archs(self, blocks: int = 13) -> list[ArchConfig]:
        return [
            ArchConfig(alpha=a, resolution=r, channels=3 if c == "rgb" else 1, blocks=blocks)
            for a in self.alphas for r in self.resolutions for c in self.colours
        ]  # fmt: skip


@dataclass
class SweepPoint:
    label: str
    alpha: float
    resolution: int
    colour: str
    macs: int | None = None
    params: int | None = None
    flash_bytes: int | None = None
    arena_bytes: int | None = None
    float_accuracy: float | None = None
    int8_accuracy: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    fits: dict[str, bool] = field(default_factory=dict)
    train_s: float | None = None
    error: str | None = None

    @property
    def fits_any(self) -> bool:
        return any(self.fits.values())


def _run_point(
    arch: ArchConfig, data: Path, out: Path, epochs: int, batch_size: int, seed: int
) -> SweepPoint:
    from harness.models.analysis import analyze
    from harness.models.arrays import load_splits
    from harness.models.convert import INT8_FILE, convert_folder
    from harness.models.training import TrainConfig, train

    point = SweepPoint(arch.label(), arch.alpha, arch.resolution, arch.colour)
    folder = out / arch.label()
    try:
        splits = load_splits(data, arch.resolution, arch.channels, seed=seed)
        cfg = TrainConfig(arch=arch, epochs=epochs, batch_size=batch_size, seed=seed, patience=0)
        result = train(cfg, splits, folder)
        point.train_s = round(result.wall_s, 1)
        report = convert_folder(folder, splits.train, splits.val, check_images=2)
        point.float_accuracy = report.float_val_accuracy
        point.int8_accuracy = report.int8_val_accuracy
        a = analyze(folder / INT8_FILE, list_boards())
        point.macs, point.params = a.total_macs, a.total_params
        point.flash_bytes, point.arena_bytes = a.flash_bytes, a.arena_32bit_bytes
        for b in a.boards:
            point.latency_ms[b.board] = round(b.latency_ms, 2)
            point.fits[b.board] = b.fit.fits
        if not point.fits_any:
            log.warning("sweep point %s fits no board", point.label)
    except HarnessError as exc:
        point.error = str(exc)
        log.warning("sweep point %s failed: %s", point.label, exc)
    except Exception as exc:  # noqa: BLE001 - one bad point must not lose the others
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        point.error = f"{type(exc).__name__}: {first[:200]}"
        log.warning("sweep point %s failed: %s", point.label, point.error)
    return point


def run_sweep(
    grid: SweepGrid,
    data: Path,
    out: Path,
    epochs: int = 3,
    batch_size: int = 32,
    seed: int = 0,
    blocks: int = 13,
) -> list[SweepPoint]:
    """Run every point of ``grid``; write ``sweep.json``, ``sweep.csv`` and ``pareto.png``."""
    out.mkdir(parents=True, exist_ok=True)
    archs = grid.archs(blocks)
    points: list[SweepPoint] = []
    with console.progress("sweep", len(archs), unit="point") as bar:
        for a in archs:
            points.append(_run_point(a, data, out, epochs, batch_size, seed))
            accs = [p.int8_accuracy for p in points if p.int8_accuracy is not None]
            bar.advance(1, best_int8=console.percent(max(accs) if accs else None),
                        failed=sum(p.error is not None for p in points))  # fmt: skip
    (out / "sweep.json").write_text(json.dumps([asdict(p) for p in points], indent=2), "utf-8")
    write_csv(points, out / "sweep.csv")
    plot_pareto(points, out / "pareto.png")
    return points


def write_csv(points: list[SweepPoint], path: Path) -> None:
    boards = sorted({b for p in points for b in p.latency_ms})
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["label", "alpha", "resolution", "colour", "macs", "params", "flash_bytes",
                    "arena_bytes", "float_accuracy", "int8_accuracy",
                    *[f"latency_ms_{b}" for b in boards], *[f"fits_{b}" for b in boards],
                    "error"])  # fmt: skip
        for p in points:
            w.writerow([p.label, p.alpha, p.resolution, p.colour, p.macs, p.params, p.flash_bytes,
                        p.arena_bytes, p.float_accuracy, p.int8_accuracy,
                        *[p.latency_ms.get(b) for b in boards], *[p.fits.get(b) for b in boards],
                        p.error or ""])  # fmt: skip


def pareto_front(pairs: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both lower latency and higher accuracy."""
    front = []
    for i, (lat, acc) in enumerate(pairs):
        dominated = any(
            (lo <= lat and ao >= acc) and (lo < lat or ao > acc)
            for j, (lo, ao) in enumerate(pairs) if j != i
        )  # fmt: skip
        if not dominated:
            front.append(i)
    return front


def plot_pareto(points: list[SweepPoint], path: Path) -> None:
    """Write :func:`pareto_figure` to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = pareto_figure(points)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pareto_figure(points: list[SweepPoint]) -> Any:
    """Latency (cost model) against int8 accuracy per board; marker area is the arena."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    boards = sorted({b for p in points for b in p.latency_ms})
    fig, axes = plt.subplots(1, max(1, len(boards)), figsize=(6 * max(1, len(boards)), 4.5),
                             squeeze=False)  # fmt: skip
    for ax, board in zip(axes[0], boards or ["-"], strict=False):
        ok = [p for p in points if board in p.latency_ms and p.int8_accuracy is not None]
        pairs = [(p.latency_ms[board], float(p.int8_accuracy or 0.0)) for p in ok]
        front = set(pareto_front(pairs))
        for i, p in enumerate(ok):
            lat, acc = pairs[i]
            size = 20 + 200 * math.sqrt((p.arena_bytes or 0) / 200_000)
            ax.scatter(lat, acc, s=size, alpha=0.7,
                       c="tab:green" if p.fits.get(board) else "tab:red",
                       edgecolors="black" if i in front else "none")  # fmt: skip
            ax.annotate(p.label, (lat, acc), fontsize=7, xytext=(4, 4), textcoords="offset points")
        fr = sorted((pairs[i] for i in front), key=lambda t: t[0])
        if fr:
            ax.plot([f[0] for f in fr], [f[1] for f in fr], "k--", lw=0.8, label="Pareto front")
            ax.legend(loc="best", fontsize=8)
        ax.set_xlabel(f"estimated latency on {board} (ms, cost model)")
        ax.set_ylabel("int8 val accuracy")
        ax.set_title(f"{board}: green fits, red does not; area ~ arena")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fit_text(fig)  # tight_layout leaves point labels at the right edge cut off


def format_sweep(points: list[SweepPoint]) -> str:
    boards = sorted({b for p in points for b in p.latency_ms})
    head = (f"{'point':<16} {'MACs':>11} {'flash B':>9} {'arena B':>9} {'float':>6} {'int8':>6} "
            + " ".join(f"{b + ' ms':>12}" for b in boards) + "  fits")  # fmt: skip
    lines = [head, "-" * len(head)]
    for p in points:
        if p.error:
            lines.append(f"{p.label:<16} error: {p.error}")
            continue
        fits = ",".join(b for b, ok in p.fits.items() if ok) or "no board"
        lines.append(
            f"{p.label:<16} {p.macs or 0:>11,} {p.flash_bytes or 0:>9,} {p.arena_bytes or 0:>9,} "
            f"{_f(p.float_accuracy):>6} {_f(p.int8_accuracy):>6} "
            + " ".join(f"{p.latency_ms.get(b, float('nan')):>12.1f}" for b in boards)
            + f"  {fits}"
        )
    return "\n".join(lines)


def _f(v: float | None) -> str:
    return f"{v:.3f}" if v is not None else "-"


def load_points(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8")))
