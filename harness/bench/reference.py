"""The host reference: the same model on the same int8 input, with LiteRT's reference kernels.

LiteRT's ``BUILTIN_REF`` op resolver runs the portable reference kernels, which TFLM's
reference kernels match bit for bit; any output the device returns that differs from this
one points at the device (optimised kernels, a corrupted upload, a wrong model), not at
the model. The reference runs in a worker thread so that it overlaps the device call:
the device spends its time waiting on the link or the simulated board's child process,
and LiteRT releases the GIL while it invokes.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import numpy as np

from harness.errors import ModelError

log = logging.getLogger(__name__)


class HostReference:
    """A LiteRT interpreter with reference kernels, run one input at a time in a worker thread."""

    def __init__(self, model_bytes: bytes, label: str = "model") -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ModelError(f"the host reference needs ai-edge-litert ({exc})") from None
        try:
            self._interp = Interpreter(
                model_content=model_bytes,
                experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                num_threads=1,
            )
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{label}: the host reference (LiteRT) cannot load it: {first}") from None
        self._input = self._interp.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in self._interp.get_output_details()]
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="host-reference")

    def run(self, tensor: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs of one input, in the calling thread."""
        self._interp.set_tensor(self._input, tensor)
        self._interp.invoke()
        return tuple(np.array(self._interp.get_tensor(i)) for i in self._outputs)

    def submit(self, tensor: np.ndarray) -> Future[tuple[np.ndarray, ...]]:
        """Start :meth:`run` in the worker thread; the caller collects the future later."""
        return self._pool.submit(self.run, np.array(tensor, copy=True))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> HostReference:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
