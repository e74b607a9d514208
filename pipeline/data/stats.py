"""Per-type counts and token lengths of a data file (contest train.json or a prepared split).

Reads anything the data stage reads or writes: contest JSON Lines / JSON array of
``{"problem", "solution"}``, prepared ``train.jsonl`` (``type``, ``target``, ``prompt``) or
``test.jsonl``. Types come from the row's ``type`` field when present, else ``classify``.
Token lengths use the given tokenizer: problem, answer (``target`` if present, else
``solution``) and the full training sequence (prompt + answer + EOS).
"""
from __future__ import annotations

import numpy as np

from pipeline.data import io
from pipeline.data.mindrecord import encode_texts
from pipeline.data.prepare import target_warnings
from pipeline.data.prompts import answer_separator, build_prompt
from pipeline.problems import TYPES, classify


def load_any_rows(path) -> tuple[list[dict], io.ImportReport]:
    """Rows of a contest or prepared file, each with ``type`` (classified when missing)."""
    report = io.ImportReport(str(path))
    rows = io.read_contest_rows(path, report, extra_keys=("id", "type", "target", "prompt"))
    for row in rows:
        if row.get("type") not in TYPES:
            row["type"] = classify(row["problem"], row["solution"])
    return rows, report


def _summary(values: list[int]) -> dict:
    if not values:
        return {}
    arr = np.asarray(values)
    return {"mean": round(float(arr.mean()), 1), "p50": int(np.percentile(arr, 50)),
            "p95": int(np.percentile(arr, 95)), "max": int(arr.max())}


def data_stats(path, tokenizer=None, template: str = "minimal", wrapper: str = "none",
               seq_length: int | None = None) -> dict:
    """Counts per type and (with a tokenizer) token-length summaries per type.

    Returns {"path", "rows", "malformed_count", "by_type": {type: {"rows", "share",
    "tokens": {"problem", "answer", "sequence"}, "over_seq_length"}}, "warnings"}. The sequence
    length uses the row's own ``prompt`` when present, else ``template``/``wrapper``. The
    warnings are ``data prepare``'s about the training targets (a prepared file's ``target``,
    else the solutions), so a file prepared elsewhere is checked the same way.
    Raises PipelineError for a missing, empty or unreadable file.
    """
    rows, report = load_any_rows(path)
    by_type: dict[str, dict] = {}
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["type"], []).append(row)
    for type_name in [t for t in TYPES if t in groups]:
        part = groups[type_name]
        entry = {"rows": len(part), "share": round(len(part) / len(rows), 6)}
        if tokenizer is not None:
            prompts = [r.get("prompt") or build_prompt(r["problem"], template, wrapper) for r in part]
            answers = [r.get("target", r["solution"]) for r in part]
            problem_len = [len(x) for x in encode_texts(tokenizer, [r["problem"] for r in part])]
            prompt_len = [len(x) for x in encode_texts(tokenizer, prompts)]
            answer_len = [len(x) for x in encode_texts(
                tokenizer, [answer_separator(p) + a for p, a in zip(prompts, answers)])]
            sequence = [p + a + 1 for p, a in zip(prompt_len, answer_len)]
            entry["tokens"] = {"problem": _summary(problem_len), "answer": _summary(answer_len),
                               "sequence": _summary(sequence)}
            if seq_length:
                entry["over_seq_length"] = sum(1 for n in sequence if n > seq_length + 1)
        by_type[type_name] = entry
    warnings = target_warnings([{"target": r.get("target", r["solution"])} for r in rows])
    return {"path": str(path), "rows": len(rows), "malformed_count": report.malformed_count,
            "by_type": by_type, "warnings": warnings}


def format_stats(stats: dict) -> str:
    """A plain-text table of data_stats output."""
    lines = [f"{stats['path']}: {stats['rows']} rows"
             + (f", {stats['malformed_count']} malformed" if stats["malformed_count"] else "")]
    has_tokens = any("tokens" in e for e in stats["by_type"].values())
    head = f"{'type':<10} {'rows':>8} {'share':>7}"
    if has_tokens:
        head += f" {'seq mean':>9} {'seq p95':>8} {'seq max':>8} {'ans mean':>9}"
        if any("over_seq_length" in e for e in stats["by_type"].values()):
            head += f" {'over':>6}"
    lines.append(head)
    for name, e in stats["by_type"].items():
        line = f"{name:<10} {e['rows']:>8} {e['share'] * 100:>6.2f}%"
        if has_tokens:
            seq, ans = e["tokens"]["sequence"], e["tokens"]["answer"]
            line += f" {seq['mean']:>9} {seq['p95']:>8} {seq['max']:>8} {ans['mean']:>9}"
            if "over_seq_length" in e:
                line += f" {e['over_seq_length']:>6}"
        lines.append(line)
    lines += [f"warning: {w}" for w in stats.get("warnings", [])]
    return "\n".join(lines)
