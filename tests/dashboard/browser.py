"""A real Streamlit server and Debian's chromium, for the browser test and the bench.

    with serve(results_dir) as url, browser() as page:
        seconds = open_page(page, url, "math", '[data-testid="stVegaLiteChart"]')

`playwright install` cannot download browsers here, so chromium comes from apt
(`apt-get install -y chromium`, /usr/bin/chromium).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
# page name -> (url path, heading text, the page's key element, sidebar link text)
PAGES = {
    "overview": ("", "Runs", '[data-testid="stDataFrame"]', "Overview"),
    "math": ("math", "Math by type", '[data-testid="stVegaLiteChart"]', "Math by type"),
    "errors": ("errors", "Error cases", '[data-testid="stDataFrame"]', "Error cases"),
    "squad": ("squad", "SQuAD (original ability)", '[data-testid="stVegaLiteChart"]', "SQuAD"),
    "training": ("training", "Training", '[data-testid="stVegaLiteChart"]', "Training"),
    "score": ("score", "Contest score", '[data-testid="stVegaLiteChart"]', "Score"),
    "import": ("import", "Import an NPU run", '[data-testid="stFileUploader"]', "Import"),
    "compare": ("compare", "Compare runs", '[data-testid="stVegaLiteChart"]', "Compare"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(results: Path, log_path: Path | None = None, timeout: float = 90.0):
    """`streamlit run dashboard/app.py` on a free localhost port; yields its URL; kills it after."""
    port = free_port()
    env = {**os.environ, "PIPELINE_RESULTS": str(results)}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start (exit {proc.poll()}); see {log_path}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


@contextmanager
def browser(width: int = 1500, height: int = 1100):
    """A headless chromium page (Playwright), closed after."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chrome.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            chrome.close()


def wait_idle(page, timeout_ms: float = 60_000) -> None:
    """Until the script run that the page triggered has finished."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                           timeout=timeout_ms)


def _shown(page, name: str, timeout_ms: float) -> None:
    _, heading, key, _ = PAGES[name]
    page.get_by_role("heading", name=heading).first.wait_for(timeout=timeout_ms)
    page.locator(key).first.wait_for(timeout=timeout_ms)
    wait_idle(page, timeout_ms)


def open_page(page, url: str, name: str, timeout_ms: float = 60_000) -> float:
    """Load a page by URL (a fresh app session), wait until it is shown and idle; seconds."""
    start = time.perf_counter()
    page.goto(f"{url}/{PAGES[name][0]}", wait_until="domcontentloaded")
    _shown(page, name, timeout_ms)
    return time.perf_counter() - start


def switch_to(page, name: str, timeout_ms: float = 60_000) -> float:
    """Click the page's sidebar link (same session, no reload), wait until shown and idle; seconds."""
    start = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"]').get_by_role(
        "link", name=PAGES[name][3], exact=True).click()
    _shown(page, name, timeout_ms)
    return time.perf_counter() - start


def chart_axis_labels(page, title: str) -> dict[str, list[str]]:
    """{axis title: its tick labels, left to right / top to bottom} of the rendered Vega chart
    whose title contains `title` (Streamlit renders Altair as SVG); {} when none is shown."""
    return page.evaluate("""(title) => {
        for (const svg of document.querySelectorAll('[data-testid="stVegaLiteChart"] svg')) {
            const heads = [...svg.querySelectorAll('.role-title-text')].map(t => t.textContent);
            if (!heads.some(h => h.includes(title))) continue;
            const out = {};
            for (const axis of svg.querySelectorAll('.role-axis')) {
                const name = [...axis.querySelectorAll('.role-axis-title text')]
                    .map(t => t.textContent).join(' ');
                const labels = [...axis.querySelectorAll('.role-axis-label text')]
                    .map(t => [t.getBoundingClientRect(), t.textContent]);
                labels.sort((a, b) => (a[0].left - b[0].left) || (a[0].top - b[0].top));
                out[name] = labels.map(l => l[1]);
            }
            return out;
        }
        return {};
    }""", title)
