"""Identifying metadata is found by the audit and never survives a build."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from PIL import ExifTags, Image, PngImagePlugin

from harness.data.dataset import Dataset
from harness.data.importer import import_dataset
from harness.data.privacy import audit_image, audit_path

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def identifying_exif() -> Image.Exif:
    ex = Image.Exif()
    ex[0x013B] = "Alice Example"  # Artist
    ex.get_ifd(ExifTags.IFD.GPSInfo)[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    sub = ex.get_ifd(ExifTags.IFD.Exif)
    sub[0xA431] = "SN-0042"  # BodySerialNumber
    sub[0xA430] = "Alice"  # CameraOwnerName
    sub[0x9003] = "2021:05:04 10:11:12"  # DateTimeOriginal
    sub[0x927C] = b"vendor blob"  # MakerNote
    return ex


def exif_with_thumbnail() -> bytes:
    """A hand-made EXIF block whose IFD1 points at an embedded JPEG thumbnail."""
    t = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(t, "JPEG")
    thumb = t.getvalue()
    tiff = b"II*\x00" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, 1) + struct.pack("<I", 26)
    tiff += struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, 56)
    tiff += struct.pack("<HHII", 0x0202, 4, 1, len(thumb)) + struct.pack("<I", 0)
    return b"Exif\x00\x00" + tiff + thumb


def test_audit_finds_each_category(tmp_path: Path) -> None:
    p = tmp_path / "a.jpg"
    Image.new("RGB", (16, 16), "gray").save(p, exif=identifying_exif(), xmp=XMP, comment=b"hi")
    found = audit_image(Image.open(p))
    for cat in ("gps", "serial", "owner", "timestamp", "makernote", "xmp", "comment"):
        assert cat in found, cat
    t = tmp_path / "t.jpg"
    Image.new("RGB", (16, 16)).save(t, exif=exif_with_thumbnail())
    assert audit_image(Image.open(t)) == ["thumbnail"]


def test_png_text_chunks_are_found(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Bob")
    info.add_text("Creation Time", "2020-01-01")
    p = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(p, pnginfo=info)
    assert audit_image(Image.open(p)) == ["owner", "timestamp"]


def test_clean_image_reports_nothing(tmp_path: Path) -> None:
    p = tmp_path / "c.png"
    Image.new("RGB", (8, 8)).save(p)
    assert audit_image(Image.open(p)) == []


def test_build_strips_everything_and_card_reports_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "person").mkdir(parents=True)
    (src / "non_person").mkdir()
    Image.new("RGB", (32, 32), "blue").save(
        src / "person" / "p.jpg", exif=identifying_exif(), xmp=XMP, comment=b"note"
    )
    Image.new("RGB", (32, 32), "green").save(src / "non_person" / "n.jpg", exif=exif_with_thumbnail())
    out = import_dataset(src, tmp_path / "out", license_id="cc0-1.0", workers=1)
    ds = Dataset.open(out)
    for s in ds.iter_samples():
        img = Image.open(s.path)
        assert not img.getexif() and "xmp" not in img.info and "comment" not in img.info
        assert audit_image(img) == []
    card = (out / "CARD.md").read_text()
    assert "gps: found in 1, removed from 1" in card
    assert "thumbnail: found in 1, removed from 1" in card
    assert ds.meta["privacy"]["images_with_metadata"] == 2
    results = dict(audit_path(src))
    assert "gps" in results[src / "person" / "p.jpg"]
