"""Does a report page fit its window? Layout checked in a real Chromium through playwright.

A page can decode every plot and still be unreadable: a label that cannot wrap pushes
its values past the card and off the screen, a wide table spills out of its section.
:func:`overflows` loads a page at a given width and lists every element that lies
outside the page width or outside the card (``<section>``) that holds it, and every
element whose content is wider than its box (text that spills out or is cut off); an
empty list is a page a reader can read at that width.

Playwright's own browser download is not used: it drives Debian's Chromium, the one CI
installs (``.ci/run``), through ``executable_path``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

#: the widths every page must fit: a laptop window, and a narrow one (half a screen)
WIDTHS = (1280, 800)

#: run in the page: every visible element outside the viewport's width or its card, and
#: every element whose content is wider than its box (spilling out, or cut off)
FIND_OVERFLOWS = """
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  const name = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (el.className && typeof el.className === "string") s += "." + el.className.split(" ")[0];
    const text = (el.innerText || el.getAttribute("alt") || "").trim().slice(0, 40);
    return text ? s + " '" + text.replace(/\\s+/g, " ") + "'" : s;
  };
  if (document.documentElement.scrollWidth > width + 1) {
    out.push("page scrolls sideways: " + document.documentElement.scrollWidth + " > " + width);
  }
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -1 || r.right > width + 1) {
      out.push(name(el) + " outside the page: " + Math.round(r.left) + ".." +
               Math.round(r.right) + " of " + width);
      continue;
    }
    const card = el.closest("section");
    if (card && card !== el) {
      const c = card.getBoundingClientRect();
      if (r.left < c.left - 1 || r.right > c.right + 1) {
        out.push(name(el) + " outside its card " + name(card).split(" ")[0] + ": " +
                 Math.round(r.right) + " > " + Math.round(c.right));
        continue;
      }
    }
    // text that does not wrap spills out of its box while the box itself stays put
    const style = getComputedStyle(el);
    if (style.display !== "inline" && el.clientWidth > 0 &&
        el.scrollWidth > el.clientWidth + 1) {
      out.push(name(el) + " is wider than its box (" + (style.overflowX === "visible" ?
               "spills out" : "cut off") + "): " + el.scrollWidth + " > " + el.clientWidth);
    }
  }
  return out;
}
"""


def overflows(html: Path, width: int, height: int = 900) -> list[str]:
    """Every element of ``html`` that a reader at ``width`` px cannot see whole (empty: all fit)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.set_default_timeout(60_000)
            tab.goto(html.resolve().as_uri(), wait_until="load")
            found: Any = tab.evaluate(FIND_OVERFLOWS)
        finally:
            browser.close()
    return [str(x) for x in found]


def screenshot(html: Path, out: Path, width: int = 1280, height: int = 900,
               full_page: bool = False) -> Path:
    """A PNG of ``html`` as a reader sees it at ``width`` x ``height``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.goto(html.resolve().as_uri(), wait_until="load")
            tab.screenshot(path=str(out), full_page=full_page, timeout=60_000)
        finally:
            browser.close()
    return out
