"""EEMBC both ways on the real simulated board, served by ``hil serve`` on a real pty.

- the UNMODIFIED official MLPerf Tiny runner (a checkout of github.com/mlcommons/tiny, or
  of its ``benchmark/runner/``, named by ``HIL_MLPERF_TINY_RUNNER``; copied to a temporary
  folder, run by ``../shared/tools/mlperf-tiny/run_runner.py``, which shows it the pty as a
  USB port) answers in accuracy mode on real smoke images exported with ``hil data
  export``, and its ``Top 1%`` equals ``hil bench``'s accuracy on them; in performance
  mode it prints a median throughput. Without the checkout those tests skip in one line;
- ``hil bench --protocol eembc --port LINK`` through the same pty gives the same
  accuracy and outputs as ``hil bench`` over protocol v1 on the same images.

Everything here is one ``hil serve`` process (TFLM loads once). Performance mode needs
5 windows and, for the runner not to call the loop too short (its "ERROR 2"), 10 s of
wall time in all: the sim runs a real TFLM inference in about 10 ms, so the tests file
asks for ``infer 300 1`` per window (each window is then ~86 s of *estimated* device
time, over the 10 s the runner wants of one window).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.models.zoo import reference_model_file
from harness.skip_groups import MLPERF_RUNNER, REFERENCE_MODELS, needs

RUNNER_ENV = "HIL_MLPERF_TINY_RUNNER"
#: the launcher that runs any checkout of the runner against a port without USB ids, and its devices file
LAUNCHER_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "tools" / "mlperf-tiny"
N_IMAGES = 6
PERF_INFER = "infer 300 1"
RUNNER_TIMEOUT_S = 120


def _hil(*args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


class Served:
    """One ``hil serve`` child and the link it made."""

    def __init__(self, link: Path, protocol: str = "eembc", model: Path | None = None, *,
                 backend: str = "sim", ready_s: float = 90) -> None:
        cmd = [sys.executable, "-m", "harness.cli", "serve", "--protocol", protocol, "--backend", backend,
               "--link", str(link)]
        if model is not None:
            cmd += ["--model", str(model)]
        self.link = link
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.banner: list[str] = []
        deadline = time.monotonic() + ready_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()  # the child prints its banner within seconds or dies
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"hil serve ended before it was ready: {err}")
            self.banner.append(line.strip())
            if "ready" in line:
                return
        self.stop()
        raise AssertionError(f"hil serve was not ready within {ready_s:g} s")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError("hil serve did not stop on SIGTERM within 15 s") from None


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    model = reference_model_file()
    if model is None:
        pytest.skip(needs(REFERENCE_MODELS, "the MLPerf Tiny reference model is absent (hil models fetch "
                                            "mlperf-vww)"))
    from harness.data.smoke import default_dataset

    tmp = tmp_path_factory.mktemp("eembc")
    data = Path(default_dataset())
    exported = _hil("data", "export", "--format", "mlperf-tiny", str(data), str(tmp / "datasets"),
                    "--model", str(model), "--limit", str(N_IMAGES))
    assert exported.returncode == 0, exported.stderr
    served = Served(tmp / "dut.pty", model=model)
    try:
        yield {"tmp": tmp, "model": model, "data": data, "link": served.link, "datasets": tmp / "datasets",
               "banner": served.banner}
    finally:
        assert served.stop() == 0
        assert not served.link.exists(), "hil serve left its link behind"


def _bench(setup: dict[str, Any], *extra: str) -> dict[str, object]:
    out = setup["tmp"] / "runs"
    proc = _hil("bench", "--model", str(setup["model"]), "--data", str(setup["data"]), "--limit",
                str(N_IMAGES), "--out", str(out), "--quiet", *extra)
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip().splitlines()[-1].split("run folder: ")[-1])
    manifest: dict[str, object] = json.loads((folder / "run.json").read_text())
    manifest["_folder"] = str(folder)
    return manifest


@pytest.fixture(scope="module")
def v1_run(setup: dict[str, Any]) -> dict[str, object]:
    """``hil bench`` over protocol v1 on the sim, on the exported images: the figures to match."""
    return _bench(setup)


def test_serve_links_a_pty_and_says_latency_is_estimated(setup: dict[str, Any]) -> None:
    link = setup["link"]
    assert link.is_symlink() and os.readlink(link).startswith("/dev/pts/")
    assert any("ESTIMATED" in line and "cost model" in line for line in setup["banner"])


def test_bench_over_eembc_through_serve_matches_v1(setup: dict[str, Any], v1_run: dict[str, Any]) -> None:
    """The host end against the device end: the same accuracy and outputs as protocol v1."""
    from harness.results import load_run

    eembc = _bench(setup, "--protocol", "eembc", "--port", str(setup["link"]))
    v1 = v1_run
    assert eembc["protocol"] == "eembc" and v1["protocol"] == "v1"
    # the served sim announces that its lap times are its cost model's estimate (issue 20 item 1)
    assert eembc["latency_source"] == "estimated"
    lat_block = eembc["latency"]
    assert isinstance(lat_block, dict) and lat_block["kind"] == "estimated"
    assert "as the device announced" in lat_block["label"]
    me, mv = eembc["metrics"], v1["metrics"]
    assert isinstance(me, dict) and isinstance(mv, dict)
    assert me["n_ok"] == mv["n_ok"] == N_IMAGES
    assert me["accuracy"] == mv["accuracy"]
    assert me["host_mismatches"] == 0
    assert "EEMBC" in str(eembc["model_check"])
    assert eembc["memory"] == {"unavailable": "unavailable: the EEMBC protocol has no command for it"}
    re_, rv = load_run(str(eembc["_folder"])), load_run(str(v1["_folder"]))
    out_e = dict(zip(re_.rows["image_id"], re_.rows["output_q"].map(list), strict=True))
    out_v = dict(zip(rv.rows["image_id"], rv.rows["output_q"].map(list), strict=True))
    assert out_e == out_v
    # the sim's lap times are the cost model's estimate, the same figure v1 reports in cycles
    lat_e = set(re_.rows["latency_us"].round(0))
    lat_v = set(rv.rows["latency_us"].round(0))
    assert len(lat_e) == 1 and abs(lat_e.pop() - lat_v.pop()) <= 1
    # the report shows the runner's figures beside the harness's, and which is which
    report = _hil("report", str(eembc["_folder"]))
    assert report.returncode == 0, report.stderr
    page = (Path(str(eembc["_folder"])) / "report.html").read_text()
    assert "MLPerf Tiny (EEMBC) figures" in page and "runner&#x27;s way" in page
    assert "harness&#x27;s way" in page and "too short" in page


def test_serve_v1_answers_hil_bench(setup: dict[str, Any], v1_run: dict[str, Any]) -> None:
    """``hil serve --protocol v1``: the same sim, the binary protocol, through the serial backend."""
    served = Served(setup["tmp"] / "v1.pty", protocol="v1", model=setup["model"])
    try:
        over_pty = _bench(setup, "--port", str(served.link))
    finally:
        assert served.stop() == 0
    assert not served.link.exists()
    assert over_pty["protocol"] == "v1" and over_pty["backend"] == "serial"
    m, mv = over_pty["metrics"], v1_run["metrics"]
    assert isinstance(m, dict) and isinstance(mv, dict)
    assert m["accuracy"] == mv["accuracy"] and m["n_ok"] == N_IMAGES


def official_runner() -> Path:
    """The runner folder (``benchmark/runner/``) of the checkout ``HIL_MLPERF_TINY_RUNNER`` names.

    The runner is third-party and in no package registry, so it is never copied into the
    project: a user points the variable at a checkout of mlcommons/tiny or of its runner
    folder. Without one (or without the launcher), the tests that run it skip in one line.
    """
    named = os.environ.get(RUNNER_ENV)
    if not named:
        pytest.skip(needs(MLPERF_RUNNER, f"{RUNNER_ENV} unset: set it to a checkout of "
                                         "github.com/mlcommons/tiny (or of its benchmark/runner/)"))
    root = Path(named).expanduser()
    runner = next((d for d in (root / "benchmark" / "runner", root) if (d / "main.py").is_file()), None)
    if runner is None:
        pytest.fail(f"{RUNNER_ENV}={named} holds neither benchmark/runner/main.py nor main.py", pytrace=False)
    if not (LAUNCHER_DIR / "run_runner.py").is_file():
        pytest.skip(needs(MLPERF_RUNNER, f"no launcher {LAUNCHER_DIR / 'run_runner.py'} for the runner"))
    for module, package in (("sklearn", "scikit-learn"), ("usb", "pyusb")):
        pytest.importorskip(module, reason=needs(MLPERF_RUNNER, f"the runner imports {package} "
                                                                "(pip install -e .[dev])"))
    return runner


def run_official_runner(tmp: Path, link: Path, datasets: Path, mode: str, *extra: str) -> str:
    """The official runner, copied to ``tmp`` (it writes sessions/ beside itself), against ``link``."""
    runner = official_runner()
    copy = tmp / f"runner-{mode}"
    if not copy.exists():
        shutil.copytree(runner, copy, ignore=shutil.ignore_patterns("sessions", "*.wav", "__pycache__"))
    proc = subprocess.run(
        [sys.executable, str(LAUNCHER_DIR / "run_runner.py"), "--port", str(link), "--runner", str(copy),
         "--", "--device_list", str(LAUNCHER_DIR / "devices_pty.yaml"), "--mode", mode,
         "--dataset_path", str(datasets), *extra],
        capture_output=True, text=True, timeout=RUNNER_TIMEOUT_S, cwd=copy,
    )
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text[-3000:]
    return text


def test_official_runner_accuracy_equals_hil_bench(setup: dict[str, Any], v1_run: dict[str, Any]) -> None:
    text = run_official_runner(setup["tmp"], setup["link"], setup["datasets"], "a")
    top1 = re.search(r"Top 1% = ([0-9.]+)", text)
    auc = re.search(r"AUC = ([0-9.]+)", text)
    assert top1 and auc, text[-3000:]
    metrics = v1_run["metrics"]
    assert isinstance(metrics, dict)
    assert float(top1.group(1)) == pytest.approx(100 * float(metrics["accuracy"]), abs=0.05)
    assert text.count("Loading file") == N_IMAGES


def test_official_runner_performance_mode(setup: dict[str, Any], v1_run: dict[str, Any]) -> None:
    tests = setup["tmp"] / "tests_performance_short.yaml"
    tests.write_text(
        "vww01:\n  name: person_detection\n  model: vww01\n  truth_file: y_labels.csv\n"
        f"  script:\n    - loop 5:\n      - download\n      - {PERF_INFER}\n"
    )
    text = run_official_runner(setup["tmp"], setup["link"], setup["datasets"], "p", "-t", str(tests))
    m = re.search(r"Median throughput is\s+([0-9.]+) inf\./sec\.", text)
    assert m, text[-3000:]
    assert "ERROR" not in text
    assert text.count("Runtime requirements have been met.") == 5
    metrics = v1_run["metrics"]
    assert isinstance(metrics, dict)
    # throughput from the lap times is the inverse of the sim's estimated latency
    assert float(m.group(1)) == pytest.approx(1e6 / float(metrics["latency_us_p50"]), rel=1e-3)
