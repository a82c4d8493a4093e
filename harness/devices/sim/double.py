"""A test-double engine: answers like a model without running one.

Link tests and the link benchmark need a device end whose cost is the protocol and
nothing else, and whose answers a test can predict. It calls itself ``test-double``
(docs/protocol.md), which the harness refuses to report as a benchmark result.
"""

from __future__ import annotations

import hashlib
import struct
import threading

from harness.link.device_end import EngineError, EngineFacts, Invocation
from harness.link.messages import (
    Capability,
    DType,
    ErrorCode,
    LayerTime,
    Memory,
    TensorSpec,
    TimerKind,
)


def _f32(x: float) -> float:
    """The value as the wire carries it (f32), so specs compare equal after a round trip."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


VWW_INPUT = TensorSpec(DType.INT8, (1, 96, 96, 3), _f32(1 / 255), -128)
VWW_OUTPUT = TensorSpec(DType.INT8, (1, 2), _f32(1 / 256), -128)
DOUBLE_LAYERS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX")


def expected_output(data: bytes, out_len: int) -> bytes:
    """What the double answers for an input: the first bytes of its SHA-256 (repeated if needed)."""
    digest = hashlib.sha256(data).digest()
    return (digest * (out_len // len(digest) + 1))[:out_len]


class TestDoubleEngine:
    """Deterministic engine for link tests; counts what it was asked to do."""

    __test__ = False  # not a pytest test class despite its name

    def __init__(
        self,
        inputs: tuple[TensorSpec, ...] = (VWW_INPUT,),
        outputs: tuple[TensorSpec, ...] = (VWW_OUTPUT,),
        *,
        cycles_per_layer: int = 1000,
        status: int = 0,
        status_text: str = "",
        fail_invoke: bool = False,
    ) -> None:
        self._facts = EngineFacts(
            board="test-board",
            firmware_version="0.0.0-double",
            engine="test-double",
            clock_hz=64_000_000,
            timer=TimerKind.ESTIMATED,
            model_sha256=hashlib.sha256(b"test-double model").digest(),
            inputs=inputs,
            outputs=outputs,
            arena_size=4096,
            arena_used=1024,
            capabilities=Capability.PROFILE | Capability.MEMORY,
            status=status,
            status_text=status_text,
        )
        self.cycles_per_layer = cycles_per_layer
        self.fail_invoke = fail_invoke
        self.out_len = sum(s.nbytes for s in outputs)
        self.invokes = 0
        self.inputs_set: list[bytes] = []
        self._data = b""
        self._profile: list[LayerTime] = []
        self._lock = threading.Lock()

    def facts(self) -> EngineFacts:
        return self._facts

    def set_input(self, data: bytes) -> None:
        with self._lock:
            self._data = data
            self.inputs_set.append(data)

    def invoke(self, profile: bool) -> Invocation:
        if self.fail_invoke:
            raise EngineError(ErrorCode.INVOKE_FAILED, "the test double was told to fail")
        with self._lock:
            self.invokes += 1
            data = self._data
        if profile:
            self._profile = [
                LayerTime(i, op, self.cycles_per_layer) for i, op in enumerate(DOUBLE_LAYERS)
            ]
        return Invocation(expected_output(data, self.out_len), self.cycles_per_layer * len(DOUBLE_LAYERS))

    def profile(self) -> list[LayerTime]:
        return list(self._profile)

    def memory(self) -> Memory:
        f = self._facts
        return Memory(arena_size=f.arena_size, arena_used=f.arena_used, model_bytes=0)
