"""Host memory while benchmarking 5,000 images against 500: images must stream, not pile up.

Target (issue 2): benchmarking 5,000 images grows the host process by less than 100 MB.
Each size runs in a fresh child process that reports its resident set before the run and
its peak during it; the difference between the two sizes is what the 4,500 extra images
cost, which for a streaming runner is a few scalars per row (the running metrics).

    python benchmarks/bench_streaming_memory.py [--device sim|inprocess] [--images 5000]

``--device inprocess`` runs the model in the benchmark's own process with LiteRT (the
tests' in-process device) instead of the simulated board's child process: the runner,
the data set reader and the results store are the same.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
LIMIT_MB = 100.0


def make_images(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` small PNGs generated on the fly (the set is never held in memory here either)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "lighting"])
        for i in range(n):
            name = f"img_{i:05d}.png"
            Image.fromarray(rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8), "RGB").save(root / name)
            w.writerow([name, i % 2, "dark" if i % 3 else "bright"])
    return root


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(n: int, data: Path, model: Path, out: Path, device: str) -> None:
    sys.path.insert(0, str(REPO / "tests" / "unit"))
    import bench_fakes  # noqa: F401 - registers the in-process backend

    import harness.bench.runner  # noqa: F401 - imported before the baseline is taken
    from harness.bench.api import run_bench
    from harness.bench.request import BenchRequest

    backend = "fake" if device == "inprocess" else "sim"
    start_mb = rss_mb()
    t0 = time.perf_counter()
    folder = run_bench(
        BenchRequest(backend=backend, model=str(model), data=str(data), out_dir=out, limit=n), quiet=True
    )
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    manifest = json.loads((folder / "run.json").read_text())
    print(
        json.dumps({"n": manifest["metrics"]["n"], "start_mb": start_mb, "peak_mb": peak_mb, "wall_s": wall})
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--device", choices=("sim", "inprocess"), default="sim")
    parser.add_argument("--child", nargs=4, metavar=("N", "DATA", "MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, data, model, out = args.child
        child(int(n), Path(data), Path(model), Path(out), args.device)
        return 0

    sys.path.insert(0, str(REPO / "tests" / "unit"))
    from deploy_tiny_model import write_tiny_model

    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        data = make_images(root / "data", args.images)
        print(f"generated {args.images} images in {time.perf_counter() - t0:.1f} s")
        model = write_tiny_model(root / "tiny.tflite")
        results = {}
        for n in (args.small, args.images):
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--device",
                    args.device,
                    "--child",
                    str(n),
                    str(data),
                    str(model),
                    str(root / "runs"),
                ],
                capture_output=True,
                text=True,
                timeout=3600,
            )
            if proc.returncode != 0:
                print(f"run of {n} images failed: {proc.stderr.strip().splitlines()[-1:]}")
                return 1
            results[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    small, big = results[args.small], results[args.images]
    g_small = small["peak_mb"] - small["start_mb"]
    g_big = big["peak_mb"] - big["start_mb"]
    print(f"device: {args.device} (tiny model)")
    for label, r, g in ((args.small, small, g_small), (args.images, big, g_big)):
        print(
            f"{label:>6} images: RSS {r['start_mb']:.1f} MB before, peak {r['peak_mb']:.1f} MB, "
            f"growth {g:.1f} MB, "
            f"{r['n'] / r['wall_s']:.0f} img/s"
        )
    ratio = g_big / g_small if g_small > 0 else float("inf")
    print(f"growth {args.images} / growth {args.small}: {ratio:.2f} (x{args.images / args.small:.0f} images)")
    print(f"extra growth for {args.images - args.small} more images: {g_big - g_small:.1f} MB")
    print(
        f"target: growth at {args.images} images < {LIMIT_MB:.0f} MB -> "
        f"{'met' if g_big < LIMIT_MB else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
