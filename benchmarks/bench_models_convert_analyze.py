"""Conversion time (target < 30 s) and analysis time (target < 5 s) of alpha 0.25, 96x96.

Conversion: full-integer int8 PTQ of an untrained-but-calibrated MobileNetV1 alpha 0.25
96x96 RGB with 200 representative images, timed end to end (what `hil convert` spends
before its accuracy checks). Analysis: `analyze()` of the shipped default model,
without and with the TFLM arena run in a child process. Each is printed with its ratio
to the target (below 1.0 meets it).

    python benchmarks/bench_models_convert_analyze.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONVERT_TARGET_S = 30.0
ANALYZE_TARGET_S = 5.0


def convert_seconds() -> float:
    import numpy as np

    from harness.models.arrays import Arrays
    from harness.models.convert import convert_int8
    from harness.models.mobilenet import ArchConfig, build_mobilenet_v1

    arch = ArchConfig(alpha=0.25, resolution=96, channels=3)
    model = build_mobilenet_v1(arch, seed=0)
    rng = np.random.default_rng(0)
    rep = Arrays(rng.integers(0, 256, (200, 96, 96, 3), dtype=np.uint8), np.zeros(200, int))
    t0 = time.perf_counter()
    convert_int8(model, arch, rep)
    return time.perf_counter() - t0


def analyze_seconds(arena: bool) -> float:
    from harness.boards import list_boards
    from harness.models.analysis import analyze
    from harness.models.zoo import resolve_model

    path = resolve_model("vww-default")
    t0 = time.perf_counter()
    analyze(path, list_boards(), arena=arena)
    return time.perf_counter() - t0


def main() -> None:
    a_fast = analyze_seconds(arena=False)
    a_full = analyze_seconds(arena=True)
    c = convert_seconds()
    for label, secs, target in (
        ("analysis, no arena run", a_fast, ANALYZE_TARGET_S),
        ("analysis, TFLM arena run", a_full, ANALYZE_TARGET_S),
        ("int8 conversion", c, CONVERT_TARGET_S),
    ):
        print(f"{label:<26} {secs:6.2f} s   ratio to the {target:.0f} s target {secs / target:.2f}")


if __name__ == "__main__":
    main()
