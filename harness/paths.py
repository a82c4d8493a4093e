"""Where the project's files live.

The harness is installed editable from its checkout (``pip install -e .``), so board
profiles, the model zoo and the firmware tree are found next to the package. Each can be
moved with an environment variable, which is how tests point at temporary copies.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


def boards_dir() -> Path:
    """Folder of ``<board>.toml`` profiles (``HIL_BOARDS_DIR``)."""
    return _env_path("HIL_BOARDS_DIR", PROJECT_ROOT / "boards")


def zoo_dir() -> Path:
    """Folder of model zoo entries and the shipped default model (``HIL_ZOO_DIR``)."""
    return _env_path("HIL_ZOO_DIR", PROJECT_ROOT / "models")


def firmware_dir() -> Path:
    """The PlatformIO project (``HIL_FIRMWARE_DIR``)."""
    return _env_path("HIL_FIRMWARE_DIR", PROJECT_ROOT / "firmware")


def reports_dir() -> Path:
    """Where run folders are written (``HIL_REPORTS_DIR``, default ``./reports``)."""
    return _env_path("HIL_REPORTS_DIR", Path.cwd() / "reports")


def cache_dir() -> Path:
    """User cache for downloads and built data sets (``HIL_CACHE_DIR``, default ~/.cache/vww-hil)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return _env_path("HIL_CACHE_DIR", base / "vww-hil")


def model_cache_dir() -> Path:
    """Downloaded zoo models (``HIL_MODEL_CACHE``, default ``<cache>/models``)."""
    return _env_path("HIL_MODEL_CACHE", cache_dir() / "models")


def reference_models_dir() -> Path | None:
    """The team's shared reference models (``../shared/reference/models``), if present.

    Never part of the repository: tests that need these files skip where this is None.
    ``HIL_REFERENCE_MODELS``, when set, is the only place looked at (so tests can make
    the files absent by pointing it at an empty folder).
    """
    configured = os.environ.get("HIL_REFERENCE_MODELS")
    candidate = Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "reference" / "models"
    return candidate if candidate.is_dir() else None
