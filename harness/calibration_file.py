"""The calibration file ``hil calibrate`` writes next to a board profile, and reading it back.

The profile stays hand-written and readable: its ``[cost_model]`` table keeps the prior
coefficients with their published basis and gains one line,
``calibration = "calibration/<board>.toml"``. That file holds the fitted coefficients and
the data they came from (models with sha256, layer counts, QEMU and CPI used, date, errors
before and after the fit). When the profile loads, the fitted figures replace the prior
ones and the cost model's source says "calibrated from QEMU instruction counts".
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CALIBRATED_SOURCE = "calibrated from QEMU instruction counts"


@dataclass(frozen=True)
class ModelRecord:
    """One model the fit used, with its errors before and after."""

    name: str
    sha256: str
    layers: int
    instructions: int  # one whole inference
    median_layer_error_before: float
    median_layer_error_after: float
    total_error_before: float
    total_error_after: float
    held_out: bool = False  # measured against the fit, not part of it


def apply_calibration(cm: dict[str, Any], profile: Path) -> dict[str, Any]:
    """The ``[cost_model]`` table with the fitted coefficients of its calibration file merged in."""
    target = (profile.parent / str(cm["calibration"])).resolve()
    try:
        with open(target, "rb") as fh:
            cal = tomllib.load(fh).get("calibration", {})
    except FileNotFoundError as exc:
        raise ConfigError(f"board profile {profile} names a calibration file {target} that does not exist; "
                          f"rerun `hil calibrate` or remove the calibration line") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"calibration file {target} is not valid TOML: {exc}") from exc
    out = dict(cm)
    for key in ("cycles_per_mac", "cycles_per_output_element"):
        merged = dict(cm.get(key, {}))
        merged.update(cal.get(key, {}))
        out[key] = merged
    if "per_op_overhead_cycles" in cal:
        out["per_op_overhead_cycles"] = cal["per_op_overhead_cycles"]
    models = cal.get("models", [])
    med = cal.get("median_layer_error_after")
    err = f", median layer error {100 * med:.1f} %" if isinstance(med, int | float) else ""
    out["source"] = (f"{CALIBRATED_SOURCE} x CPI {cal.get('cpi', '?')} ({cal.get('date', '?')}, "
                     f"{len(models)} models{err}; {target.name})")
    out["calibration_data"] = cal
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(round(v, 6))
    text = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{text}"'


def render(header: dict[str, Any], per_mac: dict[str, float], per_out: dict[str, float],
           models: list[ModelRecord], comment: str) -> str:
    """The calibration file's text: scalars first, then the coefficient and model tables."""
    lines = [f"# {ln}" for ln in comment.splitlines()]
    lines += ["", "[calibration]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in header.items() if v is not None]
    lines += ["", "[calibration.cycles_per_mac]"]
    lines += [f"{k} = {_toml_value(float(v))}" for k, v in sorted(per_mac.items())]
    lines += ["", "[calibration.cycles_per_output_element]"]
    lines += [f"{k} = {_toml_value(float(v))}" for k, v in sorted(per_out.items())]
    for m in models:
        lines += ["", "[[calibration.models]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in vars(m).items()]
    return "\n".join(lines) + "\n"


def link_profile(profile: Path, relative: str) -> None:
    """Add (or update) ``calibration = "<relative>"`` in the profile's ``[cost_model]`` table."""
    text = profile.read_text(encoding="utf-8")
    line = f'calibration = "{relative}"  # fitted by `hil calibrate`; prior figures above'
    existing = re.compile(r"^calibration\s*=.*$", re.M)
    if existing.search(text):
        text = existing.sub(line, text, count=1)
    else:
        head = re.search(r"^\[cost_model\][^\n]*\n", text, re.M)
        if head is None:
            raise ConfigError(f"board profile {profile} has no [cost_model] table to calibrate")
        nxt = re.compile(r"^\[", re.M).search(text, head.end())
        end = nxt.start() if nxt else len(text)
        body = text[head.end():end].rstrip("\n")
        text = text[: head.end()] + body + "\n" + line + "\n\n" + text[end:].lstrip("\n")
    tmp = profile.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(profile)
