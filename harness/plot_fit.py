"""Keep every text of a matplotlib figure inside the figure.

Plots are drawn with fixed margins (constrained layout costs a second layout pass on
every plot of a report), and fixed margins clip whatever is longer than they expected:
a long title became "...over tim", a point label at the right edge "#2 mlpe". Before a
figure is saved, :func:`fit_text` measures every text once and mends what sticks out:
titles and axis labels are wrapped onto more lines, a point label near an edge is put on
the other side of its point, and the axes are moved in by whatever still overhangs
(tick labels, a wrapped y label). :func:`text_outside` is the check the tests use.
"""

from __future__ import annotations

import logging
import math
import textwrap
from typing import Any

log = logging.getLogger(__name__)

#: inches kept free between any text and the figure's edge
PAD_IN = 0.04


def _texts(fig: Any) -> list[Any]:
    """Every visible, non-empty text artist of ``fig`` (titles, labels, ticks, annotations)."""
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and t.figure is fig]  # fmt: skip


def text_outside(fig: Any) -> list[str]:
    """The texts of ``fig`` that stick out of it, each as ``'text' x0..x1, y0..y1 of w x h``.

    An empty list means every title, label, tick and annotation is whole in the saved image.
    """
    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    box = fig.bbox
    out = []
    for t in _texts(fig):
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - 0.5 or e.x1 > box.x1 + 0.5 or e.y0 < box.y0 - 0.5 or e.y1 > box.y1 + 0.5:
            out.append(f"{t.get_text()!r} {e.x0:.0f}..{e.x1:.0f}, {e.y0:.0f}..{e.y1:.0f} "
                       f"of {box.width:.0f} x {box.height:.0f}")
    return out


def _wrap(t: Any, room_px: float, size_px: float) -> bool:
    """Wrap ``t`` onto as many lines as it takes to be ``room_px`` long; False if it cannot."""
    text = t.get_text()
    if size_px <= room_px or room_px <= 0:
        return False
    width = max(4, math.floor(len(text.replace("\n", " ")) * room_px / size_px) - 1)
    lines = textwrap.wrap(text.replace("\n", " "), width, break_long_words=False)
    if len(lines) <= 1:
        return False
    t.set_text("\n".join(lines))
    return True


def _wrap_labels(fig: Any, renderer: Any) -> None:
    """Titles and axis labels longer than the figure allows go onto more lines.

    They are centred on their axes, so the room is twice the distance from the axes'
    centre to the nearer edge of the figure.
    """
    box = fig.bbox
    pad = PAD_IN * fig.dpi
    for ax in fig.axes:
        a = ax.get_window_extent(renderer)
        cx, cy = (a.x0 + a.x1) / 2, (a.y0 + a.y1) / 2
        room_x = 2 * min(cx - box.x0, box.x1 - cx) - 2 * pad
        room_y = 2 * min(cy - box.y0, box.y1 - cy) - 2 * pad
        for t in (ax.title, ax.xaxis.label):
            if t.get_text():
                _wrap(t, room_x, t.get_window_extent(renderer).width)
        for t in (ax._left_title, ax._right_title):  # aligned to one side of the axes
            if t.get_text():
                _wrap(t, box.width - 2 * pad, t.get_window_extent(renderer).width)
        if ax.yaxis.label.get_text():
            _wrap(ax.yaxis.label, room_y, ax.yaxis.label.get_window_extent(renderer).height)


def _flip_annotations(fig: Any, renderer: Any) -> None:
    """A point label that runs off an edge goes to the other side of its point."""
    from matplotlib.text import Annotation

    box = fig.bbox
    for ax in fig.axes:
        for a in ax.texts:
            if not isinstance(a, Annotation) or a.anncoords != "offset points":
                continue
            e = a.get_window_extent(renderer)
            dx, dy = a.xyann
            if e.x1 > box.x1 - 1:
                a.xyann = (-abs(dx), dy)
                a.set_horizontalalignment("right")
            if e.y1 > box.y1 - 1:
                a.xyann = (a.xyann[0], -abs(dy))
                a.set_verticalalignment("top")


def _move_axes_in(fig: Any, renderer: Any) -> None:
    """Shrink the axes by whatever text still overhangs each edge of the figure."""
    box = fig.bbox
    pad = PAD_IN * fig.dpi
    x0 = min((t.get_window_extent(renderer).x0 for t in _texts(fig)), default=box.x0)
    x1 = max((t.get_window_extent(renderer).x1 for t in _texts(fig)), default=box.x1)
    y0 = min((t.get_window_extent(renderer).y0 for t in _texts(fig)), default=box.y0)
    y1 = max((t.get_window_extent(renderer).y1 for t in _texts(fig)), default=box.y1)
    left = max(0.0, box.x0 + pad - x0) / box.width
    right = max(0.0, x1 - box.x1 + pad) / box.width
    bottom = max(0.0, box.y0 + pad - y0) / box.height
    top = max(0.0, y1 - box.y1 + pad) / box.height
    if not (left or right or bottom or top):
        return
    # the block of axes shrinks from each edge by that edge's overhang; every axes keeps
    # its place relative to the others
    pos = [ax.get_position() for ax in fig.axes]
    bx0, bx1 = min(p.x0 for p in pos), max(p.x1 for p in pos)
    by0, by1 = min(p.y0 for p in pos), max(p.y1 for p in pos)
    sx = max(0.05, (bx1 - bx0 - left - right) / (bx1 - bx0))
    sy = max(0.05, (by1 - by0 - bottom - top) / (by1 - by0))
    for ax, p in zip(fig.axes, pos, strict=True):
        ax.set_position((bx0 + left + (p.x0 - bx0) * sx, by0 + bottom + (p.y0 - by0) * sy,
                         p.width * sx, p.height * sy))


def fit_text(fig: Any) -> Any:
    """Mend ``fig`` so that every text lies inside it (see the module's docstring); returns it.

    Three rounds at most: moving the axes in moves their tick labels and the centre
    their titles are wrapped around.
    """
    renderer = fig.canvas.get_renderer()
    for _ in range(3):
        fig.draw_without_rendering()
        _wrap_labels(fig, renderer)
        fig.draw_without_rendering()
        _flip_annotations(fig, renderer)
        fig.draw_without_rendering()
        if not text_outside(fig):
            return fig
        _move_axes_in(fig, renderer)
    left = text_outside(fig)
    if left:
        log.debug("texts still outside the figure: %s", left)
    return fig
