"""The whole app in a real browser: a Streamlit server, driven by Debian's chromium.

Each page must load without an exception and show its key element; a screenshot
per page goes to artifacts/screenshots/<page>.png (git-ignored) for a human to look at.
"""
import os
import shutil
from pathlib import Path

import pytest

from tests.dashboard.browser import CHROMIUM, PAGES, REPO, browser, open_page, serve

FIXTURES = REPO / "tests" / "fixtures" / "runs"
SHOTS = REPO / "artifacts" / "screenshots"

# A laptop without Chromium skips; CI sets REQUIRE_BROWSER=1 so a missing browser fails.
pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("REQUIRE_BROWSER") != "1",
    reason="needs Debian's chromium: apt-get install -y chromium")]


def test_every_page_loads_in_chromium(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURES, results)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(results, tmp_path / "streamlit.log") as url, browser() as page:
        for path, (_, heading, key, _) in PAGES.items():
            open_page(page, url, path)
            assert page.locator('[data-testid="stException"]').count() == 0, path
            assert "Page not found" not in page.inner_text("body"), path
            assert page.locator(key).count() >= 1, path
            # Sidebar state: the baseline/candidate pickers are on every page.
            assert page.get_by_text("Candidate run").count() >= 1, path
            page.screenshot(path=str(SHOTS / f"{path}.png"), full_page=True)
    assert all((SHOTS / f"{p}.png").stat().st_size > 10_000 for p in PAGES)
