"""`hil data smoke|synth|import|audit|info` end to end through the CLI."""

from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import ExifTags, Image

from harness.cli import main
from harness.data.dataset import Dataset
from harness.data.licenses import SHIPPABLE
from harness.data.smoke import SMOKE_MANIFEST, default_dataset


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _png(size: tuple[int, int] = (20, 16), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def test_smoke_is_default_and_real(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "smoke"]) == 0
    assert "smoke (real)" in capsys.readouterr().out
    path = default_dataset()
    assert path == cache / "datasets" / "smoke"
    ds = Dataset.open(path)
    assert not ds.synthetic and ds.count()[1] >= 3 and ds.count()[0] >= 10
    table = pq.read_table(path / "manifest.parquet").to_pylist()
    assert {r["license"] for r in table} <= set(SHIPPABLE)
    assert all(r["attribution"] for r in table if r["license"] == "cc-by-2.0")
    for s in ds.iter_samples():
        assert s.load_rgb().shape == (96, 96, 3)
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert "Data set card: smoke" in out and "not in allow-list" in out


def test_smoke_manifest_rows_are_complete() -> None:
    with SMOKE_MANIFEST.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["label"] in {"0", "1"}
        assert len(r["label_reason"]) > 15 and len(r["license_evidence"]) > 15
        assert (r["n_persons"] == "0") == (r["label"] == "0")


def test_synth_cli_and_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "syn"
    rc = main(
        ["data", "synth", "--n", "12", "--seed", "3", "--size", "32", "--out", str(out), "--workers", "1"]
    )
    assert rc == 0 and "SYNTHETIC" in capsys.readouterr().out
    assert main(["data", "info", str(out)]) == 0
    assert "SYNTHETIC DATA" in capsys.readouterr().out
    rc = main(["data", "synth", "--n", "5", "--size", "16", "--out", str(out), "--workers", "1"])
    assert rc == 0, "an earlier synthetic build may be replaced without --force"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["data", "synth", "--n", "5", "--size", "16", "--out", str(other)]) != 0
    assert "--force" in capsys.readouterr().err and (other / "notes.txt").exists()


def test_import_csv_folder_with_bad_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(_png())
    (src / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0truncated")
    (src / "c.txt").write_text("hello")
    Image.new("CMYK", (30, 30), (0, 0, 0, 0)).save(src / "d.jpg")
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(src / "e.png")
    (src / "labels.csv").write_text(
        "file,label,split,site,license,attribution\n"
        "a.png,1,train,north,cc-by-2.0,Ann\n"
        "b.jpg,0,train,south,cc-by-2.0,Ann\n"
        "c.txt,0,test,south,cc-by-2.0,Ann\n"
        "d.jpg,0,test,north,cc-by-nd-2.0,Ann\n"
        "e.png,1,test,north,cc0-1.0,\n"
    )
    out = tmp_path / "out"
    assert main(["data", "import", str(src), "--out", str(out), "--size", "24", "--workers", "1"]) == 0
    ds = Dataset.open(out)
    assert sorted(s.id for s in ds.iter_samples()) == ["a", "e"]
    a = next(ds.iter_samples("train"))
    assert a.subgroups["site"] == "north" and a.label == 1
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["skipped"] == {"corrupt image": 1, "not an image": 1}
    assert sum(meta["dropped_by_license"].values()) == 1
    assert meta["licenses"] == {"cc-by-2.0": 1, "cc0-1.0": 1}


def test_import_cmyk_and_16bit_are_converted(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "person").mkdir(parents=True)
    (src / "non_person").mkdir()
    Image.new("CMYK", (30, 30), (0, 255, 255, 0)).save(src / "person" / "cmyk.jpg")
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(src / "non_person" / "deep.png")
    out = tmp_path / "out"
    rc = main(["data", "import", str(src), "--out", str(out), "--size", "16", "--workers", "1",
               "--split-fractions", "1.0"])  # fmt: skip
    assert rc == 0
    ds = Dataset.open(out)
    by_label = {s.label: s.load_rgb() for s in ds.iter_samples()}
    assert by_label[1][8, 8, 0] > 200 and by_label[1][8, 8, 1] < 60
    assert by_label[0][8, 8].tolist() == [255, 255, 255]
    assert ds.splits() == ["train"]


def test_import_archives_refuse_path_traversal(tmp_path: Path) -> None:
    zpath = tmp_path / "set.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("set/person/p.png", _png())
        zf.writestr("set/non_person/n.png", _png(color=(0, 0, 0)))
        zf.writestr("../escape.png", _png())
        zf.writestr("/abs/escape2.png", _png())
    tpath = tmp_path / "set.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        for name, data in (
            ("person/p.png", _png()),
            ("non_person/n.png", _png()),
            ("../../evil.png", _png()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("person/link.png")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    for archive in (zpath, tpath):
        out = tmp_path / f"out-{archive.name}"
        before = {p for p in tmp_path.parent.rglob("*")}
        assert main(["data", "import", str(archive), "--out", str(out), "--workers", "1"]) == 0
        after = {p for p in tmp_path.parent.rglob("*")}
        assert all(p.is_relative_to(out) for p in after - before)
        assert not (out / ".import-source").exists()
        meta = json.loads((out / "dataset.json").read_text())
        assert meta["total"] == 2
        assert meta["skipped"]["unsafe archive member (path escapes)"] >= 1
    assert not (tmp_path / "escape.png").exists() and not (tmp_path.parent / "evil.png").exists()


def test_audit_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ex = Image.Exif()
    ex.get_ifd(ExifTags.IFD.GPSInfo)[2] = (1.0, 2.0, 3.0)
    Image.new("RGB", (8, 8)).save(tmp_path / "gps.jpg", exif=ex)
    Image.new("RGB", (8, 8)).save(tmp_path / "clean.png")
    (tmp_path / "broken.png").write_bytes(b"nope")
    assert main(["data", "audit", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 3 and report["with_metadata"] == 1 and report["errors"] == 1
    assert report["found"]["gps"] == 1
    assert main(["data", "audit", str(tmp_path / "gps.jpg")]) == 0
    assert "gps" in capsys.readouterr().out


def test_import_of_a_plain_file_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["data", "import", str(SMOKE_MANIFEST), "--out", str(out)]) != 0
    assert "not a folder or a .zip/.tar archive" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["data", "info", "/nonexistent/set"], "data set folder not found"),
        (["data", "audit", "/nonexistent/x"], "not found"),
        (["data", "import", "/nonexistent/x", "--out", "/tmp/never-written"], "not found"),
        (["data", "synth", "--n", "0", "--out", "/tmp/never-written"], "at least 1"),
    ],
)
def test_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("hil data: error:")


@pytest.mark.parametrize("command", ["smoke", "synth"])
def test_image_sizes_outside_the_range_are_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    extra = ["--n", "4"] if command == "synth" else []
    assert main(["data", command, "--size", "100000", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err == "hil data: error: --size 100000 out of range (8..1024)\n"
    assert not out.exists()
