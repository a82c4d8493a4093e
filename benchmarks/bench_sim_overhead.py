"""Simulated-board overhead: images/s through protocol + pty + child vs TFLM in this process.

Both paths run the same model on the same int8 inputs. In-process: set the input,
invoke, read the output with ``tflite_micro.runtime``. Sim: ``Device.infer`` on the
``sim`` backend (upload in chunks over the pty, INFER, RESULT) with the child running
the same interpreter. Rounds alternate between the two so that load from other
processes hits both alike; the ratio of the totals is the figure (target >= 0.85).

Run: ``python benchmarks/bench_sim_overhead.py [--model M.tflite] [--images 300]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from harness.boards import load_board
from harness.devices import create_device
from harness.devices.sim import default_model
from harness.models.tflite_file import ModelInfo
from harness.paths import reference_models_dir

TARGET = 0.85


def pick_model(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    ref = reference_models_dir()
    if ref is not None and (ref / "mlperf_tiny_vww_96_int8.tflite").is_file():
        return ref / "mlperf_tiny_vww_96_int8.tflite"
    shipped = default_model()
    if shipped is None:
        sys.exit("no model: give --model PATH.tflite")
    return shipped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--model")
    p.add_argument("--board", default="nano33")
    p.add_argument("--images", type=int, default=300, help="images per path (default 300)")
    p.add_argument("--rounds", type=int, default=30, help="alternating rounds (default 30)")
    args = p.parse_args(argv)
    model = pick_model(args.model)
    info = ModelInfo.from_file(model)
    spec = info.inputs[0]
    rng = np.random.default_rng(7)
    images = [
        rng.integers(-128, 127, spec.shape, dtype=spec.dtype.numpy_name, endpoint=True)
        for _ in range(max(args.rounds, args.images // args.rounds))
    ]

    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model.read_bytes())
    n_out = len(info.outputs)

    def in_process(batch: list[np.ndarray]) -> float:
        start = time.perf_counter()
        for x in batch:
            interp.set_input(x, 0)
            interp.invoke()
            for i in range(n_out):
                interp.get_output(i)
        return time.perf_counter() - start

    per_round = images[: args.images // args.rounds]
    local_t: list[float] = []
    sim_t: list[float] = []
    with create_device("sim", load_board(args.board), model=model) as dev:
        dev.infer(images[0])
        in_process(images[:3])
        for _ in range(args.rounds):
            local_t.append(in_process(per_round))
            start = time.perf_counter()
            for x in per_round:
                dev.infer(x)
            sim_t.append(time.perf_counter() - start)
        stats = dev.link_stats
    n = len(per_round)
    local_rate = n * args.rounds / sum(local_t)
    sim_rate = n * args.rounds / sum(sim_t)
    ratio = sim_rate / local_rate
    per_round_ratio = [lt / st for lt, st in zip(local_t, sim_t, strict=True)]
    print(f"model {model.name}, {n * args.rounds} images per path in {args.rounds} alternating rounds")
    print(f"in-process TFLM : {local_rate:8.1f} images/s")
    print(f"sim via protocol: {sim_rate:8.1f} images/s  ({stats.frames_sent if stats else '?'} frames sent)")
    print(f"ratio sim/in-process: {ratio:.3f} (median of rounds {statistics.median(per_round_ratio):.3f}, "
          f"best {max(per_round_ratio):.3f}); target >= {TARGET}: {'met' if ratio >= TARGET else 'MISSED'}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
