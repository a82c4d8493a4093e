"""Licences of source images and the allow-list applied when a set is built.

Each licence has a short id (used in manifests and on the command line), a URL and
the conditions that decide whether a use is allowed: a resized copy is a derivative
work (refused by no-derivatives licences) and a commercial user may not use
non-commercial images. COCO's licence table is mapped onto these ids by URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.errors import ConfigError


@dataclass(frozen=True)
class License:
    id: str
    name: str
    url: str
    attribution: bool = False
    non_commercial: bool = False
    no_derivatives: bool = False
    share_alike: bool = False


_CC = "https://creativecommons.org/licenses/"
LICENSES: dict[str, License] = {
    lic.id: lic
    for lic in (
        License("public-domain", "Public domain", "https://creativecommons.org/publicdomain/mark/1.0/"),
        License("cc0-1.0", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/"),
        License("cc-by-2.0", "CC BY 2.0", _CC + "by/2.0/", attribution=True),
        License("cc-by-sa-2.0", "CC BY-SA 2.0", _CC + "by-sa/2.0/", True, share_alike=True),
        License("cc-by-nc-2.0", "CC BY-NC 2.0", _CC + "by-nc/2.0/", True, non_commercial=True),
        License(
            "cc-by-nc-sa-2.0", "CC BY-NC-SA 2.0", _CC + "by-nc-sa/2.0/", True, True,
            share_alike=True,
        ),
        License("cc-by-nd-2.0", "CC BY-ND 2.0", _CC + "by-nd/2.0/", True, no_derivatives=True),
        License(
            "cc-by-nc-nd-2.0", "CC BY-NC-ND 2.0", _CC + "by-nc-nd/2.0/", True, True, True,
        ),
        License("no-known-copyright", "No known copyright restrictions",
                "http://flickr.com/commons/usage/"),
        License("us-gov-work", "United States Government Work", "http://www.usa.gov/copyright.shtml"),
        License("unknown", "Unknown licence", ""),
    )
}  # fmt: skip

# The smoke set and anything the project ships: no conditions beyond attribution.
SHIPPABLE = ("public-domain", "cc0-1.0", "cc-by-2.0")


def get_license(license_id: str) -> License:
    try:
        return LICENSES[license_id]
    except KeyError:
        known = ", ".join(LICENSES)
        raise ConfigError(f"unknown licence {license_id!r} (known: {known})") from None


def from_url(url: str) -> License:
    """Map a licence URL (as in COCO's licence table) to a known licence, else ``unknown``."""
    norm = url.strip().lower().replace("https://", "").replace("http://", "").rstrip("/")
    for lic in LICENSES.values():
        if lic.url and lic.url.lower().replace("https://", "").replace("http://", "").rstrip("/") == norm:
            return lic
    return LICENSES["unknown"]


def parse_allow_list(text: str | None) -> frozenset[str] | None:
    """``--licenses a,b,c`` into a set of ids (None means no allow-list)."""
    if text is None or not text.strip():
        return None
    ids = [t.strip() for t in text.split(",") if t.strip()]
    for i in ids:
        get_license(i)
    return frozenset(ids)


@dataclass(frozen=True)
class LicensePolicy:
    """What the builder is about to do with the images, and what the user allows."""

    allow: frozenset[str] | None = None
    derivative: bool = True  # resized/re-encoded copies are derivatives
    commercial: bool = False

    def refusal(self, license_id: str) -> str | None:
        """Why an image under ``license_id`` must be dropped, or None if it may be used."""
        lic = LICENSES.get(license_id, LICENSES["unknown"])
        if self.allow is not None and lic.id not in self.allow:
            return f"licence {lic.id} not in allow-list"
        if self.derivative and lic.no_derivatives:
            return f"licence {lic.id} forbids derivatives (resized copy)"
        if self.commercial and lic.non_commercial:
            return f"licence {lic.id} is non-commercial (--commercial)"
        return None

    def describe(self) -> dict[str, object]:
        return {
            "allow": sorted(self.allow) if self.allow is not None else None,
            "derivative": self.derivative,
            "commercial": self.commercial,
        }


def license_ids(values: Iterable[str]) -> list[str]:
    return sorted(set(values))
