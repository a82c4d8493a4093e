"""Device factories for the conformance suite (tests/integration/test_device_conformance.py).

Every backend must pass the same checks. To add one, write a factory (a context manager
that takes the model path and the board and yields a *closed* Device, cleaning up
whatever it started) and add one line to :data:`FACTORIES`:

    FACTORIES.append(DeviceFactory("qemu", qemu_device, skip_reason=qemu_missing, runs_model=False))

``skip_reason`` returns a one-line reason when the backend cannot run here (tool not
installed); ``runs_model=False`` marks a backend whose engine is a test double, so the
checks that compare outputs with TFLM or the model's hash skip for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.boards import Board
from harness.devices import Device, create_device
from harness.devices.sim.process import SimChild
from harness.link.framing import decode_frame
from harness.link.messages import MsgType
from harness.skip_groups import TFLM_TREE, needs, tools_missing

DeviceMaker = Callable[[Path, Board], AbstractContextManager[Device]]


@dataclass(frozen=True)
class DeviceFactory:
    name: str
    make: DeviceMaker
    skip_reason: Callable[[], str | None] = lambda: None
    runs_model: bool = True


@contextmanager
def sim_device(model: Path, board: Board) -> Iterator[Device]:
    """The sim backend as users get it."""
    dev = create_device("sim", board, model=model)
    try:
        yield dev
    finally:
        dev.close()


@contextmanager
def serial_on_sim_pty(model: Path, board: Board) -> Iterator[Device]:
    """The serial backend pointed at a bare simulated board's pseudo-terminal."""
    with SimChild(model, board) as child:
        assert child.port is not None
        dev = create_device("serial", board, port=child.port)
        try:
            yield dev
        finally:
            dev.close()


@contextmanager
def serial_over_rfc2217(model: Path, board: Board) -> Iterator[Device]:
    """The serial backend reaching a simulated board through an RFC 2217 server, as a board farm would."""
    from rfc2217_bridge import Rfc2217Bridge

    with SimChild(model, board) as child:
        assert child.port is not None
        with Rfc2217Bridge(child.port) as bridge:
            dev = create_device("serial", board, port=bridge.url)
            try:
                yield dev
            finally:
                dev.close()


def _test_double_options(model: Path) -> dict[str, object]:
    """Shape and layer names of the model, so that a test double looks like it from outside."""
    from harness.models.tflite_file import ModelInfo

    info = ModelInfo.from_file(model)
    return {"input_shape": info.inputs[0].shape, "ops": [layer.op for layer in info.layers],
            "test_double": True}


@contextmanager
def native_device(model: Path, board: Board) -> Iterator[Device]:
    """The firmware's portable core built for the host (test-double engine) on a pty."""
    dev = create_device("native", board, **_test_double_options(model))
    try:
        yield dev
    finally:
        dev.close()


@contextmanager
def qemu_device(model: Path, board: Board) -> Iterator[Device]:
    """The firmware's portable core on QEMU's emulated Cortex-M4 (test-double engine)."""
    dev = create_device("qemu", board, **_test_double_options(model))
    try:
        yield dev
    finally:
        dev.close()


@contextmanager
def native_tflm_device(model: Path, board: Board) -> Iterator[Device]:
    """The real firmware (TFLM + CMSIS-NN, the model compiled in) built for the host."""
    dev = create_device("native", board, model=model)
    try:
        yield dev
    finally:
        dev.close()


@contextmanager
def qemu_tflm_device(model: Path, board: Board) -> Iterator[Device]:
    """The real firmware (TFLM + CMSIS-NN, the model compiled in) on QEMU's Cortex-M4."""
    dev = create_device("qemu", board, model=model)
    try:
        yield dev
    finally:
        dev.close()


def _missing(tools: tuple[str, ...]) -> str | None:
    import shutil

    absent = [t for t in tools if shutil.which(t) is None]
    return tools_missing(absent) if absent else None


def native_missing() -> str | None:
    return _missing(("cmake", "g++"))


def qemu_missing() -> str | None:
    return _missing(("qemu-system-arm", "arm-none-eabi-g++", "make"))


def _no_tflm_tree() -> str | None:
    from harness.deploy.tflm_tree import find_tree
    from harness.errors import HarnessError

    try:
        find_tree()
    except HarnessError as exc:
        return needs(TFLM_TREE, f"no TFLM tree for the real firmware: {exc}")
    return None


def native_tflm_missing() -> str | None:
    return native_missing() or _no_tflm_tree()


def qemu_tflm_missing() -> str | None:
    return _missing(("qemu-system-arm", "arm-none-eabi-g++", "cmake")) or _no_tflm_tree()


FACTORIES: list[DeviceFactory] = [
    DeviceFactory("sim", sim_device),
    DeviceFactory("serial-on-sim-pty", serial_on_sim_pty),
    DeviceFactory("serial-over-rfc2217", serial_over_rfc2217),
    DeviceFactory("native", native_device, skip_reason=native_missing, runs_model=False),
    DeviceFactory("qemu", qemu_device, skip_reason=qemu_missing, runs_model=False),
    DeviceFactory("native-tflm", native_tflm_device, skip_reason=native_tflm_missing),
    DeviceFactory("qemu-tflm", qemu_tflm_device, skip_reason=qemu_tflm_missing),
]


class DroppingPort:
    """Wraps the host's port and loses the first ``count`` frames of type ``mtype`` it reads.

    It stands for a line that eats a device's answer, so that the host's retry and the
    device's answer cache are exercised on any backend.
    """

    def __init__(self, inner: object, mtype: MsgType, count: int = 1) -> None:
        self.inner = inner
        self.mtype = int(mtype)
        self.left = count
        self.dropped = 0
        self._buf = b""

    @property
    def in_waiting(self) -> int:
        return int(getattr(self.inner, "in_waiting", 0) or 0)

    def read(self, size: int = 1) -> bytes:
        self._buf += self.inner.read(size)  # type: ignore[attr-defined]
        *whole, self._buf = self._buf.split(b"\x00")
        out = []
        for part in whole:
            if part and self.left > 0:
                try:
                    ftype = decode_frame(part).type
                except ValueError:
                    ftype = -1
                if ftype == self.mtype:
                    self.left -= 1
                    self.dropped += 1
                    continue
            out.append(part + b"\x00")
        return b"".join(out)

    def write(self, data: bytes) -> int | None:
        result: int | None = self.inner.write(data)  # type: ignore[attr-defined]
        return result


def build_tiny_int8_model(path: Path) -> None:
    """A small int8 MobileNet-like model made with TensorFlow, for when no model file is present."""
    import numpy as np
    import tensorflow as tf

    inputs = tf.keras.Input((32, 32, 3))
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = tf.keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(2, activation="softmax")(x)
    model = tf.keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)

    def representative() -> Iterator[list[np.ndarray]]:
        for _ in range(20):
            yield [rng.random((1, 32, 32, 3), dtype=np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())
