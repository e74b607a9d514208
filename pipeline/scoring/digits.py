"""Digit-level analysis of arithmetic answers: carries and per-position accuracy.

``carry_explains`` redoes an add/sub problem column by column and says whether the
answer is the reference with some carries (borrows) dropped or added. ``position_hits``
aligns answer and reference at the decimal point and says which places are right;
``positions_by_type`` counts that over a run, per problem type (``metrics.json``
``math.positions``).
"""
from __future__ import annotations

from decimal import ROUND_DOWN, Context, Decimal

from pipeline.problems import TYPES, extract_operands
from pipeline.scoring.numbers import as_decimal, is_number, parse_value

PLACE_NAMES = {4: "ten-thousands", 3: "thousands", 2: "hundreds", 1: "tens", 0: "units",
               -1: "tenths", -2: "hundredths", -3: "thousandths", -4: "ten-thousandths"}
FINEST_PLACE, COARSEST_PLACE = -4, 9  # places beyond these say nothing a team can act on
SIGN = "sign"


def place_name(place: int) -> str:
    """'units', 'tens', 'hundredths' ...; '10^7' beyond the named places."""
    return PLACE_NAMES.get(place, f"10^{place}")


def position_order(names) -> list[str]:
    """Position names in reading order: sign first, then the largest place down to the smallest."""
    rank = {SIGN: 100}
    rank.update({name: place for place, name in PLACE_NAMES.items()})
    def key(name):
        if name in rank:
            return rank[name]
        return int(name.partition("^")[2] or 0)
    return sorted(set(names), key=key, reverse=True)


# ---------------------------------------------------------------- carries

def _column_digits(value: int, width: int) -> list[int]:
    """Digits of a non-negative integer, least significant first, padded to width."""
    return [(value // 10 ** k) % 10 for k in range(width)]


def _carry_columns(big: int, small: int, add: bool) -> set[int]:
    """Columns (0 = the last written place) that receive a carry (add) or give a borrow (sub)."""
    width = len(str(max(big, small))) + 1
    xs, ys = _column_digits(big, width), _column_digits(small, width)
    marked, carry = set(), 0
    for k in range(width):
        if add:
            carry = (xs[k] + ys[k] + carry) // 10
        else:
            carry = 1 if xs[k] - ys[k] - carry < 0 else 0
        if carry:
            marked.add(k + 1)
    return marked


def _unit_powers(n: int) -> dict[int, int] | None:
    """n as a sum of +-10^k, each k at most once ({k: +1|-1}); None when it is not one."""
    out, k = {}, 0
    while n:
        digit = n % 10
        if digit == 1:
            out[k] = 1
        elif digit == 9:
            out[k] = -1
            n += 1
        elif digit != 0:
            return None
        n //= 10
        k += 1
    return out


def carry_explains(problem: str, type: str | None, answer, reference) -> bool:
    """True when an add/sub answer is the reference with carries or borrows dropped or added.

    answer, reference: parsed numbers (Decimal or Fraction); problem: its text, for the
    operands. Works on magnitudes: the answer must have the reference's sign, and
    |answer| - |reference| must be a sum of distinct powers of ten, each one a column where
    the column computation of the problem dropped a carry/borrow (a carry dropped makes a
    sum smaller, a borrow dropped makes a difference larger) or added one where none was due.
    False for other types, unreadable operands or odd values; never raises.
    """
    if type not in ("add", "sub") or not (is_number(answer) and is_number(reference)):
        return False
    operands = extract_operands(problem, type) or {}
    try:
        x, y = Decimal(operands["a"]), Decimal(operands["b"])
    except (KeyError, ArithmeticError, TypeError):
        return False
    y = y if type == "add" else -y
    a, r = as_decimal(answer), as_decimal(reference)
    if a == r or (a < 0) != (r < 0):
        return False
    if any(v and abs(v.adjusted()) >= 40 for v in (a, r)):
        return False  # no column computation of a contest problem lands beyond 10^40
    places = max(-x.as_tuple().exponent, -y.as_tuple().exponent, 0)
    if places > 40:
        return False
    scale = Decimal(10) ** places
    big, small = sorted((int(abs(x) * scale), int(abs(y) * scale)), reverse=True)
    add = (x < 0) == (y < 0) or x == 0 or y == 0
    diff = (abs(a) - abs(r)) * scale
    if diff != diff.to_integral_value():
        return False
    powers = _unit_powers(int(diff))
    if not powers or min(powers) < 1 or max(powers) > len(str(big)):
        return False
    marked = _carry_columns(big, small, add)
    dropped = -1 if add else 1  # the sign a dropped carry/borrow gives |answer| - |reference|
    return all((column in marked) == (sign == dropped) for column, sign in powers.items())


# ---------------------------------------------------------------- positions

_WIDE = Context(prec=2100)  # exact for any value within 1e+-1000 (checked by the caller)


def _truncated_digits(value: Decimal, lowest: int) -> str:
    """|value| cut to the 10^lowest place, as digits (the last one is the 10^lowest digit)."""
    return str(int(abs(value).scaleb(-lowest, _WIDE).to_integral_value(ROUND_DOWN)))


def _place_hits(extracted: str | None, reference: str) -> list[tuple[int | None, bool]] | None:
    """[(place, right)] with place None for the sign; see ``position_hits``."""
    ref = parse_value(reference)
    if ref is None or not is_number(ref[0]):
        return None
    r = as_decimal(ref[0])
    if r.adjusted() > COARSEST_PLACE or r.adjusted() < -1000:
        return None  # 2.77E+34: its places are not what a team tunes for
    answer = parse_value(extracted)
    a = as_decimal(answer[0]) if answer is not None and is_number(answer[0]) else None
    if a is not None and abs(a.adjusted()) >= 1000:
        a = None  # an absurd magnitude is wrong at every place of a sane reference
    lowest = max(-ref[1] if ref[1] is not None else -2, FINEST_PLACE)
    top = max(r.adjusted(), 0) if r else 0
    hits = [(None, a is not None and (a < 0) == (r < 0))]
    if a is None:
        return hits + [(place, False) for place in range(top, lowest - 1, -1)]
    ref_digits, ans_digits = _truncated_digits(r, lowest), _truncated_digits(a, lowest)
    for place in range(top, lowest - 1, -1):
        at = place - lowest + 1  # from the right
        want = ref_digits[-at] if at <= len(ref_digits) else "0"
        got = ans_digits[-at] if at <= len(ans_digits) else "0"
        hits.append((place, want == got))
    return hits


def position_hits(extracted: str | None, reference: str) -> dict[str, bool] | None:
    """{position name: answer right there} for a numeric reference, None for another one.

    Positions: ``sign``, then every place of the reference from its largest digit (units
    at least) down to its last written decimal, within 10^-4; a reference of 10^10 or more
    gives None (its places say nothing a team tunes for). An answer is read by
    value (``3.5`` has 0 hundredths) and truncated, not rounded; no numeric answer is wrong
    everywhere.
    """
    hits = _place_hits(extracted, reference)
    if hits is None:
        return None
    return {SIGN if place is None else place_name(place): hit for place, hit in hits}


def positions_by_type(rows) -> dict[str, dict[str, dict]]:
    """{type: {position: {"correct", "total", "accuracy"}}} over graded rows (each with
    "type", "extracted", "reference"), positions in reading order (``position_order``)."""
    counts: dict[str, dict] = {}
    for row in rows:
        hits = _place_hits(row.get("extracted"), row.get("reference") or "")
        if hits is None:
            continue
        by_place = counts.setdefault(row.get("type") or "unknown", {})
        for place, hit in hits:
            cell = by_place.get(place)
            if cell is None:
                cell = by_place[place] = [0, 0]
            cell[0] += hit
            cell[1] += 1
    order = {name: i for i, name in enumerate(TYPES)}
    types = sorted(counts, key=lambda t: (order.get(t, len(order)), t))
    out = {}
    for ptype in types:
        by_place = counts[ptype]
        places = sorted(by_place, key=lambda p: 100 if p is None else p, reverse=True)
        out[ptype] = {SIGN if p is None else place_name(p):
                      {"correct": by_place[p][0], "total": by_place[p][1],
                       "accuracy": by_place[p][0] / by_place[p][1]} for p in places}
    return out
