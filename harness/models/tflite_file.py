"""Reading a ``.tflite`` file without TensorFlow.

The bench runner, the simulated board, code generation and analysis all need the same
facts about a model: its hash, input and output tensors with their quantisation, and
the ops it uses with their shapes and MACs. This module reads them from the flatbuffer
with the schema that the ``tflite-micro`` package ships, so none of those paths has to
import TensorFlow.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ModelError
from harness.link.messages import DType, TensorSpec

#: TFLite TensorType codes we can describe; others are reported by number.
_TYPE_NAMES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    6: "bool",
    7: "int16",
    9: "int8",
}
_TYPE_SIZES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1}


def _schema() -> tuple[Any, Any]:
    from tflite_micro.python.tflite_micro import runtime as tflm_runtime

    return tflm_runtime, tflm_runtime.schema_fb


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    type: int
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    is_constant: bool

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.type, f"type{self.type}")

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.elements * _TYPE_SIZES.get(self.type, 4)

    def spec(self) -> TensorSpec:
        try:
            dtype = DType(self.type)
        except ValueError as exc:
            raise ModelError(f"tensor {self.name!r} has type {self.type_name}, not supported") from exc
        return TensorSpec(dtype, self.shape, self.scale, self.zero_point)


@dataclass(frozen=True)
class LayerInfo:
    """One operator of the model with what it costs."""

    index: int
    op: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    macs: int
    params: int
    kernel: tuple[int, int] | None

    @property
    def output_elements(self) -> int:
        return sum(t.elements for t in self.outputs)


def _layer_macs(op: str, ins: list[TensorInfo], outs: list[TensorInfo]) -> tuple[int, tuple[int, int] | None]:
    """Multiply-accumulates of one op, counted as in docs/models.md (bias adds not counted)."""
    if not outs or not ins:
        return 0, None
    out = outs[0]
    if op == "CONV_2D" and len(ins) >= 2 and len(ins[1].shape) == 4:
        cout, kh, kw, cin = ins[1].shape
        return out.elements * kh * kw * cin, (kh, kw)
    if op == "DEPTHWISE_CONV_2D" and len(ins) >= 2 and len(ins[1].shape) == 4:
        _one, kh, kw, _cout = ins[1].shape
        return out.elements * kh * kw, (kh, kw)
    if op == "FULLY_CONNECTED" and len(ins) >= 2 and len(ins[1].shape) == 2:
        units, features = ins[1].shape
        return (out.elements // max(units, 1)) * units * features, None
    return 0, None


@dataclass(frozen=True)
class ModelInfo:
    """What the harness needs to know about a model file."""

    path: Path | None
    data: bytes

    @classmethod
    def from_file(cls, path: str | Path) -> ModelInfo:
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"model file {p} does not exist") from None
        except IsADirectoryError:
            raise ModelError(f"model path {p} is a folder, not a .tflite file") from None
        info = cls(p, data)
        info._model  # noqa: B018 - parse now so that a bad file fails here, with its name
        return info

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelInfo:
        info = cls(None, bytes(data))
        info._model  # noqa: B018
        return info

    @property
    def label(self) -> str:
        return str(self.path) if self.path else "model"

    @cached_property
    def _model(self) -> Any:
        if len(self.data) < 8 or self.data[4:8] != b"TFL3":
            raise ModelError(f"{self.label} is not a TensorFlow Lite flatbuffer (no TFL3 identifier)")
        runtime, _ = _schema()
        try:
            model = runtime.convert_bytearray_to_object(bytearray(self.data))
        except Exception as exc:  # the flatbuffer reader raises many types on truncated files
            raise ModelError(_unreadable(self.label, len(self.data), exc)) from None
        if not model.subgraphs:
            raise ModelError(f"{self.label} has no subgraph")
        return model

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def tensors(self) -> list[TensorInfo]:
        model = self._model
        sg = model.subgraphs[0]
        out = []
        for i, t in enumerate(sg.tensors):
            q = t.quantization
            scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0
            zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
            buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
            const = buf is not None and buf.data is not None and len(buf.data) > 0
            name = t.name.decode() if isinstance(t.name, bytes) else str(t.name or "")
            shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
            out.append(TensorInfo(i, name, int(t.type), shape, scale, zp, const))
        return out

    @cached_property
    def op_names(self) -> list[str]:
        """Operator names per operator code, e.g. ``CONV_2D`` or ``CUSTOM:name``."""
        runtime, schema = _schema()
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        out = []
        for oc in self._model.operatorCodes:
            code = runtime.get_builtin_code_from_operator_code(oc)
            if code == schema.BuiltinOperator.CUSTOM:
                custom = oc.customCode.decode() if isinstance(oc.customCode, bytes) else oc.customCode
                out.append(f"CUSTOM:{custom}")
            else:
                out.append(names.get(code, f"BUILTIN_{code}"))
        return out

    @cached_property
    def layers(self) -> list[LayerInfo]:
        sg = self._model.subgraphs[0]
        tensors = self.tensors
        layers = []
        for i, op in enumerate(sg.operators):
            name = self.op_names[op.opcodeIndex]
            ins = [tensors[j] for j in (op.inputs if op.inputs is not None else []) if j >= 0]
            outs = [tensors[j] for j in (op.outputs if op.outputs is not None else []) if j >= 0]
            macs, kernel = _layer_macs(name, ins, outs)
            params = sum(t.elements for t in ins if t.is_constant)
            layers.append(LayerInfo(i, name, tuple(ins), tuple(outs), macs, params, kernel))
        return layers

    @property
    def ops_used(self) -> list[str]:
        """Distinct operators in the order they first appear: what an op resolver must hold."""
        seen: dict[str, None] = {}
        for layer in self.layers:
            seen.setdefault(layer.op, None)
        return list(seen)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def total_params(self) -> int:
        return sum(t.elements for t in self.tensors if t.is_constant)

    @cached_property
    def inputs(self) -> tuple[TensorSpec, ...]:
        sg = self._model.subgraphs[0]
        return tuple(self.tensors[i].spec() for i in sg.inputs)

    @cached_property
    def outputs(self) -> tuple[TensorSpec, ...]:
        sg = self._model.subgraphs[0]
        return tuple(self.tensors[i].spec() for i in sg.outputs)

    def require_int8_io(self) -> None:
        """Devices take int8 (or uint8) tensors only: refuse float models with a clear line."""
        for kind, specs in (("input", self.inputs), ("output", self.outputs)):
            for spec in specs:
                if spec.dtype not in (DType.INT8, DType.UINT8):
                    raise ModelError(
                        f"{self.label} has a {spec.dtype.numpy_name} {kind}; the harness needs a "
                        "full-integer int8 model (convert it with `hil convert`)"
                    )
                if spec.scale == 0.0:
                    raise ModelError(f"{self.label} has an unquantised {kind} tensor")


def _unreadable(label: str, size: int, exc: Exception) -> str:
    """One line for a flatbuffer the reader gave up on, in the user's terms, not the reader's.

    A cut-off file shows up as ``struct.error: unpack_from requires a buffer of at least N
    bytes``; what a user needs is that the file is shorter than its own contents say.
    """
    needed = re.search(r"at least (\d+) bytes", str(exc)) if isinstance(exc, struct.error) else None
    if needed is not None:
        return (
            f"{label} is truncated or corrupt: it has {size:,} bytes but its contents refer to at least "
            f"{int(needed.group(1)):,} (a partial download or copy?)"
        )
    if isinstance(exc, struct.error | IndexError | ValueError):
        return f"{label} is truncated or corrupt: its {size:,} bytes do not hold a complete TFLite model"
    return f"{label} is truncated or corrupt: its flatbuffer cannot be read ({type(exc).__name__})"
