"""A 1,000-image run of the MLPerf Tiny VWW reference model on the simulated board.

Target (issue 2): under 60 s on a 2-core machine. Printed beside it, measured in the same
run on the same images: TFLM invoked in-process on the same model (the floor any
protocol path has to pay), so the ratio shows what the harness adds on top.

    python benchmarks/bench_reference_1000.py [--images 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

TARGET_S = 60.0
MODEL_NAME = "mlperf_tiny_vww_96_int8.tflite"


def make_images(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` 96x96 RGB PNGs (smooth random fields, so PNG decode costs what a photo's would)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        coarse = rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
        img = Image.fromarray(coarse, "RGB").resize((96, 96), Image.Resampling.BILINEAR)
        name = f"img_{i:05d}.png"
        img.save(root / name)
        rows.append((name, i % 2))
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label"])
        w.writerows(rows)
    return root


def in_process_seconds(model: Path, data: Path, n: int) -> float:
    """TFLM on the same images, in this process, with the same preprocessing."""
    from tflite_micro.python.tflite_micro import runtime

    from harness.bench.preprocess import Preprocessor
    from harness.data.dataset import Dataset
    from harness.models.tflite_file import ModelInfo

    info = ModelInfo.from_file(model)
    pre = Preprocessor.for_input(info.inputs[0])
    interp = runtime.Interpreter.from_bytes(info.data)
    start = time.perf_counter()
    for sample in Dataset.open(data).iter_samples(limit=n):
        interp.set_input(pre(sample.load_rgb()), 0)
        interp.invoke()
        interp.get_output(0)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folder here")
    args = parser.parse_args()

    from harness.bench.api import run_bench
    from harness.bench.request import BenchRequest
    from harness.bench.store import load_run
    from harness.paths import reference_models_dir

    ref = reference_models_dir()
    model = ref / MODEL_NAME if ref else None
    if model is None or not model.is_file():
        print(f"skipped: {MODEL_NAME} not found (../shared/reference/models or HIL_REFERENCE_MODELS)")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-ref-") as tmp:
        data = make_images(Path(tmp) / "data", args.images)
        out = args.keep or Path(tmp) / "runs"
        start = time.perf_counter()
        folder = run_bench(BenchRequest(model=str(model), data=str(data), out_dir=out), quiet=True)
        wall = time.perf_counter() - start
        run = load_run(folder)
        floor = in_process_seconds(model, data, args.images)
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    m = run.metrics
    per_1000 = wall * 1000 / max(m.get("n", 0), 1)
    n = m.get("n", 0)
    print(
        f"model: {MODEL_NAME}; backend sim standing in for nano33; {n} images, {m.get('n_error')} errors, "
        f"{m.get('host_mismatches')} host mismatches"
    )
    print(f"hil bench (sim, protocol, host reference): {wall:.1f} s  = {n / wall:.1f} img/s")
    print(f"TFLM in-process, same images:              {floor:.1f} s  = {n / floor:.1f} img/s")
    print(f"harness rate / in-process rate:            {floor / wall:.2f}")
    print(
        f"target: {TARGET_S:.0f} s for 1,000 images -> {'met' if per_1000 < TARGET_S else 'NOT met'} "
        f"(wall / target = {per_1000 / TARGET_S:.2f}, scaled to 1,000 images)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
