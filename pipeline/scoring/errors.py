"""Why a math answer is wrong: one error class per graded sample.

``error_class`` returns None for an answer that is correct under the default ``tolerance``
rule, else the first class that fits, checked in this order:

    no_number   the continuation holds no number at all
    echo        every number in the continuation is one of the problem's own numbers
                (the model only repeated the problem or its operands)
    wrong_sign  the answer's absolute value matches (within tolerance or after rounding)
                but the sign differs
    rounding    the answer matches the reference rounded (half up) to the fewer decimals
                of the two, or the reference truncated to the answer's decimals
    transposed  the same digits as the reference, in another order (``1853.05`` / ``1835.05``)
    rounding    (checked after transposed) the answer lies within 1% (relative) of it
    magnitude   the answer is the reference times a power of ten, or shares its first three
                significant digits at another scale (``183.5`` / ``1835.05``)
    other       anything else (including non-numeric answers that do not match)
"""
from __future__ import annotations

import re
from decimal import ROUND_DOWN, Context, Decimal
from fractions import Fraction

from pipeline.scoring.math import (
    answer_text, numbers_in, parse_value, rounded_equal, within_scale, within_tolerance)

ERROR_CLASSES = ("no_number", "echo", "wrong_sign", "rounding", "transposed", "magnitude", "other")

_ABS_TOL, _REL_TOL = Decimal("0.01"), Decimal(0)
_NEAR, _NEAR_DEC = Fraction(1, 100), Decimal("0.01")  # "within 1%" for rounding
_WIDE = Context(prec=400)
_CTX = Context(prec=40)            # Fraction -> Decimal for digit comparisons
_NON_DIGIT = re.compile(r"\D")
_LEADING = 3                       # significant digits that must agree for "magnitude"


def _as_decimal(value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    return _CTX.divide(Decimal(value.numerator), Decimal(value.denominator))


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
        cut = _as_decimal(r).quantize(Decimal(1).scaleb(-a_places), ROUND_DOWN,
                                      Context(prec=2000))
    except ArithmeticError:
        return False
    return cut == a


def _is_magnitude(a, r) -> bool:
    """Same sign, the first significant digits agree (all of them when shorter than
    _LEADING), different scale: covers ``a = r * 10**k`` and ``183.5`` vs ``1835.05``."""
    if a == 0 or r == 0 or (a < 0) != (r < 0):
        return False
    da, dr = _as_decimal(a), _as_decimal(r)
    lead_a, lead_r = _significant(da), _significant(dr)
    n = min(_LEADING, len(lead_a), len(lead_r))
    return lead_a[:n] == lead_r[:n] and da.adjusted() != dr.adjusted()


def _within_one_percent(a, r) -> bool:
    if r == 0:
        return False
    if isinstance(a, Decimal) and isinstance(r, Decimal):
        return abs(_WIDE.subtract(a, r)) <= _NEAR_DEC * abs(r)
    if not (within_scale(a) and within_scale(r)):
        return False
    return abs(Fraction(a) - Fraction(r)) <= _NEAR * abs(Fraction(r))


def error_class(problem: str, reference: str, extracted: str | None, continuation: str,
                type: str | None = None) -> str | None:
    """The error class of one graded sample (see the module docstring), or None if correct.

    problem: the problem text; reference: the reference answer string; extracted: the answer
    read from the continuation (None if none); continuation: what the model generated;
    type: the problem type (not needed by the current classes; kept for type-specific ones).
    Pure; never raises on odd input.
    """
    if extracted is None:
        return "no_number"
    answer, ref = parse_value(extracted), parse_value(reference)
    if ref is None:
        return "other"
    if within_tolerance(answer[0], ref[0], _ABS_TOL, _REL_TOL):
        return None
    if is_echo(problem, continuation, extracted):
        return "echo"
    a, a_places = answer
    r, r_places = ref
    if isinstance(a, str) or isinstance(r, str):
        return "other"
    try:
        flipped = a.copy_negate() if isinstance(a, Decimal) else -a  # no context: no overflow
        if a != 0 and (within_tolerance(flipped, r, _ABS_TOL, _REL_TOL)
                       or rounded_equal(flipped, a_places, r, r_places)):
            return "wrong_sign"
        if rounded_equal(a, a_places, r, r_places) or _truncated_equal(a, a_places, r):
            return "rounding"
        digits_a, digits_r = _digits(extracted), _digits(reference)
        if digits_a and digits_a != digits_r and sorted(digits_a) == sorted(digits_r):
            return "transposed"
        if _within_one_percent(a, r):
            return "rounding"
        if _is_magnitude(a, r):
            return "magnitude"
    except (ArithmeticError, ValueError, OverflowError):
        pass
    return "other"
