"""Synthetic run folders that follow the run folder schema v1.

The reports are tested and benchmarked before (and independently of) the bench runner,
so they need run folders with the awkward parts of real ones: subgroups that are served
unequally, device errors, host/device mismatches, a few images missing from the data
set. Everything is seeded, so a test that reads a synthetic run gets the same rows
every time.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness.stats import confusion, percentiles


@dataclass
class SynthSpec:
    """What a synthetic run looks like."""

    n: int = 300
    seed: int = 0
    board: str = "nano33"
    backend: str = "sim"
    model_name: str = "vww_96_025"
    threshold: float = 0.5
    errors: int = 4
    mismatches: int = 3
    minority_share: float = 0.2  # share of "night" images, which the model serves worse
    separation: float = 2.2  # how far apart the class score distributions are
    latency_ms: float = 180.0
    latency_jitter: float = 0.02
    clock_hz: int = 64_000_000
    images: bool = True
    missing_images: int = 2
    created: datetime | None = None
    status: str = "complete"
    latency_source: str = "estimated"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _write_images(root: Path, ids: list[str], labels: np.ndarray, skip: set[int]) -> None:
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i, (iid, lab) in enumerate(zip(ids, labels, strict=True)):
        if i in skip:
            continue
        img = rng.integers(0, 80, size=(24, 24, 3), dtype=np.uint8)
        if lab:  # a bright "person" blob, so thumbnails differ by class
            img[6:20, 9:15] = (220, 170, 120)
        Image.fromarray(img).save(root / "images" / f"{iid}.png")


def write_run(parent: Path, spec: SynthSpec | None = None, dataset_dir: Path | None = None,
              run_id: str | None = None) -> Path:
    """Write one run folder under ``parent`` and return its path.

    Images go to ``dataset_dir`` (default ``parent/dataset``), which run.json points at.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = spec or SynthSpec()
    rng = np.random.default_rng(spec.seed)
    created = spec.created or datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    run_id = run_id or (
        f"{created.strftime('%Y%m%dT%H%M%SZ')}-{spec.board}-{spec.backend}-{secrets.token_hex(3)}"
    )
    folder = parent / run_id
    folder.mkdir(parents=True, exist_ok=True)
    dataset_dir = dataset_dir or parent / "dataset"

    n = spec.n
    labels = (rng.random(n) < 0.5).astype(np.int8)
    night = rng.random(n) < spec.minority_share
    scene = np.where(rng.random(n) < 0.6, "indoor", "outdoor")
    sep = np.where(night, spec.separation * 0.45, spec.separation)
    logits = np.where(labels == 1, sep, -sep) + rng.normal(0, 1.3, n)
    person_q = np.clip(np.round(_sigmoid(logits) * 256 - 128), -128, 127).astype(np.int32)
    score = ((person_q + 128) / 256.0).astype(np.float32)
    status = np.array(["ok"] * n, dtype=object)
    err_idx: np.ndarray = (rng.choice(n, size=min(spec.errors, n), replace=False) if n
                           else np.array([], dtype=int))
    status[err_idx] = "error"
    is_err = status == "error"
    pred = (score >= spec.threshold).astype(np.int8)
    base_cycles = spec.latency_ms * 1e-3 * spec.clock_hz
    cycles = np.round(base_cycles * (1 + rng.normal(0, spec.latency_jitter, n))).astype(np.int64)
    latency_us = cycles * 1e6 / spec.clock_hz
    ok_idx = np.nonzero(~is_err)[0]
    mism_idx = set(rng.choice(ok_idx, size=min(spec.mismatches, len(ok_idx)), replace=False)
                   .tolist()) if len(ok_idx) else set()
    ids = [f"img{spec.seed:03d}_{i:05d}" for i in range(n)]

    output_q: list[list[int] | None] = []
    output_f: list[list[float] | None] = []
    host_q: list[list[int] | None] = []
    host_match: list[bool | None] = []
    for i in range(n):
        if is_err[i]:
            output_q.append(None)
            output_f.append(None)
            host_q.append(None)
            host_match.append(None)
            continue
        q = [int(-1 - person_q[i]), int(person_q[i])]
        output_q.append(q)
        output_f.append([(v + 128) / 256.0 for v in q])
        h = list(q)
        if i in mism_idx:
            h[1] = max(-128, min(127, h[1] + int(rng.choice([-2, -1, 1, 2]))))
        host_q.append(h)
        host_match.append(h == q)

    errors = ["device error: inference timed out" if k % 2 else "corrupt image: truncated PNG"
              for k in range(len(err_idx))]
    err_col: list[str | None] = [None] * n
    for k, i in enumerate(err_idx):
        err_col[int(i)] = errors[k]

    table = pa.table({
        "seq": pa.array(np.arange(n, dtype=np.int32)),
        "image_id": pa.array(ids, pa.string()),
        "path": pa.array([f"images/{i}.png" for i in ids], pa.string()),
        "split": pa.array(["val"] * n, pa.string()),
        "label": pa.array(labels, pa.int8()),
        "status": pa.array(status.tolist(), pa.string()),
        "error": pa.array(err_col, pa.string()),
        "output_q": pa.array(output_q, pa.list_(pa.int32())),
        "output_f": pa.array(output_f, pa.list_(pa.float32())),
        "score": pa.array([None if e else float(s) for s, e in zip(score, is_err, strict=True)],
                          pa.float32()),
        "pred": pa.array([None if e else int(p) for p, e in zip(pred, is_err, strict=True)],
                         pa.int8()),
        "cycles": pa.array([None if e else int(c) for c, e in zip(cycles, is_err, strict=True)],
                           pa.int64()),
        "latency_us": pa.array([None if e else float(v)
                                for v, e in zip(latency_us, is_err, strict=True)], pa.float64()),
        "host_output_q": pa.array(host_q, pa.list_(pa.int32())),
        "host_match": pa.array(host_match, pa.bool_()),
        "sg_lighting": pa.array(np.where(night, "night", "day").tolist(), pa.string()),
        "sg_scene": pa.array(scene.tolist(), pa.string()),
    })
    pq.write_table(table, folder / "results.parquet", row_group_size=max(1, min(n, 128)))

    ok = ~is_err
    cm = confusion(labels[ok], pred[ok])
    acc = cm.accuracy
    lat = percentiles(latency_us[ok])
    profile = _profile(spec, base_cycles)
    skip = set(rng.choice(n, size=min(spec.missing_images, n), replace=False).tolist()) if n else set()
    if spec.images:
        _write_images(dataset_dir, ids, labels, skip)

    def r(x: float) -> float | None:
        return None if math.isnan(x) else round(float(x), 6)

    manifest: dict[str, Any] = {
        "schema_version": 1,
        "run_id": run_id,
        "status": spec.status,
        "created_utc": created.isoformat().replace("+00:00", "Z"),
        "finished_utc": (created + timedelta(seconds=n * spec.latency_ms / 1000 + 5))
        .isoformat().replace("+00:00", "Z"),
        "board": {"id": spec.board, "name": f"{spec.board} (synthetic)",
                  "clock_hz": spec.clock_hz, "ram_bytes": 262_144, "flash_bytes": 1_048_576,
                  "psram_bytes": 0},
        "backend": spec.backend,
        "port": None,
        "device": {"protocol_version": 1, "board": spec.board, "firmware_version": "0.1.0",
                   "engine": "tflite-micro", "model_sha256": "ab" * 32,
                   "clock_hz": spec.clock_hz, "timer": "estimated",
                   "arena_size": 120_000, "arena_used": 98_304,
                   "inputs": [{"dtype": "int8", "shape": [1, 96, 96, 1], "scale": 0.0078125,
                               "zero_point": -128}],
                   "outputs": [{"dtype": "int8", "shape": [1, 2], "scale": 0.00390625,
                                "zero_point": -128}]},
        "model": {"path": f"models/{spec.model_name}.tflite", "name": spec.model_name,
                  "sha256": "ab" * 32, "bytes": 302_000},
        "dataset": {"path": str(dataset_dir), "name": "synthetic-vww", "sha256": "cd" * 32,
                    "count": n, "synthetic": True},
        "settings": {"threshold": spec.threshold, "person_index": 1, "warmups": 1,
                     "repeats": 1, "split": "val", "limit": None},
        "latency_source": spec.latency_source,
        "host": {"hostname": "ci", "platform": "linux", "python": "3.11", "machine": "x86_64"},
        "versions": {"harness": "0.1.0"},
        "memory": {"arena_size": 120_000, "arena_used": 98_304, "model_bytes": 302_000,
                   "ram_bytes": 262_144, "flash_bytes": 1_048_576, "ram_for_arena": 196_608,
                   "flash_for_model": 720_896},
        "profile": profile,
        "metrics": {"n": n, "n_ok": int(ok.sum()), "n_error": int(is_err.sum()),
                    "accuracy": r(acc.value), "accuracy_ci_low": r(acc.low),
                    "accuracy_ci_high": r(acc.high), "tp": cm.tp, "fp": cm.fp, "tn": cm.tn,
                    "fn": cm.fn, "fpr": r(cm.fpr.value), "fnr": r(cm.fnr.value),
                    "precision": r(cm.precision.value), "recall": r(cm.recall.value),
                    "latency_us_p50": r(lat["p50"]), "latency_us_p90": r(lat["p90"]),
                    "latency_us_p99": r(lat["p99"]), "latency_us_mean": r(lat["mean"]),
                    "cycles_p50": r(float(np.median(cycles[ok]))) if ok.any() else None,
                    "host_mismatches": len(mism_idx)},
        "errors": errors,
    }
    (folder / "run.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    (folder / "summary.txt").write_text(f"{run_id}: accuracy {acc.value:.3f}\n", encoding="utf-8")
    return folder


def _profile(spec: SynthSpec, total_cycles: float) -> list[dict[str, Any]]:
    """A MobileNetV1-shaped layer list whose cycles add up to the run's latency."""
    ops = ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 13 + [
        "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    weights = np.array([3.0 if op == "CONV_2D" else 1.5 if op.startswith("DEPTH") else 0.05
                        for op in ops])
    cyc = total_cycles * weights / weights.sum()
    return [{"index": i, "op": op, "cycles": int(c), "us": round(c * 1e6 / spec.clock_hz, 2)}
            for i, (op, c) in enumerate(zip(ops, cyc, strict=True))]
