"""Math grading: continuation split, answer extraction, each rule, grade and score_math."""
from decimal import Decimal

import pytest

from pipeline.errors import PipelineError
from pipeline.scoring.math import (
    RULES, contains, exact, extract_answer, grade, make_tolerance, rounded, score_math,
    split_continuation, tolerance)

ADD = "计算 4204.22 + -2369.17 等于多少？"
ADD_SOL = "4204.22 + -2369.17 = 1835.05"
DIV = "计算 5073.46 / -1586.04 等于多少？"
DIV_SOL = "5073.46 / -1586.04 = -3.198822223903558548334216035"
FUNC = "当 x = 4.03 时，求函数 y = 57x^54 的值"
FUNC_SOL = "函数的值为：2.769155521409239378157128235E+34"
FUNC_REF = "2.769155521409239378157128235E+34"
# the same value written out: 28 significant digits, exponent 34 -> 7 trailing zeros
FUNC_EXPANDED = "2769155521409239378157128235" + "0" * 7
PROMPT = "{problem}\n\n### Response:"


# ------------------------------------------------------------ split_continuation

def test_split_cuts_the_prompt_prefix():
    prompt = PROMPT.replace("{problem}", ADD)
    assert split_continuation(prompt + " 1835.05", ADD, prompt) == "1835.05"


def test_split_falls_back_to_the_last_copy_of_the_problem():
    text = f"USER: {ADD} ASSISTANT: {ADD} = 1835.05"
    assert split_continuation(text, ADD) == "= 1835.05"
    # prompt given but the text does not start with it: still cut at the problem
    assert split_continuation(f"<s>{ADD}\n### Response: 7", ADD, "nope") == "7"


def test_split_skips_a_leading_response_marker_and_keeps_unechoed_text():
    assert split_continuation(f"{ADD}\n\n### Response:\n 1835.05", ADD) == "1835.05"
    assert split_continuation("1835.05", ADD) == "1835.05"
    assert split_continuation("", ADD) == ""
    assert split_continuation(ADD, ADD) == ""


# ------------------------------------------------------------ extract_answer

@pytest.mark.parametrize("continuation,expected", [
    ("4204.22 + -2369.17 = 1835.05", "1835.05"),
    ("5073.46 / -1586.04 = -3.198822223903558548334216035", "-3.198822223903558548334216035"),
    (FUNC_SOL, FUNC_REF),
    ("y = 3.2e-19", "3.2e-19"),
    ("方程的解为：-17.0", "-17.0"),
    ("面积为 35 平方厘米", "35"),
    ("12 克", "12"),
    ("折扣为 20.0%", "20.0"),
    ("总价为 1,234.50 元。", "1234.50"),
    ("答案是 42。", "42"),
    ("结果为１８３５．０５", "1835.05"),                       # full-width digits and point
    ("x = .5", ".5"),
    ("= -0.00", "-0.00"),
    ("最简化的形式为：3/4", "3/4"),
    ("so \\boxed{\\frac{3}{4}}", "3/4"),
    ("so \\boxed{-\\dfrac{1}{2}}.", "-1/2"),
    ("\\boxed{1,234}", "1234"),
    ("\\boxed{50\\%}", "50"),
    ("\\boxed{2\\sqrt{3}}", "2\\sqrt{3}"),                     # not a number: kept as written
    ("\\boxed{\\$18.90}", "18.90"),
    ("\\boxed{x = -4}", "-4"),
    ("\\boxed{90^\\circ}", "90"),
    ("\\boxed{12 \\text{ cm}}", "12"),
    ("x = 3, y = 4, so \\boxed{7} and z = 9", "7"),            # boxed wins over the last '='
    ("x = 5, then 6 and 7", "5"),                              # number after the last '='
    ("first 3 then 8", "8"),                                   # no marker: last number
    ("The answer is 5 * 10^3", "5*10^3"),
    ("1835.05\n\n### Instruction:\n计算 1.00 + 1.00 = 2.00", "1835.05"),  # stop at next section
    ("1835.05</s>99", "1835.05"),
    ("我不知道", None),
    ("", None),
])
def test_extract_answer(continuation, expected):
    assert extract_answer(continuation) == expected


def test_a_number_echoed_from_the_prompt_is_not_the_answer():
    text = f"{ADD}\n\n### Response: 我不知道"
    result = grade(text, ADD_SOL, ADD)
    assert result.continuation == "我不知道"
    assert result.extracted is None
    assert result.verdicts == {"contains": False, "exact": False, "rounded": False, "tolerance": False}


# ------------------------------------------------------------ rules

def test_registry_names_and_docstrings():
    assert list(RULES) == ["contains", "exact", "rounded", "tolerance"]
    assert all(rule.__doc__ and len(rule.__doc__) > 40 for rule in RULES.values())


def test_contains_looks_at_the_whole_prediction_as_the_contest_kit_did():
    problem = "计算 10.00 + 0.00 等于多少？"
    assert contains(problem, None, "10.00")            # the echo alone scores
    assert contains(f"{ADD} = 1835.05", "1835.05", "1835.05")
    assert not contains(f"{ADD} = 1835.5", "1835.5", "1835.05")
    assert not contains("anything", None, "")
    assert not contains("", None, "1")


@pytest.mark.parametrize("answer,reference,expected", [
    (FUNC_REF, FUNC_REF, True),
    ("2.769155521409239378157128235E+034", FUNC_REF, True),      # E+034 == E+34
    (FUNC_EXPANDED, FUNC_REF, True),                             # the expanded integer
    ("2.769155521409239378157128235e34", FUNC_REF, True),
    ("2.769155521409239E+34", FUNC_REF, False),                  # 16 digits is not equal
    ("-0.00", "0.00", True),                                     # negative zero
    ("1835.050", "1835.05", True),
    ("1835.06", "1835.05", False),
    ("0.75", "3/4", True),                                       # rational vs decimal
    ("6/8", "3/4", True),
    ("0.7", "3/4", False),
    ("-17", "-17.0", True),
    ("2 \\sqrt{3}", "2\\sqrt{3}", True),                         # LaTeX: whitespace-free string
    ("3\\sqrt{2}", "2\\sqrt{3}", False),
    (None, "1835.05", False),
])
def test_exact(answer, reference, expected):
    assert exact("", answer, reference) is expected


@pytest.mark.parametrize("answer,reference,expected", [
    ("0.87", "0.8746954463782105330487925430", True),    # both 0.87
    ("0.88", "0.8746954463782105330487925430", False),
    ("0.875", "0.8746954463782105330487925430", True),   # 3 decimals: 0.875
    ("0.8747", "0.8746954463782105330487925430", True),
    ("0.8746", "0.8746954463782105330487925430", False),  # truncated, not rounded
    ("0.13", "0.125", True),                              # half up, not half even
    ("-0.13", "-0.125", True),                            # half away from zero
    ("0.12", "0.125", False),
    ("2.77E+34", FUNC_REF, True),                         # both 277E+32
    ("2.76E+34", FUNC_REF, False),
    ("1835", "1835.05", True),                            # fewer decimals of the two: 0
    ("58.03", "58.0", True),                              # the reference has the fewer here
    ("0.75", "3/4", True),
    ("0.8", "3/4", True),                                 # 0.75 -> 0.8 at 1 decimal
    ("0.7", "3/4", False),
    ("-0.00", "0.001", True),
    (None, "1", False),
])
def test_rounded(answer, reference, expected):
    assert rounded("", answer, reference) is expected


@pytest.mark.parametrize("answer,reference,expected", [
    ("1835.06", "1835.05", True),              # |diff| = 0.01 <= 0.01
    ("1835.04", "1835.05", True),
    ("1835.0601", "1835.05", False),
    ("1835.07", "1835.05", False),
    ("-1835.05", "1835.05", False),
    (FUNC_EXPANDED, FUNC_REF, True),
    ("2.769155521409239E+34", FUNC_REF, False),  # off by ~3.8E+17: exact arithmetic, no floats
    ("0.755", "3/4", True),
    ("0.761", "3/4", False),
    ("-0.00", "0.00", True),
    (None, "0", False),
])
def test_tolerance_default(answer, reference, expected):
    assert tolerance("", answer, reference) is expected


def test_tolerance_is_configurable():
    relative = make_tolerance(abs_tol=0, rel_tol="0.001")
    assert relative("", "1000.9", "1000")
    assert not relative("", "1001.01", "1000")
    loose = make_tolerance(abs_tol="0.5")
    assert loose("", "1835.5", "1835.05")
    assert not tolerance("", "1835.5", "1835.05")
    with pytest.raises(PipelineError, match="abs_tol"):
        make_tolerance(abs_tol="abc")
    with pytest.raises(PipelineError, match="rel_tol"):
        make_tolerance(rel_tol=-1)


# ------------------------------------------------------------ grade

def test_grade_verbatim_rows():
    right = grade(PROMPT.replace("{problem}", ADD) + " " + ADD_SOL, ADD_SOL, ADD, prompt=PROMPT)
    assert right.extracted == "1835.05" and right.reference == "1835.05"
    assert all(right.verdicts.values())

    div = grade(f"{DIV}\n\n### Response: -3.20", DIV_SOL, DIV)
    assert div.reference == "-3.198822223903558548334216035"
    assert div.verdicts == {"contains": False, "exact": False, "rounded": True, "tolerance": True}

    func = grade(f"{FUNC}\n\n### Response: 函数的值为：2.769155521409239378157128235E+034", FUNC_SOL, FUNC)
    assert func.verdicts == {"contains": False, "exact": True, "rounded": True, "tolerance": True}


def test_a_prediction_that_only_repeats_the_problem_is_wrong():
    for text in (ADD, f"{ADD}\n\n### Response:", f"{ADD}\n\n### Response: {ADD}"):
        result = grade(text, ADD_SOL, ADD)
        assert not any(result.verdicts[r] for r in ("exact", "rounded", "tolerance")), text


def test_grade_plus_minus_and_empty_output():
    result = grade(f"{ADD} 4204.22 + -2369.17 = 1835.05", ADD_SOL, ADD, type="add")
    assert result.extracted == "1835.05" and result.verdicts["exact"]
    empty = grade("", ADD_SOL, ADD)
    assert empty.continuation == "" and empty.extracted is None
    assert not any(empty.verdicts.values())


def test_grade_subset_of_rules():
    result = grade(f"{ADD} = 1835.05", ADD_SOL, ADD, rules=["exact"])
    assert result.verdicts == {"exact": True}
    with pytest.raises(PipelineError, match="unknown rule 'nope'"):
        grade("", ADD_SOL, ADD, rules=["nope"])


# ------------------------------------------------------------ score_math

TESTS = [
    {"problem": ADD, "solution": ADD_SOL},
    {"problem": DIV, "solution": DIV_SOL, "id": "div-1"},
    {"problem": FUNC, "solution": FUNC_SOL},
    {"problem": "将分数 6/8 进行简化。", "solution": "最简化的形式为：3/4"},
]
OUTPUTS = [
    f"{ADD}\n\n### Response: {ADD_SOL}",          # right under every rule
    f"{DIV}\n\n### Response: 3.20",               # wrong sign
    FUNC,                                          # echo only
    "将分数 6/8 进行简化。\n\n### Response: 0.75",  # rational vs decimal
]


def test_score_math_rows_follow_the_run_format():
    rows, summary = score_math(OUTPUTS, TESTS, prompt=PROMPT)
    assert [r["id"] for r in rows] == ["math-00000", "div-1", "math-00002", "math-00003"]
    assert list(rows[0]) == ["id", "index", "type", "problem", "reference", "solution", "output",
                             "extracted", "verdicts", "error_class"]
    assert [r["type"] for r in rows] == ["add", "div", "function", "fraction"]
    assert [r["extracted"] for r in rows] == ["1835.05", "3.20", None, "0.75"]
    assert [r["output"] for r in rows] == [ADD_SOL, "3.20", "", "0.75"]
    assert [r["error_class"] for r in rows] == [None, "wrong_sign", "no_number", None]
    assert rows[3]["verdicts"] == {"contains": False, "exact": True, "rounded": True, "tolerance": True}

    assert summary["total"] == 4
    tol = summary["rules"]["tolerance"]
    assert (tol["correct"], tol["total"], tol["accuracy"]) == (2, 4, 0.5)
    assert list(tol["by_type"]) == ["add", "div", "function", "fraction"]
    assert tol["by_type"]["div"] == {"accuracy": 0.0, "correct": 0, "total": 1}
    assert tol["by_type"]["fraction"] == {"accuracy": 1.0, "correct": 1, "total": 1}
    assert summary["rules"]["contains"]["correct"] == 1


def test_score_math_gen_seconds_and_type_from_tests():
    tests = [dict(TESTS[0], type="add")]
    rows, _ = score_math([OUTPUTS[0]], tests, gen_seconds=[0.5])
    assert rows[0]["gen_seconds"] == 0.5
    rows, _ = score_math([OUTPUTS[0]], tests)
    assert "gen_seconds" not in rows[0]


def test_score_math_custom_rule_dict_matches_the_plain_rules():
    custom = {"tight": make_tolerance(abs_tol="0.001"), "exact": RULES["exact"],
              "mine": lambda out, ext, ref: ext == ref}
    rows, summary = score_math(OUTPUTS, TESTS, rules=custom)
    assert [r["verdicts"]["tight"] for r in rows] == [True, False, False, True]
    assert [r["verdicts"]["mine"] for r in rows] == [True, False, False, False]
    assert summary["rules"]["exact"]["correct"] == 2


def test_score_math_length_mismatch_names_both_lengths():
    with pytest.raises(PipelineError, match="3 predictions but 4 test rows"):
        score_math(OUTPUTS[:3], TESTS)


def test_score_math_missing_field_names_row_and_field():
    with pytest.raises(PipelineError, match="test row 1: .*'solution'"):
        score_math(OUTPUTS[:2], [TESTS[0], {"problem": DIV}])


def test_decimal_context_and_gc_are_left_alone():
    import gc
    from decimal import getcontext
    before = getcontext().prec
    score_math(OUTPUTS, TESTS)
    assert getcontext().prec == before
    assert Decimal(1) / Decimal(3) == Decimal("0." + "3" * before)
    assert gc.isenabled()
    gc.disable()
    try:
        score_math(OUTPUTS, TESTS)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_score_math_progress_mirrors_to_the_progress_file(tmp_path, monkeypatch):
    import json
    target = tmp_path / "progress.json"
    monkeypatch.setenv("PIPELINE_PROGRESS_FILE", str(target))
    rows, _ = score_math(OUTPUTS, TESTS, progress=True)
    state = json.loads(target.read_text())
    assert (state["stage"], state["done"], state["total"], state["status"]) == \
        ("score math", 4, 4, "finished")


def test_grading_never_raises_on_junk():
    """Random strings built from the characters answers are made of, incl. absurd exponents."""
    import random
    from pipeline.scoring.errors import ERROR_CLASSES, error_class
    rng = random.Random(0)
    alphabet = list("0123456789-+.,/=：为eE^{}\\ boxedfrac%克。１２．")
    alphabet += ["E+999999", "E+99999999", "\\boxed{", "1e-999999"]
    refs = ["1835.05", "-0.00", "3/4", FUNC_REF, "2\\sqrt{3}", "1e999999", ""]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        ref = rng.choice(refs)
        result = grade(text, f"= {ref}", ADD, type="add")
        assert set(result.verdicts) == set(RULES)
        assert result.extracted is None or isinstance(result.extracted, str)
        cls = error_class(ADD, result.reference, result.extracted, result.continuation, "add")
        assert cls is None or cls in ERROR_CLASSES
