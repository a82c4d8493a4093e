"""What a resume takes from the stored run and what from the command given again."""

from __future__ import annotations

from harness.bench.api import _resumed_request, settings_for
from harness.bench.request import BenchRequest


def _stored(**changes: object) -> dict[str, object]:
    request = BenchRequest(board="nano33", backend="sim", limit=7, watchdog=90.0, **changes)  # type: ignore[arg-type]
    return {"request": request.to_dict()}


def test_a_resume_keeps_the_runs_settings_and_watchdog() -> None:
    again = _resumed_request(BenchRequest(resume="run-1"), _stored())
    assert again.limit == 7 and again.watchdog == 90.0 and again.resume == "run-1"
    assert settings_for(again.resolved()).watchdog_s == 90.0


def test_a_watchdog_given_again_wins_on_resume() -> None:
    again = _resumed_request(BenchRequest(resume="run-1", watchdog=300.0), _stored())
    assert again.watchdog == 300.0 and again.limit == 7
