"""Run the TFLM interpreter (PyPI ``tflite-micro``) in a child process.

The arena figure must come from the real TFLM allocator, and the int8 outputs from the
real TFLM kernels, but the interpreter calls ``abort()`` on some models (for example a
softmax whose input scale is too small for its fixed-point multiplier): run in-process,
that would kill ``hil`` and every result not yet written. The child reads the model and
an optional ``.npy`` batch of inputs, prints its allocation report on C-level stderr (the
only place TFLM writes it) and a JSON line on stdout; the parent parses both.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import ModelError, ToolMissing

#: Arena handed to the interpreter. The allocator reports what it used, not this size.
HOST_ARENA_BYTES = 16 * 1024 * 1024
DEFAULT_TIMEOUT_S = 120.0

_ALLOC_RE = re.compile(r"'(?P<what>[^']+)' used (?P<used>\d+) bytes")
_TOTAL_RE = re.compile(r"Arena allocation (?P<kind>total|head|tail) (?P<n>\d+) bytes")

# Persistent structures made of pointers: on a 32-bit target each is about half the size
# it has on this 64-bit host (TfLiteEvalTensor is 24 B here and 12 B on Cortex-M).
_POINTER_HEAVY = (
    "TfLiteEvalTensor data",
    "Persistent TfLiteTensor data",
    "NodeAndRegistration struct",
)


@dataclass(frozen=True)
class ArenaReport:
    """TFLM's own account of the arena on this (64-bit) host."""

    total: int
    head: int
    tail: int
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def estimate_32bit(self) -> int:
        """The arena on a 32-bit MCU: pointer-sized persistent structures halve.

        Tensor buffers (the head) and kernel data made of int32 arrays (per-channel
        multipliers and shifts) are the same size on both, so only the named
        pointer-heavy parts are scaled; the result is an estimate, not a measurement.
        """
        saved = sum(self.parts.get(k, 0) for k in _POINTER_HEAVY) // 2
        return self.total - saved


@dataclass(frozen=True)
class TflmRun:
    arena: ArenaReport
    outputs: np.ndarray | None
    stderr: str


def parse_allocations(text: str) -> ArenaReport:
    """Parse ``print_allocations()`` lines ("[RecordingMicroAllocator] ...")."""
    totals = {m["kind"]: int(m["n"]) for m in _TOTAL_RE.finditer(text)}
    if "total" not in totals:
        raise ModelError("TFLM printed no arena allocation report")
    parts = {m["what"]: int(m["used"]) for m in _ALLOC_RE.finditer(text)}
    return ArenaReport(totals["total"], totals.get("head", 0), totals.get("tail", 0), parts)


def run_tflm(model: Path, inputs: np.ndarray | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> TflmRun:
    """Allocate ``model`` in TFLM (and run each input of ``inputs``) in a child process."""
    with tempfile.TemporaryDirectory(prefix="hil-tflm-") as tmp:
        cmd = [sys.executable, "-m", "harness.models.tflm_child", str(model)]
        out_path = Path(tmp) / "out.npy"
        if inputs is not None:
            in_path = Path(tmp) / "in.npy"
            np.save(in_path, inputs)
            cmd += [str(in_path), str(out_path)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            raise ModelError(f"TFLM did not finish with {model.name} within {timeout:.0f} s") from None
        if proc.returncode != 0:
            raise ModelError(_failure_line(model, proc.returncode, proc.stderr))
        try:
            json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            raise ModelError(f"TFLM child gave no result for {model.name}") from None
        outputs = np.load(out_path) if inputs is not None else None
        return TflmRun(parse_allocations(proc.stderr), outputs, proc.stderr)


def _failure_line(model: Path, code: int, stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("HIL-ERROR:"):
            return f"{model.name}: {ln.removeprefix('HIL-ERROR:').strip()}"
    last = lines[-1] if lines else "no message"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
        return (
            f"TFLM aborted ({name}) while loading {model.name}: {last[:200]} (an op TFLM lacks, "
            "or a quantisation TFLM refuses, such as a softmax input scale too small)"
        )
    return f"TFLM failed on {model.name} (exit {code}): {last[:200]}"


def _child(argv: list[str]) -> int:
    """Child side: load, allocate, optionally run, report."""
    try:
        from tflite_micro import runtime
    except ImportError:
        print("HIL-ERROR: the tflite-micro package is not installed", file=sys.stderr)
        return 3
    model_bytes = Path(argv[0]).read_bytes()
    try:
        interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=HOST_ARENA_BYTES)
    except (RuntimeError, ValueError) as exc:
        msg = str(exc).strip().splitlines()
        print(f"HIL-ERROR: TFLM cannot load the model: {msg[-1] if msg else exc}", file=sys.stderr)
        return 2
    if len(argv) >= 3:
        batch = np.load(argv[1])
        outs = []
        for x in batch:
            interp.set_input(x[None, ...], 0)
            interp.invoke()
            outs.append(np.array(interp.get_output(0))[0])
        np.save(argv[2], np.stack(outs))
    sys.stderr.flush()
    interp.print_allocations()
    print(json.dumps({"ok": True}), flush=True)
    return 0


def require_tflm() -> None:
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        raise ToolMissing("the tflite-micro package is not installed (pip install tflite-micro)") from None


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
