"""The named grading rules: each says yes/no for one (output, extracted answer, reference).

Every rule but ``contains`` judges parsed values; its one implementation is a ``*_values``
judge of ``(answer, reference)`` as ``numbers.parse_value`` returns them. The public rule
function and ``verdict_function`` (which parses each sample once for all rules) both call
that judge, so a rule cannot mean two things.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import partial

from pipeline.errors import PipelineError
from pipeline.scoring.numbers import parse_value, rounded_equal, values_equal, within_tolerance

DEFAULT_ABS_TOL, DEFAULT_REL_TOL = Decimal("0.01"), Decimal(0)


# ---------------------------------------------------------------- judges of parsed values

def exact_values(answer, reference) -> bool:
    """Values equal exactly (numbers across Decimal/Fraction, else whitespace-free strings)."""
    return values_equal(answer[0], reference[0])


def rounded_values(answer, reference) -> bool:
    """Equal, or equal after rounding both half up to the fewer decimals of the two."""
    return (values_equal(answer[0], reference[0])
            or rounded_equal(answer[0], answer[1], reference[0], reference[1]))


def tolerance_values(answer, reference, abs_tol: Decimal = DEFAULT_ABS_TOL,
                     rel_tol: Decimal = DEFAULT_REL_TOL) -> bool:
    """Equal, or ``|answer - reference| <= abs_tol + rel_tol * |reference|`` exactly."""
    return (values_equal(answer[0], reference[0])
            or within_tolerance(answer[0], reference[0], abs_tol, rel_tol))


def _judged(judge, extracted, reference, **bounds) -> bool:
    a, r = parse_value(extracted), parse_value(reference)
    return a is not None and r is not None and judge(a, r, **bounds)


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
    return _judged(exact_values, extracted, reference)


def rounded(output: str, extracted: str | None, reference: str) -> bool:
    """Equal after rounding answer and reference half up to the fewer decimals of the two
    (ref ``0.8746954463782105330487925430`` vs ``0.87``: both 0.87 -> True; ``2.77E+34`` vs
    ``2.769155...E+34``: both 277E+32 -> True; ``1835`` vs ``1835.05``: both 1835 -> True).
    A ``c/d`` side has unlimited decimals. No answer: False."""
    return _judged(rounded_values, extracted, reference)


def tolerance(output: str, extracted: str | None, reference: str,
              abs_tol: Decimal = DEFAULT_ABS_TOL, rel_tol: Decimal = DEFAULT_REL_TOL) -> bool:
    """``|answer - reference| <= abs_tol + rel_tol * |reference|`` (defaults: abs 0.01,
    rel 0), computed exactly. Non-numeric sides must match as strings. No answer: False."""
    return _judged(tolerance_values, extracted, reference, abs_tol=abs_tol, rel_tol=rel_tol)


exact.judge, rounded.judge, tolerance.judge = exact_values, rounded_values, tolerance_values


def make_tolerance(abs_tol=DEFAULT_ABS_TOL, rel_tol=DEFAULT_REL_TOL):
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


def headline_of(chosen: dict, headline: str | None = None) -> str:
    """The rule whose verdict decides "correct" (and so the error class): `headline` when
    given, else HEADLINE_RULE, else the only or first chosen rule. Raises PipelineError for
    a headline that is neither chosen nor in RULES."""
    name = headline or (HEADLINE_RULE if HEADLINE_RULE in chosen or not chosen
                        else next(iter(chosen)))
    if name not in chosen and name not in RULES:
        raise PipelineError(f"unknown headline rule {name!r}; expected one of "
                            f"{', '.join(dict.fromkeys([*chosen, *RULES]))}")
    return name


def _judge_of(rule):
    """(judge, bounds) of a value rule (a partial of one keeps its bounds), else (None, {})."""
    fn, bounds = (rule.func, rule.keywords) if isinstance(rule, partial) else (rule, {})
    judge = getattr(fn, "judge", None)
    return (judge, bounds) if judge is not None else (None, {})


def verdict_function(chosen: dict, headline: str | None = None):
    """(output, extracted, reference) -> (verdicts by rule name, correct under the headline).

    Same verdicts as calling each rule, but value rules share one parse of both values.
    headline: see ``headline_of``; a headline rule not in `chosen` is judged but not reported.
    """
    name = headline_of(chosen, headline)
    plan = [(n, rule, *_judge_of(rule)) for n, rule in chosen.items()]
    if name not in chosen:
        plan.append((None, RULES[name], *_judge_of(RULES[name])))
    headline_at = next(i for i, (n, *_) in enumerate(plan) if n in (name, None))

    def verdicts_of(output, extracted, reference):
        a, r = parse_value(extracted), parse_value(reference)
        both = a is not None and r is not None
        out, ok = {}, False
        for i, (rule_name, rule, judge, bounds) in enumerate(plan):
            if judge is not None:
                verdict = both and judge(a, r, **bounds)
            else:
                verdict = bool(rule(output, extracted, reference))
            if i == headline_at:
                ok = verdict
            if rule_name is not None:
                out[rule_name] = verdict
        return out, ok

    return verdicts_of
