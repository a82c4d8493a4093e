"""The fault matrix and how one case is run and judged; shared by the tests and the benchmark.

Every case ends in one of two outcomes, and anything else fails it:

(a) ``complete``: the run completes and every image's output equals the clean run's, each
    image exactly once;
(b) ``failed+resumed``: the run fails within the case's deadline with one clear line that
    says how to resume, and ``--resume`` over a clean link then completes to (a).

A run that completes with images the link lost (error rows ``link: ...``, past their
resend budget) is resumed too, as a user would (``errors+resumed``): the resume measures
those images again and must then reach (a).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fault_relay import FOREVER, Mutation, Relay
from fault_targets import Endpoint, FaultTarget

from harness.bench.api import run_bench
from harness.bench.request import BenchRequest
from harness.bench.store import RETRYABLE_ERROR_PREFIX, load_run
from harness.boards import Board
from harness.errors import HarnessError

#: The rate the host sizes its upload deadlines by; the pty itself runs at host speed,
#: as a USB CDC board does whatever rate it is given.
BAUD = 1_000_000
#: Bytes host->device before a one-off fault (stall, reset, close) starts: inside image 3.
MID_RUN_H2D = 3 * 27_648 + 9_000
#: Bytes device->host before a one-off fault starts: the hello answer and about two images.
MID_RUN_D2H = 1_500


@dataclass(frozen=True)
class FaultCase:
    """One fault in one direction; ``deadline_s`` bounds a failing run, ``slow`` keeps it out of CI."""

    name: str
    direction: str  # "h2d" (host to device) or "d2h"
    mutation: Mutation
    deadline_s: float = 60.0
    watchdog_s: float = 60.0
    slow: bool = False
    images: int = 12
    #: the rate the host believes the link has, which sizes its upload deadlines
    baud: int = BAUD
    #: words a failure's message must hold (any one of them)
    expect_text: tuple[str, ...] = ("",)
    #: the case is a regression test for a bound: it must end in (b), not complete
    must_fail: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}-{self.direction}"


def _both(name: str, m_h2d: Mutation, m_d2h: Mutation, **kw: Any) -> list[FaultCase]:
    return [FaultCase(name, "h2d", m_h2d, **kw), FaultCase(name, "d2h", m_d2h, **kw)]


def _rate(name: str, **mut: Any) -> list[FaultCase]:
    return _both(name, Mutation(**mut), Mutation(**mut))


def _once(name: str, **kw: Any) -> list[FaultCase]:
    opts = {k: kw.pop(k) for k in ("stall_s", "reset", "close") if k in kw}
    return _both(name, Mutation(after=MID_RUN_H2D, **opts), Mutation(after=MID_RUN_D2H, **opts), **kw)


CASES: list[FaultCase] = [
    *_rate("flip-1e-6", flip=1e-6),
    *_rate("flip-1e-5", flip=1e-5),
    *_rate("flip-1e-4", flip=1e-4),
    *[FaultCase("flip-1e-4-big", d, Mutation(flip=1e-4), slow=True, images=80) for d in ("h2d", "d2h")],
    # heavy corruption (1 flip per 1,000 bytes: most 1 KiB frames damaged) must not crawl on
    # for ever: the run stops on its resend budget and names it
    FaultCase("flip-1e-3", "h2d", Mutation(flip=1e-3), deadline_s=20.0, expect_text=("link too noisy: ",),
              must_fail=True),
    FaultCase("flip-1e-3", "d2h", Mutation(flip=1e-3)),  # answers are short: most get through
    *_rate("drop-1e-5", drop=1e-5),
    *_rate("drop-1e-4", drop=1e-4),
    *_rate("dup-1e-4", dup=1e-4),
    *_rate("garbage-64B-every-20kB", garbage_every=20_000, garbage_len=64),
    *_once("stall-1s", stall_s=1.0),
    *_once("stall-10s", stall_s=10.0, slow=True),
    *_once("stall-forever", stall_s=FOREVER, slow=True, deadline_s=75.0),
    # an endless stall on a link believed slow (9600 baud: 13 s per upload wait) ends by the
    # 3 s watchdog instead (or, host to device with big frames, by the bounded write first)
    *_once("stall-forever-watchdog-3s", stall_s=FOREVER, watchdog_s=3.0, deadline_s=8.0, baud=9600,
           expect_text=("no progress on the link for 3.", "the device stopped reading")),
    *_once("device-reset", reset=True),
    *_once("closed-connection", close=True, deadline_s=15.0),
]


@dataclass
class CaseResult:
    case: str
    outcome: str  # "complete", "failed+resumed", or what went wrong
    seconds: float
    resends: int
    message: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in ("complete", "errors+resumed", "failed+resumed") and not self.problems


@contextmanager
def relayed(target: FaultTarget, model: Path, board: Board, to_device: Mutation | None = None,
            to_host: Mutation | None = None, seed: int = 1) -> Iterator[Relay]:
    """A started target behind a relay that applies the mutations."""
    with Endpoint(target, model, board) as endpoint:
        with Relay(endpoint.url, to_device, to_host, on_reset=endpoint.restart, seed=seed) as relay:
            yield relay


def request(port: str, model: Path, data: Path, out: Path, baud: int = BAUD, **kw: Any) -> BenchRequest:
    return BenchRequest(
        backend="serial", port=port, baud=baud, model=str(model), data=str(data), out_dir=out, **kw
    )


def outputs_of(folder: Path) -> tuple[dict[str, list[int]], list[str]]:
    """Each image's device output, and the image ids that occur more than once."""
    run = load_run(folder)
    ids = list(run.columns["image_id"])
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    outs = {i: list(o or []) for i, o in zip(ids, run.columns["output_q"], strict=True)}
    return outs, dupes


def link_resends(folder: Path) -> int:
    return int(((load_run(folder).manifest.get("link") or {}).get("resends")) or 0)


def judge(folder: Path, clean: dict[str, list[int]]) -> list[str]:
    """What differs from outcome (a): missing or extra images, duplicates, other outputs."""
    outs, dupes = outputs_of(folder)
    problems = [f"image {i} stored {2}+ times" for i in dupes]
    missing = sorted(set(clean) - set(outs))
    extra = sorted(set(outs) - set(clean))
    if missing:
        problems.append(f"{len(missing)} images missing: {missing[:3]}")
    if extra:
        problems.append(f"unexpected images: {extra[:3]}")
    differ = [i for i in clean if i in outs and outs[i] != clean[i]]
    if differ:
        problems.append(f"{len(differ)} outputs differ from the clean run: {differ[:3]}")
    status = load_run(folder).manifest.get("status")
    if status != "complete":
        problems.append(f"run status {status!r}")
    return problems


def run_case(case: FaultCase, target: FaultTarget, model: Path, board: Board, data: Path, out: Path,
             clean: dict[str, list[int]]) -> CaseResult:
    """Run one case and judge it against the clean run's outputs."""
    to_device = case.mutation if case.direction == "h2d" else None
    to_host = case.mutation if case.direction == "d2h" else None
    started = time.monotonic()
    with relayed(target, model, board, to_device, to_host) as relay:
        try:
            folder = run_bench(request(relay.url, model, data, out, case.baud, watchdog=case.watchdog_s))
        except HarnessError as exc:
            elapsed = time.monotonic() - started
            return _resume_after(case, target, model, board, data, out, clean, exc, elapsed)
    elapsed = time.monotonic() - started
    problems = [f"completed, but must fail with {case.expect_text[0]!r}"] if case.must_fail else []
    run = load_run(folder)
    lost = [i for i, e in zip(run.columns["image_id"], run.columns["error"], strict=True)
            if str(e or "").startswith(RETRYABLE_ERROR_PREFIX)]
    if lost:
        with relayed(target, model, board) as relay:
            folder = run_bench(request(relay.url, model, data, out, resume=str(folder), watchdog=60.0))
        problems += judge(folder, clean)
        return CaseResult(case.id, "errors+resumed", elapsed, link_resends(folder), problems=problems)
    problems += judge(folder, clean)
    return CaseResult(case.id, "complete", elapsed, link_resends(folder), problems=problems)


def _resume_after(case: FaultCase, target: FaultTarget, model: Path, board: Board, data: Path, out: Path,
                  clean: dict[str, list[int]], exc: HarnessError, elapsed: float) -> CaseResult:
    message = str(exc)
    problems = []
    if "\n" in message:
        problems.append("the error is more than one line")
    deadline = case.deadline_s + target.deadline_extra_s
    if elapsed > deadline:
        problems.append(f"failed after {elapsed:.1f} s, past its deadline of {deadline:g} s")
    if "--resume" not in message:
        problems.append("the error does not say how to resume")
    if not any(text in message for text in case.expect_text):
        problems.append(f"the error says none of {case.expect_text!r}")
    runs = sorted(p for p in out.iterdir() if (p / "run.json").is_file())
    if len(runs) != 1:
        return CaseResult(case.id, f"failed, {len(runs)} run folders", elapsed, 0, message, problems)
    with relayed(target, model, board) as relay:
        folder = run_bench(request(relay.url, model, data, out, resume=str(runs[0]), watchdog=60.0))
    problems += judge(folder, clean)
    return CaseResult(case.id, "failed+resumed", elapsed, link_resends(folder), message, problems)
