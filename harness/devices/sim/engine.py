"""The simulated board's engine: the real TFLM interpreter under a board's memory limits.

It loads the model the way firmware would (from bytes, with a tensor arena), measures
the arena TFLM really allocates, refuses a model that does not fit the board's flash or
RAM with the reason, and reports latency as a cycle *estimate* from each layer's MACs
and the board's cost model: the host's wall clock says nothing about a Cortex-M4.

The arena is read from ``print_allocations()`` (which TFLM writes to C-level stderr, so
fd 2 is redirected to a temporary file around the call), then the interpreter is built
again with exactly that arena, which proves the figure is enough.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from harness import __version__
from harness.boards import Board, check_fit
from harness.errors import FitError, HarnessError
from harness.link.device_end import EngineError, EngineFacts, Invocation
from harness.link.messages import (
    Capability,
    ErrorCode,
    LayerTime,
    Memory,
    TensorSpec,
    TimerKind,
)
from harness.models.tflm_child import parse_allocations

log = logging.getLogger(__name__)

ENGINE_NAME = "tflm-host"
_MIN_PROBE_ARENA = 1 << 20

R = TypeVar("R")


def capture_c_stderr(fn: Callable[[], R]) -> tuple[R | None, str, BaseException | None]:
    """Run ``fn`` with file descriptor 2 sent to a temporary file; return its result and the text."""
    sys.stderr.flush()
    saved = os.dup(2)
    error: BaseException | None = None
    result: R | None = None
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            result = fn()
        except Exception as exc:  # reported with the captured text by the caller
            error = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", errors="replace")
    return result, text, error


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class TflmEngine:
    """Runs one model with ``tflite_micro.runtime`` for the simulated board."""

    def __init__(self, model_path: Path, board: Board) -> None:
        self.board = board
        self.model_path = Path(model_path)
        self.model_bytes = 0
        self.arena_size = 0
        self.arena_used = 0
        self.input_bytes = 0
        self.layer_cycles: list[LayerTime] = []
        self.cycles_total = 0
        self._interp: Any = None
        self._inputs: tuple[TensorSpec, ...] = ()
        self._outputs: tuple[TensorSpec, ...] = ()
        self._sha = bytes(32)
        self._profile: list[LayerTime] = []
        self._input_arrays: list[np.ndarray] = []
        status, text = 0, ""
        #: why the board refused the model when it is too large for it (None otherwise); the
        #: child announces it so that the host raises the same FitError as the other backends
        self.fit_refusal: str | None = None
        try:
            self._load()
        except FitError as exc:
            status, text = int(ErrorCode.MODEL_ERROR), str(exc)
            self.fit_refusal = text
        except HarnessError as exc:
            status, text = int(ErrorCode.MODEL_ERROR), str(exc)
        except Exception as exc:  # a model the schema reader chokes on is still the user's input
            status, text = int(ErrorCode.MODEL_ERROR), f"cannot read the model: {type(exc).__name__}: {exc}"
        if status:
            log.warning("sim board refuses the model: %s", text)
        self._facts = EngineFacts(
            board=board.id,
            firmware_version=f"sim-{__version__}",
            engine=ENGINE_NAME,
            clock_hz=board.clock_hz,
            timer=TimerKind.ESTIMATED,
            model_sha256=self._sha,
            inputs=self._inputs if status == 0 else (),
            outputs=self._outputs if status == 0 else (),
            arena_size=self.arena_size,
            arena_used=self.arena_used,
            capabilities=Capability.PROFILE | Capability.MEMORY,
            status=status,
            status_text=text,
        )

    # -- loading -----------------------------------------------------------------------------

    def _load(self) -> None:
        from harness.errors import ModelError
        from harness.models.tflite_file import ModelInfo

        try:
            data = self.model_path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read {self.model_path}: {exc.strerror or exc}") from None
        self._sha = hashlib.sha256(data).digest()
        self.model_bytes = len(data)
        info = ModelInfo.from_bytes(data)
        self._inputs, self._outputs = info.inputs, info.outputs
        self.input_bytes = sum(s.nbytes for s in info.inputs)
        self.layer_cycles = [
            LayerTime(
                layer.index,
                layer.op,
                max(1, round(self.board.cost_model.op_cycles(layer.op, layer.macs, layer.output_elements))),
            )
            for layer in info.layers
        ]
        self.cycles_total = sum(layer.cycles for layer in self.layer_cycles)
        flash = check_fit(self.board, self.model_bytes, 0, 0)
        if not flash.flash_ok:
            raise FitError(f"{self.model_path.name} does not fit {self.board.id}: {flash.reason()}")
        self.arena_used = self._measure_arena(data)
        fit = check_fit(self.board, self.model_bytes, self.arena_used, self.input_bytes)
        if not fit.fits:
            raise FitError(f"{self.model_path.name} does not fit {self.board.id}: {fit.reason()}")
        self.arena_size, self._interp = self._smallest_working_arena(data, self.arena_used)
        fit = check_fit(self.board, self.model_bytes, self.arena_size, self.input_bytes)
        if not fit.fits:
            raise FitError(f"{self.model_path.name} does not fit {self.board.id}: {fit.reason()}")

    def _smallest_working_arena(self, data: bytes, used: int) -> tuple[int, Any]:
        """The arena a board would be built with: the reported use, grown until TFLM loads.

        For most models the reported figure is enough; for very small ones TFLM's
        preparation needs some scratch beyond what ``print_allocations`` reports, so the
        size grows in steps of an eighth (at least 256 B) until the interpreter loads.
        """
        from harness.errors import ModelError

        arena = used
        last: ModelError | None = None
        for _ in range(24):
            try:
                return arena, self._interpreter(data, arena)
            except ModelError as exc:
                last = exc
                arena += max(256, arena // 8)
        raise last if last is not None else ModelError("TFLM cannot load the model")

    def _interpreter(self, data: bytes, arena: int) -> Any:
        from tflite_micro import runtime

        from harness.errors import ModelError

        interp, text, err = capture_c_stderr(lambda: runtime.Interpreter.from_bytes(data, arena_size=arena))
        if err is not None or interp is None:
            why = _last_line(text) or (str(err) if err else "unknown error")
            raise ModelError(f"TFLM cannot load the model with a {arena:,} B arena: {why}")
        return interp

    def _measure_arena(self, data: bytes) -> int:
        """Bytes of arena TFLM allocates for this model, from its allocation report."""
        from harness.errors import ModelError

        probe = max(_MIN_PROBE_ARENA, 10 * len(data), 2 * self.board.ram_for_arena)
        interp = self._interpreter(data, probe)
        _res, text, err = capture_c_stderr(interp.print_allocations)
        if err is not None:
            raise ModelError("TFLM did not report its arena allocation")
        return parse_allocations(text).total

    # -- Engine ------------------------------------------------------------------------------

    def facts(self) -> EngineFacts:
        return self._facts

    def set_input(self, data: bytes) -> None:
        arrays = []
        pos = 0
        for spec in self._inputs:
            arr = np.frombuffer(data, dtype=spec.dtype.numpy_name, count=spec.elements, offset=pos)
            arrays.append(arr.reshape(spec.shape))
            pos += spec.nbytes
        self._input_arrays = arrays

    def invoke(self, profile: bool) -> Invocation:
        # TFLM plans the arena so that later layers may overwrite the input tensor: every
        # run (warm-up or repeat) starts from a fresh copy of the input, as firmware must.
        for i, arr in enumerate(self._input_arrays):
            self._interp.set_input(arr, i)
        try:
            self._interp.invoke()
        except Exception as exc:  # the runtime raises RuntimeError with TFLM's text
            raise EngineError(ErrorCode.INVOKE_FAILED, f"TFLM invoke failed: {exc}") from None
        out = b"".join(
            np.ascontiguousarray(self._interp.get_output(i)).tobytes() for i in range(len(self._outputs))
        )
        if profile:
            self._profile = list(self.layer_cycles)
        return Invocation(out, self.cycles_total)

    def profile(self) -> list[LayerTime]:
        return list(self._profile)

    def memory(self) -> Memory:
        b = self.board
        ram_left = b.ram_for_arena - self.arena_size - self.input_bytes
        return Memory(
            arena_size=self.arena_size,
            arena_used=self.arena_used,
            ram_total=b.psram_bytes if b.arena_in_psram and b.psram_bytes else b.ram_bytes,
            ram_free=max(0, ram_left),
            flash_total=b.flash_bytes,
            flash_used=b.bootloader_bytes + b.flash_reserved_bytes + self.model_bytes,
            model_bytes=self.model_bytes,
        )
