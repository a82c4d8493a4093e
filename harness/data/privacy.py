"""Find metadata in image files that can identify people or places.

Photos carry more than pixels: EXIF GPS positions, camera and lens serial numbers,
owner and artist names, capture timestamps, maker notes (vendor blobs that often hold
serials), embedded thumbnails (which can show the uncropped original), XMP and IPTC
packets and free-text comments. The builders re-encode pixels only, so everything
found here is removed; the audit records what was there so the card can say so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from PIL import ExifTags, Image, IptcImagePlugin

from harness.data.images import is_image_name, open_image
from harness.errors import DataError

log = logging.getLogger(__name__)

CATEGORIES = (
    "gps",
    "serial",
    "owner",
    "timestamp",
    "makernote",
    "thumbnail",
    "xmp",
    "iptc",
    "comment",
    "other_exif",
)
CLEAN = "clean"

_SERIAL_TAGS = {0xA431, 0xA435, 0xC62F}  # BodySerialNumber, LensSerialNumber, CameraSerialNumber
_OWNER_TAGS = {0x013B, 0x8298, 0xA430, 0x9C9D}  # Artist, Copyright, CameraOwnerName, XPAuthor
_TIME_TAGS = {0x0132, 0x9003, 0x9004, 0x9010, 0x9011, 0x9012, 0x9290, 0x9291, 0x9292}
_MAKERNOTE = 0x927C
_COMMENT_TAGS = {0x9286, 0x010E, 0x9C9C}  # UserComment, ImageDescription, XPComment
# Harmless tags that describe how to store or display the pixels (TIFF structure,
# resolution, orientation, colour space), not who, where or when.
_BENIGN_TAGS = set(range(0x0100, 0x010A)) | {
    0x0111, 0x0112, 0x0115, 0x0116, 0x0117, 0x0118, 0x0119, 0x011A, 0x011B, 0x011C,
    0x0128, 0x0131, 0x013D, 0x0140, 0x0142, 0x0143, 0x0144, 0x0145, 0x0152, 0x0153,
    0x0211, 0x0212, 0x0213, 0x0214, 0xA001, 0xA002, 0xA003, 0x8769, 0x8825,
}  # fmt: skip
# Only in these formats is EXIF IFD1 an embedded thumbnail (in TIFF it is a page).
_THUMBNAIL_FORMATS = {"JPEG", "MPO", "WEBP", "PNG"}
_TEXT_KEYS_OWNER = {"author", "artist", "copyright", "owner"}
_TEXT_KEYS_TIME = {"creation time", "date", "datetime", "modify-date", "create-date"}
_TEXT_KEYS_COMMENT = {"comment", "description", "title", "software", "source", "disclaimer"}


def _classify_tag(tag: int) -> str | None:
    if tag in _SERIAL_TAGS:
        return "serial"
    if tag in _OWNER_TAGS:
        return "owner"
    if tag in _TIME_TAGS:
        return "timestamp"
    if tag == _MAKERNOTE:
        return "makernote"
    if tag in _COMMENT_TAGS:
        return "comment"
    if tag in _BENIGN_TAGS:
        return None
    return "other_exif"


def audit_image(img: Image.Image) -> list[str]:
    """Categories of identifying metadata in an opened image, in :data:`CATEGORIES` order."""
    found: set[str] = set()
    try:
        exif = img.getexif()
    except Exception:  # noqa: BLE001 - a malformed EXIF block is itself worth reporting
        exif = None
        found.add("other_exif")
    if exif:
        for tag in exif:
            cat = _classify_tag(tag)
            if cat:
                found.add(cat)
        try:
            gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        except Exception:  # noqa: BLE001
            gps = {}
        if gps or ExifTags.IFD.GPSInfo in exif:
            found.add("gps")
        try:
            sub = exif.get_ifd(ExifTags.IFD.Exif)
        except Exception:  # noqa: BLE001
            sub = {}
        for tag in sub:
            cat = _classify_tag(tag)
            if cat:
                found.add(cat)
        try:
            if img.format in _THUMBNAIL_FORMATS and exif.get_ifd(ExifTags.IFD.IFD1):
                found.add("thumbnail")
        except Exception:  # noqa: BLE001
            pass
    info = img.info
    if any(k in info for k in ("xmp", "XML:com.adobe.xmp")):
        found.add("xmp")
    if "photoshop" in info or _has_iptc(img):
        found.add("iptc")
    if "comment" in info:
        found.add("comment")
    for key in info:
        low = str(key).lower()
        if low in _TEXT_KEYS_OWNER:
            found.add("owner")
        elif low in _TEXT_KEYS_TIME:
            found.add("timestamp")
        elif low in _TEXT_KEYS_COMMENT:
            found.add("comment")
    if getattr(img, "applist", None):
        for marker, payload in img.applist:  # type: ignore[attr-defined]
            if marker == "APP1" and payload.startswith(b"http://ns.adobe.com/xap"):
                found.add("xmp")
            if marker == "APP13":
                found.add("iptc")
    return [c for c in CATEGORIES if c in found]


def _has_iptc(img: Image.Image) -> bool:
    try:
        return bool(IptcImagePlugin.getiptcinfo(img))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - unreadable IPTC counts as none found
        return False


def encode_findings(found: list[str]) -> str:
    """Manifest form of an audit: ``clean`` or ``;``-joined categories."""
    return ";".join(found) if found else CLEAN


def decode_findings(value: str | None) -> list[str]:
    if not value or value == CLEAN:
        return []
    return [v for v in value.split(";") if v]


def iter_image_files(path: Path) -> Iterator[Path]:
    """Image files under ``path`` (or ``path`` itself), sorted, symlinks not followed."""
    if path.is_file():
        yield path
        return
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.is_symlink() and is_image_name(p):
            yield p


def audit_path(path: Path) -> Iterator[tuple[Path, list[str] | str]]:
    """Audit every image under ``path``: ``(file, categories)`` or ``(file, error)``."""
    if not path.exists():
        raise DataError(f"{path}: not found")
    for p in iter_image_files(path):
        try:
            with open_image(p) as img:
                yield p, audit_image(img)
        except DataError as exc:
            yield p, str(exc)
