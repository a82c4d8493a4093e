"""The PlatformIO project is accepted offline, and an unbuildable env fails fast in one line."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from deploy_tiny_model import write_tiny_model  # noqa: E402

from harness.cli import main  # noqa: E402
from harness.deploy import pio  # noqa: E402
from harness.errors import ToolMissing  # noqa: E402
from harness.paths import firmware_dir  # noqa: E402
from harness.skip_groups import PLATFORMIO, needs

PIO = shutil.which("pio") or ""
needs_pio = pytest.mark.skipif(not PIO, reason=needs(PLATFORMIO, "PlatformIO (pio) is not installed"))


@needs_pio
def test_pio_accepts_the_project() -> None:
    proc = subprocess.run([PIO, "project", "config", "-d", str(firmware_dir())],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    envs = pio.project_config(firmware_dir())
    assert set(envs) == {"nano33ble", "nano33ble_renode", "esp32cam", "nano33ble_eembc", "esp32cam_eembc"}
    nano, renode, esp = envs["nano33ble"], envs["nano33ble_renode"], envs["esp32cam"]
    assert nano.platform.startswith("nordicnrf52@") and renode.platform == nano.platform
    assert esp.platform.startswith("espressif32@")
    for env in envs.values():
        flags = env.options["build_flags"]
        assert "-std=gnu++17" in flags, env.name
        assert any("Chirale_TensorFLowLite@" in d for d in env.options["lib_deps"]), env.name
    assert "-DVWW_LINK_USB" in nano.options["build_flags"]
    assert {"-DVWW_LINK_SERIAL1", "-DVWW_NO_CAMERA"} <= set(renode.options["build_flags"])
    assert not any("OV767X" in d for d in renode.options["lib_deps"])
    assert esp.options["board_build.partitions"] == "huge_app.csv"
    assert "-DBOARD_HAS_PSRAM" in esp.options["build_flags"]


def test_platform_installed_reads_the_core_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path))
    assert not pio.platform_installed("nordicnrf52@9.5.0")
    (tmp_path / "platforms" / "nordicnrf52").mkdir(parents=True)
    assert pio.platform_installed("nordicnrf52@9.5.0")
    assert pio.platform_installed("platformio/nordicnrf52")
    assert not pio.platform_installed("espressif32")


def test_registry_probe_is_bounded() -> None:
    """A registry that takes no connection (a loopback listener whose queue is full) costs
    the probe its timeout, not PlatformIO's minute of retries."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue: later connects get no answer
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(server.getsockname())
            fillers.append(c)
        time.sleep(0.2)
        start = time.monotonic()
        assert not pio.registry_reachable(*server.getsockname(), timeout=0.5)
        assert time.monotonic() - start < 5
    finally:
        for c in fillers:
            c.close()
        server.close()


def test_registry_probe_address_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIL_PIO_REGISTRY", "127.0.0.1:9")
    assert pio.registry_address() == ("127.0.0.1", 9)
    assert not pio.registry_reachable(timeout=0.5)  # nothing listens on the discard port
    monkeypatch.delenv("HIL_PIO_REGISTRY")
    assert pio.registry_address() == (pio.REGISTRY_HOST, pio.REGISTRY_PORT)


@needs_pio
def test_build_fails_fast_in_one_line_without_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if pio.registry_reachable():
        pytest.skip("the PlatformIO registry is reachable here: a real build would start")
    fw = tmp_path / "fw"
    fw.mkdir()
    shutil.copy(firmware_dir() / "platformio.ini", fw / "platformio.ini")
    monkeypatch.setenv("HIL_FIRMWARE_DIR", str(fw))
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path / "pio-core"))
    model = write_tiny_model(tmp_path / "tiny.tflite")
    start = time.monotonic()
    code = main(["build", "--board", "nano33", "--model", str(model)])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ToolMissing.exit_code
    assert err == [
        "hil build: error: PlatformIO cannot reach its registry to install platform "
        "nordicnrf52@9.5.0; build on a machine with internet access"
    ]
    assert elapsed < 30
    # the sources were generated before PlatformIO was asked
    assert (fw / "src" / "generated" / "model_ops.h").is_file()


def test_build_no_compile_generates_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HIL_FIRMWARE_DIR", str(tmp_path / "fw"))
    model = write_tiny_model(tmp_path / "tiny.tflite")
    assert main(["build", "--board", "esp32cam", "--model", str(model), "--no-compile", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"env": "esp32cam"' in out and '"ops": [' in out
    assert (tmp_path / "fw" / "src" / "generated" / "model_data.cpp").is_file()


def test_build_refuses_a_board_without_renode_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write_tiny_model(tmp_path / "tiny.tflite")
    assert main(["build", "--board", "esp32cam", "--model", str(model), "--renode"]) != 0
    assert "has no Renode build" in capsys.readouterr().err


def _fake_pio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pio"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_failed_run_reports_the_telling_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pio(tmp_path, monkeypatch,
              'echo "Compiling .pio/build/x/src/main.cpp.o"\n'
              'echo "src/main.cpp:3:10: fatal error: generated/model_ops.h: No such file"\n'
              'echo "*** [.pio/build/x/src/main.cpp.o] Error 1"\nexit 1\n')
    with pytest.raises(ToolMissing, match=r"PlatformIO failed for x: src/main.cpp:3:10: fatal error"):
        pio.run(tmp_path, "x")


def test_run_has_a_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pio(tmp_path, monkeypatch, "exec sleep 5\n")
    start = time.monotonic()
    with pytest.raises(ToolMissing, match="upload of x did not finish within 1 s"):
        pio.run(tmp_path, "x", targets=("upload",), timeout=1.0)
    assert time.monotonic() - start < 4


@needs_pio
def test_broken_project_is_one_config_error(tmp_path: Path) -> None:
    from harness.errors import ConfigError

    (tmp_path / "platformio.ini").write_text("[env:a]\nplatform = x\nbuild_flags = ${nosuch.flags}\n")
    with pytest.raises(ConfigError, match="PlatformIO rejects") as exc:
        pio.project_config(tmp_path)
    assert "\n" not in str(exc.value)
