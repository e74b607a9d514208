"""Math grading: the model's final answer, and named rules that judge it.

A contest prediction is prompt + continuation (contest_spec.md section 4), so the problem's
own numbers are in it. ``split_continuation`` cuts the echo off; ``extract_answer`` reads the
final answer from what the model generated; each rule in ``RULES`` says yes/no for one
sample. ``grade`` does one sample, ``score_math`` a whole prediction file.

Numbers are compared as ``Decimal`` (exact, any scale: ``E+34`` == ``E+034`` == the expanded
integer, ``-0.00`` == ``0.00``) or as ``Fraction`` where one side is ``c/d`` (``3/4`` ==
``0.75``). A reference that is not a number (English LaTeX such as ``2\\sqrt{3}``) is compared
as a whitespace-free string.
"""
from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache, partial

from pipeline.errors import PipelineError
from pipeline.problems import TYPES, classify, last_boxed, reference_answer

# ---------------------------------------------------------------- continuation

_RESPONSE_MARKERS = ("### Response:", "### Response：", "ASSISTANT:")
# Where a continuation stops being the answer: a new alpaca section or an end token
# (base models happily write the next "### Instruction" after answering).
_STOP = re.compile(r"###|</s>|<\|(?:eot_id|end_of_text|im_end|endoftext)\|>")


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

_FULLWIDTH = str.maketrans({
    **{chr(0xFF10 + i): str(i) for i in range(10)},
    "．": ".", "－": "-", "−": "-", "＋": "+", "＝": "=", "／": "/", "％": "%",
    "Ｅ": "E", "ｅ": "e",
})
_HAS_FULLWIDTH = re.compile("[" + "".join(re.escape(chr(c)) for c in _FULLWIDTH) + "]")
# One number as a model writes it: thousands separators, a c/d fraction, a decimal with an
# optional exponent (E+34, e-19) or "× 10^k". Sign only when glued to the digits.
_NUMBER = re.compile(
    r"-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+/\d+|\d*\.\d+|\d+)"
    r"(?:[eE][+-]?\d+|\s*(?:×|\\times|\*)\s*10\^\{?[+-]?\d+\}?)?")
_TEN_POW = re.compile(r"\s*(?:×|\\times|\*)\s*10\^\{?([+-]?\d+)\}?$")
_LATEX_FRAC = re.compile(r"(-?)\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}")
_LATEX_NOISE = re.compile(
    r"\\(?:text|mathrm|mbox)\{[^{}]*\}|\\left|\\right|\\[!,;: $%]|\^\{?\\circ\}?|[%$\s]")


def _clean_number(raw: str) -> str:
    """Canonical form of a matched number: no separators, no spaces."""
    if "," in raw:
        raw = raw.replace(",", "")
    return raw.replace(" ", "") if " " in raw else raw


def _boxed_answer(content: str) -> str:
    """A ``\\boxed{}`` content as a number string when it is one, else as written."""
    core = _LATEX_NOISE.sub("", _ascii_digits(content))
    if "=" in core:  # "x = 5" -> "5"
        core = core[core.rfind("=") + 1:]
    frac = _LATEX_FRAC.fullmatch(core)
    if frac:
        sign, num, den = frac.groups()
        value = f"{num}/{den}"
        return value[1:] if sign and value.startswith("-") else sign + value
    match = _NUMBER.fullmatch(core)
    return _clean_number(match.group()) if match else content


def _ascii_digits(text: str) -> str:
    # translate() is slow on long text; most text has no full-width digit at all.
    return text.translate(_FULLWIDTH) if _HAS_FULLWIDTH.search(text) else text


def answer_text(continuation: str) -> str:
    """The part of a continuation that can hold the answer: up to the first stop marker
    (``###``, ``</s>``, ``<|eot_id|>`` ...), full-width digits and signs made ASCII."""
    stop = _STOP.search(continuation)
    return _ascii_digits(continuation[:stop.start()] if stop else continuation)


def numbers_in(text: str) -> list[str]:
    """Every number in a text, as ``extract_answer`` would read it (separators dropped)."""
    return [_clean_number(m) for m in _NUMBER.findall(_ascii_digits(text))]


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


# ---------------------------------------------------------------- values

_WIDE = Context(prec=400)  # wide enough that quantize/subtract never round what we compare


def _decimals(text: str) -> int:
    """Digits after the point of a number string, exponent included (``1.5E+3`` -> -2)."""
    mant, _, exp = text.lower().partition("e")
    dot = mant.find(".")
    places = len(mant) - dot - 1 if dot >= 0 else 0
    return places - int(exp) if exp else places


@lru_cache(maxsize=1 << 18)
def parse_value(text: str | None):
    """``(value, decimals)`` of an answer string.

    value: Decimal for a decimal number, Fraction for ``c/d``, the whitespace-free string
    for anything else; decimals: places after the point (None for fractions and strings).
    None for a missing answer.
    """
    if text is None:
        return None
    raw = text.strip()
    if "," in raw:
        raw = raw.replace(",", "")
    try:
        value = Decimal(raw)
        if value.is_finite():  # "NaN"/"Infinity" are words here, not numbers
            return value, _decimals(raw)
    except InvalidOperation:
        pass
    if "/" in raw:
        num, _, den = raw.partition("/")
        try:
            if int(den) != 0:
                return Fraction(int(num), int(den)), None
        except ValueError:
            pass
    ten = _TEN_POW.search(raw)
    if ten:
        try:
            mant = Decimal(raw[:ten.start()])
            return mant.scaleb(int(ten.group(1)), _WIDE), _decimals(raw[:ten.start()]) - int(ten.group(1))
        except ArithmeticError:
            pass
    boxed = _boxed_answer(raw)
    if boxed != raw:
        return parse_value(boxed)
    return "".join(raw.split()), None


def values_equal(a, b) -> bool:
    """Exact equality of two parsed values (numbers across Decimal/Fraction, else strings)."""
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return a == b


def _round_half_up(value, places: int):
    """value rounded half away from zero to ``places`` decimals (Decimal or exact Fraction)."""
    if isinstance(value, Decimal):
        return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP, _WIDE)
    scaled = value * Fraction(10) ** places
    sign = -1 if scaled < 0 else 1
    return Fraction(sign * int(abs(scaled) + Fraction(1, 2))) / Fraction(10) ** places


def rounded_equal(a, a_places, b, b_places) -> bool:
    """Equal after rounding both (half up) to the fewer decimals of the two."""
    if isinstance(a, str) or isinstance(b, str):
        return values_equal(a, b)
    places = [p for p in (a_places, b_places) if p is not None]
    if not places:
        return a == b
    places = min(places)
    if abs(places) > 1000:  # absurd scales (1e-9999): no meaningful rounding
        return a == b
    try:
        return _round_half_up(a, places) == _round_half_up(b, places)
    except ArithmeticError:  # decimal's InvalidOperation/Overflow on absurd magnitudes
        return False


def within_scale(value) -> bool:
    """False for a Decimal beyond 1e+-1000: exact Fraction arithmetic on it would take
    seconds, and no contest answer (or sane guess at one) is that large or small."""
    return not isinstance(value, Decimal) or -1000 < value.adjusted() < 1000


def within_tolerance(a, b, abs_tol, rel_tol) -> bool:
    """``|a - b| <= abs_tol + rel_tol * |b|`` computed exactly (b is the reference)."""
    if isinstance(a, str) or isinstance(b, str):
        return values_equal(a, b)
    try:
        if isinstance(a, Decimal) and isinstance(b, Decimal):
            diff = abs(_WIDE.subtract(a, b))
            return diff <= abs_tol + rel_tol * abs(b)
        if not (within_scale(a) and within_scale(b)):
            return False
        a, b = Fraction(a), Fraction(b)
        return abs(a - b) <= Fraction(abs_tol) + Fraction(rel_tol) * abs(b)
    except (ArithmeticError, ValueError):
        return False


# ---------------------------------------------------------------- rules

def contains(output: str, extracted: str | None, reference: str) -> bool:
    """The contest kit's rule: the reference answer string occurs anywhere in the whole
    prediction text (prompt echo included, so a reference that also appears in the problem
    counts). Needs no extraction; an empty reference never counts."""
    return bool(reference) and reference in (output or "")


def exact(output: str, extracted: str | None, reference: str) -> bool:
    """The extracted answer's value equals the reference's exactly (Decimal, any scale:
    ``1835.050`` == ``1835.05``, ``-0.00`` == ``0.00``, ``3/4`` == ``0.75``). Non-numeric
    answers (LaTeX) must match the reference's whitespace-free string. No answer: False."""
    a, r = parse_value(extracted), parse_value(reference)
    return a is not None and r is not None and values_equal(a[0], r[0])


def rounded(output: str, extracted: str | None, reference: str) -> bool:
    """Equal after rounding answer and reference half up to the fewer decimals of the two
    (ref ``0.8746954463782105330487925430`` vs ``0.87``: both 0.87 -> True; ``2.77E+34`` vs
    ``2.769155...E+34``: both 277E+32 -> True; ``1835`` vs ``1835.05``: both 1835 -> True).
    A ``c/d`` side has unlimited decimals. No answer: False."""
    a, r = parse_value(extracted), parse_value(reference)
    return a is not None and r is not None and rounded_equal(a[0], a[1], r[0], r[1])


def tolerance(output: str, extracted: str | None, reference: str,
              abs_tol: Decimal = Decimal("0.01"), rel_tol: Decimal = Decimal(0)) -> bool:
    """``|answer - reference| <= abs_tol + rel_tol * |reference|`` (defaults: abs 0.01,
    rel 0), computed exactly. Non-numeric sides must match as strings. No answer: False."""
    a, r = parse_value(extracted), parse_value(reference)
    return a is not None and r is not None and within_tolerance(a[0], r[0], abs_tol, rel_tol)


def make_tolerance(abs_tol=Decimal("0.01"), rel_tol=Decimal(0)):
    """The tolerance rule with other bounds (numbers or strings, read as Decimal).

    Raises PipelineError for a bound that is not a finite number >= 0."""
    bounds = {}
    for name, raw in (("abs_tol", abs_tol), ("rel_tol", rel_tol)):
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value < 0:
            raise PipelineError(f"tolerance {name} must be a number >= 0, got {raw!r}")
        bounds[name] = value
    return partial(tolerance, **bounds)


RULES = {"contains": contains, "exact": exact, "rounded": rounded, "tolerance": tolerance}
# The contest counted an answer right when its value equals the reference (docs/contest.md
# section 1); the other rules are named, more lenient views.
HEADLINE_RULE = "exact"


def resolve_rules(rules=None) -> dict:
    """Rules by name: None -> all of RULES; a list of names; or a {name: function} dict."""
    if rules is None:
        return dict(RULES)
    if isinstance(rules, dict):
        return dict(rules)
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise PipelineError(f"unknown rule {unknown[0]!r}; expected one of {', '.join(RULES)}")
    return {name: RULES[name] for name in rules}


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


def _verdict_function(chosen: dict):
    """(output, extracted, reference) -> (verdicts, correct under the headline rule).

    Same verdicts as calling each rule, but the built-in rules share one parse of both
    values, and an exactly equal answer settles rounded and tolerance at once (equal
    values round equally and differ by 0).
    """
    plan = []
    for name, rule in chosen.items():
        fn, kw = (rule.func, rule.keywords) if isinstance(rule, partial) else (rule, {})
        if fn is tolerance:
            bounds = (kw.get("abs_tol", Decimal("0.01")), kw.get("rel_tol", Decimal(0)))
            plan.append((name, "tolerance", bounds))
        elif fn in (contains, exact, rounded) and not kw:
            plan.append((name, fn.__name__, None))
        else:
            plan.append((name, "custom", rule))
    if not any(kind == "tolerance" for _, kind, _ in plan):
        plan.append((None, "tolerance", (Decimal("0.01"), Decimal(0))))

    def verdicts_of(output, extracted, reference):
        a, r = parse_value(extracted), parse_value(reference)
        both = a is not None and r is not None
        equal = both and values_equal(a[0], r[0])
        out, ok = {}, False
        for name, kind, extra in plan:
            if kind == "contains":
                verdict = bool(reference) and reference in output
            elif kind == "exact":
                verdict = equal
            elif kind == "rounded":
                verdict = equal or (both and rounded_equal(a[0], a[1], r[0], r[1]))
            elif kind == "tolerance":
                verdict = equal or (both and within_tolerance(a[0], r[0], *extra))
            else:
                verdict = bool(extra(output, extracted, reference))
            if name is None or name == HEADLINE_RULE:
                ok = verdict
            if name is not None:
                out[name] = verdict
        return out, ok

    return verdicts_of


def _field(test: dict, name: str, index: int) -> str:
    value = test.get(name) if isinstance(test, dict) else None
    if not isinstance(value, str):
        raise PipelineError(f"test row {index}: missing or non-string field {name!r}")
    return value


def score_math(outputs: list[str], tests: list[dict], rules=None, prompt: str | None = None,
               gen_seconds: list | None = None, progress: bool = False) -> tuple[list[dict], dict]:
    """Grade every prediction; returns (samples_math.jsonl rows, summary).

    outputs: predictions (prompt + continuation), one per test row, same order;
    tests: {"problem", "solution"[, "id", "type"]} rows; rules: see ``resolve_rules``;
    prompt: the prompt template used at inference; gen_seconds: optional seconds per row;
    progress: show a ``pipeline.progress.Progress`` bar (stage "score math").
    Summary: ``{"total", "rules": {rule: {"accuracy", "correct", "total", "by_type"}}}``.
    Raises PipelineError on a length mismatch or a test row without problem/solution.
    """
    from pipeline.scoring.errors import error_class  # errors imports this module

    if len(outputs) != len(tests):
        raise PipelineError(
            f"{len(outputs)} predictions but {len(tests)} test rows; they must match one to one")
    chosen = resolve_rules(rules)
    bar = None
    if progress:
        from pipeline.progress import Progress
        bar = Progress(len(tests), "score math", unit="row")
    try:
        with _gc_paused():
            rows = _score_rows(outputs, tests, _verdict_function(chosen), prompt, gen_seconds,
                               error_class, bar)
    finally:
        if bar is not None:
            bar.close()
    return rows, summarize(rows, list(chosen))


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


def _score_rows(outputs, tests, verdicts_of, prompt, gen_seconds, error_class,
                bar=None) -> list[dict]:
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
               "error_class": None if ok else error_class(problem, reference, extracted,
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
