"""Finding the TFLM tree and keying the emulator builds: the parts that need no compiler."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.deploy import tflm_build, tflm_tree
from harness.errors import BuildError, ModelError, ToolMissing


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
