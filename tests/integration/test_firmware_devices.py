"""The native and QEMU builds of the firmware core, beyond the shared conformance suite.

The conformance suite skips output checks for test-double engines; here the outputs are
checked against the test double's known function (sum and XOR of the input bytes), the
QEMU build's instruction counts against themselves (same input, same count), and the
failure paths that need the test double's hooks (a failing invoke, a model that did not
load). QEMU runs with each of its links: the semihosting console (the default) and the
CMSDK UART (``link="uart"``); small input shapes keep the uploads over the UART short.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import numpy as np
import pytest

from harness.boards import Board, load_board
from harness.devices import Device, create_device
from harness.errors import DeviceError
from harness.link.messages import Capability, TimerKind
from harness.skip_groups import tools_missing

SHAPE = (1, 16, 16, 3)
OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX")

BACKENDS = {
    "native": (("cmake", "g++"), TimerKind.HOST_CLOCK),
    "qemu": (("qemu-system-arm", "arm-none-eabi-g++", "make"), TimerKind.INSTRUCTIONS),
    "qemu-uart": (("qemu-system-arm", "arm-none-eabi-g++", "make"), TimerKind.INSTRUCTIONS),
}


def make_device(name: str, board: Board, **options: object) -> Device:
    """``qemu-uart`` is the qemu backend with the firmware's UART link instead of semihosting."""
    if name == "qemu-uart":
        return create_device("qemu", board, link="uart", **options)
    return create_device(name, board, **options)


def expected_outputs(tensor: np.ndarray) -> np.ndarray:
    """The test double's function: (sum mod 256, XOR) of the input bytes, as int8."""
    raw = np.ascontiguousarray(tensor).view(np.uint8).ravel()
    out = np.array([int(raw.sum(dtype=np.uint64)) % 256, int(np.bitwise_xor.reduce(raw))], np.uint8)
    return out.view(np.int8).reshape(1, 2)


@pytest.fixture(scope="module")
def board() -> Board:
    return load_board("nano33")


@pytest.fixture(scope="module", params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    missing = [t for t in BACKENDS[name][0] if shutil.which(t) is None]
    if missing:
        pytest.skip(tools_missing(missing))
    return name


@pytest.fixture(scope="module")
def device(backend: str, board: Board) -> Iterator[Device]:
    with make_device(backend, board, input_shape=SHAPE, ops=OPS, test_double=True) as dev:
        yield dev


def inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        np.zeros(SHAPE, np.int8),
        np.full(SHAPE, -1, np.int8),
        rng.integers(-128, 127, SHAPE, dtype=np.int8, endpoint=True),
        rng.integers(-128, 127, SHAPE, dtype=np.int8, endpoint=True),
    ]


def test_hello_names_the_test_double_and_the_timer(device: Device, backend: str, board: Board) -> None:
    info = device.info
    assert info.engine == "test-double"
    assert info.board == board.id
    assert info.timer == BACKENDS[backend][1]
    assert info.clock_hz == (1_000_000_000 if backend == "native" else 25_000_000)
    assert info.inputs[0].shape == SHAPE and info.outputs[0].shape == (1, 2)
    assert Capability.PROFILE in info.capabilities and Capability.MEMORY in info.capabilities


def test_outputs_are_the_test_doubles_function_of_the_input(device: Device) -> None:
    for tensor in inputs():
        got = device.infer(tensor, warmups=1, repeats=2)
        np.testing.assert_array_equal(got.outputs[0], expected_outputs(tensor))
        assert len(got.cycles) == 2 and all(c > 0 for c in got.cycles)


def test_profile_names_the_layers_it_was_given(device: Device) -> None:
    device.infer(inputs()[2], profile=True)
    layers = device.profile()
    assert [layer.op for layer in layers] == list(OPS)
    assert all(layer.cycles > 0 for layer in layers)


def test_qemu_instruction_counts_are_deterministic(device: Device, backend: str) -> None:
    if not backend.startswith("qemu"):
        pytest.skip("host clock timings vary; only QEMU counts instructions")
    tensor = inputs()[2]
    first = device.infer(tensor, warmups=0, repeats=3)
    second = device.infer(tensor, warmups=2, repeats=3)
    assert first.cycles == second.cycles
    assert len(set(first.cycles)) == 1  # every repeat of the same work counts the same
    # The test double walks every input byte: the count grows with the input, so a
    # constant or zero counter would not pass.
    assert first.cycles[0] > 3 * int(np.prod(SHAPE))


def test_memory_reports_what_the_platform_knows(device: Device, backend: str) -> None:
    mem = device.memory()
    assert mem.arena_used <= mem.arena_size
    if backend.startswith("qemu"):
        assert mem.ram_total == 4 * 1024 * 1024 - 4096
        assert 0 < mem.stack_used < 16384
        assert 0 < mem.flash_used < mem.flash_total


def test_failing_invoke_is_an_error_and_the_device_stays_usable(device: Device) -> None:
    bad = np.zeros(SHAPE, np.int8)
    bad.ravel()[:4] = np.frombuffer(b"FAIL", np.int8)
    with pytest.raises(DeviceError, match="INVOKE_FAILED"):
        device.infer(bad)
    tensor = inputs()[3]
    np.testing.assert_array_equal(device.infer(tensor).outputs[0], expected_outputs(tensor))


def test_model_that_did_not_load_is_reported_in_one_line(backend: str, board: Board) -> None:
    dev = make_device(backend, board, fail_model=True, test_double=True)
    with pytest.raises(DeviceError, match="no usable model: test double told to fail"):
        dev.open()
    dev.close()


def test_qemu_links_carry_the_same_bytes_and_counts(board: Board) -> None:
    """The link is the firmware's port only: outputs, instruction counts and the device's
    answers are the same over the semihosting console and over the UART."""
    missing = [t for t in BACKENDS["qemu"][0] if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    tensor = inputs()[2]
    seen = []
    for link in ("semihost", "uart"):
        with create_device("qemu", board, input_shape=SHAPE, ops=OPS, test_double=True, link=link) as dev:
            got = dev.infer(tensor, repeats=2)
            seen.append((dev.info.to_dict(), got.outputs[0].tolist(), got.cycles, dev.firmware.get("port")))
    assert seen[0][:3] == seen[1][:3]
    assert "semihosting" in str(seen[0][3]) and "UART" in str(seen[1][3])
