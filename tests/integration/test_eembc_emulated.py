"""EEMBC on the real firmware: the native and QEMU images built with the EEMBC loop.

``hil serve --backend native|qemu --protocol eembc`` runs the firmware the boards run
(TFLM + CMSIS-NN with the model compiled in, the C++ EEMBC loop of firmware/lib/vww_core)
behind a pty (QEMU's UART socket relayed to one). The unmodified MLPerf Tiny runner's
Top-1 on a few real images must equal ``hil bench --protocol eembc`` through the same
pty, which must equal ``hil bench`` over protocol v1 on the sim. Skips, in one line, when
a compiler, QEMU or the TFLM tree is absent; the first run builds the images (cached).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_eembc_serve import Served, _hil, run_official_runner  # noqa: E402

from harness.models.zoo import reference_model_file  # noqa: E402
from harness.skip_groups import REFERENCE_MODELS, TFLM_TREE, needs, tools_missing

N_IMAGES = 3
BUILD_S = 900  # a cold cache compiles TFLM for the target first


def _tools_or_skip(backend: str) -> None:
    from harness.deploy.tflm_build import TOOLCHAINS
    from harness.deploy.tflm_tree import find_tree
    from harness.errors import HarnessError

    needed = ["cmake", *TOOLCHAINS[backend].compilers] + (["qemu-system-arm"] if backend == "qemu" else [])
    missing = [t for t in needed if shutil.which(t) is None]
    if missing:
        pytest.skip(tools_missing(missing, f": no {backend} firmware"))
    try:
        find_tree()
    except HarnessError as exc:
        pytest.skip(needs(TFLM_TREE, str(exc)))


def _bench_accuracy(model: Path, data: Path, out: Path, *extra: str) -> float:
    proc = _hil("bench", "--model", str(model), "--data", str(data), "--limit", str(N_IMAGES),
                "--out", str(out), "--quiet", *extra, timeout=300)
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip().splitlines()[-1].split("run folder: ")[-1])
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["metrics"]["n_ok"] == N_IMAGES
    return 100 * float(manifest["metrics"]["accuracy"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["native", "qemu"])
def test_runner_and_bench_agree_on_the_eembc_firmware(backend: str, tmp_path: Path) -> None:
    model = reference_model_file()
    if model is None:
        pytest.skip(needs(REFERENCE_MODELS,
                          "the MLPerf Tiny reference model is absent (hil models fetch mlperf-vww)"))
    _tools_or_skip(backend)
    from harness.data.smoke import default_dataset

    data = Path(default_dataset())
    exported = _hil("data", "export", "--format", "mlperf-tiny", str(data), str(tmp_path / "datasets"),
                    "--model", str(model), "--limit", str(N_IMAGES))
    assert exported.returncode == 0, exported.stderr
    served = Served(tmp_path / "dut.pty", model=model, backend=backend, ready_s=BUILD_S)
    try:
        # the banner says what the lap times are: host time (native), a QEMU-derived estimate
        assert any(("ESTIMATED from QEMU" in line and "CPI" in line) if backend == "qemu"
                   else "host clock" in line for line in served.banner)
        text = run_official_runner(tmp_path, served.link, tmp_path / "datasets", "a")
        top1 = re.search(r"Top 1% = ([0-9.]+)", text)
        assert top1, text[-3000:]
        over_eembc = _bench_accuracy(model, data, tmp_path / "runs", "--protocol", "eembc",
                                     "--port", str(served.link))
    finally:
        assert served.stop() == 0
    on_sim = _bench_accuracy(model, data, tmp_path / "runs")
    assert float(top1.group(1)) == pytest.approx(over_eembc, abs=0.05)
    assert over_eembc == pytest.approx(on_sim)
