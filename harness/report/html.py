"""Small HTML building blocks for self-contained report pages.

Everything shown in a report may come from a device, a file name or a data set
manifest, so every value passes through :func:`esc` unless it is a :class:`Safe`
fragment built here. The page carries a Content-Security-Policy that forbids any
network access and any script but its own (pinned by hash), so even a value that
escaped escaping could not fetch or run anything; that is also what keeps a report
readable offline.

The one inline script checks, once the page has loaded, that every plot image decoded
to a non-zero size, and records the result on ``<html data-plots=...>``; the browser
test reads that marker.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any


class Safe(str):
    """A fragment of HTML built by this module, not to be escaped again.

    Concatenation keeps the type and escapes a plain-string operand, so ``Safe + str``
    can never smuggle raw text into a page.
    """

    def __add__(self, other: object) -> Safe:
        return Safe(str.__add__(self, esc(other)))

    def __radd__(self, other: object) -> Safe:
        return Safe(str.__add__(esc(other), self))


def esc(value: Any) -> Safe:
    """Escape any value for HTML text or a quoted attribute."""
    if isinstance(value, Safe):
        return value
    return Safe(html.escape(str(value), quote=True))


def join(parts: Iterable[Any]) -> Safe:
    return Safe("".join(esc(p) for p in parts))


def tag(name: str, *children: Any, **attrs: Any) -> Safe:
    """``<name attr="...">children</name>``; ``class_`` becomes ``class``."""
    attr = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"'
                   for k, v in attrs.items() if v is not None)
    return Safe(f"<{name}{attr}>{join(children)}</{name}>")


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers with a fixed number of decimals, NaN/None as an em dash."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "\u2014"
        return f"{value:.{digits}f}"
    return str(value)


def fmt_ci(value: float, low: float, high: float, digits: int = 3) -> str:
    if math.isnan(value):
        return "\u2014"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


#: unit words that may follow a figure ("451.17 ms", "333,288 B", "24.96 M instr")
_UNITS = re.compile(r"\b(ms|us|s|B|KiB|MiB|kB|M instr|instr)\b|\u00b5s")


def is_figure(value: Any) -> bool:
    """Whether a cell holds a figure (digits, separators, a unit) rather than words.

    A figure may break only at its spaces, never inside a number: a reader who sees
    "333,28" on one line and "8" on the next reads the wrong figure.
    """
    text = _UNITS.sub("", str(value))
    return any(c.isdigit() for c in text) and not any(c.isalpha() for c in text)


def cell(value: Any) -> Safe:
    """One ``<td>``: a figure never breaks inside a number (see :func:`is_figure`), a
    long token (a run id, a hash, a path) may break anywhere, and words wrap at spaces."""
    if is_figure(value):
        return tag("td", value, class_="num")
    long_token = any(len(w) > 14 for w in str(value).split())
    return tag("td", value, class_="long" if long_token else None)


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]], class_: str | None = None) -> Safe:
    head = tag("tr", *(tag("th", h) for h in header))
    body = join(tag("tr", *(cell(c) for c in r)) for r in rows)
    return tag("table", tag("thead", head), tag("tbody", body), class_=class_)


def kv_table(pairs: Iterable[tuple[Any, Any]]) -> Safe:
    return tag("table", tag("tbody", join(tag("tr", tag("th", k), cell(v))
                                          for k, v in pairs)), class_="kv")


def img(data_uri: str, alt: str, class_: str = "plot") -> Safe:
    """A plot or thumbnail; ``data_uri`` must be a ``data:image/...`` URI made here."""
    if not data_uri.startswith("data:image/"):
        raise ValueError("only inline data URIs are allowed in a self-contained page")
    return Safe(f'<img class="{esc(class_)}" src="{data_uri}" alt="{esc(alt)}">')


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def note(text: Any, kind: str = "note") -> Safe:
    return tag("p", text, class_=kind)


def section(title: str, *children: Any, id_: str | None = None) -> Safe:
    return tag("section", tag("h2", title), *children, id=id_)


CSS = """
:root{--fg:#1d2330;--muted:#5b6474;--line:#d9dde5;--bad:#b3261e;--good:#1b6e3a;--warn:#8a5a00}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
margin:0;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:4px 0 0;color:#c8cdd8}
main{max-width:1180px;margin:0 auto;padding:12px 28px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:14px 18px;
margin:14px 0}
h2{font-size:16px;margin:0 0 10px}
h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums;
max-width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 7px;text-align:left;vertical-align:top;
overflow-wrap:break-word}
thead th{background:#eef0f4}
table.kv th{font-weight:500;color:var(--muted);width:16em;max-width:40%}
.grid>*{max-width:100%}
td.num{overflow-wrap:normal}td.long{overflow-wrap:anywhere;min-width:4em}
@media (max-width:900px){main{padding:6px 6px 20px}section{padding:8px 8px}
th,td{padding:3px 3px}table{font-size:11px}}
.grid{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
img.plot{max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px;background:#fff}
.problem{background:#fdecea;border-left:4px solid var(--bad);padding:6px 10px;margin:4px 0}
.warn{background:#fff4e0;border-left:4px solid var(--warn);padding:6px 10px}
.ok{color:var(--good);font-weight:600}.bad{color:var(--bad);font-weight:600}
.note{color:var(--muted)}
.gallery{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:132px;font-size:11px;color:var(--muted);overflow-wrap:break-word}
figure img{width:128px;height:128px;object-fit:contain;image-rendering:pixelated;
border:1px solid var(--line);background:#222}
.missing{width:128px;height:128px;display:flex;align-items:center;justify-content:center;
border:1px dashed var(--bad);color:var(--bad);text-align:center;padding:6px}
code{font-size:12px;overflow-wrap:break-word}
"""

CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var bad = [];
  var imgs = document.querySelectorAll("img");
  for (var i = 0; i < imgs.length; i++) {
    var im = imgs[i], r = im.getBoundingClientRect();
    if (!im.complete || im.naturalWidth === 0 || r.width === 0 || r.height === 0) {
      bad.push(im.getAttribute("alt") || ("img " + i));
    }
  }
  var root = document.documentElement;
  root.setAttribute("data-plots", String(imgs.length));
  root.setAttribute("data-plots-failed", bad.join(" | "));
  root.setAttribute("data-checked", "1");
});
"""


def page(title: str, subtitle: str, body: Sequence[Any]) -> str:
    """A complete, self-contained HTML document."""
    digest = base64.b64encode(hashlib.sha256(CHECK_SCRIPT.encode()).digest()).decode()
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f"<script>{CHECK_SCRIPT}</script></head><body>"
        f"{tag('header', tag('h1', title), tag('p', subtitle))}"
        f"<main>{join(body)}</main></body></html>\n"
    )
