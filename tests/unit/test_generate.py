"""The contest generator: each answer rule against hand-checked values, reproducibility,
and a property test (classify recognises every row; every solution recomputes; shares)."""
import re
from collections import Counter
from decimal import getcontext, localcontext

import pytest

from pipeline.data import generate as g
from pipeline.errors import PipelineError
from pipeline.problems import classify, extract_operands


# ---- answer rules: verbatim contest rows (docs/contest.md, public write-ups) and hand sums --

def test_add_keeps_two_decimals_and_the_plus_minus_spelling():
    assert g.solve_add({"a": "4204.22", "b": "-2369.17"}) == "4204.22 + -2369.17 = 1835.05"
    # 4000.55 + 7931.05 = 11931.60: the trailing zero stays
    assert g.solve_add({"a": "-4000.55", "b": "-7931.05"}) == "-4000.55 + -7931.05 = -11931.60"


def test_sub_of_a_negative_adds():
    assert g.solve_sub({"a": "100.00", "b": "-0.50"}) == "100.00 - -0.50 = 100.50"
    assert g.solve_sub({"a": "-8238.33", "b": "7718.23"}) == "-8238.33 - 7718.23 = -15956.56"


def test_mul_is_exact_with_four_decimals():
    assert g.solve_mul({"a": "7469.98", "b": "-2455.65"}) == "7469.98 * -2455.65 = -18343656.3870"
    assert g.solve_mul({"a": "2.50", "b": "-4.00"}) == "2.50 * -4.00 = -10.0000"


def test_div_is_decimal_at_28_significant_digits():
    assert (g.solve_div({"a": "5073.46", "b": "-1586.04"})
            == "5073.46 / -1586.04 = -3.198822223903558548334216035")
    assert g.solve_div({"a": "1.00", "b": "3.00"}) == "1.00 / 3.00 = 0." + "3" * 28
    assert g.solve_div({"a": "10.00", "b": "4.00"}) == "10.00 / 4.00 = 2.5"  # exact: Decimal's ideal exponent


def test_sqrt_is_decimal_sqrt():
    assert g.solve_sqrt({"a": "6145.00"}) == "√6145.00 = 78.39005038906404479030928703"
    assert g.solve_sqrt({"a": "4.00"}) == "√4.00 = 2.0"


def test_power_is_exact():
    assert g.solve_power({"a": "-711.31", "n": "4"}) == "-711.31^4 = 255997460543.58343921"
    assert g.solve_power({"a": "-1.50", "n": "3"}) == "-1.50^3 = -3.375000"
    assert g.solve_power({"a": "2.50", "n": "0"}) == "2.50^0 = 1"


def test_equation_is_python_float_repr_including_negative_zero():
    assert g.solve_equation({"k": "-81", "b": "-45"}) == "方程的解为：-0.5555555555555556"
    assert g.solve_equation({"k": "2", "b": "34"}) == "方程的解为：-17.0"
    assert g.solve_equation({"k": "-5", "b": "0"}) == "方程的解为：-0.0"  # 0 / -5 is -0.0


def test_function_uses_e_notation_for_big_and_small_values():
    assert (g.solve_function({"x": "4.03", "k": "57", "n": "54"})
            == "函数的值为：2.769155521409239378157128235E+34")
    assert g.solve_function({"x": "0.01", "k": "1", "n": "10"}) == "函数的值为：1E-20"
    assert g.solve_function({"x": "0.50", "k": "3", "n": "2"}) == "函数的值为：0.7500"


def test_rules_ignore_a_changed_global_decimal_context():
    with localcontext() as ctx:
        ctx.prec = 5
        assert g.solve_div({"a": "1.00", "b": "3.00"}).endswith("0." + "3" * 28)
    assert getcontext().prec == 28


def test_mean_is_float_repr():
    assert g.solve_mean({"values": ["79", "69", "19", "3", "23", "93"]}) == "平均值为 47.666666666666664"
    assert g.solve_mean({"values": ["1", "2", "3"]}) == "平均值为 2.0"


def test_integer_products_area_and_mass():
    assert g.solve_area({"l": "57", "w": "84"}) == "面积为 4788 平方厘米"
    assert g.solve_mass({"d": "10", "v": "3"}) == "30 克"


def test_discount_and_sales_keep_float_noise():
    assert g.solve_discount({"p": "51", "q": "28"}) == "45.09803921568628"
    assert g.solve_discount({"p": "50", "q": "60"}) == "-20.0"  # price rose
    assert g.solve_sales({"s": "32", "g": "28"}) == "40.96"
    assert g.solve_sales({"s": "18", "g": "18"}) == "21.240000000000002"


def test_fraction_in_lowest_terms():
    assert g.solve_fraction({"a": "5", "b": "6"}) == "最简化的形式为：5/6"
    assert g.solve_fraction({"a": "12", "b": "18"}) == "最简化的形式为：2/3"
    assert g.solve_fraction({"a": "4", "b": "2"}) == "最简化的形式为：2/1"


# ---- shares --------------------------------------------------------------------------

def test_default_shares_renormalise_over_the_14_chinese_types():
    shares = g.default_shares()
    assert set(shares) == set(g.GENERATED_TYPES) and len(shares) == 14
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["add"] == pytest.approx(16.4 / 98.03)
    assert g.default_shares(["add", "sub"]) == pytest.approx({"add": 16.4 / 32.7, "sub": 16.3 / 32.7})


def test_unknown_type_is_refused():
    with pytest.raises(PipelineError, match="english"):
        g.default_shares(["add", "english"])


# ---- reproducibility -----------------------------------------------------------------

def test_same_seed_gives_byte_identical_files(tmp_path):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    counts = g.write_generated(a, 3000, seed=5, progress=False)
    g.write_generated(b, 3000, seed=5, progress=False)
    g.write_generated(c, 3000, seed=6, progress=False)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    lines = a.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3000 == sum(counts.values())
    assert re.fullmatch(r'\{"problem": "[^"]+", "solution": "[^"]+"\}', lines[0])


def test_types_option_restricts_generation():
    rows = list(g.generate_rows(500, seed=1, types=["area", "mean"], with_type=True))
    assert {r["type"] for r in rows} == {"area", "mean"}


# ---- property test -------------------------------------------------------------------

@pytest.fixture(scope="module")
def rows():
    return list(g.generate_rows(40_000, seed=11, with_type=True))


def test_classify_recognises_every_generated_row(rows):
    wrong = [r for r in rows if classify(r["problem"], r["solution"]) != r["type"]]
    assert wrong == []


def test_every_solution_is_what_its_rule_computes_from_the_problem(rows):
    # operands are read back from the problem text, not taken from the generator
    for row in rows:
        ops = extract_operands(row["problem"], row["type"])
        assert g.RULES[row["type"]](ops) == row["solution"], row


def test_type_shares_within_one_point_of_the_contest(rows):
    counts = Counter(r["type"] for r in rows)
    target = g.default_shares()
    for name in g.GENERATED_TYPES:
        share = counts[name] / len(rows)
        assert abs(share - target[name]) < 0.01, name
        assert abs(share * 100 - g.SPEC_SHARES[name]) < 1.0, name


def test_operand_spelling_and_ranges(rows):
    binary = [r for r in rows if r["type"] in ("add", "sub", "mul", "div")]
    ops = [extract_operands(r["problem"], r["type"]) for r in binary]
    values = [v for o in ops for v in (o["a"], o["b"])]
    assert all(re.fullmatch(r"-?\d+\.\d\d", v) for v in values)
    assert max(abs(float(v)) for v in values) <= 9999.99
    assert any(" + -" in r["problem"] for r in binary) and any(" - -" in r["problem"] for r in binary)
    assert all(float(o["b"]) != 0 for o, r in zip(ops, binary) if r["type"] == "div")
    powers = [extract_operands(r["problem"], "power") for r in rows if r["type"] == "power"]
    assert {int(p["n"]) for p in powers} == {0, 1, 2, 3, 4, 5}
    assert all(0 < abs(float(p["a"])) < 1000 for p in powers)
    equations = [extract_operands(r["problem"], "equation") for r in rows if r["type"] == "equation"]
    assert all(int(e["k"]) != 0 and -100 <= int(e["b"]) <= 100 for e in equations)
    means = [extract_operands(r["problem"], "mean")["values"] for r in rows if r["type"] == "mean"]
    assert {len(m) for m in means} == set(range(3, 11))
    assert any("E+" in r["solution"] for r in rows if r["type"] == "function")
