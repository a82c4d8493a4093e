"""What a converted model costs, before anything is flashed.

Built on :class:`harness.models.tflite_file.ModelInfo` (no TensorFlow): per-layer MACs,
parameters and activation sizes; for each depthwise-separable pair, its cost against a
standard convolution of the same shape next to the 1/N + 1/Dk^2 formula of the
MobileNet paper; flash size; the arena reported by the real TFLM allocator (child
process) with an estimate for a 32-bit MCU; fit and estimated latency per board. What is
counted is written down in docs/models.md.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.boards import Board, FitReport, allocated_arena, check_fit
from harness.errors import ModelError
from harness.models.tflite_file import LayerInfo, ModelInfo, TensorInfo

log = logging.getLogger(__name__)

#: Builtin ops TFLM registers: the ``tflite::Register_*`` kernels in the ``tflite-micro``
#: Python runtime (0.dev20261023, read with ``nm``), less the signal-library ops. An op
#: outside this set (TOPK_V2, TILE, ONE_HOT, a CUSTOM op...) cannot run on any board.
TFLM_OPS = frozenset(
    """
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND
BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS CUMSUM
DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DETECTION_POSTPROCESS DIV DYNAMIC_UPDATE_SLICE ELU
EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER
GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS
LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN
MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE REDUCE_ALL
REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND
RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQRT
SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV
UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
""".split()
)
INT_TYPES = ("int8", "uint8")


@dataclass(frozen=True)
class LayerRow:
    index: int
    op: str
    output_shape: tuple[int, ...]
    macs: int
    params: int
    input_bytes: int
    output_bytes: int
    standard_conv_macs: int | None  # a standard conv with this layer's input and output

    @property
    def activation_bytes(self) -> int:
        """Input and output buffers that must coexist while the op runs."""
        return self.input_bytes + self.output_bytes


@dataclass(frozen=True)
class SeparablePair:
    """A depthwise conv followed by the 1x1 conv that consumes its output."""

    dw_index: int
    pw_index: int
    kernel: int  # Dk
    in_channels: int  # M
    out_channels: int  # N
    macs: int  # depthwise + pointwise
    standard_macs: int  # Dk*Dk*M*N*Df*Df

    @property
    def ratio(self) -> float:
        return self.macs / self.standard_macs

    @property
    def formula(self) -> float:
        return 1.0 / self.out_channels + 1.0 / self.kernel**2

    @property
    def agrees(self) -> bool:
        return math.isclose(self.ratio, self.formula, rel_tol=1e-9)


@dataclass(frozen=True)
class BoardEstimate:
    board: str
    fit: FitReport
    cycles: float
    latency_ms: float
    source: str = ""  # how the estimate was made, e.g. "estimated from the nano33 cost model (...)"


@dataclass
class Analysis:
    path: Path
    sha256: str
    flash_bytes: int
    input_shape: tuple[int, ...]
    input_bytes: int
    layers: list[LayerRow]
    pairs: list[SeparablePair]
    ops_used: list[str]
    arena_bytes: int | None = None  # TFLM on this 64-bit host
    arena_32bit_bytes: int | None = None
    arena_parts: dict[str, int] = field(default_factory=dict)
    boards: list[BoardEstimate] = field(default_factory=list)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.layers)

    @property
    def peak_activation_bytes(self) -> int:
        return max((r.activation_bytes for r in self.layers), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.path),
            "sha256": self.sha256,
            "flash_bytes": self.flash_bytes,
            "input_shape": list(self.input_shape),
            "total_macs": self.total_macs,
            "total_params": self.total_params,
            "peak_activation_bytes": self.peak_activation_bytes,
            "arena_bytes_host": self.arena_bytes,
            "arena_bytes_32bit_estimate": self.arena_32bit_bytes,
            "ops_used": self.ops_used,
            "layers": [
                {
                    "index": r.index,
                    "op": r.op,
                    "output_shape": list(r.output_shape),
                    "macs": r.macs,
                    "params": r.params,
                    "activation_bytes": r.activation_bytes,
                    "standard_conv_macs": r.standard_conv_macs,
                }  # fmt: skip
                for r in self.layers
            ],
            "separable_pairs": [
                {
                    "dw": p.dw_index,
                    "pw": p.pw_index,
                    "ratio": p.ratio,
                    "formula": p.formula,
                    "agrees": p.agrees,
                }  # fmt: skip
                for p in self.pairs
            ],
            "boards": [
                {
                    "board": b.board,
                    "fits": b.fit.verdict,  # null: arena not measured, its lower bound fits
                    "reason": b.fit.reason(),
                    "ram": b.fit.ram_line(),
                    "ram_spare_bytes": b.fit.ram_spare,
                    "arena_measured": b.fit.arena_measured,
                    "latency_ms_estimated": b.latency_ms,
                    "latency_source": b.source,
                }  # fmt: skip
                for b in self.boards
            ],
        }


def _activation(ts: tuple[TensorInfo, ...]) -> int:
    return sum(t.nbytes for t in ts if not t.is_constant)


def _standard_conv_macs(layer: LayerInfo) -> int | None:
    """MACs of a standard conv mapping this layer's input to its output, same kernel.

    For a 1x1 conv that is the layer itself; for a depthwise conv it is the full conv
    with Dk x Dk x M x M (the depthwise keeps the channel count).
    """
    if layer.op not in ("CONV_2D", "DEPTHWISE_CONV_2D") or layer.kernel is None:
        return None
    data_in = [t for t in layer.inputs if not t.is_constant]
    if not data_in or len(data_in[0].shape) != 4 or len(layer.outputs[0].shape) != 4:
        return None
    cin = data_in[0].shape[3]
    _b, h, w, cout = layer.outputs[0].shape
    kh, kw = layer.kernel
    return h * w * kh * kw * cin * cout


def _pairs(layers: list[LayerInfo]) -> list[SeparablePair]:
    producers = {t.index: layer for layer in layers for t in layer.outputs}
    out = []
    for layer in layers:
        if layer.op != "CONV_2D" or layer.kernel != (1, 1):
            continue
        data_in = [t for t in layer.inputs if not t.is_constant]
        prev = producers.get(data_in[0].index) if data_in else None
        if prev is None or prev.op != "DEPTHWISE_CONV_2D" or prev.kernel is None:
            continue
        _b, h, w, m = prev.outputs[0].shape
        n = layer.outputs[0].shape[3]
        dk = prev.kernel[0]
        if prev.kernel[0] != prev.kernel[1] or (prev.inputs[0].shape[3] != m):
            continue  # a depth multiplier other than 1 or a non-square kernel: not the formula's case
        out.append(SeparablePair(prev.index, layer.index, dk, m, n, prev.macs + layer.macs,
                                 dk * dk * m * n * h * w))  # fmt: skip
    return out


def validate(info: ModelInfo) -> None:
    """One clear line for a model the boards cannot run."""
    info.require_int8_io()
    spec = info.inputs[0]
    if len(info.inputs) != 1 or len(spec.shape) != 4 or spec.shape[3] not in (1, 3):
        raise ModelError(
            f"{info.label}: input shape {tuple(spec.shape)} is not an image "
            "(expected one 1 x H x W x 1|3 tensor)"
        )
    missing = [op for op in info.ops_used if op not in TFLM_OPS]
    if missing:
        raise ModelError(f"{info.label}: uses op(s) TFLM lacks: {', '.join(missing)}")


def analyze(
    path: Path, boards: list[Board] | None = None, arena: bool = True, timeout: float = 120.0
) -> Analysis:
    """Analyse an int8 .tflite; ``arena=False`` skips the TFLM child (and board fit)."""
    info = ModelInfo.from_file(path)
    validate(info)
    rows = [
        LayerRow(
            index=layer.index,
            op=layer.op,
            output_shape=layer.outputs[0].shape if layer.outputs else (),
            macs=layer.macs,
            params=layer.params,
            input_bytes=_activation(layer.inputs),
            output_bytes=_activation(layer.outputs),
            standard_conv_macs=_standard_conv_macs(layer),
        )  # fmt: skip
        for layer in info.layers
    ]
    spec = info.inputs[0]
    input_bytes = int(math.prod(spec.shape))
    result = Analysis(
        path=path, sha256=info.sha256, flash_bytes=info.size, input_shape=tuple(spec.shape),
        input_bytes=input_bytes, layers=rows, pairs=_pairs(info.layers), ops_used=info.ops_used,
    )  # fmt: skip
    if arena:
        from harness.models.convert import check_softmax_scale
        from harness.models.tflm_child import run_tflm

        check_softmax_scale(path)
        report = run_tflm(path, timeout=timeout).arena
        result.arena_bytes = report.total
        result.arena_32bit_bytes = report.estimate_32bit
        result.arena_parts = report.parts
    for board in boards or []:
        result.boards.append(estimate_board(result, info, board))
    return result


def estimate_board(result: Analysis, info: ModelInfo, board: Board) -> BoardEstimate:
    """Fit and cost-model latency of the model on ``board``.

    Without a measured arena (``--no-arena``) the RAM check uses the peak activations, a lower
    bound of any arena: a model whose bound already exceeds the board does not fit, and one
    within it is "not known" rather than "fits".
    """
    if result.arena_32bit_bytes is not None:  # the arena `hil build` would allocate for it
        arena, measured = allocated_arena(result.arena_32bit_bytes), True
    else:
        arena, measured = result.peak_activation_bytes, False
    fit = check_fit(board, result.flash_bytes, arena, result.input_bytes, arena_measured=measured)
    cycles = sum(
        board.cost_model.op_cycles(layer.op, layer.macs, layer.output_elements) for layer in info.layers
    )
    from harness.units import cost_model_source

    return BoardEstimate(board.id, fit, cycles, board.cycles_to_us(cycles) / 1000.0, cost_model_source(board))


def format_table(a: Analysis, per_layer: bool = True) -> str:
    """The human-readable report ``hil analyze`` prints."""
    lines = [f"model   {a.path}", f"sha256  {a.sha256}"]
    if per_layer:
        head = f"{'#':>3} {'op':<18} {'output':<16} {'MACs':>11} {'params':>8} {'act B':>8} {'vs std':>7}"
        lines += ["", head, "-" * len(head)]
        for r in a.layers:
            vs = f"{r.macs / r.standard_conv_macs:.3f}" if r.standard_conv_macs else ""
            shape = "x".join(str(d) for d in r.output_shape[1:])
            lines.append(
                f"{r.index:>3} {r.op:<18} {shape:<16} {r.macs:>11,} {r.params:>8,} "
                f"{r.activation_bytes:>8,} {vs:>7}"
            )
    lines += ["", "depthwise-separable pairs (cost vs standard conv; formula 1/N + 1/Dk^2):"]
    for p in a.pairs:
        mark = "ok" if p.agrees else "MISMATCH"
        lines.append(
            f"  layers {p.dw_index:>2}+{p.pw_index:<2} M={p.in_channels:<4} N={p.out_channels:<4} "
            f"Dk={p.kernel}  measured {p.ratio:.4f}  formula {p.formula:.4f}  {mark}"
        )
    lines += [
        "",
        f"total MACs           {a.total_macs:,}",
        f"total params         {a.total_params:,}",
        f"peak activations     {a.peak_activation_bytes:,} B (largest input+output of one op)",
        f"flash (model file)   {a.flash_bytes:,} B",
    ]
    if a.arena_bytes is not None:
        lines.append(f"TFLM arena (host)    {a.arena_bytes:,} B (measured, 64-bit host)")
        lines.append(f"TFLM arena (32-bit)  {a.arena_32bit_bytes:,} B (estimate)")
        lines.append(f"arena allocated      {allocated_arena(a.arena_32bit_bytes or 0):,} B "
                     "(32-bit estimate + headroom, as `hil build` allocates it)")
    for b in a.boards:
        if not b.fit.fits:
            verdict = f"DOES NOT FIT: {b.fit.reason()}"
        elif b.fit.arena_measured:
            verdict = "fits"
        else:
            verdict = "fits flash; RAM unknown (arena not measured; its lower bound fits)"
        lines.append(f"board {b.board:<9} est. latency {b.latency_ms:8.1f} ms (estimated)   {verdict}")
        lines.append(f"      {'':<9} RAM {b.fit.ram_line()}")
    sources = sorted({b.source for b in a.boards if b.source})
    lines.extend(f"latency  {src}" for src in sources)
    return "\n".join(lines)
