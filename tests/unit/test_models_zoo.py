"""The model zoo: entries, the shipped default, sha256 checks and download instructions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness.errors import ModelError
from harness.models.zoo import get_entry, list_zoo, resolve_model
from harness.paths import reference_models_dir
from harness.skip_groups import REFERENCE_MODELS, needs

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
        pytest.skip(needs(REFERENCE_MODELS,
                          "MLPerf Tiny reference model not found (../shared/reference/models)"))
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
        pytest.skip(needs(REFERENCE_MODELS,
                          "MLPerf Tiny reference model not found (model cache, ../shared/reference/models)"))
    assert resolve_model(None) == ref


# -- the card schema: one line naming the file, the key and what was expected -------------------

GOOD_CARD = (Path(__file__).resolve().parents[2] / "models" / "vww-default.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('format = "tflite-int8"', 'format = "onnx"', "format = 'onnx' is wrong: expected one of tflite"),
        ("alpha = 0.25", 'alpha = "small"', "architecture.alpha = 'small' is wrong: expected a number > 0"),
        ("alpha = 0.25", "alpha = -1", "architecture.alpha = -1 is wrong"),
        ("resolution = 96", "resolution = 0", "architecture.resolution = 0 is wrong: expected an integer"),
        ("channels = 3", "channels = 2", "architecture.channels = 2 is wrong: expected 1 (grayscale) or 3"),
        ("shape = [1, 96, 96, 3]", 'shape = "96x96"', "input.shape = '96x96' is wrong: expected a list"),
        ("shape = [1, 96, 96, 3]", "shape = [1, 96, 96, 1]", "expected its last dimension to be"),
        ('sha256 = "0a2a', 'sha256 = "zz2a', "source.sha256 = 'zz2a"),
        ('origin = "project"', 'origin = "ftp"', "source.origin = 'ftp' is wrong: expected project or url"),
        ('licence = "Apache-2.0"\n', "", "lacks the field 'licence'"),
        ('origin = "project"', 'origin = "url"', "lacks the field 'source.url'"),
    ],
    ids=["format", "alpha-type", "alpha-range", "resolution", "channels", "shape-type", "shape-channels",
         "sha256", "origin", "licence-missing", "url-missing"],
)
def test_a_broken_card_is_one_line_naming_file_key_and_expectation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, message: str
) -> None:
    from harness.errors import ConfigError

    assert old in GOOD_CARD
    card = tmp_path / "broken.toml"
    card.write_text(GOOD_CARD.replace(old, new, 1), encoding="utf-8")
    monkeypatch.setenv("HIL_ZOO_DIR", str(tmp_path))
    with pytest.raises(ConfigError) as err:
        list_zoo()
    text = str(err.value)
    assert message in text and str(card) in text and "\n" not in text


def test_a_card_that_is_not_utf8_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import ConfigError

    (tmp_path / "latin1.toml").write_bytes(GOOD_CARD.replace("Default", "D\xe9faut").encode("latin-1"))
    monkeypatch.setenv("HIL_ZOO_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"latin1\.toml is not UTF-8 text \(byte \d+"):
        list_zoo()


def test_hil_bench_with_a_broken_card_exits_2_without_a_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "vww-default.toml").write_text(GOOD_CARD.replace("num_classes = 2", "num_classes = 0"))
    env = {**os.environ, "HIL_ZOO_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", "--model", "vww-default", "--quiet"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and "architecture.num_classes = 0 is wrong: expected an integer >= 1" in lines[0]
