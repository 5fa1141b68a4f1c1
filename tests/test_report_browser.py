"""The HTML report of a small real run, opened in a real headless Chromium.

``snakemake --report`` of the shared small run (tests/small_run.py) is loaded at 1400×900
and 1400×2000; the rendered DOM must show the title and introduction, the configuration as
readable list items (not a preformatted dump wider than the page), and the Born table with
rounded numbers. Screenshots are written beside the report for a person to look at. Skips
when no Chromium is installed, unless ``CQ_REQUIRE_BROWSER=1`` (set by .ci/run), which makes
a missing browser a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from small_run import small_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


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


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    browser = _browser()
    path = small_run(tmp_path_factory) / "results" / "report.html"
    for size in ("1400,900", "1400,2000"):
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
