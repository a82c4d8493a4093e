"""The report pages in a real browser: every plot decodes, the console stays silent.

Headless Chromium loads each page from disk with networking switched off. The page's
own check script (harness.report.html.CHECK_SCRIPT) marks ``<html>`` with how many
images it has and which failed to decode or lay out; ``--dump-dom`` returns the DOM
after the load event, and ``--enable-logging=stderr`` prints every console message
(errors, CSP violations, blocked requests) as a ``CONSOLE`` line. Two deliberately
broken pages check that both detectors do detect.

Every page the project writes (run report with its gallery, comparison, nightly) is
also laid out by Chromium through playwright at 1280 and 800 px (page_layout.py): no
element may lie outside the page width or its card, and no cell may be cut off.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from page_layout import WIDTHS, overflows

from harness.report.html import Safe, img, page, section, table
from harness.report.synth import SynthSpec, write_run
from harness.skip_groups import CHROMIUM as CHROMIUM_GROUP
from harness.skip_groups import needs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=needs(CHROMIUM_GROUP, "chromium is not installed"))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]


def browse(html: Path, tmp: Path, screenshot: Path | None = None,
           size: tuple[int, int] = (1280, 2400)) -> tuple[str, list[str]]:
    """(DOM after load, console lines) for a local page; optionally a screenshot."""
    profile = tmp / f"profile-{html.stem}-{'shot' if screenshot else 'dom'}"
    args = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    proc = subprocess.run([*args, html.resolve().as_uri()], capture_output=True, text=True,
                          timeout=90, check=False)
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, console


def marker(dom: str) -> dict[str, str]:
    m = re.search(r"<html[^>]*>", dom)
    assert m, "no <html> element in the dumped DOM"
    return dict(re.findall(r'(data-[\w-]+)="([^"]*)"', m.group(0)))


def check_page(html: Path, tmp: Path, min_plots: int, shot_name: str,
               size: tuple[int, int] = (1280, 2400)) -> dict[str, Any]:
    dom, console = browse(html, tmp)
    mk = marker(dom)
    assert mk.get("data-checked") == "1", "the page's check script did not run"
    assert mk.get("data-plots-failed") == "", f"plots that did not render: {mk}"
    assert int(mk["data-plots"]) >= min_plots
    assert console == [], console
    shot = tmp / shot_name
    _, console = browse(html, tmp, screenshot=shot, size=size)
    assert console == [], console
    from PIL import Image, ImageStat

    with Image.open(shot) as im:
        assert im.size == size
        assert max(ImageStat.Stat(im.convert("L")).stddev) > 10  # not a blank page
    keep = os.environ.get("HIL_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot_name)
    return mk


def test_run_report_renders(tmp_path: Path) -> None:
    from harness.report.run_report import write_report

    run = write_run(tmp_path, SynthSpec(n=240, seed=3))
    mk = check_page(write_report(run), tmp_path, min_plots=12, shot_name="report.png",
                    size=(1280, 3200))
    assert int(mk["data-plots"]) >= 9 + 8  # 9 plots and at least 8 thumbnails


def test_damaged_run_report_renders(tmp_path: Path) -> None:
    from harness.report.run_report import write_report

    run = write_run(tmp_path, SynthSpec(n=40, seed=4, images=False, model_name="<b>x</b>"))
    (run / "results.parquet").write_bytes(b"PAR1 truncated")
    check_page(write_report(run), tmp_path, min_plots=2, shot_name="damaged.png")


def _nightly_history(tmp_path: Path, nights: int,
                     finish: Callable[[Path], Path] = lambda run: run) -> tuple[Any, list[Path]]:
    """A synthetic matrix (nano33 and esp32cam on the sim) run for ``nights`` nights: the
    last night's result (pages written) and every run folder, oldest first."""
    from harness.report.nightly import run_nightly

    matrix = tmp_path / "m.toml"
    matrix.write_text('[matrix]\nmodels = ["default"]\nboards = ["nano33", "esp32cam"]\n'
                      'backends = ["sim"]\n')
    night = {"n": 0}

    def runner(request: Any) -> Path:
        spec = SynthSpec(n=80, seed=night["n"] * 3 + len(request.board), board=request.board,
                         images=False, created=datetime(2026, 11, 1, tzinfo=timezone.utc)
                         + timedelta(days=night["n"]))
        return finish(write_run(request.out_dir, spec))

    for n in range(nights):
        night["n"] = n
        res = run_nightly(matrix, tmp_path / "hist", runner=runner, write_reports=(n == nights - 1))
    return res, sorted((tmp_path / "hist" / "runs").glob("2026*"))


def test_nightly_and_comparison_pages_render(tmp_path: Path) -> None:
    from harness.report.compare import write_comparison

    res, runs = _nightly_history(tmp_path, 3)
    check_page(res.html_path, tmp_path, min_plots=6, shot_name="nightly.png")
    links = re.findall(r'href="([^"]+)"', res.html_path.read_text())
    assert len(links) == 2 and all((res.html_path.parent / h).is_file() for h in links)
    cmp = write_comparison(runs[-4:], tmp_path / "compare.html")
    check_page(cmp, tmp_path, min_plots=3, shot_name="compare.png")


def test_detectors_catch_a_broken_plot_and_console_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(page("t", "s", [section("x", img("data:image/png;base64,AAAA", "bad plot"))]))
    mk = marker(browse(broken, tmp_path)[0])
    assert mk["data-plots-failed"] == "bad plot"

    noisy = tmp_path / "noisy.html"
    noisy.write_text('<!DOCTYPE html><html><body><img src="https://example.invalid/x.png">'
                     "<script>console.error('boom')</script></body></html>")
    _, console = browse(noisy, tmp_path)
    assert any("boom" in ln for ln in console)


# --- layout: every page fits 1280 and 800 px (playwright driving Debian's Chromium) -------

needs_playwright = pytest.mark.skipif(
    importlib.util.find_spec("playwright") is None, reason="playwright is not installed")


def assert_fits(html: Path) -> None:
    for width in WIDTHS:
        bad = overflows(html, width)
        assert bad == [], f"{html.name} at {width} px:\n" + "\n".join(bad[:20])


def _with_cost_model_label(run: Path) -> Path:
    """Give a synthetic run the latency block a real sim run writes: the nano33 cost
    model's source is a sentence long, which is what pushed the Summary off the page."""
    from harness.boards import load_board
    from harness.units import latency_basis

    manifest = json.loads((run / "run.json").read_text())
    manifest["latency"] = latency_basis("estimated", load_board("nano33")).to_dict()
    (run / "run.json").write_text(json.dumps(manifest))
    return run


@needs_playwright
def test_run_report_fits_the_window(tmp_path: Path) -> None:
    from harness.report.run_report import write_report

    run = _with_cost_model_label(write_run(tmp_path, SynthSpec(n=240, seed=3)))
    html = write_report(run)
    assert_fits(html)
    text = html.read_text()
    assert "latency p50 (estimated)</th>" in text  # the label is short, the source a note
    assert "cost model (source:" in text


@needs_playwright
def test_nightly_and_comparison_pages_fit_the_window(tmp_path: Path) -> None:
    from harness.report.compare import write_comparison

    res, runs = _nightly_history(tmp_path, 2, finish=_with_cost_model_label)
    assert_fits(res.html_path)
    assert_fits(write_comparison(runs, tmp_path / "compare.html"))


@needs_playwright
def test_layout_check_catches_a_page_wider_than_the_window(tmp_path: Path) -> None:
    wide = tmp_path / "wide.html"
    wide.write_text(page("t", "s", [section("x", table(["label"], [["x" * 30 + " y"]])),
                                    section("y", Safe('<p style="white-space:nowrap">'
                                                      + "word " * 400 + "</p>"))]))
    bad = overflows(wide, 800)
    assert any("page scrolls sideways" in b for b in bad), bad
    assert any(b.startswith("p ") and "wider than its box" in b for b in bad), bad
    assert not any(b.startswith("td") for b in bad), bad  # the table cell itself wraps
