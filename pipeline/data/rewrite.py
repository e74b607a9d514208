"""Answer rewriting for training targets: rounding and short step-by-step working.

The phase-1 winners replaced the raw long-digit answers with short, learnable targets
(docs/contest.md section 3). Everything here is a pure function of one row; the reference
answer stays the last number after the last ``=`` (or the template's own place), so
``pipeline.problems.reference_answer`` still reads a rewritten target.

Working styles (``WORKING_STYLES``), each a few short lines so a row fits seq_length 256:
- ``signs`` (add, sub, mul, div): the sign is settled first, then the operation on magnitudes:
  ``-4204.22 + 2369.17 = -(4204.22 - 2369.17) = -1835.05``.
- ``digits`` (add, sub): the ``signs`` line, then one line per column of the magnitudes,
  least significant first, carries and borrows written out (``5+6=11``, ``6+3+1=10``;
  ``12-6=6``, ``17-7-1=9``), then ``= answer``: a 4-digit.2-decimal pair takes 6-7 short
  lines (about 130 tokens with the minimal prompt).
- ``aligned`` (add, sub): the problem, then the ``signs`` step in one fixed layout, magnitudes
  and result zero-padded to the same width (5 integer digits), so a digit of the result sits
  at the same token distance from the two digits it is made of in every row:
  ``-8255.65 + -348.36 = -(08255.65 + 00348.36 = 08604.01)`` then ``= -8604.01`` (after Shen
  et al. 2023 and Lee et al. 2023 on positions in small transformers). The problem comes
  first because a target that always starts with the same token (``+(``) teaches the model
  to start *every* answer with it: SQuAD F1 fell to 5.3, under the baseline's 15.5
  (docs/experiments.md section 10).
- ``aligned_lsd`` (add, sub): ``aligned`` with the result written backwards (least
  significant digit first) before it is written the right way round:
  ``-(08255.65 + 00348.36 = 10.40680 = 08604.01)`` then ``= -8604.01``. Written this way a
  digit's carry comes from the column just written (Lee et al. 2023's reversed output), where
  ``aligned`` has to see it coming from the columns not yet written; 10 tokens more a row.
  Measured, not the default: no result digit learnt in 400 steps, as the two digits a result
  digit is made of now sit at a distance that changes with the column (section 11).
- ``reversed`` (add, sub): ``aligned``, then the operands *and* the result written backwards,
  then the result turned round:
  ``-(08255.65 + 00348.36 = 56.55280 + 63.84300 = 10.40680 = 08604.01)`` then ``= -8604.01``.
  A result digit now sits at a fixed distance from both of its digits (as in ``aligned``) and
  its carry comes from the column just written (as in ``aligned_lsd``): Lee et al. 2023's
  reversed format. Turning a fixed-width number round was learnt in every row (section 11);
  about 20 tokens a row more than ``aligned_lsd``. The default recipe's style: 87.5% against
  ``aligned``'s 59.0% on the same 200 validation rows at step 600 (section 16).
- ``partial`` (mul): sign first, then one partial product per non-zero digit of the operand
  with fewer non-zero digits (``* 400 = 2987992``), then their sum, then ``= answer``
  (about 215 tokens with the minimal prompt: near the 256 limit, so overlong rows exist).
- ``long`` (div): sign first, then the leading quotient digit bracketed by two products
  (``1586.04 * 3 = 4758.12, 1586.04 * 4 = 6344.16``), then ``= answer``.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

from pipeline.problems import extract_operands, reference_answer

WORKING_STYLES: dict[str, tuple[str, ...]] = {
    "add": ("signs", "digits", "aligned", "aligned_lsd", "reversed"),
    "sub": ("signs", "digits", "aligned", "aligned_lsd", "reversed"),
    "mul": ("signs", "partial"), "div": ("signs", "long"),
}
# Wide enough to write an E+34 value in fixed point without rounding.
_WIDE = Context(prec=200)


def _plain(value: Decimal) -> str:
    """Fixed-point text without exponent; ``-0`` printed as ``0``."""
    text = format(value, "f")
    return text[1:] if text.startswith("-") and value == 0 else text


def round_answer(answer: str, decimals: int) -> str:
    """``answer`` rounded half-up to ``decimals`` places, only if it has more than that.

    ``"0.8746954463782105330487925430"`` -> ``"0.87"``; ``"58.0"`` and ``"3/4"`` unchanged;
    ``"1.5E-19"`` -> ``"0.00"``; ``"-0.001"`` -> ``"0.00"`` (no negative zero).
    Non-numbers are returned unchanged.
    """
    try:
        value = Decimal(answer)
    except InvalidOperation:
        return answer
    if not value.is_finite() or -value.as_tuple().exponent <= decimals:
        return answer
    quantum = Decimal(1).scaleb(-decimals)
    return _plain(value.quantize(quantum, rounding=ROUND_HALF_UP, context=_WIDE))


def replace_answer(solution: str, old: str, new: str) -> str:
    """The solution with its last occurrence of ``old`` replaced by ``new``."""
    at = solution.rfind(old)
    return solution if at < 0 or old == new else solution[:at] + new + solution[at + len(old):]


def round_solution(solution: str, type_name: str, decimals: int | None) -> str:
    """The solution with its reference answer rounded (None: unchanged)."""
    if decimals is None:
        return solution
    answer = reference_answer(solution, type_name)
    return replace_answer(solution, answer, round_answer(answer, decimals))


def _signed(negative: bool, inner: str) -> str:
    return f"-({inner})" if negative else inner


def _add_sub_step(a: str, op: str, b: str) -> tuple[str, str, Decimal, Decimal, str]:
    """(head ``a op b``, its sign-first step, larger and smaller magnitude, magnitude op)."""
    x, y = Decimal(a), Decimal(b) if op == "+" else -Decimal(b)
    ax, ay = abs(x), abs(y)
    if (x < 0) == (y < 0) or x == 0 or y == 0:
        negative = x < 0 or (x == 0 and y < 0)
        return f"{a} {op} {b}", _signed(negative, f"{_plain(ax)} + {_plain(ay)}"), ax, ay, "+"
    big, small, big_negative = (ax, ay, x < 0) if ax >= ay else (ay, ax, y < 0)
    return f"{a} {op} {b}", _signed(big_negative, f"{_plain(big)} - {_plain(small)}"), big, small, "-"


def work_add_sub(a: str, op: str, b: str, answer: str) -> str:
    """``a op b = <sign and magnitude step> = answer`` for op in '+', '-'."""
    head, step, _, _, _ = _add_sub_step(a, op, b)
    return f"{head} = {answer}" if step == head else f"{head} = {step} = {answer}"


def _places(x: Decimal, y: Decimal) -> int:
    """Decimal places that hold both x and y (0 for integers)."""
    return max(-x.as_tuple().exponent, -y.as_tuple().exponent, 0)


def _aligned_digits(x: Decimal, y: Decimal) -> tuple[list[int], list[int]]:
    """Digits of non-negative x and y aligned on the decimal point, least significant first."""
    places = _places(x, y)

    def digits(value: Decimal) -> list[int]:
        return [int(c) for c in reversed(str(int(value.scaleb(places))))]
    dx, dy = digits(x), digits(y)
    width = max(len(dx), len(dy))
    return dx + [0] * (width - len(dx)), dy + [0] * (width - len(dy))


def column_lines(big: Decimal, small: Decimal, op: str) -> list[str]:
    """Column addition (op '+') or subtraction (op '-', big >= small >= 0), right to left.

    Each line is one column: ``6+3+1=10`` (carry in 1, digit 0, carry out 1) or
    ``17-7-1=9`` (a leading 1 marks the borrowed ten; borrow in 1).
    """
    lines, carry = [], 0
    for a, b in zip(*_aligned_digits(big, small)):
        tail = f"{op}{carry}" if carry else ""
        if op == "+":
            total = a + b + carry
            lines.append(f"{a}+{b}{tail}={total}")
            carry = total // 10
        else:
            diff = a - b - carry
            borrowed = diff < 0
            lines.append(f"{'1' if borrowed else ''}{a}-{b}{tail}={diff + 10 if borrowed else diff}")
            carry = int(borrowed)
    return lines


def work_add_sub_digits(a: str, op: str, b: str, answer: str) -> str:
    """The ``signs`` step for ``a op b``, then its magnitudes column by column, then ``= answer``."""
    head, step, first, second, magnitude_op = _add_sub_step(a, op, b)
    columns = column_lines(first, second, magnitude_op)
    return "\n".join([head if step == head else f"{head} = {step}", *columns, f"= {answer}"])


ALIGNED_INTEGER_DIGITS = 5  # |a op b| of two contest operands (< 10,000) stays under 100,000


def _padded(value: Decimal, width: int, places: int) -> str:
    return f"{value:0{width + 1 + places}.{places}f}" if places else f"{value:0{width}.0f}"


def _aligned_parts(a: str, op: str, b: str) -> tuple[str, str, str, str, str, str]:
    """(head, sign, X, magnitude op, Y, R) of ``a op b``: the problem, the sign slot
    (``+``/``-``), and the magnitudes and result zero-padded to one width."""
    head, step, first, second, magnitude_op = _add_sub_step(a, op, b)
    value = first + second if magnitude_op == "+" else first - second
    places = _places(first, second)
    width = max(ALIGNED_INTEGER_DIGITS, *(len(str(int(v))) for v in (first, second, value)))
    x, y, r = (_padded(v, width, places) for v in (first, second, value))
    return head, "-" if step.startswith("-(") else "+", x, magnitude_op, y, r


def work_add_sub_aligned(a: str, op: str, b: str, answer: str) -> str:
    """``a op b = ±(X op Y = R)`` with X, Y, R zero-padded to one width, then ``= answer``.

    The sign slot is always written (``+(`` or ``-(``), and the width only grows past
    ``ALIGNED_INTEGER_DIGITS`` for operands outside the contest's range, so the columns of
    X, Y and R keep the same token offsets across rows.
    """
    head, sign, x, magnitude_op, y, r = _aligned_parts(a, op, b)
    return f"{head} = {sign}({x} {magnitude_op} {y} = {r})\n= {answer}"


def work_add_sub_aligned_lsd(a: str, op: str, b: str, answer: str) -> str:
    """``aligned`` with R written backwards first: ``±(X op Y = R[::-1] = R)``, then ``= answer``.

    Least significant digit first, each result digit follows the one whose carry it takes,
    and that carry can be read off three tokens of the column before: for ``+`` it is
    ``x + y > r``, for ``-`` the borrow is ``r > x - y``. Every row keeps one layout, so
    turning R back round is a fixed move per place (learnt in every row, section 11); but
    the distance from a result digit to its X and Y digits changes with the column, which
    400 steps did not learn.
    """
    head, sign, x, magnitude_op, y, r = _aligned_parts(a, op, b)
    return f"{head} = {sign}({x} {magnitude_op} {y} = {r[::-1]} = {r})\n= {answer}"


def work_add_sub_reversed(a: str, op: str, b: str, answer: str) -> str:
    """``a op b = ±(X op Y = X[::-1] op Y[::-1] = R[::-1] = R)``, then ``= answer``.

    X, Y and R keep ``aligned``'s one width, so every digit of R[::-1] is the same number of
    tokens after its two digits in X[::-1] and Y[::-1], and its carry is read off the column
    just written (``x + y > r`` for ``+``, ``r > x - y`` for ``-``). Each turn-round is of a
    fixed-width number, a fixed move per place.
    """
    head, sign, x, magnitude_op, y, r = _aligned_parts(a, op, b)
    return (f"{head} = {sign}({x} {magnitude_op} {y} = {x[::-1]} {magnitude_op} {y[::-1]} = "
            f"{r[::-1]} = {r})\n= {answer}")


def _sign_step(a: str, symbol: str, b: str) -> tuple[str, bool, Decimal, Decimal]:
    x, y = Decimal(a), Decimal(b)
    negative = (x < 0) != (y < 0) and x != 0 and y != 0
    ax, ay = abs(x), abs(y)
    return _signed(negative, f"{_plain(ax)} {symbol} {_plain(ay)}"), negative, ax, ay


def work_mul_signs(a: str, b: str, answer: str) -> str:
    step, _, _, _ = _sign_step(a, "*", b)
    head = f"{a} * {b}"
    return f"{head} = {answer}" if step == head else f"{head} = {step} = {answer}"


def _place_values(value: Decimal) -> list[Decimal]:
    """2455.65 -> [2000, 400, 50, 5, 0.6, 0.05] (non-zero digits only)."""
    sign, digits, exponent = value.as_tuple()
    out = []
    for i, digit in enumerate(digits):
        if digit:
            out.append(Decimal((0, (digit,), exponent + len(digits) - 1 - i)))
    return out


def work_mul_partial(a: str, b: str, answer: str) -> str:
    """Sign first, then partial products by the digits of the shorter operand, then the sum."""
    step, _, ax, ay = _sign_step(a, "*", b)
    whole, parts = (ax, ay) if len(_place_values(ay)) <= len(_place_values(ax)) else (ay, ax)
    lines = [f"{a} * {b} = {step}"]
    products = []
    for part in _place_values(parts):
        product = _WIDE.multiply(whole, part)
        products.append(_plain(product.normalize(_WIDE)) if product else "0")
        lines.append(f"* {_plain(part)} = {products[-1]}")
    if len(products) > 1:
        total = _WIDE.multiply(ax, ay)
        lines.append(f"{' + '.join(products)} = {_plain(total.normalize(_WIDE))}")
    lines.append(f"= {answer}")
    return "\n".join(lines)


def work_div_signs(a: str, b: str, answer: str) -> str:
    step, _, _, _ = _sign_step(a, "/", b)
    head = f"{a} / {b}"
    return f"{head} = {answer}" if step == head else f"{head} = {step} = {answer}"


def work_div_long(a: str, b: str, answer: str) -> str:
    """Sign first, then bracket the leading quotient digit: |b| * d*10^e <= |a| < |b| * (d+1)*10^e."""
    step, _, ax, ay = _sign_step(a, "/", b)
    lines = [f"{a} / {b} = {step}"]
    if ax:
        quotient = _WIDE.divide(ax, ay)
        exponent = quotient.adjusted()
        lead = int(quotient.scaleb(-exponent, _WIDE))  # leading digit 1..9
        low = Decimal(lead).scaleb(exponent)
        high = Decimal(lead + 1).scaleb(exponent)
        lines.append(f"{_plain(ay)} * {_plain(low)} = {_plain(_WIDE.multiply(ay, low).normalize(_WIDE))}, "
                     f"{_plain(ay)} * {_plain(high)} = {_plain(_WIDE.multiply(ay, high).normalize(_WIDE))}")
    lines.append(f"= {answer}")
    return "\n".join(lines)


def add_working(solution: str, problem: str, type_name: str, style: str) -> str:
    """The solution rewritten with working in ``style``; answer taken from ``solution``.

    Returns the solution unchanged when its problem's operands cannot be read.
    Raises ValueError for a style the type does not have (recipes check this first).
    """
    if style not in WORKING_STYLES.get(type_name, ()):
        raise ValueError(f"no working style {style!r} for type {type_name!r}")
    ops = extract_operands(problem, type_name)
    if not ops:
        return solution
    a, b = ops["a"], ops["b"]
    answer = reference_answer(solution, type_name)
    if type_name in ("add", "sub"):
        work = {"digits": work_add_sub_digits, "aligned": work_add_sub_aligned,
                "aligned_lsd": work_add_sub_aligned_lsd,
                "reversed": work_add_sub_reversed}.get(style, work_add_sub)
        return work(a, "+" if type_name == "add" else "-", b, answer)
    if type_name == "mul":
        return (work_mul_partial if style == "partial" else work_mul_signs)(a, b, answer)
    return (work_div_long if style == "long" else work_div_signs)(a, b, answer)


def rewrite_target(problem: str, solution: str, type_name: str, decimals: int | None = None,
                   working: str | None = None) -> str:
    """The training target: rounded answer, then working (if a style is given)."""
    target = round_solution(solution, type_name, decimals)
    if working:
        target = add_working(target, problem, type_name, working)
    return target
