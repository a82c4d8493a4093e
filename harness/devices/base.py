"""The Device interface every backend implements, and the shared protocol-speaking base.

Tests and the bench runner ask for a :class:`Device`, never a concrete backend: a real
board on a serial port, Renode, QEMU, the native runner and the simulated board all
answer the same calls, and the same conformance suite (tests/integration/
test_device_conformance.py) holds each of them to it.
"""

from __future__ import annotations

import enum
import logging
import statistics
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import numpy as np

from harness.boards import Board
from harness.errors import ConfigError, DeviceError
from harness.link.messages import Capability, LayerTime, Log, Memory, TensorSpec
from harness.link.protocol import DeviceInfo, HostSession, LinkStats, Protocol, SessionOptions, open_session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inference:
    """Outputs of one input (last repeat) and the device-side cycles of each repeat."""

    outputs: tuple[np.ndarray, ...]
    cycles: tuple[int, ...]
    clock_hz: int

    @property
    def cycles_median(self) -> int:
        return int(statistics.median(self.cycles)) if self.cycles else 0

    @property
    def latency_us(self) -> float:
        return self.cycles_median * 1e6 / self.clock_hz if self.clock_hz else float("nan")


def split_outputs(data: bytes, specs: tuple[TensorSpec, ...]) -> tuple[np.ndarray, ...]:
    """Cut the concatenated output bytes of a RESULT into one array per output tensor."""
    arrays = []
    pos = 0
    for spec in specs:
        n = spec.nbytes
        if pos + n > len(data):
            raise DeviceError(f"device returned {len(data)} B of output, the model needs more")
        arr = np.frombuffer(data[pos : pos + n], dtype=spec.dtype.numpy_name).reshape(spec.shape)
        arrays.append(arr.copy())
        pos += n
    if pos != len(data):
        raise DeviceError(f"device returned {len(data)} B of output, the model has {pos} B")
    return tuple(arrays)


@dataclass(frozen=True)
class DeviceOptions:
    """Options every backend takes; each backend subclasses this with its own fields.

    A field left at None means "the backend's default". ``model`` is the model the host
    means to run: the sim loads it, the emulators build firmware for it, Renode and real
    boards are checked against it, and an EEMBC device (which announces no tensors) is
    described by it.
    """

    model: Path | None = None
    protocol: Protocol = Protocol.V1
    timeout: float | None = None
    retries: int | None = None
    on_log: Callable[[Log], None] | None = None

    #: The bench's --port/--baud are only accepted by backends that set these.
    takes_port: ClassVar[bool] = False
    takes_baud: ClassVar[bool] = False

    def given(self) -> dict[str, Any]:
        """The fields that were set, as constructor keywords."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


OptionsT = TypeVar("OptionsT", bound=DeviceOptions)


def build_options(backend: str, options_type: type[OptionsT], values: dict[str, Any]) -> OptionsT:
    """``options_type(**values)``, with an unknown option as a one-line error."""
    known = {f.name for f in fields(options_type)}
    unknown = sorted(k for k, v in values.items() if k not in known and v is not None)
    if unknown:
        raise ConfigError(f"the {backend} backend does not take the option(s): {', '.join(unknown)}")
    given = {k: v for k, v in values.items() if k in known}
    if "protocol" in given:
        given["protocol"] = Protocol.parse(given["protocol"])
    if given.get("model") is not None:
        given["model"] = Path(given["model"])
    return options_type(**given)


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"


class Device(ABC):
    """One device under test. Use as a context manager: ``with create_device(...) as dev:``."""

    backend: ClassVar[str] = "abstract"

    def __init__(self) -> None:
        self.state = State.CLOSED
        self._info: DeviceInfo | None = None
        #: what the firmware an emulator runs was built from (model, TFLM tree and checksum,
        #: cache key, ELF sizes); empty for the sim and real boards. run.json keeps it.
        self.firmware: dict[str, object] = {}

    # lifecycle -----------------------------------------------------------------------------
    @abstractmethod
    def open(self) -> DeviceInfo:
        """Connect, say hello, and return the device's facts."""

    @abstractmethod
    def close(self) -> None:
        """Release the port and stop any process this device started. Safe to call twice."""

    def __enter__(self) -> Device:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _require_open(self) -> DeviceInfo:
        if self.state is not State.OPEN or self._info is None:
            raise DeviceError(f"{self.backend} device is not open")
        return self._info

    @property
    def info(self) -> DeviceInfo:
        return self._require_open()

    # measurement ---------------------------------------------------------------------------
    @abstractmethod
    def infer(
        self, tensor: np.ndarray, warmups: int = 0, repeats: int = 1, profile: bool = False
    ) -> Inference:
        """Run the model on one input tensor (already quantised to the input's dtype)."""

    @abstractmethod
    def profile(self) -> list[LayerTime]:
        """Per-layer cycles of the last inference run with ``profile=True``."""

    @abstractmethod
    def memory(self) -> Memory:
        """Arena and RAM statistics."""

    @property
    def port_url(self) -> str | None:
        return None

    @property
    def link_stats(self) -> LinkStats | None:
        return None


class SessionDevice(Device):
    """A device reached through protocol v1 over a pyserial URL.

    Subclasses start whatever stands behind the port (a child process, an emulator) in
    :meth:`_start` and return the URL; this class does the talking.
    """

    #: Seconds per inference a device may take before the host gives up on it.
    infer_budget_s: float = 30.0

    def __init__(
        self,
        board: Board,
        *,
        timeout: float = 2.0,
        retries: int = 3,
        on_log: Callable[[Log], None] | None = None,
        protocol: Protocol | str = Protocol.V1,
        expect: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.board = board
        self.timeout = timeout
        self.retries = retries
        self.on_log = on_log
        self.protocol = Protocol.parse(protocol)
        #: Input and output specs of the model the host means to run (see SessionOptions).
        self.expect = expect
        self.session: HostSession | None = None
        self._url: str | None = None
        self._port: Any = None

    @abstractmethod
    def _start(self) -> tuple[str, int | None]:
        """Start what stands behind the port; return (pyserial URL, link rate in baud).

        The rate sizes the upload's acknowledgement timeout; None means the link has no
        meaningful rate (a pseudo-terminal or socket that is not throttled).
        """

    def _stop(self) -> None:
        """Stop what :meth:`_start` started (default: nothing)."""

    def _model_specs(self) -> tuple[tuple[TensorSpec, ...] | None, tuple[TensorSpec, ...] | None]:
        """The tensors of the backend's model, for protocols whose device announces none (EEMBC)."""
        model = getattr(self, "model", None)
        if self.protocol is not Protocol.EEMBC or model is None:
            return None, None
        from harness.models.tflite_file import ModelInfo

        info = ModelInfo.from_file(Path(model))
        return info.inputs, info.outputs

    def open(self) -> DeviceInfo:
        from harness.link.transport import open_port

        if self.state is State.OPEN and self._info is not None:
            return self._info
        try:
            url, baud = self._start()
            self._url = url
            self._port = open_port(url, baud)
            inputs, outputs = self.expect if self.expect is not None else self._model_specs()
            self.session = open_session(self.protocol, self._port, SessionOptions(
                timeout=self.timeout, retries=self.retries, on_log=self.on_log, baud=baud,
                inputs=inputs, outputs=outputs,
            ))
            info = self.session.start()
        except BaseException:
            self.close()
            raise
        self._info = info
        self.state = State.OPEN
        if not info.ready:
            msg = info.status_text or f"status {info.status}"
            self.close()
            raise DeviceError(f"{self.backend} device on {url} has no usable model: {msg}")
        log.info(
            "%s device %s: board %s, firmware %s, engine %s, model %s",
            self.backend, url, info.board, info.firmware_version, info.engine, info.model_sha256[:12],
        )
        return info

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # closing a dead port must not hide the original error
                log.debug("closing the port failed", exc_info=True)
        self._stop()
        self.session = None
        self.state = State.CLOSED

    def _session(self) -> HostSession:
        self._require_open()
        assert self.session is not None
        return self.session

    def infer(
        self, tensor: np.ndarray, warmups: int = 0, repeats: int = 1, profile: bool = False
    ) -> Inference:
        info = self._require_open()
        spec = info.inputs[0]
        data = np.ascontiguousarray(tensor, dtype=spec.dtype.numpy_name).tobytes()
        if len(data) != spec.nbytes:
            raise DeviceError(
                f"input of {len(data)} B does not match the device's input tensor "
                f"{list(spec.shape)} {spec.dtype.numpy_name} ({spec.nbytes} B)"
            )
        session = self._session()
        budget = self.timeout + self.infer_budget_s * max(1, warmups + repeats)
        result = session.run(data, warmups, repeats, profile, budget)
        return Inference(split_outputs(result.output, info.outputs), result.cycles, info.clock_hz)

    def profile(self) -> list[LayerTime]:
        info = self._require_open()
        if Capability.PROFILE not in info.capabilities:
            raise DeviceError(f"{self.backend} device does not report per-layer profiles")
        return self._session().profile()

    def memory(self) -> Memory:
        info = self._require_open()
        if Capability.MEMORY not in info.capabilities:
            raise DeviceError(f"{self.backend} device does not report memory statistics")
        return self._session().memory()

    @property
    def port_url(self) -> str | None:
        return self._url

    @property
    def link_stats(self) -> LinkStats | None:
        return self.session.stats if self.session else None


DeviceFactory = Callable[[Board, Any], Device]


@dataclass(frozen=True)
class Backend:
    """One registered backend: its public name, its options type, and how to build it."""

    name: str
    options: type[DeviceOptions]
    make: DeviceFactory

    def create(self, board: Board, options: DeviceOptions | None = None, **values: Any) -> Device:
        """A closed device; ``options`` or keyword values of :attr:`options` configure it."""
        if options is None:
            options = build_options(self.name, self.options, values)
        elif values:
            raise TypeError("give either an options object or keyword options, not both")
        if not isinstance(options, self.options):
            raise ConfigError(
                f"the {self.name} backend takes {self.options.__name__}, not {type(options).__name__}"
            )
        return self.make(board, options)


BACKENDS: dict[str, Backend] = {}

D = TypeVar("D", bound=type[Device])


def register_backend(name: str, options: type[DeviceOptions]) -> Callable[[D], D]:
    """Class decorator: make a backend available under ``name``.

    The class is built as ``cls(board, **options.given())``: its constructor's keywords
    are the option type's fields, so a backend's options are declared once, typed.
    """

    def deco(cls: D) -> D:
        if name in BACKENDS:
            raise ValueError(f"device backend {name!r} registered twice")

        def make(board: Board, opts: DeviceOptions) -> Device:
            device: Device = cls(board, **opts.given())  # type: ignore[call-arg]
            return device

        BACKENDS[name] = Backend(name, options, make)
        return cls

    return deco
