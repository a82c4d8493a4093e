"""``hil report RUN``: one self-contained HTML page for one run folder.

Metrics are recomputed from the per-image rows rather than copied from run.json, so an
interrupted run (whose manifest stopped being updated) still gets correct figures, and
the manifest's own figures serve only where rows are missing. Each section is drawn on
its own: a damaged column costs its section (with the reason shown), not the page.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.report import fairness, gallery, plots
from harness.report.html import (
    Safe,
    fmt,
    fmt_ci,
    img,
    join,
    kv_table,
    note,
    page,
    section,
    table,
    tag,
)
from harness.report.runs import Run, labelled_predictions, load_run, ok_mask
from harness.stats import confusion, curves, percentiles, threshold_for_fpr
from harness.units import basis_of, format_instructions, latency_label, shows_time

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"


@dataclass(frozen=True)
class ReportOptions:
    target_fpr: float = 0.05
    gallery: int = 8
    title: str | None = None

    def __post_init__(self) -> None:
        # a rate outside (0, 1) has no threshold, and a negative gallery no meaning: refuse
        # them here rather than draw a report that quietly ignores them
        from harness.errors import ConfigError

        if not 0.0 < self.target_fpr < 1.0:
            raise ConfigError(
                f"--target-fpr must be a rate between 0 and 1 (exclusive), not {self.target_fpr:g}"
            )
        if self.gallery < 0:
            raise ConfigError(f"--gallery must be 0 (none) or more, not {self.gallery}")


def _run_label(run: Run) -> str:
    """What the run's latency figures are (measured, estimated and from what), from run.json."""
    return latency_label(run.manifest)


def _summary(run: Run) -> Safe:
    lp = labelled_predictions(run)
    m = run.get("metrics", default={}) or {}
    rows: list[tuple[Any, Any]] = [
        ("run", run.run_id),
        ("status", run.get("status", default="unknown")),
        ("board", f"{run.get('board', 'name', default='?')} ({run.board_id})"),
        ("backend", run.backend),
        ("model", f"{run.model_name}  sha256 {str(run.get('model', 'sha256') or '?')[:12]}  "
                  f"{fmt(run.get('model', 'bytes'))} bytes"),
        ("data set", f"{run.get('dataset', 'name', default='?')}"
                     f"{' (synthetic)' if run.get('dataset', 'synthetic') else ''}, "
                     f"split {run.get('settings', 'split') or 'all'}"),
        ("threshold", fmt(run.threshold)),
        ("created / finished (UTC)", f"{run.get('created_utc', default='?')} / "
                                     f"{run.get('finished_utc', default='?')}"),
    ]
    if "status" in run.columns:
        n_err = int(np.count_nonzero(run.columns["status"] != "ok"))
        rows.append(("images", f"{fmt(run.n_rows)} rows, {fmt(n_err)} errors"))
    else:
        rows.append(("images (from run.json)", f"{fmt(m.get('n'))} images, "
                                               f"{fmt(m.get('n_error'))} errors; no readable rows"))
    if lp is not None and len(lp[0]):
        labels, preds, scores = lp
        cm = confusion(labels, preds)
        acc = cm.accuracy
        rows += [
            ("accuracy (95 % CI)", fmt_ci(acc.value, acc.low, acc.high)),
            ("precision / recall", f"{fmt(cm.precision.value)} / {fmt(cm.recall.value)}"),
            ("false-positive / false-negative rate", f"{fmt(cm.fpr.value)} / {fmt(cm.fnr.value)}"),
        ]
        if not np.isnan(scores).all():
            c = curves(labels[~np.isnan(scores)], scores[~np.isnan(scores)])
            rows.append(("ROC AUC / average precision",
                         f"{fmt(c.roc_auc)} / {fmt(c.average_precision)}"))
    elif m.get("accuracy") is not None:
        rows.append(("accuracy (from run.json)", fmt_ci(float(m["accuracy"]),
                     float(m.get("accuracy_ci_low") or math.nan),
                     float(m.get("accuracy_ci_high") or math.nan))))
    lat = _latency_ms(run)
    kind = _latency_kind(run)
    if len(lat):
        rows.append((f"latency p50 ({kind})", f"{np.median(lat):.2f} ms"))
    elif m.get("latency_us_p50") is not None and shows_time(run.manifest):
        rows.append((f"latency p50 ({kind}, run.json)",
                     f"{float(m['latency_us_p50']) / 1000:.2f} ms"))
    if m.get("instructions_p50") is not None:
        counter = "Renode" if run.manifest.get("backend") == "renode" else "QEMU -icount"
        rows.append((f"instructions per inference p50 ({counter}, counted)",
                     format_instructions(m["instructions_p50"])))
    if "host_match" in run.columns:
        hm = run.columns["host_match"]
        rows.append(("host-vs-device mismatches", fmt(int(sum(1 for v in hm if v is False
                                                               or v is np.False_)))))
    latency_note = (note(f"Latency ({kind}): {_run_label(run)}.")
                    if len(lat) or m.get("latency_us_p50") is not None else Safe(""))
    return section("Summary", kv_table(rows), latency_note, id_="summary")


def _latency_kind(run: Run) -> str:
    """One word for the Summary's latency label (measured, estimated, counted); the full
    source, which can be a sentence long, goes in a note under the table so the label stays
    short enough for the values beside it to stay on screen."""
    kind = str(basis_of(run.manifest).get("kind") or "unknown")
    return kind if kind in ("measured", "estimated", "counted") else "source unknown"


def _latency_ms(run: Run) -> np.ndarray:
    """Per-image latency in ms: latency_us, else cycles over the clock (older runs)."""
    mask = ok_mask(run)
    if "latency_us" in run.columns:
        v = run.columns["latency_us"][mask]
        return v[~np.isnan(v)] / 1000.0
    clock = run.get("device", "clock_hz") or run.get("board", "clock_hz")
    if "cycles" in run.columns and isinstance(clock, (int, float)) and clock > 0:
        v = run.columns["cycles"][mask]
        return v[~np.isnan(v)] * 1e3 / float(clock)
    return np.array([])


def _classification(run: Run, opts: ReportOptions) -> Safe:
    lp = labelled_predictions(run)
    if lp is None or len(lp[0]) == 0:
        return section("Classification", note("No labelled, successful rows: nothing to score.",
                                              "warn"), id_="classification")
    labels, preds, scores = lp
    cm = confusion(labels, preds)
    parts: list[Any] = [img(plots.confusion_plot(cm), "confusion matrix")]
    extra: list[Any] = []
    has_scores = not np.isnan(scores).all()
    if has_scores:
        keep = ~np.isnan(scores)
        c = curves(labels[keep], scores[keep])
        op_cm = confusion(labels[keep], (scores[keep] >= run.threshold).astype(int))
        op = (op_cm.fpr.value, op_cm.recall.value)
        target = threshold_for_fpr(c, opts.target_fpr)
        if c.n_pos and c.n_neg:
            parts.append(img(plots.roc_plot(c, op, target, opts.target_fpr), "ROC curve"))
            tpoint = None
            if target is not None:
                tcm = confusion(labels[keep], (scores[keep] >= target[0]).astype(int))
                tpoint = (tcm.recall.value, tcm.precision.value)
            parts.append(img(plots.pr_plot(c, (op_cm.recall.value, op_cm.precision.value),
                                           tpoint), "precision-recall curve"))
        else:
            extra.append(note("Only one class present: ROC and PR curves need both.", "warn"))
        parts.append(img(plots.score_hist(scores[keep], labels[keep], run.threshold),
                         "score histograms per class"))
        rows = [("operating", fmt(run.threshold), fmt(op_cm.fpr.value), fmt(op_cm.recall.value),
                 fmt(op_cm.fnr.value), fmt(op_cm.accuracy.value))]
        if target is not None:
            tcm = confusion(labels[keep], (scores[keep] >= target[0]).astype(int))
            rows.append((f"meets FPR \u2264 {opts.target_fpr:g}", fmt(target[0]),
                         fmt(tcm.fpr.value), fmt(tcm.recall.value), fmt(tcm.fnr.value),
                         fmt(tcm.accuracy.value)))
        elif c.n_neg:
            extra.append(note(f"No threshold reaches a false-positive rate of "
                              f"{opts.target_fpr:g} on this data.", "warn"))
        extra.insert(0, table(["threshold", "value", "FPR", "TPR (recall)", "FNR", "accuracy"],
                              rows))
    else:
        extra.append(note("No scores in the results: curves are not drawn.", "warn"))
    counts = table(["", "predicted no person", "predicted person"],
                   [("true no person", fmt(cm.tn), fmt(cm.fp)),
                    ("true person", fmt(cm.fn), fmt(cm.tp))])
    return section("Classification", tag("div", join(parts), class_="grid"), counts,
                   *extra, id_="classification")


def _latency(run: Run) -> Safe:
    lat = _latency_ms(run) if shows_time(run.manifest) else np.array([])
    label = _run_label(run)
    if not len(lat):
        return section("Latency", note("No latency in the results.", "warn"), id_="latency")
    pct = percentiles(lat)
    rows = [(k, f"{v:.3f} ms") for k, v in pct.items()]
    return section(
        "Latency",
        note(f"Latency is {label} (latency_source = {run.latency_source})."),
        tag("div", img(plots.latency_hist(lat, pct, _plot_kind(run)), "latency histogram"),
            kv_table(rows), class_="grid"),
        id_="latency")


def _eembc(run: Run) -> Safe:
    """An EEMBC run's figures the official MLPerf Tiny runner's way, beside the harness's."""
    from harness.report.eembc_figures import eembc_figures

    f = eembc_figures(run.manifest, run.columns)
    if f is None:
        return Safe("")

    def unit(v: float | None, u: str, digits: int = 3) -> str:
        return fmt(v, digits) + (u if v is not None else "")

    rows = [
        ("Top-1, runner's way (arg-max of normalised scores)", unit(f.runner_top1, " %", 1)),
        ("accuracy, harness's way (person score >= threshold)", unit(f.harness_accuracy, " %", 1)),
        ("AUC, runner's way (normalised person score)", fmt(f.runner_auc)),
        ("median throughput, runner's way (N / (t1 - t0) per window)",
         unit(f.runner_throughput, " inf/s") + ("" if f.runner_valid else " (not valid: run too short)")),
        ("windows (inferences, device seconds)", ", ".join(f"{k} in {t:.1f} s" for k, t in f.windows)),
        ("throughput, harness's way (1 / median per-image latency)", unit(f.harness_throughput, " inf/s")),
        ("median latency, harness's way", unit(f.harness_latency_ms, " ms")),
    ]
    return section("MLPerf Tiny (EEMBC) figures", note(f.note, "note" if f.runner_valid else "warn"),
                   kv_table(rows), id_="eembc")


def _layers(run: Run) -> Safe:
    prof = run.get("profile")
    if not isinstance(prof, list) or not prof:
        why = run.get("profile_unavailable")
        text = f"Per-layer profile {why}." if why else "run.json has no per-layer profile."
        return section("Time per layer", note(text, "warn"), id_="layers")
    names, us = [], []
    by_op: dict[str, float] = {}
    for i, p in enumerate(prof):
        if not isinstance(p, dict):
            continue
        t = p.get("us")
        if not isinstance(t, (int, float)) and "instructions" not in p:
            cyc, clock = p.get("cycles"), run.get("board", "clock_hz")
            t = cyc * 1e6 / clock if isinstance(cyc, (int, float)) and clock else math.nan
        elif not isinstance(t, (int, float)):
            t = math.nan
        op = str(p.get("op", "?"))
        names.append(f"{p.get('index', i)} {op}")
        us.append(float(t))
        if not math.isnan(t):
            by_op[op] = by_op.get(op, 0.0) + float(t)
    arr = np.array(us)
    total = float(np.nansum(arr))
    rows = [(op, f"{t / 1000:.3f} ms", f"{t / total:.1%}" if total else "\u2014")
            for op, t in sorted(by_op.items(), key=lambda kv: -kv[1])]
    return section(
        "Time per layer",
        note(f"One inference, {_run_label(run)}; total "
             f"{total / 1000:.2f} ms over {len(names)} layers{_instr_total(prof)}."),
        tag("div", img(plots.layer_bars(names, np.nan_to_num(arr), _plot_kind(run)),
                       "time per layer"),
            table(["op", "time", "share"], rows), class_="grid"),
        id_="layers")


def _plot_kind(run: Run) -> str:
    """The short word for axis labels: "estimated", "measured" or "reported by the device"."""
    basis = basis_of(run.manifest)
    if basis.get("kind") == "reported":
        return "reported by the device"
    return "estimated" if basis.get("estimated") else "measured"


def _instr_total(prof: list[Any]) -> str:
    n = [p["instructions"] for p in prof if isinstance(p, dict) and isinstance(p.get("instructions"), int)]
    return f" ({format_instructions(sum(n))} counted by QEMU)" if n else ""


def _board_limits(run: Run) -> tuple[int | None, int | None]:
    mem = run.get("memory", default={}) or {}
    ram, flash = mem.get("ram_for_arena"), mem.get("flash_for_model")
    if ram is None or flash is None:
        try:
            from harness.boards import load_board

            board = load_board(run.board_id)
            ram = ram if ram is not None else board.ram_for_arena
            flash = flash if flash is not None else board.flash_for_model
        except Exception as exc:  # noqa: BLE001 - an unknown board only loses the limit lines
            log.debug("no board profile for %s: %s", run.board_id, exc)
    return ram, flash


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


#: backends whose device is an emulated machine standing in for the board: its memory
#: totals are the machine's (QEMU's mps2-an386 has 4 MiB of each), not the board's
EMULATED_BACKENDS = ("qemu", "renode")


def _whole_device_limits(run: Run, mem: dict[str, Any]) -> tuple[float | None, float | None, str]:
    """The RAM and flash the device's whole-image figures are judged against, and whose they are.

    A real board (or the sim) reports its own totals. An emulator reports the emulated
    machine's, which says nothing about whether the image fits the board the run stands
    for, so there the board profile's RAM and flash are the limits (run.json's
    ``memory.ram_bytes``/``flash_bytes``, else the profile).
    """
    ram_total, flash_total = _num(mem.get("device_ram_total")), _num(mem.get("device_flash_total"))
    if run.backend not in EMULATED_BACKENDS:
        return ram_total, flash_total or _num(mem.get("flash_bytes")), "device"
    ram, flash = _num(mem.get("ram_bytes")), _num(mem.get("flash_bytes"))
    if ram is None or flash is None:
        try:
            from harness.boards import load_board

            board = load_board(run.board_id)
            ram = ram if ram is not None else float(board.ram_bytes)
            flash = flash if flash is not None else float(board.flash_bytes)
        except Exception as exc:  # noqa: BLE001 - an unknown board only loses the limit lines
            log.debug("no board profile for %s: %s", run.board_id, exc)
    return ram, flash, run.board_id


def _memory(run: Run) -> Safe:
    mem = run.get("memory", default={}) or {}
    ram, flash = _board_limits(run)
    arena_used = mem.get("arena_used") or run.get("device", "arena_used")
    arena_size = mem.get("arena_size") or run.get("device", "arena_size")
    model_bytes = mem.get("model_bytes") or run.get("model", "bytes")
    bars = []
    if isinstance(arena_used, (int, float)):
        bars.append(plots.MemoryBar("tensor arena used (grey: allocated)", float(arena_used),
                                    float(ram) if ram else None,
                                    float(arena_size) if arena_size else None))
    if isinstance(model_bytes, (int, float)):
        bars.append(plots.MemoryBar("model in flash", float(model_bytes),
                                    float(flash) if flash else None))
    flash_used, flash_total = mem.get("device_flash_used"), mem.get("device_flash_total")
    ram_limit, flash_limit, whose = _whole_device_limits(run, mem)
    against = "" if whose == "device" else f" vs {whose}"
    if isinstance(flash_used, (int, float)):
        bars.append(plots.MemoryBar(f"whole image in flash (device{against})", float(flash_used),
                                    flash_limit))
    ram_total, ram_free = mem.get("device_ram_total"), mem.get("device_ram_free")
    if isinstance(ram_total, (int, float)) and isinstance(ram_free, (int, float)):
        bars.append(plots.MemoryBar(f"RAM in use (device{against})", float(ram_total - ram_free),
                                    ram_limit))
    if not bars:
        return section("Memory", note("run.json has no memory figures.", "warn"), id_="memory")
    rows = [("arena used / allocated", f"{fmt(arena_used)} / {fmt(arena_size)} bytes"),
            ("RAM available for the arena", f"{fmt(ram)} bytes"),
            ("model size", f"{fmt(model_bytes)} bytes"),
            ("flash available for the model", f"{fmt(flash)} bytes")]
    if flash_used is not None:
        rows.append(("flash used, whole image (device)", f"{fmt(flash_used)} bytes"))
    if ram_free is not None:
        rows.append(("RAM free while running (device)", f"{fmt(ram_free)} bytes"))
    if whose != "device" and (ram_total is not None or flash_total is not None):
        rows.append((f"emulated machine ({run.backend}), not the {whose}",
                     f"RAM {fmt(ram_total)}, flash {fmt(flash_total)} bytes; "
                     f"whole-image figures are judged against the {whose}'s "
                     f"{fmt(ram_limit)} B RAM and {fmt(flash_limit)} B flash"))
    over = [b.label for b in bars if b.limit is not None and b.used > b.limit]
    msg = note(f"Over the board's limit: {', '.join(over)}", "problem") if over else Safe("")
    return section("Memory", msg, tag("div", img(plots.memory_bars(bars), "memory bars"),
                                      kv_table(rows), class_="grid"), id_="memory")


def _agreement(run: Run) -> Safe:
    if not run.has("host_match"):
        return section("Host vs device", note("No host reference comparison in the results.",
                                              "warn"), id_="agreement")
    hm = run.columns["host_match"]
    match = np.array([v is True or v is np.True_ for v in hm])
    mismatch = np.array([v is False or v is np.False_ for v in hm])
    unknown = len(hm) - int(match.sum()) - int(mismatch.sum())
    rows: list[tuple[Any, ...]] = []
    if mismatch.any() and run.has("output_q", "host_output_q"):
        dev, host = run.columns["output_q"], run.columns["host_output_q"]
        ids = run.columns.get("image_id", np.arange(len(hm)).astype(str))
        for i in np.nonzero(mismatch)[0][:20]:
            d, h = dev[i], host[i]
            diff = (max(abs(a - b) for a, b in zip(d, h, strict=False))
                    if d is not None and h is not None and len(d) == len(h) else "shape differs")
            rows.append((ids[i], str(d), str(h), diff))
    n_cmp = int(match.sum() + mismatch.sum())
    verdict = (tag("p", f"Device outputs equal the host reference on all {n_cmp} compared images.",
                   class_="ok") if n_cmp and not mismatch.any() else
               tag("p", f"{int(mismatch.sum())} of {n_cmp} compared images differ from the host "
                        "reference (LiteRT reference kernels).",
                   class_="bad" if mismatch.any() else "note"))
    parts: list[Any] = [verdict, note(f"{unknown} rows without a comparison (errors).")]
    if rows:
        parts.append(table(["image", "device output_q", "host output_q", "max |diff|"], rows))
        if int(mismatch.sum()) > len(rows):
            parts.append(note(f"First {len(rows)} of {int(mismatch.sum())} shown."))
    return section("Host vs device", *parts, id_="agreement")


def _fairness(run: Run) -> Safe:
    cols = run.subgroup_columns
    lp = labelled_predictions(run)
    if not cols:
        return section("Fairness across subgroups",
                       note("The data set manifest has no subgroup attributes (sg_* columns)."),
                       id_="fairness")
    if lp is None:
        return section("Fairness across subgroups", note("No labels: nothing to compare.", "warn"),
                       id_="fairness")
    labels, preds, _ = lp
    if not len(labels):
        return section("Fairness across subgroups", note("No labelled, successful rows.", "warn"),
                       id_="fairness")
    mask = ok_mask(run) & ~np.isnan(run.columns["label"])
    lat_rows = (run.columns["latency_us"][mask]
                if "latency_us" in run.columns and shows_time(run.manifest) else None)
    blocks: list[Any] = []
    all_lines: list[str] = []
    for col in cols:
        groups = fairness.by_attribute(col, run.columns[col][mask], labels, preds, lat_rows)
        lines = fairness.statement(groups)
        all_lines += lines
        rows = []
        for g in groups:
            acc = g.cm.accuracy
            rows.append((
                g.group + (" (majority)" if g.majority else ""), fmt(g.n),
                fmt_ci(acc.value, acc.low, acc.high),
                "\u2014" if g.majority else fmt_ci(g.acc_gap.diff, g.acc_gap.low, g.acc_gap.high),
                fmt(g.cm.fpr.value), "\u2014" if g.majority else fmt_ci(
                    g.fpr_gap.diff, g.fpr_gap.low, g.fpr_gap.high),
                fmt(g.cm.fnr.value), "\u2014" if g.majority else fmt_ci(
                    g.fnr_gap.diff, g.fnr_gap.low, g.fnr_gap.high),
                fmt(g.cm.precision.value), fmt(g.cm.recall.value),
                f"{g.latency_p50_us / 1000:.2f} ms" if not math.isnan(g.latency_p50_us)
                else "\u2014",
                ", ".join(g.underserved_by) or "",
            ))
        items = [plots.Interval(f"{g.group} (n={g.n})", g.cm.accuracy.value, g.cm.accuracy.low,
                                g.cm.accuracy.high, bool(g.underserved_by)) for g in groups]
        blocks += [
            tag("h3", col),
            table(["group", "n", "accuracy", "gap to majority", "FPR", "FPR gap", "FNR",
                   "FNR gap", "precision", "recall", f"p50 latency ({_plot_kind(run)})", "worse on"],
                  rows),
            img(plots.forest(items, groups[0].cm.accuracy.value if groups else None,
                             "accuracy, 95 % CI (dashed: majority group)",
                             f"Accuracy by {col}"), f"accuracy by {col}"),
        ]
    under = [ln for ln in all_lines if "under-served" in ln]
    head = tag("ul", *(tag("li", ln) for ln in all_lines))
    lead = (tag("p", f"{len(under)} under-served group(s) found.", class_="bad") if under
            else tag("p", "No under-served group found.", class_="ok"))
    return section("Fairness across subgroups", lead, head,
                   note("Gaps are group minus majority group, with Newcombe 95 % intervals; a "
                        "group is under-served when the interval excludes zero on the worse "
                        "side."), *blocks, id_="fairness")


def _gallery(run: Run, opts: ReportOptions) -> Safe:
    lp = labelled_predictions(run)
    if lp is None or not run.has("score") or opts.gallery <= 0:
        return section("Worst mistakes", note("No scores or labels: no gallery."), id_="gallery")
    labels, preds, scores = lp
    mask = ok_mask(run) & ~np.isnan(run.columns["label"])
    n = int(mask.sum())
    ids = run.columns["image_id"][mask] if "image_id" in run.columns else np.arange(n).astype(str)
    paths = run.columns["path"][mask] if "path" in run.columns else np.array([""] * n, object)
    fps, fns = gallery.worst(ids, paths, labels, preds, np.nan_to_num(scores), opts.gallery)
    roots = gallery.dataset_roots(run.get("dataset", "path"), run.path)
    fp_html, fp_missing = gallery.render("False positives (highest scores)", fps, roots)
    fn_html, fn_missing = gallery.render("False negatives (lowest scores)", fns, roots)
    missing = fp_missing + fn_missing
    msgs: list[Any] = []
    if not roots:
        msgs.append(note("run.json names no data set path: thumbnails cannot be shown.", "warn"))
    elif missing:
        msgs.append(note(f"{missing} image(s) could not be shown (see placeholders); data set "
                         f"path: {run.get('dataset', 'path')}", "warn"))
    return section("Worst mistakes", *msgs, fp_html, fn_html, id_="gallery")


def _errors(run: Run) -> Safe:
    lines: Counter[str] = Counter()
    if "error" in run.columns:
        for e in run.columns["error"]:
            if e:
                lines[str(e)] += 1
    else:  # no rows to count: list the manifest's error lines
        for e in run.get("errors", default=[]) or []:
            lines[str(e)] += 0
    if not lines:
        return section("Errors", tag("p", "No errors.", class_="ok"), id_="errors")
    rows = [(msg, fmt(c) if c else "(run.json)") for msg, c in lines.most_common(30)]
    return section("Errors", table(["error", "images"], rows), id_="errors")


def _provenance(run: Run) -> Safe:
    def flat(prefix: str, d: Any) -> list[tuple[str, Any]]:
        if not isinstance(d, dict):
            return []
        return [(f"{prefix}.{k}", fmt(v) if not isinstance(v, (dict, list)) else str(v))
                for k, v in d.items()]

    rows = (flat("device", run.get("device")) + flat("host", run.get("host"))
            + flat("versions", run.get("versions")) + flat("settings", run.get("settings"))
            + flat("dataset", run.get("dataset")) + flat("model", run.get("model")))
    rows.append(("port", fmt(run.get("port"))))
    return section("Provenance", kv_table(rows) if rows else note("Nothing recorded."),
                   id_="provenance")


def _safely(name: str, fn: Callable[[], Safe]) -> Safe:
    """Draw one section; a failure becomes a visible problem line, not a lost report."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the other sections are still worth writing
        log.exception("section %s failed", name)
        return section(name, note(f"This section could not be drawn: {type(exc).__name__}: "
                                  f"{exc}", "problem"))


def render(run: Run, opts: ReportOptions | None = None) -> str:
    opts = opts or ReportOptions()
    started = time.perf_counter()
    body: list[Any] = []
    if run.problems:
        body.append(section("Problems with this run folder",
                            *(tag("p", p, class_="problem") for p in run.problems),
                            id_="problems"))
    for name, fn in (
        ("Summary", lambda: _summary(run)),
        ("Classification", lambda: _classification(run, opts)),
        ("Latency", lambda: _latency(run)),
        ("MLPerf Tiny (EEMBC) figures", lambda: _eembc(run)),
        ("Time per layer", lambda: _layers(run)),
        ("Memory", lambda: _memory(run)),
        ("Host vs device", lambda: _agreement(run)),
        ("Fairness across subgroups", lambda: _fairness(run)),
        ("Worst mistakes", lambda: _gallery(run, opts)),
        ("Errors", lambda: _errors(run)),
        ("Provenance", lambda: _provenance(run)),
    ):
        body.append(_safely(name, fn))
    log.info("report for %s drawn in %.2f s", run.run_id, time.perf_counter() - started)
    title = opts.title or f"VWW run {run.run_id}"
    subtitle = f"{run.label} \u00b7 {_run_label(run)}"
    return page(title, subtitle, body)


def write_report(run_arg: str | Path, out: Path | None = None,
                 opts: ReportOptions | None = None) -> Path:
    """Load a run folder and write its report (default ``<run>/report.html``)."""
    run = load_run(run_arg)
    target = out or run.path / REPORT_NAME
    if target.is_dir():
        target = target / REPORT_NAME
    text = render(run, opts)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target

