"""Finding the TFLM tree and keying the emulator builds: the parts that need no compiler."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.deploy import tflm_build, tflm_tree
from harness.errors import BuildError, ModelError, ToolMissing
from harness.skip_groups import PLATFORMIO, needs, tools_missing


def _fake_tree(root: Path, version: str = "2.0.0") -> Path:
    for rel in tflm_tree.REQUIRED:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("// stand-in\n")
    (root / "library.properties").write_text(f"name=Chirale_TensorFLowLite\nversion={version}\n")
    return root


def test_the_environment_variable_names_the_tree_and_its_checksum_follows_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    root = _fake_tree(tmp_path / "tree")
    monkeypatch.setenv(tflm_tree.ENV_VAR, str(root))
    tflm_tree._memo.clear()
    tree = tflm_tree.find_tree()
    assert tree.root == root.resolve() and tree.version == "2.0.0" and tree.source == tflm_tree.ENV_VAR
    assert tree.checksum == tflm_tree.tree_checksum(root)
    (root / "src" / "extra.cpp").write_text("int x;\n")
    assert tflm_tree.tree_checksum(root) != tree.checksum  # any file change is another tree
    # --tflm-dir wins over the environment
    other = _fake_tree(tmp_path / "other", "2.0.1")
    assert tflm_tree.find_tree(other).version == "2.0.1"


def test_a_missing_or_incomplete_tree_is_one_line_saying_where_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tflm_tree.ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(ToolMissing, match=r"no TFLM tree at .*absent \(from HIL_TFLM_DIR\); get the "
                                          r"Chirale_TensorFLowLite 2.0.0 Arduino library"):
        tflm_tree.find_tree()
    root = _fake_tree(tmp_path / "partial")
    (root / tflm_tree.REQUIRED[0]).unlink()
    monkeypatch.setenv(tflm_tree.ENV_VAR, str(root))
    with pytest.raises(ToolMissing, match="is incomplete: no src/tensorflow/lite/micro/micro_interpreter"):
        tflm_tree.find_tree()


def _no_tree_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """No HIL_TFLM_DIR, and PlatformIO's folders moved to empty places: the lookup finds nothing."""
    monkeypatch.delenv(tflm_tree.ENV_VAR, raising=False)
    for name in ("PLATFORMIO_LIBDEPS_DIR", "PLATFORMIO_GLOBALLIB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLATFORMIO_WORKSPACE_DIR", str(tmp_path / "workspace"))
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path / "pio-core"))
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    tflm_tree._memo.clear()
    return {k: v for k, v in os.environ.items() if k != tflm_tree.ENV_VAR}


def test_platformio_library_folders_are_searched_when_nothing_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_tree_anywhere(monkeypatch, tmp_path)
    assert tflm_tree.candidates() == []
    # `pio pkg install -g` puts it in the global folder, named after the library...
    global_copy = _fake_tree(tmp_path / "pio-core" / "lib" / "Chirale_TensorFLowLite")
    tree = tflm_tree.find_tree()
    assert tree.root == global_copy.resolve() and tree.source == "PlatformIO global lib"
    # ...and `pio run` / `pio pkg install -d firmware` in the project's libdeps, which wins;
    # a GitHub tarball's folder name (other case, version suffix) is recognised as well
    project_copy = _fake_tree(tmp_path / "workspace" / "libdeps" / "nano33ble"
                              / "Chirale_TensorFlowLite-2.0.0", "2.0.0")
    (tmp_path / "workspace" / "libdeps" / "nano33ble" / "ArduinoBLE").mkdir()
    tree = tflm_tree.find_tree()
    assert tree.root == project_copy.resolve() and tree.source == "PlatformIO libdeps nano33ble"
    monkeypatch.setenv("PLATFORMIO_LIBDEPS_DIR", str(tmp_path / "elsewhere"))
    assert [root for root, _ in tflm_tree.candidates()] == [global_copy]


def test_the_checksum_is_sha256sum_of_the_sorted_file_list(tmp_path: Path) -> None:
    """The figure the module docstring's shell pipeline gives, so a user can check a tree by hand."""
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum not installed")
    root = _fake_tree(tmp_path / "tree")
    (root / "src" / "b c.cpp").write_text("int b;\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: x\n")
    shell = subprocess.run(
        "find . -type f -not -path './.git/*' -exec sha256sum {} + | LC_ALL=C sort -k2 | sha256sum",
        shell=True, cwd=root, capture_output=True, text=True, timeout=30, check=True,
    )
    assert shell.stdout.split()[0] == tflm_tree.tree_checksum(root)


def _hil_build_without_a_tree(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "build", "--board", "nano33",
                           "--emulator", "native"], capture_output=True, text=True, timeout=120, env=env)
    return proc, time.monotonic() - t0


def test_offline_a_missing_tree_fails_within_seconds_in_one_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, PlatformIO would retry its registry for a minute; the probe decides in seconds."""
    env = _no_tree_anywhere(monkeypatch, tmp_path)
    if shutil.which("pio") is None:
        pytest.skip(needs(PLATFORMIO, "pio not installed: the offline install path is not reached"))
    if shutil.which("cmake") is None or shutil.which("g++") is None:
        pytest.skip(tools_missing(["cmake", "g++"]))
    if tflm_tree.registry_answers():
        pytest.skip("PlatformIO's registry answers here: this checks the offline path")
    proc, took = _hil_build_without_a_tree(env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == ToolMissing.exit_code, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "HIL_TFLM_DIR" in lines[0] and "registry" in lines[0] and "did not answer" in lines[0]
    assert str(tmp_path / "workspace" / "libdeps") in lines[0]
    assert took < 15, f"took {took:.1f} s"
    assert not (tmp_path / "workspace").exists()  # nothing half-installed


def test_without_platformio_a_missing_tree_is_one_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _no_tree_anywhere(monkeypatch, tmp_path)
    compilers = tflm_build.TOOLCHAINS["native"].compilers
    absent = [t for t in ("cmake", *compilers) if shutil.which(t) is None]
    if absent:
        pytest.skip(tools_missing(absent))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cmake", *compilers):
        (bin_dir / tool).symlink_to(str(shutil.which(tool)))
    env["PATH"] = str(bin_dir)  # the interpreter is run by its full path; pio is not on PATH
    proc, took = _hil_build_without_a_tree(env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == ToolMissing.exit_code and len(lines) == 1, proc.stderr
    assert "PlatformIO is not installed" in lines[0] and "HIL_TFLM_DIR" in lines[0]
    assert took < 15


def test_ops_the_trees_resolver_lacks_are_refused(tmp_path: Path) -> None:
    root = _fake_tree(tmp_path / "tree")
    (root / tflm_tree.RESOLVER_HEADER).write_text(
        "TfLiteStatus AddConv2D(\nTfLiteStatus AddSoftmax (\n")
    tree = tflm_tree.TflmTree(root, "2.0.0", "0" * 64, "test")
    tree.check_ops(["AddConv2D", "AddSoftmax"], "m")
    with pytest.raises(ModelError, match="needs AddReshape, which the TFLM tree"):
        tree.check_ops(["AddConv2D", "AddReshape"], "m")


def test_a_failing_build_step_is_one_line_with_the_first_error_and_the_log(tmp_path: Path) -> None:
    script = ("import sys; print('[ 10%] Building x.cpp'); "
              "sys.stderr.write('x.cpp:3:1: error: boom\\n'); sys.exit(2)")
    with pytest.raises(BuildError) as info:
        tflm_build._run([sys.executable, "-c", script], "building the thing", 30, tmp_path,
                        tmp_path / "b.log")
    message = str(info.value)
    assert message.startswith("building the thing failed: x.cpp:3:1: error: boom")
    assert str(tmp_path / "b.log") in message and "\n" not in message
    assert "Building x.cpp" in (tmp_path / "b.log").read_text()


def test_a_build_step_that_hangs_ends_at_its_deadline(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="did not finish within 1 s"):
        tflm_build._run([sys.executable, "-c", "import time; time.sleep(30)"], "hanging", 1, tmp_path,
                        tmp_path / "h.log")


def test_library_key_changes_with_the_build_files_not_with_image_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from harness.paths import firmware_dir

    fw = tmp_path / "fw"
    shutil.copytree(firmware_dir(), fw, ignore=shutil.ignore_patterns("build", ".pio", "generated"))
    monkeypatch.setenv("HIL_FIRMWARE_DIR", str(fw))
    monkeypatch.setattr(tflm_build, "_compiler_id", lambda chain: "g++ (test) 12.2")
    tree = tflm_tree.TflmTree(tmp_path, "2.0.0", "a" * 64, "test")
    chain = tflm_build.TOOLCHAINS["native"]
    key = tflm_build.library_key(chain, tree)
    (fw / "lib/vww_tflm/cmake/vww_tflm.cmake").write_text("# changed image rules\n")
    assert tflm_build.library_key(chain, tree) == key  # linking images differently: same TFLM
    (fw / "lib/vww_tflm/cmake/tflm_library.cmake").write_text("# changed library rules\n")
    assert tflm_build.library_key(chain, tree) != key
    other_tree = tflm_tree.TflmTree(tmp_path, "2.0.0", "b" * 64, "test")
    assert tflm_build.library_key(chain, other_tree) != tflm_build.library_key(chain, tree)


def test_a_cache_folder_configured_from_another_checkout_is_reconfigured(tmp_path: Path) -> None:
    """Worktrees share cache folders (keyed by contents); real CMake refuses a folder
    configured from another source folder until its cache is dropped."""
    import shutil
    import subprocess

    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    project = "cmake_minimum_required(VERSION 3.16)\nproject(p NONE)\n"
    one, two, build = tmp_path / "one", tmp_path / "two", tmp_path / "build"
    for src in (one, two):
        src.mkdir()
        (src / "CMakeLists.txt").write_text(project)

    def configure(src: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["cmake", "-S", str(src), "-B", str(build)], capture_output=True,
                              text=True, timeout=120, check=False)

    assert configure(one).returncode == 0
    assert configure(two).returncode != 0  # what an unfinished shared build did to the others
    tflm_build._forget_other_source(build, one)  # same source: the cache stays
    assert (build / "CMakeCache.txt").is_file()
    tflm_build._forget_other_source(build, two)
    assert configure(two).returncode == 0
