"""The nightly loop with an injected runner: skips, failures, regressions and CI outputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from harness.bench.request import BenchRequest
from harness.errors import ConfigError, DeviceError, ToolMissing
from harness.report.ci_outputs import md
from harness.report.matrix import check_cells, load_matrix, resolved_model_name
from harness.report.nightly import run_nightly
from harness.report.synth import SynthSpec, write_run

MATRIX = """
[nightly]
name = "t"
limit = 40
window = 5
min_latency_history = 2
[matrix]
models = ["default", "m<b>|x"]
boards = ["nano33", "esp32cam"]
backends = ["sim"]
[[matrix.exclude]]
model = "m<b>|x"
board = "esp32cam"
[[cell]]
board = "nano33"
backend = "qemu"
"""


class FakeBench:
    """Writes synthetic runs; night N can be made slower or less accurate per board."""

    def __init__(self) -> None:
        self.night = 0
        self.slow: set[str] = set()
        self.blunt: set[str] = set()
        self.fail: set[str] = set()
        self.calls: list[dict[str, Any]] = []

    def __call__(self, request: BenchRequest) -> Path:
        kw = asdict(request)
        self.calls.append(kw)
        if kw["backend"] == "qemu":
            raise ToolMissing("qemu-system-arm found, firmware ELF not built")
        if kw["board"] in self.fail:
            raise DeviceError("device stopped answering")
        board = kw["board"]
        spec = SynthSpec(
            n=kw["limit"] * 5, seed=self.night * 11 + len(board) + len(str(kw["model"])),
            board=board, model_name=resolved_model_name(kw["model"]), images=False,
            created=datetime(2026, 11, 1, 3, tzinfo=timezone.utc) + timedelta(days=self.night),
            latency_ms=(300.0 if board in self.slow else 180.0),
            separation=(0.4 if board in self.blunt else 2.2))
        return write_run(kw["out_dir"], spec)


#: what "default" in a matrix resolves to here (the reference model where present)
DEFAULT = resolved_model_name(None)


@pytest.fixture()
def matrix(tmp_path: Path) -> Path:
    p = tmp_path / "m.toml"
    p.write_text(MATRIX)
    return p


def test_matrix_cells(matrix: Path) -> None:
    m = load_matrix(matrix)
    assert [c.name for c in m.cells] == [f"{DEFAULT} @ nano33/sim", f"{DEFAULT} @ esp32cam/sim",
                                         "m<b>|x @ nano33/sim", f"{DEFAULT} @ nano33/qemu"]
    assert m.limit == 40 and m.policy.window == 5


@pytest.mark.parametrize(("text", "msg"), [
    ("[matrix]\nmodels = []\nboards=['a']\nbackends=['sim']", "non-empty list"),
    ("[nightly]\nlimt = 3\n[[cell]]\nboard='a'\nbackend='sim'", "unknown [nightly] keys: limt"),
    ("[[cell]]\nboard='a'", "needs at least board and backend"),
    ("[nightly]\n", "no cells"),
    ("[[cell]]\nboard='a'\nbackend='sim'\n[[cell]]\nboard='a'\nbackend='sim'", "listed twice"),
    ("[[cell]\n", "not valid TOML"),
    ("[nightly]\nlimit='x'\n[[cell]]\nboard='a'\nbackend='sim'", "bad value"),
])
def test_matrix_errors_are_one_line(tmp_path: Path, text: str, msg: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        load_matrix(p)


def test_missing_matrix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_matrix(tmp_path / "none.toml")


def test_nightly_detects_regressions_and_reports(matrix: Path, tmp_path: Path) -> None:
    bench = FakeBench()
    out = tmp_path / "hist"
    for night in range(3):
        bench.night = night
        res = run_nightly(matrix, out, runner=bench, write_reports=False)
        assert res.exit_code == 0, res.summary_path.read_text()
    assert bench.calls[0]["out_dir"] == out / "runs" and bench.calls[0]["limit"] == 40
    assert bench.calls[0]["model"] is None  # "default" means the shipped model
    bench.night = 3
    bench.slow = {"esp32cam"}
    bench.blunt = {"nano33"}
    res = run_nightly(matrix, out, runner=bench)
    assert res.exit_code == 1
    by_name = {o.cell.name: o for o in res.outcomes}
    assert [c.name for c in by_name[f"{DEFAULT} @ esp32cam/sim"].checks if c.regressed] == ["latency"]
    assert [c.name for c in by_name[f"{DEFAULT} @ nano33/sim"].checks if c.regressed] == ["accuracy"]
    assert [c.name for c in by_name["m<b>|x @ nano33/sim"].checks if c.regressed] == ["accuracy"]
    qemu = by_name[f"{DEFAULT} @ nano33/qemu"]
    assert qemu.status == "skipped" and "firmware ELF not built" in qemu.reason
    assert res.history_runs == 12

    summary = res.summary_path.read_text()
    assert "regressions found" in summary and "m&lt;b&gt;\\|x @ nano33/sim" in summary
    assert "skipped: qemu-system-arm found, firmware ELF not built" in summary

    suite = ET.parse(res.junit_path).getroot()
    assert suite.get("tests") == "7" and suite.get("failures") == "3"
    assert suite.get("skipped") == "1" and suite.get("errors") == "0"

    prom = res.metrics_path.read_text().splitlines()
    assert prom[-1] == "# EOF"
    assert any(line.startswith(f'hil_regression{{model="{DEFAULT}",board="esp32cam",backend="sim",'
                               'check="latency"} 1') for line in prom)
    assert any('model="m<b>|x"' in line for line in prom)
    assert "# UNIT hil_latency_p50_seconds seconds" in prom

    page = res.html_path.read_text()
    assert page.count('class="plot"') == 6
    assert "m&lt;b&gt;|x" in page and "<b>|x" not in page
    assert 'href="runs/' in page


def test_failed_cell_fails_the_night(matrix: Path, tmp_path: Path) -> None:
    bench = FakeBench()
    bench.fail = {"esp32cam"}
    res = run_nightly(matrix, tmp_path / "h", runner=bench, write_reports=False)
    assert res.exit_code == 1
    failed = [o for o in res.outcomes if o.status == "failed"]
    assert len(failed) == 1 and "DeviceError: device stopped answering" in failed[0].reason
    suite = ET.parse(res.junit_path).getroot()
    assert suite.get("errors") == "1"


def test_history_only_rebuilds_pages(matrix: Path, tmp_path: Path) -> None:
    bench = FakeBench()
    run_nightly(matrix, tmp_path / "h", runner=bench, write_reports=False)
    res = run_nightly(matrix, tmp_path / "h", dry_history=True,
                      runner=lambda request: pytest.fail("no cell may run"))
    assert res.outcomes == [] and res.exit_code == 0 and res.history_runs == 3


def test_github_step_summary_is_appended(matrix: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    run_nightly(matrix, tmp_path / "h", runner=FakeBench(), write_reports=False)
    assert "## Nightly t" in step.read_text()


def test_markdown_escaping() -> None:
    assert md("<script>|`x`\n") == "&lt;script&gt;\\|\\`x\\` "


def test_sample_matrices_parse() -> None:
    root = Path(__file__).resolve().parents[2] / "matrices"
    sim = load_matrix(root / "sim.toml")
    assert {c.backend for c in sim.cells} == {"sim"}  # runs anywhere, no hardware
    assert {c.board for c in sim.cells} == {"nano33", "esp32cam"}
    assert sim.out == root.parent / "reports" / "nightly-sim"
    emu = load_matrix(root / "emulators.toml")
    assert {c.backend for c in emu.cells} == {"qemu", "renode"}
    for m in (sim, emu):
        check_cells(m)  # every name in the shipped matrices is one the bench knows


def test_existing_history_runs_do_not_count_as_tonight(matrix: Path, tmp_path: Path) -> None:
    write_run(tmp_path / "h" / "runs", SynthSpec(n=30, images=False))
    res = run_nightly(matrix, tmp_path / "h", runner=FakeBench(), write_reports=False)
    assert len([o for o in res.outcomes if o.status == "ok"]) == 3
    assert res.history_runs == 4


def test_a_crashing_backend_does_not_cost_the_other_cells(matrix: Path, tmp_path: Path) -> None:
    bench = FakeBench()

    def runner(request: BenchRequest) -> Path:
        if request.board == "esp32cam":
            raise TypeError("unexpected keyword argument 'model'")
        return bench(request)

    res = run_nightly(matrix, tmp_path / "h", runner=runner, write_reports=False)
    status = {o.cell.name: (o.status, o.reason) for o in res.outcomes}
    assert status[f"{DEFAULT} @ esp32cam/sim"] == (
        "failed", "internal error: TypeError: unexpected keyword argument 'model'")
    assert status[f"{DEFAULT} @ nano33/sim"][0] == "ok"
    assert res.exit_code == 1


def test_accuracy_confidence_widens_the_check() -> None:
    from harness.report.regress import Policy, check_accuracy

    history = [(95, 100), (96, 100)]
    loose = check_accuracy(88, 100, history, Policy(accuracy_confidence=0.95))
    strict = check_accuracy(88, 100, history, Policy(accuracy_confidence=0.999))
    assert loose.regressed and not strict.regressed
    assert "(99.9 % CI" in strict.message and "(95 % CI" in loose.message


def test_tonight_is_read_back_through_the_history_frame(matrix: Path, tmp_path: Path) -> None:
    res = run_nightly(matrix, tmp_path / "h", runner=FakeBench(), write_reports=False)
    frame = res.history()
    assert len(frame) == res.history_runs == 3
    tonight = res.tonight()
    assert list(tonight["cell"]) == [o.cell.name for o in res.outcomes]
    by_cell = tonight.set_index("cell")
    for o in res.outcomes:
        if o.status == "ok":
            assert o.row is not None
            assert by_cell.loc[o.cell.name, "accuracy"] == pytest.approx(o.row["accuracy"])
            assert by_cell.loc[o.cell.name, "run_id"] == o.row["run_id"]
    skipped = by_cell.loc[f"{DEFAULT} @ nano33/qemu"]
    assert skipped["result"] == "skipped" and skipped["accuracy"] != skipped["accuracy"]  # NaN
    rows = {r[0]: r for r in res.table_rows()}
    ran = rows[f"{DEFAULT} @ nano33/sim"]
    assert ran[1] == "ok" and "%" in ran[2] and " [" in ran[2]
    assert ran[3].endswith(" ms (estimated by the simulator's cost model)")  # unit and source
    assert rows[f"{DEFAULT} @ nano33/qemu"][3] == "\u2014"
    assert "firmware ELF not built" in rows[f"{DEFAULT} @ nano33/qemu"][4]


def test_ci_outputs_carry_each_run_s_own_latency_label(matrix: Path, tmp_path: Path) -> None:
    bench = FakeBench()
    for night in range(3):  # a history, so the latency checks compare times
        bench.night = night
        res = run_nightly(matrix, tmp_path / "h", runner=bench, write_reports=False)
    summary = res.summary_path.read_text()
    timed = [ln for ln in summary.splitlines() if " ms (" in ln]
    assert len(timed) == 3
    assert all("ms (estimated by the simulator's cost model)" in ln for ln in timed)
    suite = ET.parse(res.junit_path).getroot()
    timed_checks = [o.text or "" for o in suite.iter("system-out") if " ms" in (o.text or "")]
    assert len(timed_checks) == 3
    assert all(t.endswith("[latency estimated by the simulator's cost model]") for t in timed_checks)


def test_cells_carry_the_model_that_ran_never_default(matrix: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 item 7: "default @ nano33/sim" and model="default" hid which model ran."""
    monkeypatch.setenv("HIL_NO_REFERENCE", "1")  # the bench's default is then the shipped model
    shipped = resolved_model_name(None)
    assert shipped == "vww-default"
    assert [c.name for c in load_matrix(matrix).cells][0] == "vww-default @ nano33/sim"
    res = run_nightly(matrix, tmp_path / "hist", runner=FakeBench(), write_reports=False)
    names = [o.cell.name for o in res.outcomes]
    assert names == ["vww-default @ nano33/sim", "vww-default @ esp32cam/sim", "m<b>|x @ nano33/sim",
                     "vww-default @ nano33/qemu"]
    prom = res.metrics_path.read_text()
    assert 'model="vww-default"' in prom and 'model="default"' not in prom
    cases = [c.get("name") for c in ET.parse(res.junit_path).getroot().iter("testcase")]
    assert cases and not any(str(n).startswith("default:") for n in cases)
    assert "vww-default: accuracy" in cases
    for text in (res.summary_path.read_text(), res.html_path.read_text()):
        assert "vww-default @ nano33/sim" in text and "default @" not in text.replace("vww-default @", "")
    assert list(res.tonight()["cell"])[:2] == ["vww-default @ nano33/sim", "vww-default @ esp32cam/sim"]


def test_a_cell_is_renamed_after_the_model_its_run_recorded(matrix: Path, tmp_path: Path) -> None:
    """Whatever the matrix guessed, the run's own run.json names the cell once it ran."""
    class Renamed(FakeBench):
        def __call__(self, request: BenchRequest) -> Path:
            if request.model is None:
                request = BenchRequest(**{**asdict(request), "model": "other-model"})
            return super().__call__(request)

    res = run_nightly(matrix, tmp_path / "hist", runner=Renamed(), write_reports=False)
    assert res.outcomes[0].cell.name == "other-model @ nano33/sim"
    assert res.outcomes[0].cell.model is None  # what the runner was asked for is unchanged
def test_history_only_keeps_junit_and_metrics(matrix: Path, tmp_path: Path) -> None:
    """CI reads junit.xml and metrics.prom: a rebuild of the pages must not empty them."""
    night = run_nightly(matrix, tmp_path / "h", runner=FakeBench(), write_reports=False)
    junit, metrics = night.junit_path.read_text(), night.metrics_path.read_text()
    assert 'tests="7"' in junit and "latency" in metrics
    res = run_nightly(matrix, tmp_path / "h", dry_history=True,
                      runner=lambda request: pytest.fail("no cell may run"))
    assert res.junit_path.read_text() == junit and res.metrics_path.read_text() == metrics


@pytest.mark.parametrize(("text", "words"), [
    ("[matrix]\nmodels=['default']\nboards=['nano3']\nbackends=['sim']",
     ["[matrix] boards: unknown board 'nano3' (known boards:", "nano33"]),
    ("[matrix]\nmodels=['default']\nboards=['nano33']\nbackends=['simm']",
     ["[matrix] backends: unknown backend 'simm' (known:", "sim"]),
    ("[matrix]\nmodels=['mlperf-vww-69']\nboards=['nano33']\nbackends=['sim']",
     ["[matrix] models: no model 'mlperf-vww-69' in the zoo", "mlperf-vww-96"]),
    ("[[cell]]\nmodle='default'\nboard='nano33'\nbackend='sim'",
     ["[[cell]] #1: unknown key modle (expected: backend, board, dataset, model)"]),
    ("[matrix]\nmodel=['default']\nboards=['nano33']\nbackends=['sim']",
     ["[matrix]: unknown key model (expected: backends, boards, exclude, models)"]),
    ("[nigthly]\nlimit=3\n[[cell]]\nboard='nano33'\nbackend='sim'",
     ["unknown key nigthly (expected: cell, matrix, nightly)"]),
])
def test_a_typo_in_a_matrix_is_a_configuration_error(
    tmp_path: Path, text: str, words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 and one line naming the file, the key and what was expected; no cell runs."""
    from harness.cli import main

    p = tmp_path / "typo.toml"
    p.write_text(text)
    assert main(["nightly", "--matrix", str(p), "--out", str(tmp_path / "h"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"hil nightly: error: {p}")
    for w in words:
        assert w in err
    assert not (tmp_path / "h" / "runs").exists() or not any((tmp_path / "h" / "runs").iterdir())
