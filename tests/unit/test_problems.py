"""Problem types: classification by the exact contest templates, operands, reference answers."""
import pytest

from pipeline.problems import (
    PROBLEM_TYPES, TYPES, classify, extract_operands, last_boxed, reference_answer)

# The three verbatim rows of docs/contest.md section 2.
VERBATIM = [
    ("计算 4204.22 + -2369.17 等于多少？", "4204.22 + -2369.17 = 1835.05", "add", "1835.05"),
    ("计算 5073.46 / -1586.04 等于多少？", "5073.46 / -1586.04 = -3.198822223903558548334216035",
     "div", "-3.198822223903558548334216035"),
    ("当 x = 4.03 时，求函数 y = 57x^54 的值", "函数的值为：2.769155521409239378157128235E+34",
     "function", "2.769155521409239378157128235E+34"),
]

# One row per template, in the solution formats of the spec's table.
TEMPLATES = [
    ("计算 12.00 - -3.50 等于多少？", "12.00 - -3.50 = 15.50", "sub", {"a": "12.00", "b": "-3.50"}, "15.50"),
    ("计算 -12.00 * 3.50 等于多少？", "-12.00 * 3.50 = -42.0000", "mul", {"a": "-12.00", "b": "3.50"}, "-42.0000"),
    ("解方程 -39x + 20 = 0", "方程的解为：0.5128205128205128", "equation",
     {"k": "-39", "b": "20"}, "0.5128205128205128"),
    ("计算 2345.67 的平方根？", "√2345.67 = 48.43", "sqrt", {"a": "2345.67"}, "48.43"),
    ("计算 -12.34 的 3 次方？", "-12.34^3 = -1879.080904", "power", {"a": "-12.34", "n": "3"}, "-1879.080904"),
    ("求以下数据的平均值：[58, 60, 56]", "平均值为 58.0", "mean", {"values": ["58", "60", "56"]}, "58.0"),
    ("一个长方形的长为 5 厘米，宽为 7 厘米，请计算其面积。", "面积为 35 平方厘米", "area",
     {"l": "5", "w": "7"}, "35"),
    ("商品原价为 100 元，打折后的价格为 80 元，请计算打折的折扣比例。", "20.0", "discount",
     {"p": "100", "q": "80"}, "20.0"),
    ("去年销售额为 18 万元，今年销售额增加了 18%，请计算今年的销售额。", "21.240000000000002", "sales",
     {"s": "18", "g": "18"}, "21.240000000000002"),
    ("某物体的密度为 3 克/立方厘米，体积为 4 立方厘米，请计算该物体的质量。", "12 克", "mass",
     {"d": "3", "v": "4"}, "12"),
    ("将分数 6/8 进行简化。", "最简化的形式为：3/4", "fraction", {"a": "6", "b": "8"}, "3/4"),
]


def test_types_registry_is_the_spec_list_in_display_order():
    assert TYPES == ("add", "sub", "mul", "div", "equation", "sqrt", "power", "function", "mean",
                     "area", "discount", "sales", "mass", "fraction", "english", "unknown")
    assert set(PROBLEM_TYPES) == set(TYPES)
    assert all(PROBLEM_TYPES[t].description for t in TYPES)


@pytest.mark.parametrize("problem,solution,kind,ref", VERBATIM)
def test_verbatim_rows(problem, solution, kind, ref):
    assert classify(problem, solution) == kind
    assert classify(problem) == kind
    assert reference_answer(solution, kind) == ref


def test_verbatim_operands_keep_the_plus_minus_sign():
    assert extract_operands("计算 4204.22 + -2369.17 等于多少？") == {"a": "4204.22", "b": "-2369.17"}
    assert extract_operands("当 x = 4.03 时，求函数 y = 57x^54 的值") == {"x": "4.03", "k": "57", "n": "54"}


@pytest.mark.parametrize("problem,solution,kind,operands,ref", TEMPLATES)
def test_each_template(problem, solution, kind, operands, ref):
    assert classify(problem, solution) == kind
    assert extract_operands(problem) == operands
    assert extract_operands(problem, kind) == operands
    assert reference_answer(solution, kind) == ref


@pytest.mark.parametrize("problem,operands", [
    ("解方程 5x - 3 = 0", {"k": "5", "b": "-3"}),      # "- 3" is B = -3
    ("解方程 5x - -3 = 0", {"k": "5", "b": "3"}),      # "- -3" is B = 3
    ("解方程 -5x + -3 = 0", {"k": "-5", "b": "-3"}),
    ("解方程 1x + 0 = 0", {"k": "1", "b": "0"}),
])
def test_equation_signs(problem, operands):
    assert classify(problem) == "equation"
    assert extract_operands(problem) == operands


def test_binary_operators_are_told_apart():
    assert classify("计算 1.00 - -2.00 等于多少？") == "sub"
    assert classify("计算 -1.00 + 2.00 等于多少？") == "add"
    assert classify("计算 1.00 * -2.00 等于多少？") == "mul"
    assert classify("计算 1.00 / -2.00 等于多少？") == "div"


@pytest.mark.parametrize("problem,solution,kind", [
    ("Find $x$ if $2x + 3 = 7$.", "So \\boxed{2}", "english"),
    ("What is the sum of the first 10 positive integers?", None, "english"),
    ("Compute \\frac{1}{2} + \\frac{1}{3}.", None, "english"),
    ("计算 4204.22 + -2369.17 等于多少", None, "unknown"),   # template without its ？
    ("计算 4204.22 ^ 2 等于多少？", None, "unknown"),         # no such operator
    ("今天天气很好", None, "unknown"),
    ("1 + 1", None, "unknown"),                                # no letters, no LaTeX
    ("", None, "unknown"),
    ("   ", None, "unknown"),
])
def test_english_and_unknown(problem, solution, kind):
    assert classify(problem, solution) == kind
    assert extract_operands(problem) is None


def test_reference_answer_english_and_fallbacks():
    assert reference_answer("so $x = \\boxed{\\frac{3}{4}}$.", "english") == "\\frac{3}{4}"
    assert reference_answer("first \\boxed{1} then \\boxed{2}", "english") == "2"
    # a solution off its template falls back to boxed, then to the last number
    assert reference_answer("答案是 12 克左右", "mass") == "12"
    assert reference_answer("1 + 2 = 3", None) == "3"
    assert reference_answer("no number", "add") == "no number"
    assert reference_answer("", "add") == ""


def test_last_boxed_balances_braces_and_skips_unclosed():
    assert last_boxed("\\boxed{\\frac{a}{b}} and \\boxed{x^{2}}") == "x^{2}"
    assert last_boxed("\\boxed{7} and then \\boxed{cut off") == "7"
    assert last_boxed("nothing here") is None
