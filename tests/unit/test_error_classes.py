"""Error classes of wrong math answers, hand-checked one by one (the carries by column)."""
import pytest

from pipeline.problems import classify
from pipeline.scoring.errors import ERROR_CLASSES, error_class, is_echo
from pipeline.scoring.math import extract_answer, score_math
from pipeline.scoring.rules import contains, exact, make_tolerance, rounded, tolerance

ADD = "计算 4204.22 + -2369.17 等于多少？"
DIV = "计算 5073.46 / -1586.04 等于多少？"
DIV_REF = "-3.198822223903558548334216035"


SUB = "计算 781.15 - -2579.99 等于多少？"   # 781.15 + 2579.99 = 3361.14, carries into every column


@pytest.mark.parametrize("problem,reference,continuation,expected", [
    # right under the rule given (exact here) -> None
    (ADD, "1835.05", "4204.22 + -2369.17 = 1835.05", None),
    (ADD, "1835.05", "= 1835.050", None),
    ("计算 5.00 * 1.00 等于多少？", "5.0000", "5.00", None),       # equals an operand, but right
    # no number at all
    (ADD, "1835.05", "我不知道", "no_number"),
    (ADD, "1835.05", "", "no_number"),
    # only the problem's own numbers
    (ADD, "1835.05", "4204.22 + -2369.17 = 4204.22", "echo"),
    (ADD, "1835.05", "计算 4204.22 + -2369.17 等于多少？", "echo"),
    (ADD, "1835.05", "= -2369.170", "echo"),                      # same value, other spelling
    # |value| right, sign wrong
    (ADD, "1835.05", "= -1835.05", "wrong_sign"),
    (DIV, DIV_REF, "= 3.20", "wrong_sign"),                       # after rounding to 2 places
    # rounding: a last-place difference a rounding rule explains
    (DIV, DIV_REF, "= -3.1", "rounding"),                         # truncated to 1 place
    (DIV, DIV_REF, "= -3.20", "rounding"),                        # rounded half up
    ("计算 1.00 + 1.00 等于多少？", "1234.5678", "= 1234.6", "rounding"),
    ("计算 1.00 + 1.00 等于多少？", "1234.5678", "= 1234.5", "rounding"),  # truncated
    # carries: the example drops the carries into the units and the tens
    (SUB, "3361.14", "= 3350.14", "carry"),
    (SUB, "3361.14", "= 3351.14", "carry"),                       # only the tens carry dropped
    (SUB, "3361.14", "= 2361.14", "carry"),                       # carry into the thousands
    # 4204.22 - 2369.17: borrows given by the tenths, tens, hundreds and thousands columns
    (ADD, "1835.05", "= 1845.05", "carry"),                       # the tens' borrow dropped
    (ADD, "1835.05", "= 1834.05", "carry"),                       # a borrow added at the units
    (ADD, "1835.05", "= 1835.15", "carry"),                       # the tenths' borrow dropped
    (ADD, "1835.05", "= 1825.05", "digit"),                       # tens -1: no borrow explains it
    (ADD, "1835.05", "= 1835.06", "digit"),                       # nothing carries into the last place
    (ADD, "1835.05", "= 1840", "digit"),                          # 0.27% off is not rounding
    ("计算 3072.54 * -2960.93 等于多少？", "-9097575.8622", "= -7831114.29", "digit"),
    (DIV, DIV_REF, "= -3.52", "digit"),
    # transposed digits
    (ADD, "1835.05", "= 1853.05", "transposed"),
    (ADD, "1835.05", "= 5031.85", "transposed"),
    # power of ten / same leading digits at another scale
    (ADD, "1835.05", "= 183.505", "magnitude"),
    (ADD, "1835.05", "= 18350.5", "magnitude"),
    (ADD, "1835.05", "= 18.3", "magnitude"),
    ("计算 2.00 + 3.00 等于多少？", "5", "= 50", "magnitude"),
    # anything else
    (ADD, "1835.05", "= 99", "other"),
    (ADD, "1835.05", "= -99", "other"),
    (ADD, "1835.05", "= -2835.05", "other"),                      # wrong sign and wrong digits
    ("Find x.", "2\\sqrt{3}", "\\boxed{3\\sqrt{2}}", "other"),
])
def test_error_class(problem, reference, continuation, expected):
    ptype = classify(problem)
    extracted = extract_answer(continuation)
    assert error_class(problem, reference, extracted, continuation, ptype, rule=exact) == expected


def test_the_class_follows_the_rule_and_its_tolerance():
    """A sample has a class exactly when the rule calls it wrong, whatever the rule."""
    answers = ["1835.05", "1835.050", "1835.06", "1835.1", "1835", "1840", "-1835.05", "4204.22",
               "abc", "3/4", None]
    rules = {"exact": exact, "rounded": rounded, "tolerance": tolerance,
             "tolerance 0": make_tolerance(0), "tolerance 0.5": make_tolerance("0.5"),
             "tolerance 1%": make_tolerance(0, "0.01"), "contains": contains}
    for name, rule in rules.items():
        for answer in answers:
            continuation = f"= {answer}" if answer else "no idea"
            extracted = extract_answer(continuation)
            verdict = rule(continuation, extracted, "1835.05")
            cls = error_class(ADD, "1835.05", extracted, continuation, "add", rule=rule)
            assert (cls is None) == verdict, (name, answer, cls)
            assert cls is None or cls in ERROR_CLASSES


def test_a_right_value_the_rule_refuses_is_format():
    assert error_class(ADD, "1835.05", "1835.05", "= 1,835.05", "add", rule=contains) == "format"


def test_score_math_classes_follow_the_headline_rule_and_tolerance():
    tests = [{"problem": ADD, "solution": "4204.22 + -2369.17 = 1835.05", "type": "add"}]
    outputs = [ADD + "\n\n### Response: 1835.06"]
    rows, summary = score_math(outputs, tests, rules={"tolerance": make_tolerance(0)},
                               headline="tolerance")
    assert rows[0]["verdicts"] == {"tolerance": False} and rows[0]["error_class"] == "digit"
    rows, summary = score_math(outputs, tests, rules={"tolerance": make_tolerance("0.01")},
                               headline="tolerance")
    assert rows[0]["verdicts"] == {"tolerance": True} and rows[0]["error_class"] is None
    rows, summary = score_math(outputs, tests, rules={"tolerance": tolerance}, headline="exact")
    assert rows[0]["verdicts"] == {"tolerance": True} and rows[0]["error_class"] == "digit"
    assert summary["headline_rule"] == "exact"


def test_error_class_of_a_missing_answer_and_odd_input():
    assert error_class(ADD, "1835.05", None, "", "add") == "no_number"
    assert error_class("", "", "5", "5", None) == "other"
    assert error_class(ADD, "1835.05", "sNaN", "\\boxed{sNaN}", None) == "other"
    assert error_class(ADD, "1e999999", "1", "= 1", None) in ERROR_CLASSES


def test_every_class_is_named_in_the_registry():
    assert ERROR_CLASSES == ("no_number", "format", "echo", "wrong_sign", "rounding", "carry",
                             "transposed", "magnitude", "digit", "other")


def test_is_echo():
    assert is_echo(ADD, "4204.22 and -2369.17")
    assert not is_echo(ADD, "4204.22 and 1835.05")
    assert not is_echo(ADD, "no numbers")
    assert is_echo(ADD, "4,204.22", extracted="4204.22")
