"""The contest's SQuAD "original ability" eval set, built from dev-v1.1.json.

Contest rule (docs/contest.md section 4): the first question of each paragraph with its first
answer, in file order -> 2,067 items, each asked with a fixed prompt. Rows follow
docs/run_format.md (tests_squad.jsonl):
``{"id", "context", "question", "answers": [first], "all_answers": [...], "prompt"}``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.runs import read_jsonl, write_jsonl

SQUAD_DEV = Path(__file__).resolve().parents[2] / "data" / "squad" / "dev-v1.1.json"
SQUAD_PROMPT = ("Read the passage and answer the question below.\n\n### Instruction:\n{context}"
                "\n\n### Input:\n{question}\n\n### Response:")
CONTEST_ITEMS = 2067
EVAL_FIELDS = ("id", "context", "question", "answers", "all_answers", "prompt")


def squad_prompt(context: str, question: str) -> str:
    return SQUAD_PROMPT.format(context=context, question=question)


def build_squad_eval(source=SQUAD_DEV) -> list[dict]:
    """The contest eval items from a SQuAD v1.1 JSON file, in file order.

    Raises PipelineError naming the file (and the article/paragraph) when the file is missing,
    is not JSON, or lacks the SQuAD fields.
    """
    source = Path(source)
    from pipeline.fileio import read_text
    text = read_text(source, "SQuAD file")  # bounded; regular files only
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"not valid SQuAD JSON ({exc})", source) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise PipelineError("not a SQuAD file: expected an object with a 'data' list", source)
    items = []
    for a, article in enumerate(doc["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", []) if isinstance(article, dict) else []):
            where = f"data[{a}].paragraphs[{p}]"
            try:
                qa = paragraph["qas"][0]
                all_answers = [ans["text"] for ans in qa["answers"]]
                item = {"id": qa["id"], "context": paragraph["context"], "question": qa["question"],
                        "answers": [all_answers[0]], "all_answers": all_answers}
            except (KeyError, IndexError, TypeError) as exc:
                raise PipelineError(f"{where}: missing SQuAD field ({exc!r})", source) from None
            item["prompt"] = squad_prompt(item["context"], item["question"])
            items.append(item)
    if not items:
        raise PipelineError("no SQuAD paragraphs found", source)
    return items


def _check_eval_rows(rows: list[dict], path: Path) -> list[dict]:
    if not rows:
        raise PipelineError("SQuAD eval set is empty", path)
    for line_no, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise PipelineError(f"row {line_no}: expected a JSON object", path)
        missing = [f for f in ("id", "question", "answers") if f not in row]
        if missing:
            raise PipelineError(f"row {line_no}: missing field(s) {', '.join(missing)}", path)
        answers = row["answers"]
        if not isinstance(answers, list) or not answers or not all(isinstance(t, str) for t in answers):
            raise PipelineError(f"row {line_no}: 'answers' must be a non-empty list of str", path)
        row.setdefault("all_answers", list(answers))
        row.setdefault("context", "")
        row.setdefault("prompt", squad_prompt(row["context"], row["question"]))
    return rows


def load_squad_eval(path) -> list[dict]:
    """Eval items from either dev-v1.1.json (built with build_squad_eval) or a JSONL eval set.

    A .json file is read as SQuAD v1.1; anything else as JSON Lines rows of tests_squad.jsonl.
    Raises PipelineError naming the file (and row) on bad input.
    """
    path = Path(path)
    if path.suffix == ".json":
        return build_squad_eval(path)
    return _check_eval_rows(read_jsonl(path), path)


def write_squad_eval(path, limit: int | None = None, source=SQUAD_DEV) -> int:
    """Write the contest eval set (first ``limit`` items, all if None) as JSONL; returns rows written."""
    items = build_squad_eval(source)
    if limit is not None:
        if limit < 1:
            raise PipelineError(f"limit must be positive, got {limit}")
        items = items[:limit]
    write_jsonl(Path(path), items)
    return len(items)


def squad_subset(n: int, seed: int = 0, items: list[dict] | None = None,
                 after: int = 0) -> list[dict]:
    """A fixed n-item subset for quick CPU runs, returned in file order.

    Items are ranked by sha256(f"{seed}:{id}") and the n lowest are kept, so the choice
    depends only on (seed, ids): the same on every machine and Python version, and the
    subset for n is contained in the subset for n + 1. `after` skips the `after` lowest
    first: `squad_subset(100, after=100)` is the next 100, disjoint from `squad_subset(100)`
    and drawn the same way (held-out items to choose a checkpoint on without touching the
    scored ones). Raises PipelineError if n or after is out of range.
    """
    items = build_squad_eval() if items is None else items
    if after < 0:
        raise PipelineError(f"after must be >= 0, got {after}")
    if not 1 <= n <= len(items) - after:
        raise PipelineError(f"subset size must be in 1..{len(items) - after}"
                            f"{f' after skipping {after}' if after else ''}, got {n}")
    def rank(item):
        return hashlib.sha256(f"{seed}:{item['id']}".encode()).hexdigest()
    chosen = {id(item) for item in sorted(items, key=rank)[after:after + n]}
    return [item for item in items if id(item) in chosen]
