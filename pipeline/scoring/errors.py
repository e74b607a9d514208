"""Why a math answer is wrong: one error class per graded sample.

A sample has a class exactly when the headline rule (or the rule given) calls it wrong;
``wrong_answer_class`` then returns the first class that fits, checked in this order
(one worked example of each in docs/error_classes.md):

    no_number   the continuation holds no number at all
    format      the value is right, but the rule wants it written otherwise (``contains``
                needs the reference string itself)
    echo        every number in the continuation is one of the problem's own numbers
                (the model only repeated the problem or its operands)
    wrong_sign  the answer's absolute value matches (exactly or after rounding) but the
                sign differs
    rounding    the answer is the reference rounded (half up) or cut to the fewer decimals
                of the two: a last-place difference a rounding rule explains
    carry       add/sub: the reference computation with one or more carries (borrows)
                dropped or added (``781.15 - -2579.99``: ``3350.14`` for ``3361.14``)
    transposed  the same digits as the reference, in another order (``1853.05`` / ``1835.05``)
    magnitude   the answer is the reference times a power of ten, or shares its first three
                significant digits at another scale (``183.5`` / ``1835.05``)
    digit       right sign and right number of integer digits, wrong digits that no carry
                explains (any numeric type)
    other       anything else (a wrong sign with wrong digits, a non-numeric answer ...)
"""
from __future__ import annotations

import re
from decimal import ROUND_DOWN, Context, Decimal

from pipeline.scoring.digits import carry_explains
from pipeline.scoring.numbers import (
    answer_text, as_decimal, is_number, numbers_in, parse_value, rounded_equal,
    values_equal)
from pipeline.scoring.rules import HEADLINE_RULE, RULES

ERROR_CLASSES = ("no_number", "format", "echo", "wrong_sign", "rounding", "carry",
                 "transposed", "magnitude", "digit", "other")

_NON_DIGIT = re.compile(r"\D")
_LEADING = 3                       # significant digits that must agree for "magnitude"
_CTX = Context(prec=40)


def _digits(text: str) -> str:
    """The digits of a number string as written, without sign, point, exponent, leading 0s."""
    mant = text.lower().partition("e")[0]
    return _NON_DIGIT.sub("", mant).lstrip("0")


def _significant(value: Decimal) -> str:
    return "".join(map(str, value.normalize(_CTX).as_tuple().digits)).lstrip("0")


def _value(text: str):
    try:  # plain decimals are nearly all numbers here; skip parse_value's cache for them
        value = Decimal(text)
        if value.is_finite():
            return value
    except ArithmeticError:
        pass
    return parse_value(text)[0]


def is_echo(problem: str, continuation: str, extracted: str | None = None) -> bool:
    """True when the continuation has numbers and every one is a number of the problem.

    extracted: the continuation's answer, if known; it is checked first (cheap early out).
    """
    own_text = numbers_in(problem or "")
    if extracted is not None and extracted not in own_text:
        own = {_value(n) for n in own_text}
        if _value(extracted) not in own:
            return False
    else:
        own = None
    found = numbers_in(answer_text(continuation or ""))
    if not found:
        return False
    if all(n in own_text for n in found):
        return True
    own = own if own is not None else {_value(n) for n in own_text}
    return all(_value(n) in own for n in found)


def _truncated_equal(a, a_places, r) -> bool:
    """The reference cut (not rounded) to the answer's decimals equals the answer."""
    if a_places is None or not isinstance(a, Decimal) or abs(a_places) > 1000:
        return False
    try:
        cut = as_decimal(r).quantize(Decimal(1).scaleb(-a_places), ROUND_DOWN,
                                     Context(prec=2000))
    except ArithmeticError:
        return False
    return cut == a


def _is_magnitude(a, r) -> bool:
    """Same sign, the first significant digits agree (all of them when shorter than
    _LEADING), different scale: covers ``a = r * 10**k`` and ``183.5`` vs ``1835.05``."""
    if a == 0 or r == 0 or (a < 0) != (r < 0):
        return False
    da, dr = as_decimal(a), as_decimal(r)
    lead_a, lead_r = _significant(da), _significant(dr)
    n = min(_LEADING, len(lead_a), len(lead_r))
    return lead_a[:n] == lead_r[:n] and da.adjusted() != dr.adjusted()


def _same_length(a, r) -> bool:
    """Same sign and the same number of integer digits (the same order of magnitude)."""
    if (a < 0) != (r < 0) or a == 0 or r == 0:
        return False
    return max(as_decimal(a).adjusted(), 0) == max(as_decimal(r).adjusted(), 0)


def wrong_answer_class(problem: str, reference: str, extracted: str | None,
                       continuation: str, type: str | None = None) -> str:
    """The error class of a sample already judged wrong (see the module docstring).

    problem: the problem text; reference: the reference answer string; extracted: the answer
    read from the continuation (None if none); continuation: what the model generated;
    type: the problem type (``carry`` needs add/sub). Pure; never raises on odd input.
    """
    if extracted is None:
        return "no_number"
    answer, ref = parse_value(extracted), parse_value(reference)
    if ref is None:
        return "other"
    if values_equal(answer[0], ref[0]):
        return "format"
    if is_echo(problem, continuation, extracted):
        return "echo"
    a, a_places = answer
    r, r_places = ref
    if not (is_number(a) and is_number(r)):
        return "other"
    try:
        flipped = a.copy_negate() if isinstance(a, Decimal) else -a  # no context: no overflow
        if a != 0 and (values_equal(flipped, r) or rounded_equal(flipped, a_places, r, r_places)):
            return "wrong_sign"
        if rounded_equal(a, a_places, r, r_places) or _truncated_equal(a, a_places, r):
            return "rounding"
        if carry_explains(problem, type, a, r):
            return "carry"
        digits_a, digits_r = _digits(extracted), _digits(reference)
        if digits_a and digits_a != digits_r and sorted(digits_a) == sorted(digits_r):
            return "transposed"
        if _is_magnitude(a, r):
            return "magnitude"
        if _same_length(a, r):
            return "digit"
    except (ArithmeticError, ValueError, OverflowError):
        pass
    return "other"


def error_class(problem: str, reference: str, extracted: str | None, continuation: str,
                type: str | None = None, rule=None) -> str | None:
    """None when `rule` calls the sample right, else its ``wrong_answer_class``.

    rule: a rule function ``(output, extracted, reference) -> bool`` (default: the headline
    rule, ``rules.RULES[HEADLINE_RULE]``); it is given the continuation as the output, so
    ``contains`` here does not see the prompt echo (score_math passes it the whole text).
    """
    rule = rule or RULES[HEADLINE_RULE]
    if rule(continuation or "", extracted, reference):
        return None
    return wrong_answer_class(problem, reference, extracted, continuation, type)
