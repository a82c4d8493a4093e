"""A tiny full-integer int8 model written straight from the TFLite schema, for deploy tests.

Building it with TensorFlow would cost the test suite a TensorFlow import (seconds) for a
model of a few hundred bytes; the schema's object API that ``tflite-micro`` ships writes
the same flatbuffer directly. The model is an 8x8x1 image through CONV_2D, RESHAPE,
FULLY_CONNECTED and SOFTMAX to two classes: the op mix of a VWW model at toy scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_int8_model_bytes(seed: int = 0, side: int = 8, filters: int = 2, classes: int = 2) -> bytes:
    """The model's bytes; ``side`` and ``filters`` scale its activations (8 and 2: the toy)."""
    import flatbuffers
    from tflite_micro.python.tflite_micro import runtime

    fb = runtime.schema_fb
    rng = np.random.default_rng(seed)

    buffers: list = [fb.BufferT()]  # buffer 0 is the empty sentinel

    def buffer(data: np.ndarray | None) -> int:
        b = fb.BufferT()
        if data is not None:
            b.data = np.frombuffer(data.tobytes(), dtype=np.uint8).tolist()
        buffers.append(b)
        return len(buffers) - 1

    tensors: list = []

    def tensor(name: str, shape: list[int], ttype: int, scale: float, zp: int,
               data: np.ndarray | None = None) -> int:
        t = fb.TensorT()
        t.name = name
        t.shape = shape
        t.type = ttype
        t.buffer = buffer(data)
        q = fb.QuantizationParametersT()
        q.scale = [scale]
        q.zeroPoint = [zp]
        t.quantization = q
        tensors.append(t)
        return len(tensors) - 1

    int8, int32 = fb.TensorType.INT8, fb.TensorType.INT32
    out = side - 2
    flat = out * out * filters
    conv_w = rng.integers(-64, 64, size=(filters, 3, 3, 1), dtype=np.int8)
    fc_w = rng.integers(-64, 64, size=(classes, flat), dtype=np.int8)
    t_in = tensor("input", [1, side, side, 1], int8, 1 / 255, -128)
    t_cw = tensor("conv_w", [filters, 3, 3, 1], int8, 0.01, 0, conv_w)
    t_cb = tensor("conv_b", [filters], int32, 1 / 255 * 0.01, 0, np.zeros(filters, dtype=np.int32))
    t_conv = tensor("conv_out", [1, out, out, filters], int8, 0.02, -128)
    t_shape = tensor("shape", [2], int32, 1.0, 0, np.array([1, flat], dtype=np.int32))
    t_flat = tensor("flat", [1, flat], int8, 0.02, -128)
    t_fw = tensor("fc_w", [classes, flat], int8, 0.01, 0, fc_w)
    t_fb = tensor("fc_b", [classes], int32, 0.02 * 0.01, 0, np.zeros(classes, dtype=np.int32))
    t_logits = tensor("logits", [1, classes], int8, 0.1, 0)
    t_out = tensor("probs", [1, classes], int8, 1 / 256, -128)

    codes = []
    for code in (fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.RESHAPE,
                 fb.BuiltinOperator.FULLY_CONNECTED, fb.BuiltinOperator.SOFTMAX):
        oc = fb.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
        codes.append(oc)

    def op(index: int, ins: list[int], outs: list[int], opt_type: int, opts: object) -> object:
        o = fb.OperatorT()
        o.opcodeIndex = index
        o.inputs = ins
        o.outputs = outs
        o.builtinOptionsType = opt_type
        o.builtinOptions = opts
        return o

    conv_opts = fb.Conv2DOptionsT()
    conv_opts.padding = fb.Padding.VALID
    conv_opts.strideW = conv_opts.strideH = 1
    conv_opts.dilationWFactor = conv_opts.dilationHFactor = 1
    reshape_opts = fb.ReshapeOptionsT()
    reshape_opts.newShape = [1, flat]
    fc_opts = fb.FullyConnectedOptionsT()
    soft_opts = fb.SoftmaxOptionsT()
    soft_opts.beta = 1.0

    sg = fb.SubGraphT()
    sg.tensors = tensors
    sg.inputs = [t_in]
    sg.outputs = [t_out]
    sg.operators = [
        op(0, [t_in, t_cw, t_cb], [t_conv], fb.BuiltinOptions.Conv2DOptions, conv_opts),
        op(1, [t_conv, t_shape], [t_flat], fb.BuiltinOptions.ReshapeOptions, reshape_opts),
        op(2, [t_flat, t_fw, t_fb], [t_logits], fb.BuiltinOptions.FullyConnectedOptions, fc_opts),
        op(3, [t_logits], [t_out], fb.BuiltinOptions.SoftmaxOptions, soft_opts),
    ]
    sg.name = "main"

    model = fb.ModelT()
    model.version = 3
    model.description = "hil deploy test model"
    model.operatorCodes = codes
    model.subgraphs = [sg]
    model.buffers = buffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def write_tiny_model(path: Path, seed: int = 0, side: int = 8, filters: int = 2,
                     classes: int = 2) -> Path:
    path.write_bytes(tiny_int8_model_bytes(seed, side, filters, classes))
    return path
