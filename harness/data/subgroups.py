"""Subgroup attributes used to break metrics down (fairness across kinds of images).

The buckets are defined once here so that COCO, synthetic and imported sets put the
same image into the same bucket, and a report can compare them.
"""

from __future__ import annotations

# Person size is the largest person box as a fraction of the image area.
SIZE_EDGES = ((0.05, "small"), (0.25, "medium"))
SIZE_LARGE = "large"
SIZE_NONE = "none"
# Brightness is the mean BT.601 luma of the stored image, 0..255.
BRIGHTNESS_EDGES = ((85.0, "dark"), (170.0, "mid"))
BRIGHTNESS_HIGH = "bright"

# Subgroup columns every builder writes (user columns may follow).
BASE_SCHEMA: dict[str, type] = {
    "person_size": str,
    "n_persons": int,
    "grayscale_source": bool,
    "brightness": str,
}
COCO_SCHEMA: dict[str, type] = {**BASE_SCHEMA, "crowd": bool, "supercategories": str}


def size_bucket(largest_fraction: float | None) -> str:
    """``none`` without a person, else ``small`` (<5 %), ``medium`` (<25 %) or ``large``."""
    if largest_fraction is None or largest_fraction <= 0:
        return SIZE_NONE
    for edge, name in SIZE_EDGES:
        if largest_fraction < edge:
            return name
    return SIZE_LARGE


def brightness_bucket(mean_luma: float) -> str:
    """``dark`` (<85), ``mid`` (<170) or ``bright``."""
    for edge, name in BRIGHTNESS_EDGES:
        if mean_luma < edge:
            return name
    return BRIGHTNESS_HIGH
