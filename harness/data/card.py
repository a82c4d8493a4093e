"""The data set card: a Markdown page a person reads before trusting a result.

It is rendered from the same dictionary that is saved as ``dataset.json``, so the
card and the machine-readable facts cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.data.licenses import LICENSES


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def render_card(meta: Mapping[str, Any]) -> str:
    out: list[str] = [f"# Data set card: {meta['name']}", ""]
    if meta.get("synthetic"):
        out += [
            "> **SYNTHETIC DATA.** These images are drawn by a program, not photographed.",
            "> Results on them say nothing about accuracy on real images.",
            "",
        ]
    out += [str(meta.get("description", "")), ""]
    splits: Mapping[str, Mapping[str, int]] = meta.get("splits", {})
    out += ["## Counts", ""]
    rows: list[list[Any]] = []
    tp = tn = 0
    for split, c in splits.items():
        p, n = int(c.get("person", 0)), int(c.get("no_person", 0))
        rows.append([split, p, n, p + n])
        tp, tn = tp + p, tn + n
    rows.append(["**total**", tp, tn, tp + tn])
    out += _table(["split", "person", "no_person", "total"], rows) + [""]

    out += ["## Licences", ""]
    lic_rows = []
    for lid, n in meta.get("licenses", {}).items():
        lic = LICENSES.get(lid)
        lic_rows.append([lid, lic.name if lic else lid, lic.url if lic else "", n])
    out += _table(["licence", "name", "url", "images"], lic_rows) + [""]
    policy = meta.get("license_policy", {})
    allow = policy.get("allow")
    out.append(
        f"Allow-list: {', '.join(allow) if allow else 'none (all licences allowed)'}; "
        f"resized copies (derivatives): {policy.get('derivative')}; "
        f"commercial use: {policy.get('commercial')}."
    )
    dropped = meta.get("dropped_by_license", {})
    if dropped:
        out += ["", "Dropped by the licence policy:", ""]
        out += [f"- {reason}: {n}" for reason, n in dropped.items()]
    attributions = meta.get("attributions")
    if attributions:
        out += ["", "### Attribution", ""]
        if isinstance(attributions, list):
            out += [f"- {a}" for a in attributions]
        else:
            out.append(str(attributions))
    out.append("")

    out += ["## Subgroups", ""]
    for name, counts in meta.get("subgroups", {}).items():
        parts = ", ".join(f"{v}: {n}" for v, n in counts.items())
        out.append(f"- **{name}**: {parts}")
    out.append("")

    priv = meta.get("privacy", {})
    out += ["## Privacy audit", ""]
    found = priv.get("found", {})
    if found:
        out.append(
            f"{priv.get('images_with_metadata', 0)} source image(s) carried identifying "
            "metadata; all of it was removed (images are re-encoded from pixels only):"
        )
        out += [""] + [f"- {k}: found in {n}, removed from {n}" for k, n in found.items()]
    else:
        out.append("No identifying metadata (EXIF, XMP, IPTC, comments) was found in the sources.")
    out.append("")

    skipped = meta.get("skipped", {})
    out += ["## Skipped inputs", ""]
    if skipped:
        out += [f"- {reason}: {n}" for reason, n in skipped.items()]
    else:
        out.append("None.")
    out.append("")

    img = meta.get("image", {})
    out += [
        "## How it was built",
        "",
        f"- command: `{meta.get('build_command', '')}`",
        f"- images: {img.get('size') or 'source size'} px, fit {img.get('fit')}, "
        f"{'grayscale' if img.get('grayscale') else 'RGB'}, {img.get('format')}",
        f"- content sha256: `{meta.get('content_sha256', '')}`",
        f"- built in {meta.get('build_seconds')} s with {meta.get('workers')} worker(s)",
        "",
        "Parameters:",
        "",
    ]
    out += [f"- {k}: `{v}`" for k, v in meta.get("parameters", {}).items()]
    out += ["", "Source hashes (sha256):", ""]
    out += [f"- {k}: `{v}`" for k, v in meta.get("source_hashes", {}).items()]
    out.append("")
    return "\n".join(out)


def write_card(path: Path, meta: Mapping[str, Any]) -> None:
    path.write_text(render_card(meta), encoding="utf-8")
