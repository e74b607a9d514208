"""Digit-level analysis: carries redone by column, positions aligned at the decimal point."""
from decimal import Decimal

from pipeline.scoring.digits import (
    carry_explains, place_name, position_hits, position_order, positions_by_type)

SUB = "计算 781.15 - -2579.99 等于多少？"


def test_carry_explains_the_issue_example_and_not_a_plain_digit_slip():
    ref = Decimal("3361.14")
    assert carry_explains(SUB, "sub", Decimal("3350.14"), ref)
    assert not carry_explains(SUB, "sub", Decimal("3360.14") + Decimal("0.01"), ref)  # last place
    assert not carry_explains(SUB, "sub", Decimal("3371.14"), ref)   # +10 where a carry was due
    assert not carry_explains(SUB, "sub", Decimal("-3350.14"), ref)  # other sign
    assert not carry_explains(SUB, "mul", Decimal("3350.14"), ref)   # only add/sub
    assert not carry_explains("no operands", "sub", Decimal("3350.14"), ref)


def test_carry_in_a_subtraction_is_a_borrow():
    problem = "计算 100.00 - 1.00 等于多少？"  # 10000 - 100: borrows from the tens and hundreds
    ref = Decimal("99.00")
    assert carry_explains(problem, "sub", Decimal("109.00"), ref)   # borrow at the tens dropped
    assert carry_explains(problem, "sub", Decimal("199.00"), ref)   # borrow at the hundreds dropped
    assert not carry_explains(problem, "sub", Decimal("89.00"), ref)  # tens -1: that borrow was due


def test_position_hits_align_at_the_decimal_point():
    hits = position_hits("3350.14", "3361.14")
    assert list(hits) == ["sign", "thousands", "hundreds", "tens", "units", "tenths", "hundredths"]
    assert hits == {"sign": True, "thousands": True, "hundreds": True, "tens": False,
                    "units": False, "tenths": True, "hundredths": True}
    assert position_hits("361.14", "3361.14")["thousands"] is False   # a missing digit is wrong
    assert position_hits("-0.5", "0.50") == {"sign": False, "units": True, "tenths": True,
                                            "hundredths": True}
    assert set(position_hits(None, "12").values()) == {False}
    assert position_hits("1", "2\\sqrt{3}") is None
    assert list(position_hits("-0.9", "-0.9176197472818101674992653541")) == [
        "sign", "units", "tenths", "hundredths", "thousandths", "ten-thousandths"]  # capped


def test_positions_by_type_counts_per_type_in_reading_order():
    rows = [{"type": "add", "extracted": "3350.14", "reference": "3361.14"},
            {"type": "add", "extracted": "12.00", "reference": "12.00"},
            {"type": "english", "extracted": "x", "reference": "2\\sqrt{3}"}]
    table = positions_by_type(rows)
    assert list(table) == ["add"]
    add = table["add"]
    assert list(add) == ["sign", "thousands", "hundreds", "tens", "units", "tenths", "hundredths"]
    assert add["tens"] == {"correct": 1, "total": 2, "accuracy": 0.5}
    assert add["thousands"] == {"correct": 1, "total": 1, "accuracy": 1.0}


def test_place_names():
    assert [place_name(k) for k in (7, 1, 0, -2)] == ["10^7", "tens", "units", "hundredths"]
    assert position_order(["units", "10^7", "sign", "tenths", "10^5"]) == [
        "sign", "10^7", "10^5", "units", "tenths"]


def test_digit_analysis_never_raises_on_junk():
    import random
    from pipeline.scoring.numbers import parse_value
    rng = random.Random(1)
    alphabet = list("0123456789-+./eE ") + ["E+999999", "1e-999999", "\\sqrt{3}"]
    refs = ["1835.05", "-0.00", "3/4", "2.769155521409239378157128235E+34", "2\\sqrt{3}",
            "1e999999", "0.0001234", ""]
    for _ in range(2000):
        answer = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) or None
        ref = rng.choice(refs)
        hits = position_hits(answer, ref)
        assert hits is None or (list(hits)[0] == "sign" and all(isinstance(v, bool) for v in hits.values()))
        a, r = parse_value(answer), parse_value(ref)
        if a and r:
            assert carry_explains(SUB, "sub", a[0], r[0]) in (True, False)
