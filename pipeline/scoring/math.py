"""Math grading: the model's final answer, judged by the named rules.

A contest prediction is prompt + continuation (docs/contest.md section 4), so the problem's
own numbers are in it. ``split_continuation`` cuts the echo off; ``extract_answer`` reads the
final answer from what the model generated; each rule in ``RULES`` (``pipeline.scoring.rules``)
says yes/no for one sample. ``grade`` does one sample, ``score_math`` a whole prediction file,
with the error class (``pipeline.scoring.errors``) of each sample wrong under the headline rule.

Reading and comparing numbers lives in ``pipeline.scoring.numbers``.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.problems import TYPES, classify, last_boxed, reference_answer
from pipeline.scoring.errors import wrong_answer_class
from pipeline.scoring.numbers import (  # noqa: F401  (re-exported: the scoring API)
    _NUMBER, _boxed_answer, _clean_number, answer_text, numbers_in, parse_value,
    rounded_equal, values_equal, within_scale, within_tolerance)
from pipeline.scoring.rules import (  # noqa: F401  (re-exported: the scoring API)
    HEADLINE_RULE, RULES, contains, exact, headline_of, make_tolerance, resolve_rules, rounded,
    tolerance, verdict_function)

# ---------------------------------------------------------------- continuation

_RESPONSE_MARKERS = ("### Response:", "### Response：", "ASSISTANT:")


def render_prompt(prompt: str | None, problem: str) -> str | None:
    """A prompt template with ``{problem}`` filled in (a literal prompt is returned as is).

    ``str.replace`` rather than ``format`` so LaTeX braces in a problem never break it.
    """
    if not prompt:
        return None
    return prompt.replace("{problem}", problem) if "{problem}" in prompt else prompt


def split_continuation(text: str, problem: str, prompt: str | None = None) -> str:
    """What the model generated, without the echoed prompt.

    text: the whole prediction (prompt + continuation); problem: the problem text;
    prompt: the exact prompt fed to the model (already filled in), if known.
    Cuts the prompt when the text starts with it, else everything up to the end of the
    last occurrence of the problem; then drops leading whitespace and a leading
    ``### Response:`` marker. A prediction that only repeats the problem gives ``""``.
    """
    text = text or ""
    if prompt and text.startswith(prompt):
        cont = text[len(prompt):]
    else:
        at = text.rfind(problem) if problem else -1
        cont = text[at + len(problem):] if at >= 0 else text
    cont = cont.lstrip()
    for marker in _RESPONSE_MARKERS:
        if cont.startswith(marker):
            return cont[len(marker):].lstrip()
    return cont


# ---------------------------------------------------------------- extraction

def extract_answer(continuation: str) -> str | None:
    """The final answer in a generated continuation, or None when it has no number.

    Reads only up to the first stop marker (``###``, ``</s>``, ``<|eot_id|>`` ...). Prefers
    the last ``\\boxed{...}`` (a number, a ``\\frac``, else its raw content); then the first
    number after the last ``=``/``：``/``:``/``为``; else the last number in the text.
    Full-width digits are read as ASCII; ``1,234.50`` -> ``1234.50``; units, ``%`` and a
    trailing ``。``/``.`` are left out of the number.
    """
    if not continuation:
        return None
    text = answer_text(continuation)
    if "\\boxed{" in text:
        boxed = last_boxed(text)
        if boxed is not None:
            return _boxed_answer(boxed)
    at = max(text.rfind("="), text.rfind("："), text.rfind(":"), text.rfind("为"))
    if at >= 0:
        match = _NUMBER.search(text, at + 1)
        if match:
            return _clean_number(match.group())
    last = None
    for last in _NUMBER.finditer(text):
        pass
    return _clean_number(last.group()) if last else None


# ---------------------------------------------------------------- grading

@dataclass
class GradeResult:
    """One graded sample: the continuation read, the answer found, the reference answer,
    and each rule's verdict."""
    continuation: str
    extracted: str | None
    reference: str
    verdicts: dict


def grade(output: str, reference_solution: str, problem: str, type: str | None = None,
          prompt: str | None = None, rules=None) -> GradeResult:
    """Grade one prediction (prompt + continuation) against a contest solution.

    type: the problem type (classified when None); prompt: the prompt template
    (``{problem}`` filled in) or literal prompt; rules: see ``resolve_rules``.
    """
    ptype = type or classify(problem, reference_solution)
    reference = reference_answer(reference_solution, ptype)
    continuation = split_continuation(output, problem, render_prompt(prompt, problem))
    extracted = extract_answer(continuation)
    verdicts = {name: bool(rule(output, extracted, reference))
                for name, rule in resolve_rules(rules).items()}
    return GradeResult(continuation, extracted, reference, verdicts)


def _field(test: dict, name: str, index: int) -> str:
    value = test.get(name) if isinstance(test, dict) else None
    if not isinstance(value, str):
        raise PipelineError(f"test row {index}: missing or non-string field {name!r}")
    return value


def score_math(outputs: list[str], tests: list[dict], rules=None, prompt: str | None = None,
               gen_seconds: list | None = None, progress: bool = False,
               headline: str | None = None) -> tuple[list[dict], dict]:
    """Grade every prediction; returns (samples_math.jsonl rows, summary).

    outputs: predictions (prompt + continuation), one per test row, same order;
    tests: {"problem", "solution"[, "id", "type"]} rows; rules: see ``resolve_rules``;
    prompt: the prompt template used at inference; gen_seconds: optional seconds per row;
    progress: show a ``pipeline.progress.Progress`` bar (stage "score math");
    headline: the rule whose verdict decides a row's error class (``rules.headline_of``:
    default HEADLINE_RULE), so a row has a class exactly when that rule calls it wrong.
    Summary: ``{"total", "headline_rule", "rules": {rule: {"accuracy", "correct", "total",
    "by_type"}}, "positions": digits.positions_by_type(rows)}``.
    Raises PipelineError on a length mismatch or a test row without problem/solution.
    """
    from pipeline.scoring.digits import positions_by_type

    if len(outputs) != len(tests):
        raise PipelineError(
            f"{len(outputs)} predictions but {len(tests)} test rows; they must match one to one")
    chosen = resolve_rules(rules)
    headline = headline_of(chosen, headline)
    bar = None
    if progress:
        from pipeline.progress import Progress
        bar = Progress(len(tests), "score math", unit="row")
    try:
        with _gc_paused():
            rows = _score_rows(outputs, tests, verdict_function(chosen, headline), prompt,
                               gen_seconds, bar)
    finally:
        if bar is not None:
            bar.close()
    summary = summarize(rows, list(chosen))
    summary["headline_rule"] = headline
    summary["positions"] = positions_by_type(rows)
    return rows, summary


@contextmanager
def _gc_paused():
    """Pause the cyclic GC while building many small row dicts (none form cycles); its
    repeated full passes over a growing heap cost ~20% at 800k rows."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_PROGRESS_EVERY = 10_000


def _score_rows(outputs, tests, verdicts_of, prompt, gen_seconds, bar=None) -> list[dict]:
    rows = []
    for index, (output, test) in enumerate(zip(outputs, tests)):
        problem = _field(test, "problem", index)
        solution = _field(test, "solution", index)
        ptype = test.get("type") or classify(problem, solution)
        reference = reference_answer(solution, ptype)
        output = output or ""
        continuation = split_continuation(output, problem, render_prompt(prompt, problem))
        extracted = extract_answer(continuation)
        verdicts, ok = verdicts_of(output, extracted, reference)
        row = {"id": test.get("id") or f"math-{index:05d}", "index": index, "type": ptype,
               "problem": problem, "reference": reference, "solution": solution,
               "output": continuation, "extracted": extracted, "verdicts": verdicts,
               "error_class": None if ok else wrong_answer_class(problem, reference, extracted,
                                                                 continuation, ptype)}
        if gen_seconds is not None:
            row["gen_seconds"] = gen_seconds[index]
        rows.append(row)
        if bar is not None and (index + 1) % _PROGRESS_EVERY == 0:
            bar.update(_PROGRESS_EVERY)
    if bar is not None:
        bar.update(len(rows) - bar.done)
    return rows


def _counts(correct: int, total: int) -> dict:
    return {"accuracy": correct / total if total else 0.0, "correct": correct, "total": total}


def summarize(rows: list[dict], rule_names: list[str]) -> dict:
    """Accuracy per rule, overall and per type (types in TYPES order, present ones only)."""
    order = {name: i for i, name in enumerate(TYPES)}
    types = sorted({row["type"] for row in rows}, key=lambda t: (order.get(t, len(order)), t))
    totals = {t: 0 for t in types}
    for row in rows:
        totals[row["type"]] += 1
    out = {"total": len(rows), "rules": {}}
    for rule in rule_names:
        hits = {t: 0 for t in types}
        for row in rows:
            if row["verdicts"][rule]:
                hits[row["type"]] += 1
        entry = _counts(sum(hits.values()), len(rows))
        entry["by_type"] = {t: _counts(hits[t], totals[t]) for t in types}
        out["rules"][rule] = entry
    return out
