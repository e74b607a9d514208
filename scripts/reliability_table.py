"""Render docs/reliability.md's catalogue table from a catalogue run.

    RELIABILITY_TABLE=/tmp/cases.jsonl .venv/bin/python -m pytest -q tests/reliability
    .venv/bin/python scripts/reliability_table.py /tmp/cases.jsonl > /tmp/table.md

Temp folders in the messages become <tmp>/; rows are sorted by entry point, then input.
"""
import json
import re
import sys

TMP = re.compile(r"/tmp/pytest-of-[^/]+/pytest-\d+/[^/]+/")


def main(path: str) -> None:
    rows = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            case = json.loads(line)
            given, entry = (part.strip() for part in case["case"].rsplit("|", 1))
            rows[(entry, given)] = TMP.sub("<tmp>/", case["message"]).replace("|", "\\|")
    print("| # | input | entry point | what the user sees |")
    print("|---|---|---|---|")
    for n, ((entry, given), message) in enumerate(sorted(rows.items()), 1):
        print(f"| {n} | {given} | {entry} | `{message}` |")


if __name__ == "__main__":
    main(sys.argv[1])
