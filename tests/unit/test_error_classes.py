"""Error classes of wrong math answers, hand-checked one by one."""
import pytest

from pipeline.scoring.errors import ERROR_CLASSES, error_class, is_echo
from pipeline.scoring.math import extract_answer

ADD = "计算 4204.22 + -2369.17 等于多少？"
DIV = "计算 5073.46 / -1586.04 等于多少？"
DIV_REF = "-3.198822223903558548334216035"


def classify_error(problem, reference, continuation):
    return error_class(problem, reference, extract_answer(continuation), continuation, None)


@pytest.mark.parametrize("problem,reference,continuation,expected", [
    # correct under tolerance -> None
    (ADD, "1835.05", "4204.22 + -2369.17 = 1835.05", None),
    (ADD, "1835.05", "= 1835.06", None),
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
    # rounding: rounded half up, truncated, or within 1%
    (DIV, DIV_REF, "= -3.1", "rounding"),  # truncated to 1 place
    ("计算 1.00 + 1.00 等于多少？", "1234.5678", "= 1234.6", "rounding"),
    ("计算 1.00 + 1.00 等于多少？", "1234.5678", "= 1234.5", "rounding"),  # truncated
    (ADD, "1835.05", "= 1840", "rounding"),                       # 0.27% off
    # transposed digits (checked before the 1% closeness)
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
    ("Find x.", "2\\sqrt{3}", "\\boxed{3\\sqrt{2}}", "other"),
])
def test_error_class(problem, reference, continuation, expected):
    assert classify_error(problem, reference, continuation) == expected


def test_error_class_of_a_missing_answer_and_odd_input():
    assert error_class(ADD, "1835.05", None, "", "add") == "no_number"
    assert error_class("", "", "5", "5", None) == "other"
    assert error_class(ADD, "1835.05", "sNaN", "\\boxed{sNaN}", None) == "other"
    assert error_class(ADD, "1e999999", "1", "= 1", None) in ERROR_CLASSES


def test_every_class_is_named_in_the_registry():
    assert ERROR_CLASSES == ("no_number", "echo", "wrong_sign", "rounding", "transposed",
                             "magnitude", "other")


def test_is_echo():
    assert is_echo(ADD, "4204.22 and -2369.17")
    assert not is_echo(ADD, "4204.22 and 1835.05")
    assert not is_echo(ADD, "no numbers")
    assert is_echo(ADD, "4,204.22", extracted="4204.22")
