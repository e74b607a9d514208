"""Charts as a person sees them: the axis labels chromium actually rendered.

A chart can be built without an exception and still render nonsense (bucket bars labelled
"(3.0, 4.0]" in scrambled order), so these read the labels out of the rendered SVG.
"""
import os
import shutil
from pathlib import Path

import pytest

from tests.dashboard.browser import CHROMIUM, REPO, browser, chart_axis_labels, open_page, serve

FIXTURES = REPO / "tests" / "fixtures" / "runs"
SHOTS = REPO / "artifacts" / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("REQUIRE_BROWSER") != "1",
    reason="needs Debian's chromium: apt-get install -y chromium")]


def in_order(labels: list[str], order: list[str]) -> bool:
    """Every label is one of `order`, and they appear in that order."""
    return all(label in order for label in labels) and \
        [order.index(label) for label in labels] == sorted(order.index(label) for label in labels)


def test_digit_charts_and_heatmap_read_in_order(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURES, results)
    with serve(results, tmp_path / "streamlit.log") as url, browser() as page:
        open_page(page, url, "math")
        charts = page.locator('[data-testid="stVegaLiteChart"]')
        for i in range(charts.count()):  # Streamlit draws a chart once it is scrolled to
            charts.nth(i).scroll_into_view_if_needed()
        page.wait_for_function("""() => document.querySelectorAll(
            '[data-testid="stVegaLiteChart"] svg .role-axis-label').length > 8""", timeout=30_000)

        operand = chart_axis_labels(page, "operand digits")["operand digits"]
        assert operand and in_order(operand, ["1", "2", "3", "4", "5+"]), operand
        answer = chart_axis_labels(page, "answer digits")["answer digits"]
        assert answer and in_order(answer, ["1-2", "3-4", "5-8", "9-16", "17+"]), answer

        heat = page.locator('[data-testid="stVegaLiteChart"]', has_text="Right digit by position")
        heat.scroll_into_view_if_needed()
        positions = [label for labels in chart_axis_labels(page, "Right digit").values()
                     for label in labels if label in ("sign", "tens", "units", "tenths")]
        assert positions[:4] == ["sign", "tens", "units", "tenths"], positions
        SHOTS.mkdir(parents=True, exist_ok=True)
        heat.screenshot(path=str(SHOTS / "math_positions.png"))


def test_compare_page_draws_every_picked_run(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURES, results)
    with serve(results, tmp_path / "streamlit.log") as url, browser() as page:
        open_page(page, url, "compare")
        assert page.locator('[data-testid="stException"]').count() == 0
        by_type = chart_axis_labels(page, "Accuracy by type")
        assert by_type["problem type"][0] == "add" and by_type["problem type"][-1] == "all"
        body = page.inner_text("body")
        assert "Download report (.zip)" in body
