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


def _trust_results(root: Path) -> Path:
    """The fixture runs plus what a user's results folder can hold: copies with a space and a
    CJK name, a corrupt metrics.json, a failed job, and the newest fine-tuned run on another
    test set (5 problems shared) whose first problem carries Markdown an attacker could plant."""
    import json
    import sys
    import time

    from pipeline import jobs
    results = root / "results"
    shutil.copytree(FIXTURES, results)
    shutil.copytree(results / "smollm2-base", results / "smollm2-base copy")
    shutil.copytree(results / "smollm2-lora-r8", results / "运行一")
    shutil.copytree(results / "smollm2-lora-r8", results / "broken")
    (results / "broken" / "metrics.json").write_text('{"math": ', encoding="utf-8")
    foreign = results / "npu-foreign"
    shutil.copytree(results / "smollm2-lora-r8", foreign)
    rows = [json.loads(line) for line in (foreign / "samples_math.jsonl").read_text().splitlines()]
    for row in rows[5:]:
        row["problem"] += "（另一组）"
    rows[5]["problem"] = "![t](http://127.0.0.1:9/x.png) a `tick` and <b>bold</b>"
    rows[5]["verdicts"] = {rule: False for rule in rows[5]["verdicts"]}  # listed as an error case
    (foreign / "samples_math.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    manifest = json.loads((foreign / "manifest.json").read_text())
    manifest["created"] = "2026-12-01T00:00:00+00:00"  # the newest: the default candidate
    (foreign / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    failed = results / "lora-failed"
    jobs.start(failed, [sys.executable, "-c", "import sys; print('error: training data not found'); sys.exit(1)"])
    while jobs.is_alive(failed):
        time.sleep(0.1)
    return results, rows[5]


def test_pages_tell_the_truth_with_odd_folders_foreign_runs_and_failed_jobs(tmp_path):
    from tests.dashboard.browser import wait_idle
    results, planted = _trust_results(tmp_path)
    with serve(results, tmp_path / "streamlit.log") as url, browser() as page:
        fetched = []
        page.on("request", lambda request: fetched.append(request.url))
        for path in PAGES:
            open_page(page, url, path)
            body = page.inner_text("body")
            assert page.locator('[data-testid="stException"]').count() == 0, path
            assert "1 run folder(s) skipped" in body, path
            assert "lora-failed" in body and "error: training data not found" in body, path  # job history
        open_page(page, url, "math")
        body = page.inner_text("body")
        assert "Only 5 problems in common" in body and "npu-foreign" in body
        assert "paired samples\n\n5" in body or "paired samples\n5" in body

        open_page(page, url, "errors")
        page.get_by_label("Search problem / output / answer").fill("tick")
        page.keyboard.press("Enter")
        page.get_by_text("1 of 96 samples").wait_for(timeout=30_000)
        wait_idle(page)
        page.wait_for_timeout(500)  # the grid draws its rows on a canvas after the run ends
        grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
        page.mouse.click(grid["x"] + 14, grid["y"] + 35 + 17)  # the first row's selection box
        detail = page.locator('[data-testid="stHtml"]', has_text="Problem:")
        detail.wait_for(timeout=30_000)
        wait_idle(page)
        assert planted["problem"] in detail.inner_text()  # the text, as typed, not Markdown
        assert detail.locator("img").count() == 0 and detail.locator("b", has_text="bold").count() == 0
        page.screenshot(path=str(SHOTS / "errors_detail.png"), full_page=True)
        # filter to nothing with the row still selected: no traceback, no stale sample
        page.get_by_label("Search problem / output / answer").fill("no such text anywhere")
        page.keyboard.press("Enter")
        page.get_by_text("0 of 96 samples").wait_for(timeout=30_000)
        wait_idle(page)
        body = page.inner_text("body")
        assert page.locator('[data-testid="stException"]').count() == 0
        assert "0 of 96 samples" in body and "Select a row" in body
        assert not [u for u in fetched if u.startswith("http://127.0.0.1:9/")]


def test_train_form_trains_from_a_fresh_results_folder(tmp_path, monkeypatch):
    """A fresh clone: no runs, no prepared data. The sidebar form prepares the tiny recipe and
    trains the tiny preset with its own LoRA; the job history follows it to done."""
    from tests.dashboard.browser import wait_idle
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "prepared"))  # nothing prepared yet
    with serve(results, tmp_path / "streamlit.log") as url, browser() as page:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("heading", name="Runs").first.wait_for(timeout=60_000)
        wait_idle(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Train a new adapter").click()
        sidebar.locator('[data-testid="stSelectbox"]', has_text="Preset").click()
        page.get_by_role("option", name="tiny_llama_lora_cpu.yaml").click()
        sidebar.get_by_text("for tiny first").wait_for(timeout=30_000)  # its recipe, unprepared
        wait_idle(page)
        assert sidebar.get_by_label("rank").input_value() == "4"  # the tiny preset's, not r8
        assert sidebar.get_by_label("max steps").input_value() == "8"
        sidebar.get_by_label("New run name").fill("tiny-browser")
        sidebar.get_by_label("max steps").fill("3")
        sidebar.get_by_role("button", name="Start training").click()
        sidebar.get_by_text("tiny-browser").first.wait_for(timeout=30_000)
        page.wait_for_function("document.body.innerText.includes('done')", timeout=300_000)
        wait_idle(page)
        body = sidebar.inner_text()
        assert "tiny-browser: done" in body, body[-2000:]
        page.screenshot(path=str(SHOTS / "train_form_done.png"), full_page=True)
    import json
    adapter = json.loads((results / "tiny-browser" / "manifest.json").read_text())["adapter"]
    assert (adapter["rank"], adapter["alpha"], len(adapter["targets"])) == (4, 8.0, 7)
    assert (tmp_path / "prepared" / "tiny" / "train.mindrecord").is_file()
