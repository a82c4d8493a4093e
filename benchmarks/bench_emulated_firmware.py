"""The real firmware on the emulated boards: images per second, and where the time goes.

Two comparisons in one run, on the same images (the MLPerf Tiny VWW int8 reference model
when present, else the shipped model):

* QEMU (TFLM + CMSIS-NN on the emulated Cortex-M4): images/s through the whole protocol,
  split into upload and inference, for each of the firmware's links (the semihosting
  console, the default, and the CMSDK UART). The inference share is measured by running
  the same uploaded input with repeats=1 and repeats=1+R: the difference is R inferences
  without an upload. Goal (issue 21): at least 8 images/s with at most half of each
  image's time in upload; stretch: within 2x of the inference-only rate.
* native (the same firmware built with the host's g++, over a pseudo-terminal) against
  in-process TFLM (the tflite-micro Python interpreter, no protocol): the ratio of their
  images/s. Goal: at least 0.8.

    python benchmarks/bench_emulated_firmware.py [--images 20] [--repeats 4] [--links semihost,uart]

Builds are cached (the first run compiles TFLM: minutes). Exits 0 with a one-line reason
when a tool, the TFLM tree or a model is missing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _model() -> Path:
    from harness.models.zoo import default_model_file

    return default_model_file()


def _inputs(model: Path, count: int) -> list[np.ndarray]:
    """The smoke set's images, preprocessed as the bench does (cycled up to ``count``)."""
    from harness.bench.api import load_dataset
    from harness.bench.preprocess import Preprocessor
    from harness.models.tflite_file import ModelInfo

    info = ModelInfo.from_file(model)
    pre = Preprocessor.for_input(info.inputs[0], info.label)
    dataset = load_dataset(None)
    tensors = [pre(sample.load_rgb()) for sample in dataset.iter_samples(None, None)]
    return [tensors[i % len(tensors)] for i in range(count)]


def _device_rate(backend: str, model: Path, inputs: list[np.ndarray], repeats: int,
                 **options: object) -> dict[str, float]:
    from harness.boards import load_board
    from harness.devices import create_device

    with create_device(backend, load_board("nano33"), model=model, **options) as dev:
        dev.infer(inputs[0])  # warm: the first call pays for caches and page faults
        started = time.perf_counter()
        for tensor in inputs:
            dev.infer(tensor)
        whole = time.perf_counter() - started
        # the split: repeats=1 against repeats=1+R of one uploaded input, in three rounds
        # (medians: on a shared machine one pair can differ by more than R inferences)
        ones, manys = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            dev.infer(inputs[0], repeats=1)
            t1 = time.perf_counter()
            dev.infer(inputs[0], repeats=1 + repeats)
            ones.append(t1 - t0)
            manys.append(time.perf_counter() - t1)
    one, many = statistics.median(ones), statistics.median(manys)
    per_inference = max(0.0, (many - one) / repeats)
    per_image = whole / len(inputs)
    return {"images_per_s": 1 / per_image, "per_image_s": per_image,
            "inference_s": per_inference, "upload_s": max(0.0, per_image - per_inference)}


def _in_process_rate(model: Path, inputs: list[np.ndarray]) -> float:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model))
    interp.set_input(inputs[0], 0)
    interp.invoke()
    started = time.perf_counter()
    for tensor in inputs:
        interp.set_input(tensor, 0)
        interp.invoke()
        interp.get_output(0)
    return len(inputs) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20, help="images per backend (default 20)")
    parser.add_argument("--repeats", type=int, default=4,
                        help="extra inferences of one input, to split upload from inference (default 4)")
    parser.add_argument("--links", default="semihost,uart",
                        help="QEMU links to measure, comma-separated (default semihost,uart)")
    args = parser.parse_args(argv)

    from harness.deploy.tflm_tree import find_tree
    from harness.errors import HarnessError

    try:
        find_tree()
        model = _model()
        inputs = _inputs(model, args.images)
    except HarnessError as exc:
        print(f"skipped: {exc}")
        return 0
    print(f"model {model.name}, {len(inputs)} images")

    if shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-g++"):
        for link in [x.strip() for x in args.links.split(",") if x.strip()]:
            q = _device_rate("qemu", model, inputs, args.repeats, link=link)
            share = q["upload_s"] / q["per_image_s"]
            only = 1 / q["inference_s"] if q["inference_s"] > 0 else float("inf")
            goal = q["images_per_s"] >= 8 and share <= 0.5
            print(f"qemu {link:<8} {q['images_per_s']:.2f} images/s ({q['per_image_s'] * 1000:.1f} ms per "
                  f"image: upload {q['upload_s'] * 1000:.1f} ms, inference {q['inference_s'] * 1000:.1f} ms, "
                  f"{share:.0%} upload); inference only {only:.1f} /s, ratio {q['images_per_s'] / only:.2f}; "
                  f"goal >= 8 images/s and <= 50 % upload: {'met' if goal else 'not met'}; "
                  f"stretch (within 2x of inference only): "
                  f"{'met' if q['images_per_s'] * 2 >= only else 'not met'}")
    else:
        print("qemu    skipped: qemu-system-arm or arm-none-eabi-g++ not installed")

    native = _device_rate("native", model, inputs * 5, args.repeats)
    in_process = _in_process_rate(model, inputs * 5)
    ratio = native["images_per_s"] / in_process
    print(f"native  {native['images_per_s']:.1f} images/s (inference {native['inference_s'] * 1000:.2f} ms, "
          f"protocol and upload {native['upload_s'] * 1000:.2f} ms per image)")
    print(f"in-process TFLM {in_process:.1f} images/s")
    print(f"ratio native / in-process: {ratio:.2f} (goal >= 0.8: {'met' if ratio >= 0.8 else 'not met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
