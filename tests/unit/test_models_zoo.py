"""The model zoo: entries, the shipped default, sha256 checks and download instructions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness.errors import ModelError
from harness.models.zoo import get_entry, list_zoo, resolve_model
from harness.paths import reference_models_dir

#: looked up before any test points HIL_REFERENCE_MODELS elsewhere
REFERENCE = reference_models_dir()


@pytest.fixture
def no_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache and no shared reference folder."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("HIL_MODEL_CACHE", str(cache))
    monkeypatch.setenv("HIL_REFERENCE_MODELS", str(tmp_path / "absent"))
    return cache


def test_zoo_lists_reference_and_default() -> None:
    names = [e.name for e in list_zoo()]
    assert {"mlperf-vww-96", "mlperf-vww-96-keras", "vww-default"} <= set(names)
    ref = get_entry("mlperf-vww-96")
    # upstream hash from ../shared/reference/README.md
    assert ref.sha256 == "597a384c8c2c8a1276f04702f25013b7838f2f814f1ca7c174d295b73e3d6b7b"
    assert ref.url and ref.url.startswith("https://github.com/mlcommons/tiny/")
    assert ref.architecture["alpha"] == 0.25 and ref.input["shape"] == [1, 96, 96, 3]


def test_default_model_is_shipped_and_verified() -> None:
    path = resolve_model("vww-default")
    entry = get_entry("vww-default")
    assert path.suffix == ".tflite" and path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    assert (path.parent / "MODEL_CARD.md").is_file()
    assert (path.parent / "training_log.json").is_file()


def test_missing_download_says_url_and_sha(no_models: Path) -> None:
    with pytest.raises(ModelError) as err:
        resolve_model("mlperf-vww-96")
    msg = str(err.value)
    assert "download https://github.com/mlcommons/tiny/" in msg
    assert "597a384c8c2c8a1276f04702f25013b7838f2f814f1ca7c174d295b73e3d6b7b" in msg
    assert str(no_models) in msg
    assert "\n" not in msg


def test_cached_file_with_wrong_hash_is_refused(no_models: Path) -> None:
    (no_models / "mlperf_tiny_vww_96_int8.tflite").write_bytes(b"not the model")
    with pytest.raises(ModelError, match="wrong sha256"):
        resolve_model("mlperf-vww-96")


def test_cached_file_with_right_hash_is_found(no_models: Path) -> None:
    if REFERENCE is None or not (REFERENCE / "mlperf_tiny_vww_96_int8.tflite").is_file():
        pytest.skip("MLPerf Tiny reference model not found (../shared/reference/models)")
    target = no_models / "mlperf_tiny_vww_96_int8.tflite"
    target.write_bytes((REFERENCE / "mlperf_tiny_vww_96_int8.tflite").read_bytes())
    assert resolve_model("mlperf-vww-96") == target


def test_unknown_name_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model 'nope' in the zoo"):
        resolve_model("nope")
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "gone.tflite"))
    with pytest.raises(ModelError, match="is a folder"):
        resolve_model(str(tmp_path) + "/")


def test_path_is_returned_as_is(tmp_path: Path) -> None:
    f = tmp_path / "m.tflite"
    f.write_bytes(b"x")
    assert resolve_model(str(f)) == f


def test_models_command_lists_the_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "mlperf-vww-96" in out and "vww-default" in out


def test_default_is_the_reference_when_present_else_shipped(no_models: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """With no reference anywhere, None means the shipped model, and the log says why once."""
    with caplog.at_level("WARNING", logger="harness.models.zoo"):
        path = resolve_model(None)
    assert path == resolve_model("vww-default")
    assert "synthetic data" in caplog.text and "hil models fetch mlperf-vww" in caplog.text


def test_default_prefers_the_reference() -> None:
    from harness.models.zoo import reference_model_file

    ref = reference_model_file()
    if ref is None:
        pytest.skip("MLPerf Tiny reference model not found (model cache or ../shared/reference/models)")
    assert resolve_model(None) == ref
