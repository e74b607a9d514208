"""Numbers as models write them, and exact comparisons between them.

Shared by the grading rules (``pipeline.scoring.rules``), answer extraction
(``pipeline.scoring.math``) and the error analysis (``pipeline.scoring.errors`` and
``.digits``), so each reads and compares numbers the same way.

Numbers are compared as ``Decimal`` (exact, any scale: ``E+34`` == ``E+034`` == the expanded
integer, ``-0.00`` == ``0.00``) or as ``Fraction`` where one side is ``c/d`` (``3/4`` ==
``0.75``). A reference that is not a number (English LaTeX such as ``2\\sqrt{3}``) is compared
as a whitespace-free string.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache

# ---------------------------------------------------------------- reading numbers

# Where a continuation stops being the answer: a new alpaca section or an end token
# (base models happily write the next "### Instruction" after answering).
_STOP = re.compile(r"###|</s>|<\|(?:eot_id|end_of_text|im_end|endoftext)\|>")

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



# ---------------------------------------------------------------- values and comparisons

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



_DIGITS_CTX = Context(prec=40)  # Fraction -> Decimal for digit-level comparisons


def as_decimal(value) -> Decimal:
    """A Decimal for a parsed number (a Fraction to 40 significant digits)."""
    if isinstance(value, Decimal):
        return value
    return _DIGITS_CTX.divide(Decimal(value.numerator), Decimal(value.denominator))


def is_number(value) -> bool:
    """True for a parsed numeric value (Decimal or Fraction), False for a string or None."""
    return isinstance(value, (Decimal, Fraction))
