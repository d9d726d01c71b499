"""The HTML reports load in headless Chromium without errors and show what they must.

Chromium comes from Debian's `chromium` package (installed by .ci/run). The page's console
messages go to stderr with `--enable-logging=stderr`: an uncaught script error, a blocked
load (the reports' Content-Security-Policy forbids any) or a console.error would show there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from report_samples import HOSTILE, make_results

from ciba_harness.reports import write_html_report, write_load_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)"
)
DATA = Path(__file__).parent / "data"
CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")


@pytest.fixture
def results() -> dict[str, Any]:
    return make_results()


def _dump_dom(page: Path, profile: Path) -> tuple[str, list[str]]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=2000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, CONSOLE.findall(done.stderr)


def test_conformance_report_loads_and_shows_the_matrix(
    results: dict[str, Any], tmp_path: Path
) -> None:
    page = write_html_report(results, tmp_path / "report.html")
    dom, console = _dump_dom(page, tmp_path / "profile")
    assert console == []
    assert '<table id="requirement-matrix">' in dom
    assert dom.count('<tr class="r-') == len(results["requirements"])
    assert "CIBA-TOKEN-05" in dom
    # The inline filter script ran: it reveals the verdict filter that is hidden without JS.
    assert '<div id="filters">' in dom
    assert HOSTILE not in dom  # escaped text stayed text: no injected element


def test_load_report_loads_with_its_charts(tmp_path: Path) -> None:
    for path in DATA.glob("locust_*.csv"):
        shutil.copy(path, tmp_path / path.name)
    page = write_load_report(tmp_path / "locust", tmp_path / "load.html")
    dom, console = _dump_dom(page, tmp_path / "profile")
    assert console == []
    assert dom.count('src="data:image/png;base64,') == 6
    assert "CIBA load report" in dom
