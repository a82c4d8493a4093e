"""``hil models fetch``: real downloads from a local HTTP server, verified and atomic."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.models.zoo import (
    DEFAULT_MODEL,
    REFERENCE_MODEL,
    entry_file,
    get_entry,
    provenance_path,
    reference_model_file,
    resolve_model,
)
from harness.skip_groups import REFERENCE_MODELS, needs


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A localhost HTTP server over a folder; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _hil(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def _reference_source() -> Path:
    ref = reference_model_file()
    if ref is None:
        pytest.skip(needs(REFERENCE_MODELS,
                          "MLPerf Tiny reference model not found (model cache, ../shared/reference/models)"))
    return ref.parent


def test_fetch_stores_verified_files_with_licence(served: tuple[str, Path], tmp_path: Path) -> None:
    src = _reference_source()
    base, root = served
    for name in ("vww_96_int8.tflite", "vww_96_float.tflite"):
        shutil.copy(src / f"mlperf_tiny_{name}", root / name)
    cache = tmp_path / "cache"
    r = _hil("models", "fetch", "mlperf-vww",
             env={"HIL_MODEL_CACHE": str(cache), "HIL_MODEL_URL_BASE": base})
    assert r.returncode == 0, r.stderr
    int8 = cache / get_entry(REFERENCE_MODEL).filename
    assert int8.is_file() and (cache / "mlperf_tiny_vww_96_float.tflite").is_file()
    record = json.loads(provenance_path(int8).read_text())
    assert record["licence"] == "Apache-2.0" and record["sha256"] == get_entry(REFERENCE_MODEL).sha256
    assert record["source"].startswith("https://github.com/mlcommons/tiny/")
    assert record["fetched_from"].startswith(base) and record["fetched_utc"].endswith("Z")
    assert sorted(p.name for p in cache.iterdir()) == sorted([
        int8.name, f"{int8.name}.source.json",
        "mlperf_tiny_vww_96_float.tflite", "mlperf_tiny_vww_96_float.tflite.source.json",
    ])  # fmt: skip
    # with ../shared hidden, the zoo finds the reference in the cache it was fetched to
    hidden = {"HIL_MODEL_CACHE": str(cache), "HIL_REFERENCE_MODELS": str(tmp_path / "no")}
    r = _hil("models", "--json", env=hidden)
    listed = {row["name"]: row["file"] for row in json.loads(r.stdout)}
    assert listed[REFERENCE_MODEL] == str(int8)


def test_fetch_hash_mismatch_leaves_nothing(served: tuple[str, Path], tmp_path: Path) -> None:
    base, root = served
    (root / "vww_96_int8.tflite").write_bytes(b"not the model" * 100)
    cache = tmp_path / "cache"
    r = _hil("models", "fetch", REFERENCE_MODEL,
             env={"HIL_MODEL_CACHE": str(cache), "HIL_MODEL_URL_BASE": base})
    assert r.returncode != 0
    assert "sha256" in r.stderr and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1
    assert list(cache.iterdir()) == []


def test_fetch_offline_is_one_line(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # a closed localhost port stands in for "no internet"
    r = _hil("models", "fetch", REFERENCE_MODEL,
             env={"HIL_MODEL_CACHE": str(cache), "HIL_MODEL_URL_BASE": "http://127.0.0.1:9"})
    assert r.returncode != 0
    assert "cannot download" in r.stderr and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1
    assert not cache.exists() or list(cache.iterdir()) == []


def test_no_reference_env_keeps_the_shipped_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """HIL_NO_REFERENCE=1 makes None the shipped model even where the reference is present."""
    monkeypatch.setenv("HIL_NO_REFERENCE", "1")
    assert resolve_model(None) == entry_file(get_entry(DEFAULT_MODEL))
    monkeypatch.setenv("HIL_NO_REFERENCE", "0")
    ref = reference_model_file()
    assert resolve_model(None) == (ref if ref is not None else entry_file(get_entry(DEFAULT_MODEL)))
