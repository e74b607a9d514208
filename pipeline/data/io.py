"""Reading a user's train.json, and the small file helpers every data step shares.

``read_contest_rows`` accepts the contest's JSON Lines (one ``{"problem", "solution"}`` per
line, what the contest called train.json) or one JSON array of such objects. Bad rows are
reported by line number (array: item number) and skipped; a file with no good row, an empty
file, or a missing file raises PipelineError naming the file.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pipeline import fileio
from pipeline.errors import PipelineError
from pipeline.runs import file_sha256
from pipeline.problems import TYPES, classify

_MAX_REPORTED = 20  # malformed rows listed in a report; the count is always complete


@dataclass
class ImportReport:
    """What happened to a file on import.

    rows_read: good rows; malformed: (line, reason) for the first bad rows;
    malformed_count: all bad rows; duplicates: rows dropped as exact repeats;
    counts: rows kept per type (TYPES order).
    """
    path: str
    rows_read: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)
    malformed_count: int = 0
    duplicates: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rows_kept(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        return {"path": self.path, "rows_read": self.rows_read, "rows_kept": self.rows_kept,
                "duplicates": self.duplicates, "malformed_count": self.malformed_count,
                "malformed": [{"line": n, "reason": r} for n, r in self.malformed],
                "counts": self.counts}


def _check_row(obj) -> str | None:
    """Why a decoded row is not a contest row, or None when it is."""
    if not isinstance(obj, dict):
        return f"expected an object with problem and solution, got {type(obj).__name__}"
    for key in ("problem", "solution"):
        if key not in obj:
            return f"missing field {key!r}"
        if not isinstance(obj[key], str):
            return f"field {key!r} is not a string"
    if not obj["problem"].strip():
        return "field 'problem' is empty"
    return None


def read_contest_rows(path, report: ImportReport | None = None,
                      extra_keys: tuple[str, ...] = ()) -> list[dict]:
    """Good rows of a contest-format file as ``{"problem", "solution"}`` dicts, in file order.

    Other fields are dropped, except those named in ``extra_keys`` (kept when present). Bad rows go into ``report`` (line numbers are 1-based).
    Raises PipelineError: missing/unreadable file, empty file, not JSON at all, no good row.
    """
    path = Path(path)
    report = report if report is not None else ImportReport(str(path))
    text = fileio.read_text(path, "data file")  # bounded; a non-UTF-8 byte names its line
    if not text.strip():
        raise PipelineError("the file is empty; expected JSON Lines of "
                            '{"problem": ..., "solution": ...}', path)

    def bad(line: int, reason: str) -> None:
        report.malformed_count += 1
        if len(report.malformed) < _MAX_REPORTED:
            report.malformed.append((line, reason))

    rows: list[dict] = []

    def keep(obj: dict) -> None:
        row = {"problem": obj["problem"], "solution": obj["solution"]}
        row.update({k: obj[k] for k in extra_keys if k in obj})
        rows.append(row)

    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PipelineError(f"not a valid JSON array: line {exc.lineno}: {exc.msg}", path) from exc
        except RecursionError:
            raise PipelineError("JSON nested too deeply to be an array of rows", path) from None
        if not isinstance(items, list):
            raise PipelineError("expected a JSON array of rows", path)
        for number, obj in enumerate(items, 1):
            reason = _check_row(obj)
            if reason:
                bad(number, f"item {number}: {reason}")
            else:
                keep(obj)
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                bad(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            except RecursionError:
                bad(number, "JSON nested too deeply")
                continue
            reason = _check_row(obj)
            if reason:
                bad(number, reason)
            else:
                keep(obj)
    report.rows_read = len(rows)
    if not rows:
        first = f"; line {report.malformed[0][0]}: {report.malformed[0][1]}" if report.malformed else ""
        raise PipelineError(f"no valid rows ({report.malformed_count} malformed{first})", path)
    return rows


def dedup_rows(rows: list[dict]) -> tuple[list[dict], int]:
    """Rows with exact (problem, solution) repeats removed, first kept; and how many went."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for row in rows:
        key = (row["problem"], row["solution"])
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept, len(rows) - len(kept)


def tag_types(rows: list[dict], progress: bool = False) -> list[dict]:
    """Add ``"type"`` (pipeline.problems.classify) to each row, in place; returns rows."""
    from pipeline.progress import Progress
    step = 50_000
    with Progress(len(rows), "classify", unit="row", disable=not progress) as bar:
        for start in range(0, len(rows), step):
            for row in rows[start:start + step]:
                row["type"] = classify(row["problem"], row["solution"])
            bar.update(min(step, len(rows) - start))
    return rows


def type_counts(rows: Iterable[dict]) -> dict[str, int]:
    """Rows per type, in TYPES order, types with no row left out."""
    counts = Counter(row["type"] for row in rows)
    return {t: counts[t] for t in TYPES if counts.get(t)}


def import_file(path, dedup: bool = True, progress: bool = False) -> tuple[list[dict], ImportReport]:
    """Read, validate, optionally de-duplicate and type-tag a user's train.json."""
    report = ImportReport(str(path))
    rows = read_contest_rows(path, report)
    if dedup:
        rows, report.duplicates = dedup_rows(rows)
    tag_types(rows, progress=progress)
    report.counts = type_counts(rows)
    return rows, report


def write_jsonl(path, rows: Iterable[dict], keys: tuple[str, ...] | None = None) -> int:
    """Write rows as UTF-8 JSON Lines (only ``keys``, in that order, when given); returns count.

    Atomic (unique temp file + rename); PipelineError for a read-only folder or a full disk.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fileio.write_error(exc, path.parent) from None
    count = 0

    def write(handle):
        nonlocal count
        for row in rows:
            if keys is not None:
                row = {k: row[k] for k in keys}
            handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            count += 1
    fileio.atomic_write(path, write)
    return count


def read_jsonl(path) -> list[dict]:
    """Rows of a JSON Lines file we wrote; PipelineError names the line on a broken one
    (bounded and UTF-8-checked like every reader: pipeline.runs.read_jsonl)."""
    from pipeline.runs import read_jsonl as read_rows
    return read_rows(Path(path))


sha256_file = file_sha256  # one implementation, in pipeline.runs
