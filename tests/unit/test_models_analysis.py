"""`hil analyze`: MAC counts checked against independent counts, arena from real TFLM, fit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.boards import list_boards, load_board
from harness.errors import ModelError
from harness.models.analysis import analyze
from harness.models.tflm_child import ArenaReport, parse_allocations
from harness.models.zoo import entry_file, get_entry, reference_model_file, resolve_model
from harness.skip_groups import REFERENCE_MODELS, needs

# MobileNetV1, Howard et al. 2017, table 1: (pointwise filters at alpha 1, depthwise stride).
PAPER_BLOCKS = (
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
    + [(512, 1)] * 5
    + [
        (1024, 2),
        (1024, 1),
    ]
)


def hand_count_macs(alpha: float, res: int, channels: int, classes: int = 2) -> int:
    """MACs of MobileNetV1 from the paper's table, BN folded, pooling and softmax free."""
    size = math.ceil(res / 2)
    c = int(32 * alpha)
    macs = size * size * 3 * 3 * channels * c
    for filters, stride in PAPER_BLOCKS:
        size = math.ceil(size / stride)
        n = int(filters * alpha)
        macs += size * size * 9 * c + size * size * c * n
        c = n
    return macs + c * classes


def h5_count_macs(path: Path) -> int:
    """MACs from the layer configs and kernel shapes stored in a Keras HDF5 file."""
    h5py = pytest.importorskip("h5py")

    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = f["model_weights"]
        size = None
        macs = 0
        for layer in config["config"]["layers"]:
            cfg, kind = layer["config"], layer["class_name"]
            if kind == "InputLayer":
                size = cfg["batch_input_shape"][1]
            if kind not in ("Conv2D", "DepthwiseConv2D", "Dense"):
                continue
            g = weights[cfg["name"]][cfg["name"]]
            kernel = next(v for k, v in g.items() if "kernel" in k).shape
            if kind == "Dense":
                macs += kernel[0] * kernel[1]
                continue
            size = math.ceil(size / cfg["strides"][0])
            kh, kw, cin, cout = kernel
            macs += size * size * kh * kw * cin * cout  # depthwise kernels are kh x kw x C x 1
        return macs


@pytest.fixture(scope="module")
def reference() -> Path:
    """The MLPerf Tiny int8 reference model file (model cache or ../shared/reference)."""
    ref = reference_model_file()
    if ref is None:
        pytest.skip(needs(REFERENCE_MODELS,
                          "MLPerf Tiny reference model not found (../shared/reference/models)"))
    return ref


def _zoo_file(name: str) -> Path:
    """A published zoo model found by the same lookup, or a skip saying it is absent."""
    try:
        return entry_file(get_entry(name))
    except ModelError:
        pytest.skip(needs(REFERENCE_MODELS, f"{name} not found (model cache or ../shared/reference/models)"))


def test_mlperf_macs_agree_with_independent_counts(reference: Path) -> None:
    a = analyze(reference, arena=False)
    assert a.total_macs == hand_count_macs(0.25, 96, 3)
    assert a.total_macs == h5_count_macs(_zoo_file("mlperf-vww-96-keras"))
    assert len(a.pairs) == 13 and all(p.agrees for p in a.pairs)
    assert a.flash_bytes == 333_288


def test_mlperf_arena_from_tflm_and_fit(reference: Path) -> None:
    boards = list_boards()
    a = analyze(reference, boards)
    assert a.arena_bytes is not None and a.arena_32bit_bytes is not None
    # the arena holds at least the two largest coexisting activations, and less than 256 KiB
    assert a.peak_activation_bytes <= a.arena_32bit_bytes < a.arena_bytes < 256 * 1024
    for est in a.boards:
        assert est.fit.fits, est.fit.reason()
        assert est.latency_ms > 0
    # more clock, same cost model form: the estimate scales with cycles / clock
    nano = next(b for b in a.boards if b.board == "nano33")
    assert nano.latency_ms == pytest.approx(nano.cycles / load_board("nano33").clock_hz * 1e3)


def test_shipped_default_fits_both_boards() -> None:
    path = resolve_model("vww-default")
    a = analyze(path, list_boards())
    assert a.total_macs == hand_count_macs(0.25, 96, 3)
    assert all(p.agrees for p in a.pairs)
    nano = load_board("nano33")
    assert a.flash_bytes <= nano.flash_for_model
    assert (a.arena_32bit_bytes or 0) + a.input_bytes <= nano.ram_for_arena
    assert all(b.fit.fits for b in a.boards)


def test_analyze_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["analyze", "--json", "--board", "nano33"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_macs"] == sum(layer["macs"] for layer in data["layers"])
    assert data["boards"][0]["board"] == "nano33"
    assert data["arena_bytes_host"] > 0


def test_truncated_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    bad = tmp_path / "cut.tflite"
    bad.write_bytes(resolve_model(None).read_bytes()[:4000])
    with pytest.raises(ModelError):
        analyze(bad, arena=False)
    assert main(["analyze", str(bad)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hil analyze: error:")


def test_float_model_refused(reference: Path) -> None:
    with pytest.raises(ModelError, match="float32 input"):
        analyze(_zoo_file("mlperf-vww-96-float"), arena=False)


def test_allocation_report_parsing() -> None:
    text = """[RecordingMicroAllocator] Arena allocation total 1000 bytes
[RecordingMicroAllocator] Arena allocation head 600 bytes
[RecordingMicroAllocator] Arena allocation tail 400 bytes
[RecordingMicroAllocator] 'TfLiteEvalTensor data' used 240 bytes with alignment overhead (requested 240 bytes for 10 allocations)
[RecordingMicroAllocator] 'Persistent buffer data' used 100 bytes with alignment overhead (requested 96 bytes for 2 allocations)
[RecordingMicroAllocator] 'NodeAndRegistration struct' used 60 bytes with alignment overhead (requested 60 bytes for 1 NodeAndRegistration structs)
"""  # noqa: E501
    r = parse_allocations(text)
    assert (r.total, r.head, r.tail) == (1000, 600, 400)
    assert r.parts["Persistent buffer data"] == 100
    # pointer-heavy parts halve on a 32-bit target, int32 kernel data does not
    assert r.estimate_32bit == 1000 - (240 + 60) // 2
    assert ArenaReport(10, 10, 0).estimate_32bit == 10
    with pytest.raises(ModelError):
        parse_allocations("nothing here")


def _big_and_tiny(tmp_path: Path) -> tuple[Path, Path]:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from deploy_tiny_model import write_tiny_model

    # 200x200x1 through an 8-filter conv: 313,632 B of conv output, 627,264 B across the reshape
    big = write_tiny_model(tmp_path / "big.tflite", side=200, filters=8)
    return big, write_tiny_model(tmp_path / "tiny.tflite")


def test_no_arena_json_never_says_fits_beyond_the_peak_activations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20 item 4: without the arena run, the peak activations still bound the RAM."""
    from harness.cli import main

    big, tiny = _big_and_tiny(tmp_path)
    assert main(["analyze", str(big), "--board", "nano33", "--no-arena", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["peak_activation_bytes"] > 256 * 1024
    (nano,) = out["boards"]
    assert nano["fits"] is False and nano["arena_measured"] is False
    assert nano["reason"].startswith(
        f"RAM: peak activations {out['peak_activation_bytes']:,} B (the arena's lower bound) + input 40,000 B"
    )
    assert nano["ram_spare_bytes"] < 0
    # Within the bound the answer is unknown, not "fits"; the text says which part is unknown.
    assert main(["analyze", str(tiny), "--board", "nano33", "--no-arena", "--json"]) == 0
    (nano,) = json.loads(capsys.readouterr().out)["boards"]
    assert nano["fits"] is None and nano["reason"] == ""
    assert main(["analyze", str(tiny), "--board", "nano33", "--no-arena", "--summary"]) == 0
    assert "fits flash; RAM unknown (arena not measured; its lower bound fits)" in capsys.readouterr().out


def test_analyze_checks_the_arena_the_build_allocates_beside_the_firmware(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.boards import allocated_arena
    from harness.cli import main

    _, tiny = _big_and_tiny(tmp_path)
    assert main(["analyze", str(tiny), "--board", "nano33", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (nano,) = out["boards"]
    arena = allocated_arena(out["arena_bytes_32bit_estimate"])
    budget = load_board("nano33").ram_budget
    assert budget is not None
    assert nano["fits"] is True and nano["ram"].startswith(f"arena {arena:,} B + input 64 B + camera frame")
    assert nano["ram_spare_bytes"] == 262_144 - arena - 64 - budget.total


def test_hil_build_refuses_an_arena_the_firmware_leaves_no_room_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """140 KB of arena passed the old arena-against-RAM check; beside the firmware it does not fit."""
    from harness.cli import main
    from harness.errors import FitError

    monkeypatch.setenv("HIL_FIRMWARE_DIR", str(tmp_path / "fw"))
    _, tiny = _big_and_tiny(tmp_path)
    rc = main(["build", "--board", "nano33", "--model", str(tiny), "--arena", "140000", "--no-compile"])
    err = capsys.readouterr().err
    assert rc == FitError.exit_code and err.count("\n") == 1
    assert "does not fit nano33: RAM: arena 161,008 B + input 64 B + camera frame 50,688 B" in err
    assert not (tmp_path / "fw" / "src" / "generated").exists()
    fits = ["build", "--board", "nano33", "--model", str(tiny), "--arena", "100000", "--no-compile"]
    assert main(fits) == 0
    assert "RAM budget: arena 115,008 B + input 64 B + camera frame 50,688 B" in capsys.readouterr().out
