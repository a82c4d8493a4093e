"""Helpers for the bench tests: an in-process device, image folders, the tiny model.

The runner's own logic (rows, resume, errors, metrics) is tested against a device that
runs the model in-process with LiteRT's reference kernels, so the tests do not depend on
the simulated board's child process; the integration tests run the real ``sim`` backend.
The device registers itself as backend ``fake`` so that child processes can use the CLI
path (``run_bench(backend="fake")``) too.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness.boards import Board
from harness.devices import BACKEND_MODULES
from harness.devices.base import BACKENDS, Backend, Device, DeviceInfo, DeviceOptions, Inference, State
from harness.errors import DeviceError, LinkError
from harness.link.messages import Capability, LayerTime, Memory, TimerKind
from harness.models.tflite_file import ModelInfo

UNIT_DIR = Path(__file__).resolve().parent
if str(UNIT_DIR) not in sys.path:
    sys.path.insert(0, str(UNIT_DIR))

from deploy_tiny_model import write_tiny_model  # noqa: E402

CYCLES = 64_000


class InProcessDevice(Device):
    """Runs the model with LiteRT reference kernels in this process; facts as a board would say."""

    backend = "fake"

    def __init__(
        self,
        board: Board,
        model: Path,
        *,
        engine: str = "inprocess-test",
        sha256: str | None = None,
        fail_every: int = 0,
        delay_s: float | None = None,
        flip_every: int = 0,
        interrupt_at: int = 0,
        link_lost_at: int = 0,
        timer: TimerKind = TimerKind.ESTIMATED,
        clock_hz: int | None = None,
    ) -> None:
        super().__init__()
        self.board = board
        self.model_path = Path(model)
        self.engine = engine
        self.sha_override = sha256
        self.fail_every = fail_every
        self.flip_every = flip_every
        # child processes of the kill/interrupt tests slow the device down through the environment
        self.delay_s = delay_s if delay_s is not None else float(os.environ.get("BENCH_FAKE_DELAY_S", "0"))
        self.interrupt_at = interrupt_at
        self.link_lost_at = link_lost_at
        self.timer = timer
        self.clock_hz = clock_hz if clock_hz is not None else board.clock_hz
        self.calls = 0
        self._interp: Any = None

    def open(self) -> DeviceInfo:
        if self.state is State.OPEN and self._info is not None:
            return self._info
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        model = ModelInfo.from_file(self.model_path)
        self._interp = Interpreter(
            model_content=model.data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
        )
        self._interp.allocate_tensors()
        self._info = DeviceInfo(
            protocol_version=1,
            board=self.board.id,
            firmware_version="0.0.0-test",
            engine=self.engine,
            model_sha256=self.sha_override or model.sha256,
            inputs=model.inputs,
            outputs=model.outputs,
            arena_size=8192,
            arena_used=2048,
            clock_hz=self.clock_hz,
            timer=self.timer,
            max_payload=256,
            credits=4,
            capabilities=Capability.PROFILE | Capability.MEMORY,
            status=0,
            status_text="",
        )
        self.state = State.OPEN
        return self._info

    def close(self) -> None:
        self.state = State.CLOSED
        self._interp = None

    def infer(
        self, tensor: np.ndarray, warmups: int = 0, repeats: int = 1, profile: bool = False
    ) -> Inference:
        info = self._require_open()
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.interrupt_at and self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        if self.link_lost_at and self.calls >= self.link_lost_at:
            raise LinkError("no answer from the device within 2.0 s (waiting for RESULT)")
        if self.fail_every and self.calls % self.fail_every == 0:
            raise DeviceError("device answered error INVOKE_FAILED")
        self._interp.set_tensor(self._interp.get_input_details()[0]["index"], tensor)
        self._interp.invoke()
        out = np.array(self._interp.get_tensor(self._interp.get_output_details()[0]["index"]))
        if self.flip_every and self.calls % self.flip_every == 0:
            out = out.copy()
            out.flat[0] = np.int8(out.flat[0] ^ 1)
        cycles = CYCLES + int(hashlib.sha256(tensor.tobytes()).digest()[0])
        return Inference((out,), tuple([cycles] * repeats), info.clock_hz)

    def profile(self) -> list[LayerTime]:
        return [LayerTime(0, "CONV_2D", 40_000), LayerTime(1, "FULLY_CONNECTED", 24_000)]

    def memory(self) -> Memory:
        return Memory(arena_size=8192, arena_used=2048)


def register_fake_backend() -> None:
    """Make ``fake`` a backend name that make_device/run_bench accept."""
    BACKEND_MODULES.setdefault("fake", __name__)
    BACKENDS.setdefault(
        "fake", Backend("fake", DeviceOptions, lambda board, opts: InProcessDevice(board, opts.model))
    )


register_fake_backend()


def make_image_folder(
    root: Path,
    n: int,
    *,
    size: tuple[int, int] = (12, 10),
    corrupt: tuple[int, ...] = (),
    seed: int = 0,
) -> Path:
    """``n`` small PNGs with a labels.csv (file,label,split,lighting); ``corrupt`` indexes get junk bytes."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        name = f"img_{i:05d}.png"
        if i in corrupt:
            (root / name).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
        else:
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name)
        rows.append(
            {"file": name, "label": i % 2, "split": "test", "lighting": "dark" if i % 3 else "bright"}
        )
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "label", "split", "lighting"])
        w.writeheader()
        w.writerows(rows)
    return root


def tiny_model(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_tiny_model(folder / f"tiny_{seed}.tflite", seed)
