"""Screenshots of every dashboard page over results/ (the README's picture comes from here).

    .venv/bin/python scripts/dashboard_screenshots.py [--results results] [--out artifacts/screenshots]

Serves the real app with Streamlit on localhost and drives Debian's Chromium (Playwright).
"""
import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.dashboard.browser import PAGES, browser, open_page, serve  # noqa: E402


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
