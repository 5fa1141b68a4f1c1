"""The HTML report of a small real run, opened in a real headless Chromium.

``snakemake --report`` of the shared small run (tests/small_run.py) is loaded at 1400×900
and 1400×2000; the rendered DOM must show the title and introduction, the configuration as
readable list items (not a preformatted dump wider than the page), and the Born table with
rounded numbers. The layout is measured in the browser too: a copy of the page with a small
script (:data:`MEASURE`) writes the scroll positions, the title's box and the widths of the
page, the configuration and the Born table into the DOM that Chromium dumps; the report
must open at its title (nothing scrolled, the title inside the window) and nothing may be
wider than its pane. Screenshots are written beside the report for a person to look at.
Skips when no Chromium is installed, unless ``CQ_REQUIRE_BROWSER=1`` (set by .ci/run), which
makes a missing browser a failure.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from small_run import small_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
SIZES = ("1400,900", "1400,2000")
MEASURE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const box = (e) => {
    const r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
  };
  const scrollers = [...document.querySelectorAll("*")].filter(
    (e) => /auto|scroll/.test(getComputedStyle(e).overflowY + getComputedStyle(e).overflowX));
  const title = [...document.querySelectorAll("h1")]
    .find((e) => e.textContent.includes("cq-sweep"));
  const config = document.getElementById("configuration");
  const table = document.querySelector("table");
  const measured = {
    scrollY: window.scrollY, scrollX: window.scrollX,
    width: window.innerWidth, height: window.innerHeight,
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    panes: scrollers.map((e) => ({
      name: e.tagName + "." + e.className, scrollTop: e.scrollTop, scrollLeft: e.scrollLeft,
      scrollWidth: e.scrollWidth, clientWidth: e.clientWidth, box: box(e)})),
    title: title ? box(title) : null,
    config: config ? box(config) : null,
    configWider: config ? [...config.querySelectorAll("*")]
      .filter((e) => box(e).right > box(config).right + 1 || e.scrollWidth > e.clientWidth + 1)
      .map((e) => e.outerHTML.slice(0, 120)) : null,
    table: table ? box(table) : null,
  };
  const out = document.createElement("pre");
  out.id = "cq-measured";
  out.textContent = JSON.stringify(measured);
  document.body.appendChild(out);
}, 500));
</script>"""
"""Measures the loaded page (after its own scripts rendered it) and appends the numbers to
the DOM as JSON in ``<pre id="cq-measured">``."""


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CQ_REQUIRE_BROWSER") == "1":
        pytest.fail(f"CQ_REQUIRE_BROWSER=1 but none of {BROWSERS} is on PATH")
    pytest.skip(f"no headless browser ({', '.join(BROWSERS)}); .ci/run installs chromium")


def _chromium(browser: str, *args: str, size: str) -> subprocess.CompletedProcess:
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--window-size={size}", "--virtual-time-budget=8000", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def _measured(browser: str, page: Path, size: str, scratch: Path) -> dict:
    """The layout of ``page`` in a ``size`` window (:data:`MEASURE`), from a measuring copy
    written in ``scratch`` (the pages are self-contained; the run's results stay as made)."""
    copy = scratch / f"{page.parent.parent.name}-{page.stem}-{size.replace(',', 'x')}.html"
    head, body_end, tail = page.read_text().rpartition("</body>")
    assert body_end, f"{page} has no </body>"
    copy.write_text(head + MEASURE + body_end + tail)
    dom = _chromium(browser, "--dump-dom", copy.as_uri(), size=size).stdout
    found = re.search(r'<pre id="cq-measured">(.*?)</pre>', dom, re.S)
    assert found, f"no measurements in the DOM of {copy}: {dom[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    browser = _browser()
    path = small_run(tmp_path_factory) / "results" / "report.html"
    for size in SIZES:
        shot = path.with_name(f"report-{size.replace(',', 'x')}.png")
        result = _chromium(browser, f"--screenshot={shot}", path.as_uri(), size=size)
        assert shot.is_file() and shot.stat().st_size > 10_000, result.stderr[-2000:]
    return path


@pytest.mark.slow
def test_report_opens_at_its_title_with_a_readable_config(report):
    dom = _chromium(_browser(), "--dump-dom", report.as_uri(), size="1400,900").stdout
    text = re.sub(r"<[^>]+>", " ", dom)
    assert "cq-sweep: hybrid classical" in text  # the title, rendered
    assert "Sweeps in this report" in text and "Configuration" in text
    # the configuration is a list of settings, not one preformatted YAML block
    assert not re.search(r"<pre[^>]*>\s*(results|sweeps):", dom)
    assert re.search(r"<li>.*?histograms", dom, re.S)
    for size in ("1400x900", "1400x2000"):
        assert report.with_name(f"report-{size}.png").is_file()


@pytest.mark.slow
def test_born_table_numbers_are_rounded(tmp_path_factory):
    table = (
        small_run(tmp_path_factory) / "results" / "histograms" / "tables" / "born.html"
    ).read_text()
    cells = re.findall(r"<td>([^<]*)</td>", table)
    assert cells and all(len(c) <= 16 for c in cells)  # no 17-digit floats
    assert any("±" in c for c in cells) and any(c in ("pass", "FAIL") for c in cells)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_report_opens_at_its_title_and_nothing_is_wider_than_its_pane(report, size, tmp_path):
    browser = _browser()
    page = _measured(browser, report, size, tmp_path)
    # opened at the top: neither the window nor any scrolling pane is scrolled
    assert page["scrollY"] == 0 and page["scrollX"] == 0, page
    assert all(pane["scrollTop"] == 0 and pane["scrollLeft"] == 0 for pane in page["panes"])
    # the title is inside the window (not above its top, where it could not be scrolled to)
    title = page["title"]
    assert title is not None, page
    assert 0 <= title["top"] and title["bottom"] <= page["height"], title
    assert 0 <= title["left"] and title["right"] <= page["width"], title
    # nothing wider than the window or than its scrolling pane; the configuration fits
    assert page["scrollWidth"] <= page["clientWidth"], page
    for pane in page["panes"]:
        assert pane["scrollWidth"] <= pane["clientWidth"], pane
    assert page["config"] is not None and page["config"]["right"] <= page["width"], page
    assert page["configWider"] == [], page["configWider"]

    # the Born tables, shown in the report's content pane, fit in a window that wide
    content = max(page["panes"], key=lambda pane: pane["clientWidth"])
    pane_size = f"{content['clientWidth']},{size.split(',')[1]}"
    tables = sorted(report.parent.glob("*/tables/born.html"))
    assert tables, "the small run makes Born tables"
    for table in tables:
        shown = _measured(browser, table, pane_size, tmp_path)
        assert shown["table"] is not None, table
        assert shown["scrollWidth"] <= shown["clientWidth"], (table, shown)
        assert shown["table"]["right"] <= shown["width"], (table, shown)
