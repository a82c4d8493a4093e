"""Bad images stay error rows (or are decoded small), and never blow up the host's memory.

Two real ``hil bench`` runs on the sim, each in its own child process so that its peak RSS
is its own: a normal data set, and the same set with the worst images a user may hand
over (an 8000x8000 JPEG, a PNG whose header claims 400 M pixels, a 36 M-pixel PNG just
under the decode limit, a truncated file). The bad run's peak must stay within 4x the
normal run's (issue 12: one 8000x8000 JPEG used to take the host to about 1 GB).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

UNIT_DIR = Path(__file__).resolve().parents[1] / "unit"
if str(UNIT_DIR) not in sys.path:
    sys.path.insert(0, str(UNIT_DIR))

from bench_fakes import make_image_folder  # noqa: E402

CHILD = """
import json, resource, sys
from harness.bench.api import run_bench
from harness.bench.request import BenchRequest
from harness.bench.store import load_run
folder = run_bench(BenchRequest(model=sys.argv[1], data=sys.argv[2], out_dir=sys.argv[3]))
m = load_run(folder).manifest
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "n": m["metrics"]["n"], "n_ok": m["metrics"]["n_ok"], "errors": m["errors"]}))
"""


def _png_header_bomb(path: Path, side: int = 20_000) -> None:
    """A valid PNG signature and IHDR claiming ``side`` x ``side`` RGB pixels, and almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def _ramp(side: int) -> Image.Image:
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    return Image.fromarray(((ramp[None, :] + ramp[:, None]) / 2).astype(np.uint8), "L")


def _run(model: Path, data: Path, out: Path) -> dict[str, object]:
    env = {**os.environ, "HIL_MAX_IMAGE_PIXELS": "70000000"}  # lets the 8000x8000 JPEG be decoded (by draft)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), str(data), str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_bad_images_are_error_rows_within_4x_a_normal_runs_peak_memory(tmp_path: Path) -> None:
    from harness.errors import HarnessError
    from harness.models.zoo import resolve_model

    try:
        model = resolve_model("vww-default")
    except HarnessError as exc:
        pytest.skip(f"no shipped default model: {exc}")
    normal = make_image_folder(tmp_path / "normal", 6, size=(128, 96))
    bad = make_image_folder(tmp_path / "bad", 6, size=(128, 96), corrupt=(1,))
    extra = {"big.jpg": "jpeg", "bomb.png": "bomb", "near_limit.png": "png"}
    _ramp(8000).save(bad / "big.jpg", quality=80)
    _png_header_bomb(bad / "bomb.png")
    _ramp(6000).convert("RGB").save(bad / "near_limit.png", compress_level=1)
    with open(bad / "labels.csv", "a", encoding="utf-8") as fh:
        for name in extra:
            fh.write(f"{name},1,test,bright\n")

    base = _run(model, normal, tmp_path / "runs-normal")
    worst = _run(model, bad, tmp_path / "runs-bad")
    assert base["n_ok"] == 6
    errors = " ".join(str(e) for e in worst["errors"])  # type: ignore[attr-defined]
    assert worst["n"] == 9 and worst["n_ok"] == 7, worst  # the JPEG and the 36 M-pixel PNG decode
    assert "bomb.png: image too large" in errors and "img_00001" in errors
    ratio = int(worst["peak_kib"]) / int(base["peak_kib"])  # type: ignore[call-overload]
    print(f"peak RSS: normal {int(base['peak_kib']) // 1024} MiB, "  # type: ignore[call-overload]
          f"bad images {int(worst['peak_kib']) // 1024} MiB, x{ratio:.2f}")  # type: ignore[call-overload]
    assert ratio <= 4.0, f"decoding bad images took the peak RSS to {ratio:.1f}x a normal run's"
