"""Full-integer int8 conversion, and the checks that make its result trustworthy.

Post-training quantisation calibrates every activation range on a representative set
drawn from the training data. Two all-black and all-white frames are fed first so that
the input range is exactly [0, 1]: the int8 input then has scale 1/255 and zero point
-128, i.e. "uint8 pixel - 128", the convention of the MLPerf model, and the firmware and
bench runner can feed raw camera bytes to every model alike.

After conversion the model is run on sample images by LiteRT's reference kernels and by
the TFLM interpreter (in a child process): their int8 outputs must be identical, since a
board runs TFLM, and float versus int8 accuracy on the validation split is reported so
that quantisation loss is a number rather than a hope.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ModelError
from harness.models.arrays import Arrays
from harness.models.mobilenet import ArchConfig, build_mobilenet_v1

if TYPE_CHECKING:  # pragma: no cover
    import keras

log = logging.getLogger(__name__)

INT8_FILE = "model_int8.tflite"
REPORT_FILE = "convert_report.json"


@dataclass
class ConvertReport:
    tflite: str
    size_bytes: int
    seconds: float
    representative_images: int
    qat_epochs: int
    float_val_accuracy: float | None
    int8_val_accuracy: float | None
    int8_val_ci95: tuple[float, float] | None
    val_images: int
    tflm_checked_images: int
    tflm_identical: int
    tflm_max_abs_diff: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _for_conversion(model: keras.Model, arch: ArchConfig) -> keras.Model:
    """A batch-1 copy: a dynamic batch adds SHAPE/PACK ops that TFLM cannot allocate."""
    fixed = build_mobilenet_v1(arch, batch_size=1)
    fixed.set_weights(model.get_weights())
    return fixed


def convert_int8(
    model: keras.Model, arch: ArchConfig, representative: Arrays, max_images: int = 200
) -> bytes:
    """Convert a float model to a full-integer int8 .tflite (int8 input and output)."""
    import tensorflow as tf

    fixed = _for_conversion(model, arch)
    images = representative.x[:max_images].astype(np.float32) / 255.0
    shape = (1, *arch.input_shape)

    def rep() -> Any:
        yield [np.zeros(shape, np.float32)]
        yield [np.ones(shape, np.float32)]
        for img in images:
            yield [img[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = rep
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with _quiet_native(), contextlib.redirect_stdout(io.StringIO()):
        data = converter.convert()  # the exporter prints every captured variable
    return bytes(data)


@contextlib.contextmanager
def _quiet_native() -> Any:
    """Send what the converter's C++ code writes to fds 1 and 2 to the debug log instead."""
    import sys
    import tempfile

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            log.debug("converter output: %s", sink.read().decode(errors="replace")[-2000:])


def quantize_input(x_uint8: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """uint8 pixels to the model's int8 input (pixel / 255 quantised with its parameters)."""
    real = x_uint8.astype(np.float32) / 255.0
    q = np.round(real / scale) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def litert_reference_outputs(model_bytes: bytes, x_int8: np.ndarray) -> np.ndarray:
    """int8 outputs from LiteRT's reference kernels (bit-exact with TFLM's by design)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=model_bytes, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    res = []
    for x in x_int8:
        interp.set_tensor(inp["index"], x[None, ...])
        interp.invoke()
        res.append(np.array(interp.get_tensor(out["index"]))[0])
    return np.stack(res)


def check_softmax_scale(model_path: Path) -> None:
    """Refuse, in one line, what would make TFLM abort in its softmax preparation.

    TFLM turns the softmax input scale into a fixed-point multiplier that must exceed 1
    (scale * 2^26 > 1); an untrained or collapsed model whose logits barely vary fails that.
    """
    from harness.models.tflite_file import ModelInfo

    info = ModelInfo.from_file(model_path)
    for layer in info.layers:
        if layer.op == "SOFTMAX" and layer.inputs:
            scale = layer.inputs[0].scale
            if 0.0 < scale * 2**26 <= 1.0:
                raise ModelError(
                    f"{model_path.name}: softmax input scale {scale:.3g} is too small for TFLM "
                    "(logits hardly vary: is the model trained?)"
                )


def compare_tflm(model_path: Path, x_int8: np.ndarray) -> tuple[int, int]:
    """(identical output rows, largest absolute difference) of TFLM versus LiteRT reference."""
    from harness.models.tflm_child import run_tflm

    check_softmax_scale(model_path)
    ref = litert_reference_outputs(model_path.read_bytes(), x_int8)
    run = run_tflm(model_path, x_int8)
    assert run.outputs is not None
    tflm = run.outputs.reshape(ref.shape)
    diff = np.abs(ref.astype(np.int32) - tflm.astype(np.int32))
    identical = int((diff.reshape(len(ref), -1).max(axis=1) == 0).sum())
    return identical, int(diff.max()) if diff.size else 0


def int8_accuracy(model_bytes: bytes, arr: Arrays) -> float:
    from harness.models.tflite_file import ModelInfo

    info = ModelInfo.from_bytes(model_bytes)
    spec = info.inputs[0]
    x = quantize_input(arr.x, spec.scale, spec.zero_point)
    out = litert_reference_outputs(model_bytes, x)
    return float((out.argmax(axis=1) == arr.y).mean())


def convert_folder(
    folder: Path,
    representative: Arrays,
    val: Arrays | None,
    out: Path | None = None,
    check_images: int = 8,
    qat_epochs: int = 0,
    train: Arrays | None = None,
) -> ConvertReport:
    """Convert the model ``hil train`` wrote in ``folder``; write the .tflite and a report."""
    from harness.models.training import accuracy, load_trained
    from harness.stats import wilson

    model, arch, _record = load_trained(folder)
    if qat_epochs > 0:
        if train is None:
            raise ModelError("quantisation-aware training needs the training data")
        from harness.models.qat import qat_finetune

        model = qat_finetune(model, arch, train, val if val is not None else train, qat_epochs)
    t0 = time.perf_counter()
    data = convert_int8(model, arch, representative)
    seconds = time.perf_counter() - t0
    target = out or (folder if folder.is_dir() else folder.parent) / INT8_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    log.info("wrote %s (%d bytes) in %.1f s", target, len(data), seconds)

    sample = val if val is not None and len(val) else representative
    from harness.models.tflite_file import ModelInfo

    spec = ModelInfo.from_bytes(data).inputs[0]
    x = quantize_input(sample.x[:check_images], spec.scale, spec.zero_point)
    identical, max_diff = compare_tflm(target, x)
    float_acc = int8_acc = None
    ci = None
    n_val = 0
    if val is not None and len(val):
        n_val = len(val)
        float_acc = accuracy(model, val)
        int8_acc = int8_accuracy(data, val)
        p = wilson(int(round(int8_acc * n_val)), n_val)
        ci = (p.low, p.high)
    report = ConvertReport(
        tflite=str(target), size_bytes=len(data), seconds=round(seconds, 2),
        representative_images=min(len(representative), 200) + 2, qat_epochs=qat_epochs,
        float_val_accuracy=float_acc, int8_val_accuracy=int8_acc, int8_val_ci95=ci,
        val_images=n_val, tflm_checked_images=len(x), tflm_identical=identical,
        tflm_max_abs_diff=max_diff,
    )  # fmt: skip
    (target.parent / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2), "utf-8")
    if identical != len(x):
        raise ModelError(
            f"TFLM and LiteRT reference kernels disagree on {len(x) - identical} of {len(x)} "
            f"images (max difference {max_diff}) for {target.name}"
        )
    return report
