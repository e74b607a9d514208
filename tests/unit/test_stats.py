"""Wilson intervals and exact McNemar, checked against hand-computed values."""
import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from pipeline.scoring.stats import (mcnemar_exact, pair_rows, paired_counts, paired_table, problem_key,
                                    wilson_interval)


def test_wilson_half_is_symmetric_and_matches_textbook():
    # 5/10: centre 0.5, half-width 1.96*sqrt(0.025+0.0096)/1.384 = 0.2634
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4)
    assert high == pytest.approx(0.7634, abs=1e-4)


def test_wilson_zero_successes_has_positive_upper_bound():
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(0.2775, abs=1e-4)  # z^2/(n+z^2) = 3.8415/13.8415


def test_wilson_arrays_and_empty_group():
    low, high = wilson_interval(np.array([10, 0]), np.array([10, 0]))
    assert high[0] == pytest.approx(1.0) and low[0] == pytest.approx(0.7225, abs=1e-4)
    assert math.isnan(low[1]) and math.isnan(high[1])


def test_wilson_rejects_more_correct_than_total():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


@pytest.mark.parametrize("b,c,expected", [
    (0, 5, 2 * 0.5 ** 5),        # all 5 discordant pairs favour the candidate
    (1, 9, 2 * 11 / 1024),       # P(X<=1 | n=10) = 11/1024, doubled
    (3, 3, 1.0),
    (0, 0, 1.0),                 # no discordant pairs: no evidence either way
])
def test_mcnemar_exact_hand_values(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected)


def test_mcnemar_agrees_with_statsmodels():
    table = [[40, 7], [19, 34]]  # base_only = 7, cand_only = 19
    assert mcnemar_exact(7, 19) == pytest.approx(mcnemar(table, exact=True).pvalue)


def test_paired_counts():
    base = [True, True, False, False, True]
    cand = [True, False, True, False, True]
    assert paired_counts(base, cand) == {"both": 2, "base_only": 1, "cand_only": 1,
                                         "neither": 1, "total": 5}
    with pytest.raises(ValueError):
        paired_counts([True], [True, False])


def test_paired_table_per_type_and_all_row():
    frame = pd.DataFrame({
        "type": ["add"] * 4 + ["mul"] * 6,
        "base": [True, False, False, False] + [True] * 6,
        "cand": [True, True, True, True] + [True, True, True, False, False, False]})
    table = paired_table(frame).set_index("type")
    assert list(table.index) == ["add", "mul", "all"]
    add = table.loc["add"]
    assert (add["n"], add["base_correct"], add["cand_correct"]) == (4, 1, 4)
    assert (add["base_only"], add["cand_only"]) == (0, 3)
    assert add["diff"] == pytest.approx(0.75)
    assert add["p_value"] == pytest.approx(0.25)  # 3 of 3 discordant: 2 * 1/8
    mul = table.loc["mul"]
    assert (mul["base_only"], mul["cand_only"]) == (3, 0)
    assert mul["diff"] == pytest.approx(-0.5)
    total = table.loc["all"]
    assert (total["n"], total["base_only"], total["cand_only"]) == (10, 3, 3)
    assert total["p_value"] == pytest.approx(1.0)
    assert total["cand_low"] <= total["cand_acc"] <= total["cand_high"]


def test_rows_pair_by_problem_and_reference_not_by_position_or_id():
    base = [{"id": "math-00000", "problem": "计算 1 + 2 等于多少？", "reference": "3", "v": "b0"},
            {"id": "math-00001", "problem": "计算 2 + 2 等于多少？", "reference": "4", "v": "b1"},
            {"id": "math-00002", "problem": "计算 2 + 2 等于多少？", "reference": "4", "v": "b2"},
            {"id": "math-00003", "problem": "计算 5 + 5 等于多少？", "reference": "10", "v": "b3"}]
    cand = [{"id": "math-00000", "problem": "计算 2  +  2 等于多少？", "reference": "4", "v": "c0"},
            {"id": "math-00001", "problem": "计算 ５ + ５ 等于多少？", "reference": "11", "v": "c1"},
            {"id": "math-00002", "problem": "计算 1 + 2 等于多少？ ", "reference": "3", "v": "c2"},
            {"id": "math-00003", "problem": "计算 2 + 2 等于多少？", "reference": "4", "v": "c3"},
            {"id": "math-00004", "problem": "计算 2 + 2 等于多少？", "reference": "4", "v": "c4"}]
    pairs = [(b["v"], c["v"]) for b, c in pair_rows(base, cand)]
    # whitespace and full-width digits normalise; a different reference is another problem;
    # a problem twice in both runs pairs first-first, second-second, a third copy has no partner
    assert pairs == [("b1", "c0"), ("b0", "c2"), ("b2", "c3")]
    assert problem_key("a  b", "1") == problem_key(" a b", "1 ") != problem_key("a b", "2")
