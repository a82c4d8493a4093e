"""Fault injection: a relay between host and device damages, stalls, resets and cuts the link.

Each case must end in (a) a complete run whose every output equals the clean run's, each
image once, or (b) a failure within the case's deadline, in one line that says how to
resume, after which ``--resume`` over a clean link completes to (a); see fault_cases.py.
The cases are parametrised by target (fault_targets.TARGETS: the sim now, one line per
further backend). The slow ones (long stalls at the default watchdog, device resets,
closed connections, duplicates, garbage, 1e-4 on a bigger run) carry the ``faults_slow``
marker, which the default ``python -m pytest`` deselects: ``-m faults_slow`` runs them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

FAULTS_DIR = Path(__file__).resolve().parent
UNIT_DIR = FAULTS_DIR.parent / "unit"
for folder in (FAULTS_DIR, UNIT_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_fakes import make_image_folder  # noqa: E402
from fault_cases import CASES, FaultCase, outputs_of, relayed, request, run_case  # noqa: E402
from fault_targets import TARGETS, FaultTarget  # noqa: E402

from harness.bench.api import run_bench  # noqa: E402
from harness.boards import Board, load_board  # noqa: E402
from harness.errors import BuildError, HarnessError, ToolMissing  # noqa: E402
from harness.skip_groups import needs_from_message  # noqa: E402

#: Faults CI runs on every push: flips, drops and stalls; everything else is faults_slow.
FAST = (
    "flip-1e-6", "flip-1e-5", "flip-1e-4", "flip-1e-3", "drop-1e-5", "drop-1e-4", "stall-1s",
    "stall-forever-watchdog-3s",
)


def _marks(case: FaultCase) -> list[pytest.MarkDecorator]:
    return [] if case.name in FAST and not case.slow else [pytest.mark.faults_slow]


@pytest.fixture(scope="module")
def model() -> Path:
    from harness.models.zoo import resolve_model

    try:
        return resolve_model("vww-default")
    except HarnessError as exc:
        pytest.skip(f"no shipped default model: {exc}")


@pytest.fixture(scope="module")
def board() -> Board:
    return load_board("nano33")


class CleanRuns:
    """Data sets by size, and each target's clean outputs on them, made once per module."""

    def __init__(self, root: Path, model: Path, board: Board) -> None:
        self.root, self.model, self.board = root, model, board
        self._data: dict[int, Path] = {}
        self._outputs: dict[tuple[str, int], dict[str, list[int]]] = {}

    def data(self, images: int) -> Path:
        if images not in self._data:
            self._data[images] = make_image_folder(self.root / f"data-{images}", images, size=(128, 96))
        return self._data[images]

    def outputs(self, target: FaultTarget, images: int) -> dict[str, list[int]]:
        key = (target.name, images)
        if key not in self._outputs:
            out = self.root / f"clean-{target.name}-{images}"
            try:
                with relayed(target, self.model, self.board) as relay:
                    folder = run_bench(request(relay.url, self.model, self.data(images), out))
            except (ToolMissing, BuildError) as exc:  # an image that cannot be built here
                pytest.skip(needs_from_message(f"{target.name}: {exc}"))
            outs, dupes = outputs_of(folder)
            assert not dupes and len(outs) == images and all(outs.values())
            self._outputs[key] = outs
        return self._outputs[key]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, model: Path, board: Board) -> CleanRuns:
    return CleanRuns(tmp_path_factory.mktemp("faults"), model, board)


def _target_cases() -> list[Any]:
    """Every (target, case) pair; CI's fast set is the fast cases on the targets that are not slow."""
    return [
        pytest.param(t, c, id=f"{t.name}-{c.id}", marks=[pytest.mark.faults_slow] if t.slow else _marks(c))
        for t in TARGETS for c in CASES
    ]


@pytest.mark.parametrize(("target", "case"), _target_cases())
def test_fault_ends_complete_or_fails_in_time_and_resumes(
    case: FaultCase, target: FaultTarget, clean: CleanRuns, model: Path, board: Board, tmp_path: Path
) -> None:
    reason = target.skip_reason()
    if reason:
        pytest.skip(f"{target.name}: {reason}")
    outputs = clean.outputs(target, case.images)
    result = run_case(case, target, model, board, clean.data(case.images), tmp_path, outputs)
    assert result.ok, (
        f"{case.id}: {result.outcome} after {result.seconds:.1f} s: {result.problems}; {result.message}"
    )


def test_a_hil_bench_cut_mid_run_prints_a_resume_command_that_works(
    clean: CleanRuns, model: Path, board: Board, tmp_path: Path
) -> None:
    """The CLI end to end: a closed connection is exit 3 and one line; its resume command as printed
    (with the port the board has now) completes the run to the clean outputs."""
    import shlex
    import subprocess

    from fault_cases import BAUD, MID_RUN_H2D, judge
    from fault_relay import Mutation

    target = TARGETS[0]
    data = clean.data(12)
    outputs = clean.outputs(target, 12)
    base = ["--port", "PORT", "--baud", str(BAUD), "--model", str(model), "--quiet"]

    def hil(args: list[str], port: str) -> subprocess.CompletedProcess[str]:
        argv = [a if a != "PORT" else port for a in args]
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", "bench", *argv],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )

    with relayed(target, model, board, to_device=Mutation(close=True, after=MID_RUN_H2D)) as relay:
        first = hil([*base, "--data", str(data), "--out", str(tmp_path / "runs")], relay.url)
    lines = [ln for ln in first.stderr.splitlines() if ln.strip()]
    assert first.returncode == 3 and len(lines) == 1 and "Traceback" not in first.stderr, first.stderr
    printed = lines[0].rsplit("resume with ", 1)[1]
    argv = shlex.split(printed)
    assert argv[:3] == ["hil", "bench", "--resume"] and "--out" in argv
    with relayed(target, model, board) as relay:
        second = hil([*argv[2:], "--port", "PORT", "--quiet"], relay.url)
    assert second.returncode == 0, second.stderr
    (folder,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert judge(folder, outputs) == []


def test_images_past_their_resend_budget_are_error_rows_and_resume_measures_them_again(
    clean: CleanRuns, model: Path, board: Board, tmp_path: Path
) -> None:
    from fault_cases import BAUD, judge
    from fault_relay import Mutation

    from harness.bench.api import bench_on_device, make_device
    from harness.bench.runner import BenchSettings
    from harness.bench.store import load_run

    target = TARGETS[0]
    data, outputs = clean.data(12), clean.outputs(target, 12)
    out = tmp_path / "runs"
    req = request("PORT", model, data, out)
    # one resend per image allowed, and no run budget: most images at 1e-4 become error rows
    settings = BenchSettings(warmups=0, image_resend_budget=1, run_resends_per_image=1e9)
    with relayed(target, model, board, to_device=Mutation(flip=1e-4)) as relay:
        device = make_device(board, "serial", model=model, port=relay.url, baud=BAUD)
        try:
            folder = Path(bench_on_device(
                device, board=board, backend="serial", model=model, dataset=data, out_dir=out,
                settings=settings, request=req,
            ))
        finally:
            device.close()
    run = load_run(folder)
    lost = [e for e in run.columns["error"] if e]
    assert run.manifest["status"] == "complete" and lost, "no image ran out of its budget"
    assert all(e.startswith("link: ") and "over its budget of 1" in e for e in lost)
    assert run.manifest["link"]["resends"] > 0 and run.manifest["link"]["crc_failures"] > 0
    with relayed(target, model, board) as relay:
        again = run_bench(request(relay.url, model, data, out, resume=str(folder)))
    assert judge(again, outputs) == []
    resumed = load_run(again).manifest
    assert not any(": link: " in e for e in resumed["errors"]), resumed["errors"]


def test_a_run_records_its_link_statistics_in_run_json_and_the_summary(clean: CleanRuns) -> None:
    from harness.bench.store import load_run

    clean.outputs(TARGETS[0], 12)
    (folder,) = [p for p in (clean.root / f"clean-{TARGETS[0].name}-12").iterdir() if p.is_dir()]
    link = load_run(folder).manifest["link"]
    assert link["counters"]["inputs_sent"] == 12 and link["resends"] == 0 and link["timeouts"] == 0
    # 27,648 B per input in 1,016 B chunks, framed, and small answers: about 28 kB per image
    assert 27_648 < link["bytes_per_image"] < 30_000 and 0.9 < link["efficiency"] < 1.0
    summary = (folder / "summary.txt").read_text()
    assert "link     0 resends, 0 CRC failures, 0 resyncs, 0 timeouts; 2" in summary
    assert "kB per image, efficiency 9" in summary


@pytest.mark.parametrize("direction", ["h2d", "d2h"])
def test_the_reported_hang_ends_within_the_request_deadlines(
    direction: str, clean: CleanRuns, model: Path, board: Board, tmp_path: Path
) -> None:
    """Issue 12's hang as reported: the sim's own limits (one 32 KiB frame per input, so the
    pipelined path), the default 60 s watchdog, a stall without end mid-run. It used to print
    nothing for 45 s; the session's own deadlines must now end it well inside the watchdog."""
    from fault_cases import FOREVER, MID_RUN_D2H, MID_RUN_H2D
    from fault_relay import Mutation

    sim_defaults = FaultTarget("sim-defaults", "sim")
    after = MID_RUN_H2D if direction == "h2d" else MID_RUN_D2H
    case = FaultCase("stall-forever-sim-defaults", direction, Mutation(stall_s=FOREVER, after=after),
                     deadline_s=20.0)
    outputs = clean.outputs(TARGETS[0], case.images)  # the same model and data: the same outputs
    result = run_case(case, sim_defaults, model, board, clean.data(case.images), tmp_path, outputs)
    assert result.ok, (result.outcome, result.seconds, result.problems, result.message)
    assert result.outcome == "failed+resumed" and result.seconds < 20.0
