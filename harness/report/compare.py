"""``hil compare``: several runs side by side, with the significance of each difference.

A comparison answers "is B better than A, or is that noise?". Accuracy differences get
Newcombe intervals; a latency shift is judged against the noise of a p50, taken as the
larger of the bootstrap standard error within the runs and the spread of p50s across
repeated runs of the same model, board and backend (run-to-run noise), when any exist.

Runs are read with :func:`harness.results.load_run` (the per-image rows as a DataFrame),
and the two tables of the page (runs side by side, differences against run #1) are built
once as rows that both the HTML page and ``hil compare``'s console tables show.
"""

from __future__ import annotations

import glob
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import DataError
from harness.paths import reports_dir
from harness.report import plots
from harness.report.html import Safe, fmt, fmt_ci, img, note, page, section, table, tag
from harness.report.runs import resolve_run
from harness.results import Run, load_run
from harness.stats import (
    Proportion,
    confusion,
    median_standard_error,
    newcombe,
    percentiles,
    wilson,
)
from harness.units import basis_of, latency_kind, latency_label, shows_time

log = logging.getLogger(__name__)
COLUMNS = ["label", "status", "score", "pred", "latency_us", "cycles", "host_match"]

#: the columns of the two tables, shared by the HTML page and the console
SIDE_BY_SIDE = ["#", "run", "model", "data set", "board/backend", "n", "accuracy (95 % CI)", "FPR", "FNR",
                "p50 ms", "p90 ms", "p99 ms", "latency", "arena used B", "model B"]
DIFFERENCES = ["pair", "accuracy difference (95 % CI)", "accuracy", "p50 latency shift",
               "p50 noise (1 sigma)", "latency"]


def expand_runs(args: list[str]) -> list[Path]:
    """Run folders from paths, run ids and globs, in the order given, without repeats."""
    out: list[Path] = []
    for a in args:
        if any(ch in a for ch in "*?["):
            hits = [Path(h) for h in sorted(glob.glob(a))]
            hits = [h.parent if h.name == "run.json" else h for h in hits]
            hits = [h for h in hits if (h / "run.json").is_file()
                    or any(h.glob("results*.parquet"))]
            if not hits:
                raise DataError(f"no run folders match {a}")
            out += hits
        else:
            out.append(resolve_run(a))
    seen: set[Path] = set()
    uniq = []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            uniq.append(p)
    if not uniq:
        raise DataError("no runs to compare")
    return uniq


def meta(run: Run, *keys: str) -> Any:
    """A nested run.json value, None where any level is missing."""
    node: Any = run.meta
    for k in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(k)
    return node


def problems_of(run: Run) -> list[str]:
    """What a reader of the comparison must know about a run folder before its figures."""
    out = list(run.problems)
    if run.status != "complete":
        out.append(f"run status is '{run.status}': results may be partial")
    if len(run.rows) and "label" not in run.rows.columns:
        out.append("results have no 'label' column: accuracy from run.json only")
    return out


@dataclass
class RunFigures:
    run: Run
    accuracy: Proportion
    fpr: float
    fnr: float
    latency_ms: np.ndarray
    pct: dict[str, float]
    p50_se: float

    @property
    def model_name(self) -> str:
        return self.run.model or "?"

    @property
    def where(self) -> str:
        return f"{self.run.board or '?'}/{self.run.backend or '?'}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model_name, self.run.board or "?", self.run.backend or "?")

    @property
    def data(self) -> tuple[str, str, str, str]:
        """What the run measured: data set name, hash, split and image limit.

        Two runs are on the same data only when all four agree: a 400-image synthetic set
        and the 21-image smoke set, or the first 48 images and all of them, are not.
        """
        ds = meta(self.run, "dataset") or {}
        st = meta(self.run, "settings") or {}
        return (str(ds.get("name") or "?"), str(ds.get("sha256") or "?"),
                str(st.get("split") or ""), str(st.get("limit") or ""))

    @property
    def data_text(self) -> str:
        """The data set as the tables show it: name, the hash's first 8 digits, any limit."""
        name, sha, split, limit = self.data
        text = f"{name} {sha[:8]}"
        if split and split not in ("val", "all"):
            text += f" [{split}]"
        return text + (f" first {limit}" if limit else "")

    @property
    def complete(self) -> bool:
        return self.run.status == "complete"

    @property
    def latency_kind(self) -> str:
        return latency_kind(self.run.meta)


def _labelled(run: Run) -> tuple[np.ndarray, np.ndarray] | None:
    """(labels, predictions) over the rows that produced an output, None without labels.

    A missing ``pred`` is taken from the score and the run's threshold.
    """
    rows = run.rows
    if not len(rows) or "label" not in rows.columns or not ({"pred", "score"} & set(rows.columns)):
        return None
    ok = rows["status"].eq("ok").fillna(False) if "status" in rows.columns else rows["label"].notna()
    ok &= rows["label"].notna()
    threshold = meta(run, "settings", "threshold")
    threshold = float(threshold) if isinstance(threshold, (int, float)) else 0.5
    if "score" in rows.columns:
        ok &= rows["score"].notna()
        from_score = (rows["score"] >= threshold).astype("Int8")
    else:
        from_score = None
    if "pred" in rows.columns:
        pred = rows["pred"].astype("Int8")
        if from_score is not None:
            pred = pred.fillna(from_score)
    else:
        pred = from_score
    assert pred is not None  # one of the two columns is present (checked above)
    ok &= pred.notna()
    ok = ok.astype(bool)
    return rows["label"][ok].to_numpy(dtype=int), pred[ok].to_numpy(dtype=int)


def figures(run: Run) -> RunFigures:
    lp = _labelled(run)
    if lp is not None and len(lp[0]):
        cm = confusion(lp[0], lp[1])
        acc, fpr, fnr = cm.accuracy, cm.fpr.value, cm.fnr.value
    else:
        m = run.metrics
        n = int(m.get("n_ok") or 0)
        a = m.get("accuracy")
        acc = wilson(round(float(a) * n), n) if a is not None and n else wilson(0, 0)
        fpr = float(m.get("fpr") or math.nan)
        fnr = float(m.get("fnr") or math.nan)
    lat = np.array([])
    rows = run.rows
    if not shows_time(run.meta):  # instructions without a CPI figure: no time to compare
        pass
    elif "latency_us" in rows.columns and len(rows):
        ok = rows["status"].eq("ok").fillna(False).astype(bool) if "status" in rows.columns else True
        lat = rows["latency_us"][ok].dropna().to_numpy(dtype=float) / 1000.0
    if not len(lat) and shows_time(run.meta):
        p50 = run.metrics.get("latency_us_p50")
        if isinstance(p50, (int, float)):
            lat = np.array([float(p50) / 1000.0])
    return RunFigures(run, acc, fpr, fnr, lat, percentiles(lat), median_standard_error(lat))


def pareto_front(points: list[tuple[float, float]]) -> set[int]:
    """Indices of points no other point beats on both latency (lower) and accuracy (higher)."""
    front = set()
    for i, (lat_i, acc_i) in enumerate(points):
        if math.isnan(lat_i) or math.isnan(acc_i):
            continue
        dominated = any(
            (lat_j <= lat_i and acc_j >= acc_i) and (lat_j < lat_i or acc_j > acc_i)
            for j, (lat_j, acc_j) in enumerate(points) if j != i
            and not math.isnan(lat_j) and not math.isnan(acc_j))
        if not dominated:
            front.add(i)
    return front


def run_to_run_noise(figs: list[RunFigures]) -> dict[tuple[str, str, str], float]:
    """Standard deviation of p50 latency across repeated runs of the same configuration."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for f in figs:
        if not math.isnan(f.pct["p50"]):
            groups.setdefault(f.key, []).append(f.pct["p50"])
    return {k: float(np.std(v, ddof=1)) for k, v in groups.items() if len(v) >= 2}


@dataclass(frozen=True)
class LatencyShift:
    delta_ms: float
    noise_ms: float
    basis: str
    significant: bool


def latency_shift(a: RunFigures, b: RunFigures, between: dict[tuple[str, str, str], float],
                  k: float) -> LatencyShift:
    delta = b.pct["p50"] - a.pct["p50"]
    within = math.sqrt(np.nan_to_num(a.p50_se) ** 2 + np.nan_to_num(b.p50_se) ** 2)
    rr = max(between.get(a.key, 0.0), between.get(b.key, 0.0))
    noise, basis = (rr, "run-to-run spread") if rr > within else (within, "within-run bootstrap")
    if math.isnan(delta):
        return LatencyShift(math.nan, noise, basis, False)
    # a shift must clear the noise and the resolution floor: a deterministic device's noise
    # is zero or a rounding residue far below what the tables print
    significant = abs(delta) > max(k * noise, _resolution(a.pct["p50"]))
    return LatencyShift(delta, noise, basis, significant)


def _basis_word(f: RunFigures) -> str:
    """One word for the console's latency column: measured, estimated, counted (no time), reported."""
    kind = str(basis_of(f.run.meta).get("kind") or "unknown")
    return kind if kind in ("measured", "estimated", "counted", "reported") else "unknown source"


#: A shift that a deterministic device (zero noise: the sim, QEMU counts) shows below this
#: share of the p50, or below the 0.001 ms the tables print, is no difference: "0.000 ms
#: slower" is not a finding.
ZERO_NOISE_FLOOR = 0.001


def _resolution(p50_ms: float) -> float:
    return max(0.0005, ZERO_NOISE_FLOOR * abs(p50_ms)) if not math.isnan(p50_ms) else 0.0005


def side_by_side(figs: list[RunFigures], *, short: bool = False) -> list[tuple[str, ...]]:
    """One row per run for the "Runs side by side" table (columns: ``SIDE_BY_SIDE``).

    ``short`` puts one word in the latency column, and the console and the page list
    each full label once under the table (:func:`latency_notes`): a label can be a
    sentence long, and in every row it pushed the table past the card and the console.
    """
    rows: list[tuple[str, ...]] = []
    for i, f in enumerate(figs):
        mem = meta(f.run, "memory") or {}
        run = f.run.run_id if f.complete else f"{f.run.run_id} ({f.run.status}: not ranked)"
        rows.append((
            str(i + 1), run, f.model_name, f.data_text, f.where,
            fmt(f.accuracy.n), fmt_ci(f.accuracy.value, f.accuracy.low, f.accuracy.high),
            fmt(f.fpr), fmt(f.fnr), fmt(f.pct["p50"], 2), fmt(f.pct["p90"], 2),
            fmt(f.pct["p99"], 2), _basis_word(f) if short else latency_label(f.run.meta),
            fmt(mem.get("arena_used")),
            fmt(mem.get("model_bytes") or meta(f.run, "model", "bytes")),
        ))
    return rows


def latency_notes(figs: list[RunFigures]) -> list[str]:
    """Each distinct latency label once, with the runs it applies to (``#1, #3: measured (DWT...)``)."""
    by_label: dict[str, list[str]] = {}
    for i, f in enumerate(figs):
        by_label.setdefault(latency_label(f.run.meta), []).append(f"#{i + 1}")
    return [f"latency of {', '.join(runs)}: {label}" for label, runs in by_label.items()]


#: how a latency shift names its kind: a QEMU count's time is an estimate made from it
SHIFT_WORDS = {"counted": "estimated from counts", "reported by the device": "reported"}


def data_groups(figs: list[RunFigures]) -> dict[tuple[str, str, str, str], list[int]]:
    """Run indices by the data they measured, in the order the runs were given."""
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    for i, f in enumerate(figs):
        groups.setdefault(f.data, []).append(i)
    return groups


def baseline_of(figs: list[RunFigures], i: int) -> int:
    """The run that run ``i`` is compared against: the first run on the same data."""
    return data_groups(figs)[figs[i].data][0]


def differences(figs: list[RunFigures], k: float) -> list[tuple[str, ...]]:
    """One row per run that has an earlier run on the same data, against the first of those
    (columns: ``DIFFERENCES``).

    What is never ranked: runs on different data (each is compared only within its data
    set), an interrupted or failed run (its figures are shown, not called better or
    worse), and latencies of different kinds (a QEMU count is not "slower" than a sim
    estimate: "not comparable: counted vs estimated").
    """
    if len(figs) < 2:
        return []
    between = run_to_run_noise(figs)
    rows: list[tuple[str, ...]] = []
    for i, f in enumerate(figs):
        b = baseline_of(figs, i)
        if b == i:
            if i:
                rows.append((f"#{i + 1}", "\u2014", f"no earlier run on {f.data_text}: not compared",
                             "\u2014", "\u2014", "not compared"))
            continue
        base = figs[b]
        pair = f"#{i + 1} vs #{b + 1}"
        unfinished = [f"#{j + 1} is {figs[j].run.status}" for j in (b, i) if not figs[j].complete]
        d = newcombe(f.accuracy, base.accuracy)
        sh = latency_shift(base, f, between, k)
        acc_verdict = ("not ranked: " + ", ".join(unfinished) if unfinished else
                       "no difference" if not d.significant else
                       "better" if d.diff > 0 else "worse")
        kinds = (base.latency_kind, f.latency_kind)
        rel = sh.delta_ms / base.pct["p50"] if base.pct["p50"] else math.nan
        below_resolution = abs(sh.delta_ms) <= _resolution(base.pct["p50"])
        if kinds[0] != kinds[1]:
            shift, noise = "\u2014", "\u2014"
            lat_verdict = f"not comparable: {kinds[0]} vs {kinds[1]}"
        else:
            shift = (f"{fmt(sh.delta_ms, 3)} ms {SHIFT_WORDS.get(kinds[0], kinds[0])} ({rel:+.1%})"
                     if not math.isnan(rel)
                     else "\u2014")
            noise = f"{fmt(sh.noise_ms, 3)} ms ({sh.basis})"
            lat_verdict = ("\u2014" if math.isnan(sh.delta_ms) else
                           "not ranked: " + ", ".join(unfinished) if unfinished else
                           "no difference" if not sh.significant and below_resolution else
                           "within noise" if not sh.significant else
                           "slower" if sh.delta_ms > 0 else "faster")
        rows.append((pair, fmt_ci(d.diff, d.low, d.high), acc_verdict, shift, noise, lat_verdict))
    return rows


def different_data_warning(figs: list[RunFigures]) -> str | None:
    """The warning shown when the runs did not all measure the same data."""
    groups = data_groups(figs)
    if len(groups) < 2:
        return None
    parts = [f"{figs[idx[0]].data_text} ({', '.join(f'#{i + 1}' for i in idx)})" for idx in groups.values()]
    return ("Runs on different data: " + "; ".join(parts) + ". Each run is compared only with "
            "runs on the same data, each data set has its own Pareto front.")


def mixed_sources_warning(figs: list[RunFigures]) -> str | None:
    """The warning shown when the runs' latencies are of different kinds."""
    kinds: dict[str, list[str]] = {}
    for i, f in enumerate(figs):
        kinds.setdefault(f.latency_kind, []).append(f"#{i + 1}")
    if len(kinds) > 1:
        parts = "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items())
        return (f"Latencies of different kinds ({parts}) are not ranked against each other: "
                "a measured time, a count of QEMU instructions, a cost-model estimate and a "
                "host clock say different things.")
    return None


def unfinished_note(figs: list[RunFigures]) -> str | None:
    bad = [f"#{i + 1} ({f.run.status})" for i, f in enumerate(figs) if not f.complete]
    if not bad:
        return None
    return (f"Not ranked, figures partial: {', '.join(bad)}. An unfinished run is on no Pareto "
            "front and is never called better or worse.")


def pareto_groups(figs: list[RunFigures]) -> list[tuple[str, list[int], set[int]]]:
    """(title, runs plotted, Pareto front) per data set and latency kind.

    The front holds complete runs only; every run with both figures is plotted.
    """
    groups: dict[tuple[tuple[str, str, str, str], str], list[int]] = {}
    for i, f in enumerate(figs):
        if not math.isnan(f.pct["p50"] + f.accuracy.value):
            groups.setdefault((f.data, f.latency_kind), []).append(i)
    out = []
    for (_, kind), idx in groups.items():
        ranked = [i for i in idx if figs[i].complete]
        front_local = pareto_front([(figs[i].pct["p50"], figs[i].accuracy.value) for i in ranked])
        title = f"{figs[idx[0]].data_text}, {kind} latency"
        out.append((title, idx, {ranked[j] for j in front_local}))
    return out


def render(runs: list[Run], k: float = 3.0) -> str:
    return render_figures([figures(r) for r in runs], k)


def render_figures(figs: list[RunFigures], k: float = 3.0) -> str:
    body: list[Any] = []
    problems = [f"{f.run.run_id}: {p}" for f in figs for p in problems_of(f.run)]
    if problems:
        body.append(section("Problems with the run folders",
                            *(tag("p", p, class_="problem") for p in problems)))
    warns = [w for w in (different_data_warning(figs), mixed_sources_warning(figs),
                         unfinished_note(figs)) if w]
    body.append(section("Runs side by side", table(SIDE_BY_SIDE, side_by_side(figs, short=True)),
                        *(note(line) for line in latency_notes(figs)),
                        *(note(w, "warn") for w in warns)))

    groups = pareto_groups(figs)
    parts: list[Any] = []
    for title, idx, front in groups:
        ppoints = [plots.ParetoPoint(f"#{i + 1} {figs[i].model_name}", figs[i].pct["p50"],
                                     figs[i].accuracy.value, figs[i].accuracy.low,
                                     figs[i].accuracy.high, figs[i].where) for i in idx]
        if len(groups) > 1:
            parts.append(tag("h3", title))
        parts += [img(plots.pareto(ppoints, {idx.index(i) for i in front}), "Pareto plot"),
                  note("Pareto front (no other complete run on the same data is both faster and "
                       "more accurate): " + (", ".join(f"#{i + 1}" for i in sorted(front)) or "none"))]
    if parts:
        body.append(section("Latency vs accuracy", *parts))
    else:
        body.append(section("Latency vs accuracy", note("No run has both latency and accuracy.",
                                                        "warn")))
    body.append(_memory(figs))
    body.append(_differences(figs, k))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return page(f"Comparison of {len(figs)} runs", f"written {stamp}", body)


def _memory(figs: list[RunFigures]) -> Safe:
    arena, flash = [], []
    for i, f in enumerate(figs):
        mem = meta(f.run, "memory") or {}
        name = f"#{i + 1} {f.model_name} @ {f.run.board or '?'}"
        if isinstance(mem.get("arena_used"), (int, float)):
            arena.append(plots.MemoryBar(name, float(mem["arena_used"]),
                                         _num(mem.get("ram_for_arena")),
                                         _num(mem.get("arena_size"))))
        mb = mem.get("model_bytes") or meta(f.run, "model", "bytes")
        if isinstance(mb, (int, float)):
            flash.append(plots.MemoryBar(name, float(mb), _num(mem.get("flash_for_model"))))
    parts: list[Any] = []
    if arena:
        parts.append(img(plots.memory_bars(arena, "Tensor arena against RAM for the arena"),
                         "arena bars"))
    if flash:
        parts.append(img(plots.memory_bars(flash, "Model against flash for the model"),
                         "flash bars"))
    if not parts:
        parts.append(note("No memory figures in these runs.", "warn"))
    return section("Memory", tag("div", *parts, class_="grid"))


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) else None


def method_note(k: float) -> str:
    return (f"Accuracy: Newcombe hybrid score interval for the difference of two proportions; "
            f"'no difference' when it includes zero. Latency: a shift is flagged when it "
            f"exceeds {k:g} times the noise of the p50.")


def _differences(figs: list[RunFigures], k: float) -> Safe:
    if len(figs) < 2:
        return section("Differences", note("One run only: nothing to compare against."))
    return section(differences_title(figs), table(DIFFERENCES, differences(figs, k)),
                   note(method_note(k)))


def differences_title(figs: list[RunFigures]) -> str:
    if len(data_groups(figs)) == 1:
        return "Differences against run #1"
    return "Differences against the first run on the same data"


@dataclass
class Comparison:
    """What ``write_comparison`` produced: the page, and the figures its tables came from."""

    path: Path
    figures: list[RunFigures]
    k: float

    def print(self) -> None:
        """The page's two tables on the console (rich on a terminal, plain text otherwise)."""
        from harness import console

        for f in self.figures:
            for p in problems_of(f.run):
                log.warning("%s: %s", f.run.run_id, p)
        console.print_rows(SIDE_BY_SIDE, side_by_side(self.figures, short=True),
                           title="Runs side by side")
        console.print_lines(latency_notes(self.figures))
        for warn in (different_data_warning(self.figures), mixed_sources_warning(self.figures)):
            if warn:
                log.warning("%s", warn)
        if len(self.figures) > 1:
            console.print_rows(DIFFERENCES, differences(self.figures, self.k),
                               title=differences_title(self.figures))


def compare(paths: list[Path], out: Path | None = None, sigma_k: float = 3.0) -> Comparison:
    """Read the runs, write the comparison page, and keep the figures for the console."""
    figs = [figures(load_run(p, columns=COLUMNS)) for p in paths]
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = reports_dir() / f"compare-{stamp}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_figures(figs, sigma_k), encoding="utf-8")
    return Comparison(out, figs, sigma_k)


def write_comparison(paths: list[Path], out: Path | None = None, sigma_k: float = 3.0) -> Path:
    """Write the comparison page of ``paths``; returns where it went."""
    return compare(paths, out, sigma_k).path
