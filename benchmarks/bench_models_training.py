"""Training throughput of MobileNetV1 alpha 0.25 at 96x96 RGB on this machine.

Trains on random images (throughput does not depend on content) for three epochs and
times the last two, once with the augmentation pipeline and once without, so the table
shows what augmentation costs on two cores. Also the throughput ratio between the two.

    python benchmarks/bench_models_training.py [--images 512] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def throughput(n: int, epochs: int, augment: bool, batch: int = 32) -> float:
    import keras
    import numpy as np

    from harness.models.arrays import Arrays
    from harness.models.mobilenet import ArchConfig, build_mobilenet_v1
    from harness.models.training import make_dataset

    rng = np.random.default_rng(0)
    arr = Arrays(rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8), rng.integers(0, 2, n))
    arch = ArchConfig(alpha=0.25, resolution=96, channels=3)
    model = build_mobilenet_v1(arch, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    ds = make_dataset(arr, batch, True, augment, 0, 3)
    model.fit(ds, epochs=1, verbose=0)  # graph tracing and warm-up
    t0 = time.perf_counter()
    model.fit(ds, epochs=epochs - 1, verbose=0)
    return n * (epochs - 1) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--epochs", type=int, default=3)
    a = p.parse_args()
    plain = throughput(a.images, a.epochs, augment=False)
    aug = throughput(a.images, a.epochs, augment=True)
    print(f"alpha 0.25, 96x96 RGB, batch 32, {os.cpu_count()} cores")
    print(f"training without augmentation  {plain:8.1f} images/s")
    print(f"training with augmentation     {aug:8.1f} images/s")
    print(f"ratio augmented / plain        {aug / plain:8.2f}")


if __name__ == "__main__":
    main()
