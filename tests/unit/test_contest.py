"""Contest facts: the score formula against all 20 published phase-1 scores, gate, ranks."""
import csv

import pytest

from pipeline.contest import (BASE_SQUAD_EM, BASE_SQUAD_F1, LEADERBOARD_CSV, LLAMA3_8B_TOTAL_PARAMS,
                              SQUAD_EM_THRESHOLD, SQUAD_F1_THRESHOLD, contest_score, leaderboard_rank,
                              load_leaderboard, retention_gate, trainable_ratio)
from pipeline.errors import PipelineError


def test_all_published_scores_recompute():
    entries = load_leaderboard()
    assert [e.rank for e in entries] == list(range(1, 21))
    for e in entries:
        # Published scores carry 9 decimals: the formula must land within that rounding.
        assert abs(contest_score(e.accuracy, e.ratio) - e.score) < 1e-9, e.team
        assert abs(trainable_ratio(e.trainable_params) - e.ratio) < 1e-9, e.team


def test_leaderboard_csv_columns_agree_with_loader():
    with open(LEADERBOARD_CSV, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20
    best = load_leaderboard()[0]
    assert (best.accuracy, best.ratio, best.trainable_params) == (0.7161, 0.00679028, 54_525_952)


def test_baseline_by_hand():
    # r8 wq|wv = 3,407,872 / 8,030,000,000; 64% accuracy (third place).
    ratio = trainable_ratio(3_407_872)
    assert ratio == 3_407_872 / 8_030_000_000
    assert contest_score(0.64, ratio) == pytest.approx((1 - ratio) * 0.3 + 0.448, abs=1e-15)
    assert contest_score(0.0, 0.0) == 0.3 and contest_score(1.0, 0.0) == 1.0
    assert contest_score(0.5, 0.01, phase=2) == pytest.approx(0.9 * 0.3 + 0.35, abs=1e-15)


def test_thresholds_are_90_percent_of_base():
    assert SQUAD_F1_THRESHOLD == pytest.approx(53.88321397598089, abs=1e-12)
    assert SQUAD_EM_THRESHOLD == pytest.approx(39.75326560232221, abs=1e-12)
    gate = retention_gate(55.0, 39.0)
    assert (gate["f1_pass"], gate["em_pass"], gate["pass"]) == (True, False, False)
    assert retention_gate(BASE_SQUAD_F1 * 0.9, BASE_SQUAD_EM * 0.9)["pass"] is True
    assert retention_gate(10.0, 10.0, base_f1=11.0, base_em=11.2)["pass"] is False


def test_rank_ties_go_to_the_published_team():
    entries = load_leaderboard()
    assert leaderboard_rank(1.0, entries) == 1
    assert leaderboard_rank(entries[0].score, entries) == 2
    assert leaderboard_rank(entries[2].score + 1e-12, entries) == 3
    assert leaderboard_rank(0.0, entries) == 21


@pytest.mark.parametrize("call", [
    lambda: contest_score(1.2, 0.0), lambda: contest_score(0.5, -0.1),
    lambda: contest_score(0.5, 0.0, phase=3), lambda: trainable_ratio(10, 0),
    lambda: trainable_ratio(LLAMA3_8B_TOTAL_PARAMS + 1),
])
def test_out_of_range_inputs_raise(call):
    with pytest.raises(ValueError):
        call()


def test_bad_leaderboard_file(tmp_path):
    with pytest.raises(PipelineError, match="cannot read leaderboard"):
        load_leaderboard(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("rank,team\nx,y\n")
    with pytest.raises(PipelineError, match="line 2: bad leaderboard row"):
        load_leaderboard(bad)
