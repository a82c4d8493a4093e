"""pytest plugin ``vww_hil``: run hardware-in-the-loop tests on a board, an emulator or the sim.

How a device is chosen (the same tests in ``tests/hil/`` run on every backend):

* no ``--board``: the ``sim`` backend standing in for ``nano33``, so CI exercises the
  tests without hardware;
* ``--board B`` alone: a real board B on a serial port found by its USB ids. When none
  is attached, every test that needs a device is skipped with one line saying so;
* ``--board B --port URL``: the ``serial`` backend on that port (any pyserial URL); a port
  that cannot be opened or does not answer fails the tests with the link's one-line error;
* ``--backend sim|native|qemu|renode``: that backend standing in for the board;
* ``--place NAME`` or ``--place board=B`` (or ``LG_PLACE``): a board-farm place on the labgrid
  coordinator ``--coordinator`` (or ``LG_COORDINATOR``), acquired for the whole session,
  its serial port read after acquiring, released when the session ends (docs/farm.md).

The benchmark behind the accuracy and latency tests runs once per session (fixture
``bench_run``) on ``--dataset``, or by default on a set where the board's accuracy
threshold means something for the model: real photos (the smoke set) for a model trained
on real data, 150 held-out synthetic images for a model trained on synthetic images (the
shipped default). Thresholds come from the board profile's ``[bench]`` table unless
``--min-accuracy``/``--max-latency-ms`` override them.

Markers: ``board`` (needs a device; skipped when none is available), ``hardware`` (needs
a real board: skipped unless the backend is ``serial``), ``emulator(name)`` (skipped when
that emulator is not installed).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness import skip_groups
from harness.models.default import DEFAULT_MODEL_HELP

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from harness.boards import Board
    from harness.devices.base import Device
    from harness.farm.lease import PlaceLease

DEFAULT_BOARD = "nano33"
BACKENDS = ("serial", "sim", "native", "qemu", "renode")
EMULATOR_TOOLS = {"renode": "renode", "qemu": "qemu-system-arm"}
EMULATOR_GROUPS = {"renode": skip_groups.RENODE, "qemu": skip_groups.QEMU}
#: synthetic held-out set for models trained on synthetic images (vww-default was trained on seed 7)
HELD_OUT_SEED = 99
HELD_OUT_IMAGES = 150


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vww_hil", "VWW hardware-in-the-loop (harness.pytest_plugin)")
    group.addoption(
        "--board",
        default=None,
        help=f"board profile id (boards/*.toml). Default: none, which runs the device tests on the "
        f"sim backend standing in for {DEFAULT_BOARD}",
    )
    group.addoption(
        "--backend",
        default=None,
        choices=BACKENDS,
        help="how to reach the board. Default: serial when --board is given, sim otherwise",
    )
    group.addoption(
        "--port",
        default=None,
        help="pyserial URL of the board (/dev/ttyACM0, socket://host:port, rfc2217://...). "
        "Default: found by the board's USB ids",
    )
    group.addoption(
        "--baud",
        type=int,
        default=None,
        help="link baud rate. Default: the board profile's (sim: unthrottled)",
    )
    group.addoption(
        "--model",
        default=None,
        help="model the device is expected to run: zoo name or .tflite path. Default: "
        f"{DEFAULT_MODEL_HELP}",
    )
    group.addoption(
        "--place",
        default=os.environ.get("LG_PLACE") or None,
        help="labgrid place to run on, by name or tags (board=nano33), held for the session. "
        "Default: $LG_PLACE, else none (no farm)",
    )
    group.addoption(
        "--coordinator",
        default=None,
        help="labgrid coordinator HOST:PORT for --place. Default: $LG_COORDINATOR, else 127.0.0.1:20408",
    )
    group.addoption(
        "--place-wait",
        type=float,
        default=0.0,
        help="seconds to wait for a busy place. Default: 0 (fail at once, naming the holder)",
    )
    group.addoption(
        "--dataset",
        default=None,
        help="data set folder for the accuracy test. Default: the smoke data set (hil data smoke)",
    )
    group.addoption(
        "--hil-limit",
        type=int,
        default=None,
        help="benchmark at most this many images. Default: the whole data set",
    )
    group.addoption(
        "--min-accuracy",
        type=float,
        default=None,
        help="accuracy the device must reach. Default: the board profile's [bench] min_accuracy",
    )
    group.addoption(
        "--max-latency-ms",
        type=float,
        default=None,
        help="p99 latency budget in ms. Default: the board profile's [bench] max_latency_ms",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "board: needs a device (real board or emulator) selected with --board/--backend",
        "hardware: needs a real board attached (backend serial)",
        "emulator(name): needs an emulator (renode, qemu) installed",
    ):
        config.addinivalue_line("markers", line)


@dataclass(frozen=True)
class HilOptions:
    """The plugin's options, resolved once: which board, backend, port, model, data."""

    board_id: str
    backend: str
    port: str | None
    baud: int | None
    model: str | None
    dataset: str | None
    limit: int | None
    min_accuracy: float | None
    max_latency_ms: float | None
    explicit_board: bool
    place: str | None = None
    coordinator: str | None = None
    place_wait: float = 0.0

    @classmethod
    def from_config(cls, config: pytest.Config) -> HilOptions:
        board = config.getoption("--board")
        backend = config.getoption("--backend")
        place = config.getoption("--place")
        if backend is None:
            backend = "serial" if board is not None or place else "sim"
        return cls(
            board_id=board or DEFAULT_BOARD,
            backend=backend,
            port=config.getoption("--port"),
            baud=config.getoption("--baud"),
            model=config.getoption("--model"),
            dataset=config.getoption("--dataset"),
            limit=config.getoption("--hil-limit"),
            min_accuracy=config.getoption("--min-accuracy"),
            max_latency_ms=config.getoption("--max-latency-ms"),
            explicit_board=board is not None,
            place=place,
            coordinator=config.getoption("--coordinator"),
            place_wait=config.getoption("--place-wait"),
        )

    def describe(self) -> str:
        where = f" on {self.port}" if self.port else f" on place {self.place}" if self.place else ""
        return f"{self.board_id} via {self.backend}{where}"


def pytest_report_header(config: pytest.Config) -> str:
    opts = HilOptions.from_config(config)
    return f"vww-hil: device tests on {opts.describe()}"


def _find_tool(emulator: str, tool: str) -> str | None:
    """The emulator's executable; Renode may also be named by $HIL_RENODE (not on PATH)."""
    if emulator == "renode":
        from harness.devices.renode.device import find_renode

        return find_renode()
    return shutil.which(tool)


def pytest_runtest_setup(item: pytest.Item) -> None:
    opts = HilOptions.from_config(item.config)
    if item.get_closest_marker("hardware") is not None and opts.backend != "serial":
        pytest.skip(skip_groups.needs(
            skip_groups.BOARD, f"needs a real board (run with --board ID); backend is {opts.backend}"))
    marker = item.get_closest_marker("emulator")
    if marker is not None:
        name = str(marker.args[0]) if marker.args else opts.backend
        tool = EMULATOR_TOOLS.get(name, name)
        if _find_tool(name, tool) is None:
            pytest.skip(skip_groups.needs(EMULATOR_GROUPS.get(name, name),
                                          f"emulator {name} is not installed ({tool} not on PATH)"))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> Generator[None, None, None]:
    """End the run with one line naming the groups skipped for want of third-party pieces.

    A wrapper run first, so the line comes after pytest's own summary (the ``-ra`` list)
    and just before the final counts, where a reader of CI looks. The groups are the
    ``[needs GROUP]`` tags of the skip reasons this run actually produced.
    """
    result = yield
    reasons = {r.nodeid: _skip_reason(r) for r in terminalreporter.stats.get("skipped", [])}
    ran = sum(len(terminalreporter.stats.get(k, [])) for k in ("passed", "failed", "skipped", "error"))
    if ran:
        terminalreporter.write_line(skip_groups.summary_line(reasons.values()))
    return result


@pytest.fixture(scope="session")
def hil_options(pytestconfig: pytest.Config) -> HilOptions:
    return HilOptions.from_config(pytestconfig)


@pytest.fixture(scope="session")
def board_profile(hil_options: HilOptions) -> Board:
    from harness.boards import load_board

    return load_board(hil_options.board_id)


@pytest.fixture(scope="session")
def expected_model(hil_options: HilOptions) -> Path:
    """The model file the device must run (its sha256 is what the device must report)."""
    from harness.errors import HarnessError

    try:
        from harness.models.zoo import resolve_model
    except ImportError:
        pytest.skip("the model zoo (harness.models.zoo) is not available")
    try:
        return resolve_model(hil_options.model)
    except HarnessError as exc:
        pytest.skip(f"no model to test: {exc}")


@pytest.fixture(scope="session")
def min_accuracy(hil_options: HilOptions, board_profile: Board) -> float:
    return hil_options.min_accuracy if hil_options.min_accuracy is not None else board_profile.min_accuracy


@pytest.fixture(scope="session")
def max_latency_ms(hil_options: HilOptions, board_profile: Board) -> float:
    if hil_options.max_latency_ms is not None:
        return hil_options.max_latency_ms
    return board_profile.max_latency_ms


def synthetic_trained(model: Path) -> str | None:
    """The zoo name of ``model`` when its entry says it was trained on synthetic images."""
    try:
        from harness.models.tflite_file import ModelInfo
        from harness.models.zoo import list_zoo
    except ImportError:
        return None
    sha = ModelInfo.from_file(model).sha256
    for entry in list_zoo():
        if entry.sha256 != sha:
            continue
        training = entry.extra.get("training")
        trained_on = str(training.get("data", "")) if isinstance(training, dict) else ""
        if trained_on.lower() == "synthetic":
            return entry.name
    return None


def accuracy_not_meaningful(model: Path, dataset_synthetic: bool) -> str | None:
    """Why an accuracy threshold says nothing for this model on this data, or None.

    A model trained only on synthetic images (the project's shipped default) scored on
    real photographs measures the domain gap, not the board: that check is skipped with
    this reason rather than failed.
    """
    if dataset_synthetic:
        return None
    name = synthetic_trained(model)
    if name is None:
        return None
    return (
        f"{name} was trained on synthetic images; its accuracy on real photos is not a board "
        "result (use --model mlperf-vww-96, or --dataset with synthetic held-out images)"
    )


@pytest.fixture(scope="session")
def hil_dataset(
    hil_options: HilOptions, expected_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path | None:
    """The data set the benchmark runs on: --dataset, else one the model's threshold means something on.

    A model trained on synthetic images gets a synthetic set drawn with a seed no zoo model
    was trained with (held out by construction); any other model gets the real-image smoke
    set (None lets the runner pick it).
    """
    if hil_options.dataset:
        return Path(hil_options.dataset)
    if synthetic_trained(expected_model) is None:
        return None
    from harness.data.synth import build_synthetic

    out = tmp_path_factory.mktemp("hil-data") / f"synthetic-s{HELD_OUT_SEED}-n{HELD_OUT_IMAGES}"
    return build_synthetic(out, HELD_OUT_IMAGES, seed=HELD_OUT_SEED, splits=(0.0, 0.0, 1.0), workers=1)


def _open_device(opts: HilOptions, board: Board, model: Path, port: str | None = None) -> Device:
    from harness.bench.api import make_device

    return make_device(board, opts.backend, model=model, port=port or opts.port, baud=opts.baud)


@pytest.fixture(scope="session")
def hil_place(hil_options: HilOptions) -> Iterator[PlaceLease | None]:
    """The board-farm place of ``--place``, held for the session (None without one).

    A place that cannot be had (busy, unknown, orphaned, labgrid missing) fails the
    tests that need it in one line: the session asked for that place explicitly.
    """
    if not hil_options.place:
        yield None
        return
    from harness.errors import HarnessError
    from harness.farm.lease import hold_place

    if hil_options.port:
        pytest.fail("--place and --port both say where the board is: give one", pytrace=False)
    holding = hold_place(hil_options.place, coordinator=hil_options.coordinator,
                         wait_s=hil_options.place_wait)
    try:
        lease = holding.__enter__()
    except HarnessError as exc:
        pytest.fail(f"place {hil_options.place}: {exc}", pytrace=False)
    try:
        yield lease
    finally:
        holding.__exit__(None, None, None)


@pytest.fixture(scope="session")
def device(
    hil_options: HilOptions, board_profile: Board, expected_model: Path, hil_place: PlaceLease | None
) -> Iterator[Device]:
    """The open device under test, shared by the session; skipped when no board is attached."""
    from harness.errors import ConfigError, HarnessError, LinkError, ToolMissing

    try:
        dev = _open_device(hil_options, board_profile, expected_model, hil_place.url if hil_place else None)
    except ConfigError as exc:
        pytest.skip(f"{hil_options.describe()}: {exc}")
    try:
        dev.open()
    except LinkError as exc:
        if hil_options.backend == "serial" and hil_options.port is None and hil_place is None:
            pytest.skip(skip_groups.needs(skip_groups.BOARD, f"no {board_profile.id} attached: {exc}"))
        pytest.fail(f"{hil_options.describe()}: {exc}", pytrace=False)
    except (ConfigError, ToolMissing) as exc:
        pytest.skip(skip_groups.needs_from_message(f"{hil_options.describe()}: {exc}"))
    except HarnessError as exc:
        pytest.fail(f"{hil_options.describe()}: {exc}", pytrace=False)
    try:
        yield dev
    finally:
        dev.close()


@pytest.fixture(scope="session")
def bench_run(
    hil_options: HilOptions,
    board_profile: Board,
    expected_model: Path,
    device: Device,
    hil_dataset: Path | None,
    tmp_path_factory: pytest.TempPathFactory,
    hil_place: PlaceLease | None,
) -> Any:
    """One benchmark of the data set on the session's device, loaded as a run folder."""
    from harness.bench.api import bench_on_device
    from harness.bench.request import BenchRequest
    from harness.bench.store import load_run
    from harness.errors import HarnessError

    out = tmp_path_factory.mktemp("hil-runs")
    try:
        request = BenchRequest(
            board=board_profile.id, backend=hil_options.backend, model=str(expected_model),
            data=str(hil_dataset) if hil_dataset is not None else None, limit=hil_options.limit,
            out_dir=out, port=hil_options.port, baud=hil_options.baud,
            place=hil_options.place, coordinator=hil_options.coordinator,
        )
        folder = bench_on_device(
            device,
            board=board_profile,
            backend=hil_options.backend,
            model=expected_model,
            dataset=hil_dataset,
            out_dir=out,
            request=request,
            manifest={"place": hil_place.record} if hil_place is not None else None,
        )
    except HarnessError as exc:
        pytest.fail(f"benchmark on {hil_options.describe()} failed: {exc}", pytrace=False)
    return load_run(folder)
