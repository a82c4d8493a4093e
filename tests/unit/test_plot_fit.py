"""Every text of every plot lies inside its figure (titles, axis labels, point labels).

Each figure is measured with matplotlib's own renderer: a text artist's window extent
must lie within ``fig.bbox``. Nightly's trend titles were cut ("...over tim"), the
comparison's point labels at the right edge ("#2 mlpe"), and the sweep's pareto.png one
of its labels; these tests draw those plots with the labels real runs produce.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from harness.models.sweep import SweepPoint, pareto_figure
from harness.plot_fit import fit_text, text_outside
from harness.report import plots
from harness.report.trends import TREND_METRICS


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The figures the plot functions hand to ``to_uri``, kept after it has saved them."""
    figs: list[Any] = []
    real = plots.to_uri

    def keep(fig: Any) -> str:
        uri = real(fig)
        figs.append(fig)
        return uri

    monkeypatch.setattr(plots, "to_uri", keep)
    yield figs


def _trend_series() -> list[plots.Series]:
    days = np.array(["2026-11-01", "2026-11-02", "2026-11-03"], dtype="datetime64[s]")
    return [plots.Series("mlperf-vww-96 @ nano33/sim", days, np.array([451.2, 451.2, 451.3])),
            plots.Series("mlperf-vww-96 @ esp32cam/sim", days, np.array([332.6, 332.6, 332.7]),
                         np.array([False, False, True]))]


def test_nightly_trend_titles_and_labels_are_whole(drawn: list[Any]) -> None:
    for _, ylabel, _, _ in TREND_METRICS:
        plots.trend(_trend_series(), ylabel, f"{ylabel} over time")
    assert len(drawn) == len(TREND_METRICS)
    for fig in drawn:
        assert text_outside(fig) == []
    title = drawn[1].axes[0].title.get_text()
    assert title.replace("\n", " ").endswith("over time")  # wrapped, not cut


def test_comparison_point_labels_are_whole(drawn: list[Any]) -> None:
    pts = [plots.ParetoPoint(f"#{i + 1} vww_96_025", 180.5, 0.882, 0.79, 0.936, "nano33/sim")
           for i in range(4)]
    pts.append(plots.ParetoPoint("#5 mlperf-vww-96", 451.17, 0.857, 0.654, 0.95, "nano33/sim"))
    plots.pareto(pts, {0, 4})
    fig = drawn[0]
    assert text_outside(fig) == []
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert "#1, #2, #3, #4 vww_96_025" in labels  # repeats share one label, not four overlaid
    assert "#5 mlperf-vww-96" in labels


def test_every_report_plot_keeps_its_text_inside(drawn: list[Any]) -> None:
    long = "a board name that is far longer than anyone expected @ esp32cam/qemu"
    plots.bars([long, "conv2d"], [3.0, 1.0], "time per layer, ms (estimated)", long * 2)
    plots.memory_bars([plots.MemoryBar(long, 120_000.0, 196_608.0, 150_000.0)], long)
    plots.forest([plots.Interval(long, 0.8, 0.7, 0.9)], 0.85, "accuracy", long)
    assert len(drawn) == 3
    for fig in drawn:
        assert text_outside(fig) == []


def test_sweep_pareto_labels_are_whole() -> None:
    pts = [SweepPoint(f"a{a}-r{r}-rgb", a, r, "rgb", int8_accuracy=acc,
                      latency_ms={"nano33": lat, "esp32cam": lat * 0.7},
                      fits={"nano33": r < 96, "esp32cam": True}, arena_bytes=60_000 * r // 48)
           for a, r, acc, lat in [(0.25, 48, 0.71, 40.0), (0.25, 96, 0.80, 180.0),
                                  (0.5, 96, 0.84, 451.0)]]
    fig = pareto_figure(pts)
    assert text_outside(fig) == []


def test_the_check_sees_a_cut_title() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title("p50 latency, ms (measured or estimated: see latency source) over time")
    assert any("over time" in t for t in text_outside(fig))
    fit_text(fig)
    assert text_outside(fig) == []
