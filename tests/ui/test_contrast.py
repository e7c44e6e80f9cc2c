"""Readable contrast (issue 12): every visible piece of text on the DAG list, the grid with its task panel and the
graph has a WCAG 2.1 contrast ratio of at least 4.5:1 (AA for normal text) against the background it is drawn on,
in the light theme and in the dark one (``prefers-color-scheme: dark``). Measured in Chromium from computed styles:
the background is the nearest ancestor's opaque background colour."""

from __future__ import annotations

import pytest

from tests.ui.conftest import artifacts_dir
from tests.ui.test_browser_pages import login, serve

AA = 4.5

LOW_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] >= 0.99)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || el.closest('svg, canvas, script, style, [hidden], dialog:not([open])')) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || style.display === 'none' || box.width <= 1 || box.height <= 1) continue;  // screen-reader-only text is 1px
    if (parseFloat(style.opacity) === 0) continue;
    const fg = rgb(style.color), bg = background(el);
    const [hi, lo] = [lum(fg.slice(0, 3)), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < %s) found.push(`${ratio.toFixed(2)} ${el.tagName.toLowerCase()}.${el.className} "${n.textContent.trim().slice(0, 30)}" ${style.color} on rgb(${bg})`);
  }
  return found;
}""" % AA


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_has_readable_contrast_in_both_themes(page, scheme):
    page.emulate_media(color_scheme=scheme)
    with serve() as server:
        login(page, server.url)
        page.wait_for_selector("tr.dag")
        pages = {"dag-list": page.evaluate(LOW_CONTRAST)}
        page.goto(f"{server.url}/ui/dags/etl/grid")
        page.focus("table.grid")
        for key in ("ArrowDown", "ArrowDown", "ArrowDown", "Enter"):  # the waiting task of the running run
            page.keyboard.press(key)
        page.wait_for_selector("#panel .why")
        page.hover('table.grid tr[data-task="load"] td >> nth=7')  # the hover card too
        page.wait_for_selector("#tip:has-text('duration')")
        pages["grid-with-panel"] = page.evaluate(LOW_CONTRAST)
        page.screenshot(path=artifacts_dir() / f"contrast-grid-{scheme}.png", full_page=True)
        page.goto(f"{server.url}/ui/dags/etl/graph")
        page.wait_for_selector("#graph .node")
        pages["graph"] = page.evaluate(LOW_CONTRAST)
    assert {name: found for name, found in pages.items() if found} == {}
