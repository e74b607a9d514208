"""Screenshots of every dashboard page over results/ (the README's picture comes from here).

    .venv/bin/python scripts/dashboard_screenshots.py [--results results] [--out artifacts/screenshots]

Serves the real app with Streamlit on localhost and drives Debian's Chromium (Playwright).
"""
import argparse
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The browser harness of the test suite, by path: tests/ is not part of the installed package.
_spec = importlib.util.spec_from_file_location("browser", REPO / "tests" / "dashboard" / "browser.py")
_browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_browser)
PAGES, browser, open_page, serve = _browser.PAGES, _browser.browser, _browser.open_page, _browser.serve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results"))
    parser.add_argument("--out", default=str(REPO / "artifacts" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with serve(Path(args.results)) as url, browser() as page:
        for name in PAGES:
            open_page(page, url, name)
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
