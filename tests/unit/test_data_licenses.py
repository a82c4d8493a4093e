"""Licence mapping and the allow-list policy."""

from __future__ import annotations

import pytest

from harness.data.licenses import LicensePolicy, from_url, parse_allow_list
from harness.errors import ConfigError

# COCO 2014/2017 licence table URLs (instances_*.json "licenses").
COCO_URLS = {
    1: ("http://creativecommons.org/licenses/by-nc-sa/2.0/", "cc-by-nc-sa-2.0"),
    2: ("http://creativecommons.org/licenses/by-nc/2.0/", "cc-by-nc-2.0"),
    3: ("http://creativecommons.org/licenses/by-nc-nd/2.0/", "cc-by-nc-nd-2.0"),
    4: ("http://creativecommons.org/licenses/by/2.0/", "cc-by-2.0"),
    5: ("http://creativecommons.org/licenses/by-sa/2.0/", "cc-by-sa-2.0"),
    6: ("http://creativecommons.org/licenses/by-nd/2.0/", "cc-by-nd-2.0"),
    7: ("http://flickr.com/commons/usage/", "no-known-copyright"),
    8: ("http://www.usa.gov/copyright.shtml", "us-gov-work"),
}


@pytest.mark.parametrize("url,expected", COCO_URLS.values())
def test_coco_licence_urls_map(url: str, expected: str) -> None:
    assert from_url(url).id == expected


def test_unknown_url() -> None:
    assert from_url("http://example.com/mine").id == "unknown"


def test_policy_reasons() -> None:
    default = LicensePolicy()
    assert default.refusal("cc-by-2.0") is None
    assert default.refusal("cc-by-nc-2.0") is None
    assert "derivatives" in (default.refusal("cc-by-nd-2.0") or "")
    commercial = LicensePolicy(commercial=True)
    assert "non-commercial" in (commercial.refusal("cc-by-nc-sa-2.0") or "")
    assert commercial.refusal("cc-by-sa-2.0") is None
    strict = LicensePolicy(allow=parse_allow_list("cc0-1.0, public-domain"))
    assert "allow-list" in (strict.refusal("cc-by-2.0") or "")
    assert strict.refusal("cc0-1.0") is None


def test_allow_list_rejects_unknown_ids() -> None:
    assert parse_allow_list(None) is None
    with pytest.raises(ConfigError, match="unknown licence"):
        parse_allow_list("cc0-1.0,gpl")
