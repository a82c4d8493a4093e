"""Records shared by nightly and its outputs (Markdown, JUnit, OpenMetrics, trend pages).

They live here, below all of those modules, so that nightly can import its outputs and
its outputs can name the records without importing nightly back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.matrix import Cell
from harness.report.regress import Check


@dataclass
class CellOutcome:
    cell: Cell
    status: str
    reason: str = ""
    run_dir: Path | None = None
    report: Path | None = None
    row: dict[str, Any] | None = None
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    #: the board-farm place the cell ran on (``hil nightly --places``), or None
    place: str | None = None

    @property
    def regressed(self) -> bool:
        return any(c.regressed for c in self.checks)
