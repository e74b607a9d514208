"""Page render time of the dashboard in a real browser, 100,000 math samples vs the fixtures.

    python bench/bench_dashboard.py [--rows 100000] [--repeats 3] [--keep DIR]

Generates a baseline and a fine-tuned run of --rows math samples each (the fixture
generator, real graders) into a temp results folder, serves the dashboard with
`streamlit run`, and times each page in headless chromium: a click on the page's
sidebar link until its heading and key element are shown and the script run is
idle (the app itself is loaded once, as a user would). The first visit fills the
caches; the warm time is the median of --repeats later visits.
The peer is the same app over the 96-row fixture runs, measured in the same
script, so the report gives big/small ratios as well as seconds. Target: every
warm page under 2 s with 100k rows.
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _test_helper(relative: str):
    """A module of the test suite by path: tests/ is not part of the installed package."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem, REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_fixture_runs = _test_helper("tests/fixtures/make_fixture_runs.py")
_browser = _test_helper("tests/dashboard/browser.py")
PAGES, browser, open_page, serve, switch_to = (_browser.PAGES, _browser.browser, _browser.open_page,
                                               _browser.serve, _browser.switch_to)


def time_pages(results: Path, repeats: int, log: Path) -> dict[str, tuple[float, float]]:
    """page -> (first render s, median warm render s), switching pages from the sidebar."""
    times: dict[str, list[float]] = {name: [] for name in PAGES}
    with serve(results, log) as url, browser() as page:
        open_page(page, url, "import", timeout_ms=300_000)  # boot the app on a page that reads little
        for _ in range(1 + repeats):
            for name in PAGES:
                times[name].append(switch_to(page, name, timeout_ms=300_000))
    return {name: (t[0], statistics.median(t[1:])) for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the big runs here and keep them")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_dashboard_"))
    big = args.keep or work / "big"
    try:
        if not (big / "smollm2-lora-r8" / "metrics.json").exists():
            t0 = time.perf_counter()
            make_fixture_runs.write_runs(big, args.rows, 200, ("smollm2-base", "smollm2-lora-r8"))
            print(f"generated 2 runs x {args.rows:,} math samples in {time.perf_counter() - t0:.0f}s")
        small = work / "small"
        shutil.copytree(REPO / "tests" / "fixtures" / "runs", small)
        peer = time_pages(small, args.repeats, work / "small.log")
        heavy = time_pages(big, args.repeats, work / "big.log")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'page':10} {'fixture warm':>13} {f'{args.rows:,} first':>14} "
          f"{f'{args.rows:,} warm':>13} {'warm ratio':>11}  under 2 s")
    worst = 0.0
    for name in PAGES:
        _, small_warm = peer[name]
        first, warm = heavy[name]
        worst = max(worst, warm)
        print(f"{name:10} {small_warm:12.2f}s {first:13.2f}s {warm:12.2f}s {warm / small_warm:10.2f}x"
              f"  {'yes' if warm < 2.0 else 'NO'}")
    print(f"\nslowest warm page with {args.rows:,} samples: {worst:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
