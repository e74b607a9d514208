"""bench/bench_train.py's own logic: the peer trains the same LoRA as ours, and the
profile summary adds up (the benchmark itself runs outside the test suite)."""
import importlib.util
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.model.params import LORA_TARGETS

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_train", REPO / "bench" / "bench_train.py")
bench_train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_train)


def test_every_lora_target_has_a_transformers_name():
    assert set(bench_train.HF_NAMES) == set(LORA_TARGETS)
    assert len(set(bench_train.HF_NAMES.values())) == len(LORA_TARGETS)


def test_bench_preset_defaults_to_the_embedded_preset_lora():
    lora = bench_train.bench_preset().lora
    assert (lora.rank, lora.targets) == (4, ("wq", "wk", "wv", "wo", "w1", "w2", "w3"))


def test_bench_preset_overrides_apply_to_the_lora_both_sides_use():
    lora = bench_train.bench_preset(rank=8, alpha=16.0, dropout=0.0, targets="wq,wv").lora
    assert (lora.rank, lora.alpha, lora.dropout, lora.targets) == (8, 16.0, 0.0, ("wq", "wv"))
    with pytest.raises(PipelineError, match="unknown LoRA target"):
        bench_train.bench_preset(targets="wq,q_proj")


def test_op_type_shares_sums_grad_kernels_into_their_op_and_adds_to_100(tmp_path):
    csv = tmp_path / "cpu_op_type_info_0.csv"
    csv.write_text("op_type,type_occurrences,execution_frequency(per-step),total_compute_time,avg_time(ms),percent\n"
                   "MatMul,10,1,50.0,5,0.5\nDropout,4,1,15.0,3,0.15\nDropoutGrad,4,1,5.0,1,0.05\n"
                   "Mul,3,1,20.0,6,0.2\nCast,1,1,10.0,10,0.1\n")
    shares = bench_train.op_type_shares(csv, top=2)
    assert shares == {"MatMul": 50.0, "Dropout": 20.0, "other": 30.0}


def test_ratio_spread_reads_each_configuration_over_the_runs_and_skips_the_peer():
    results = [{"name": "torch+peft:micro2", "speed_ratio_vs_peer": 1.0},
               {"name": "ours", "speed_ratio_vs_peer": 1.28},
               {"name": "torch+peft:micro2", "speed_ratio_vs_peer": 1.0},
               {"name": "ours", "speed_ratio_vs_peer": 0.96},
               {"name": "ours", "speed_ratio_vs_peer": 1.44},
               {"name": "failed run, no ratio"}]
    assert bench_train.ratio_spread(results) == {"ours": (0.96, 1.28, 1.44)}


def test_turn_order_rotates_who_goes_first_each_step():
    orders = [bench_train.turn_order(["peer", "ours", "ours2"], step) for step in range(4)]
    assert orders == [["peer", "ours", "ours2"], ["ours", "ours2", "peer"],
                      ["ours2", "peer", "ours"], ["peer", "ours", "ours2"]]


def test_cache_variants_always_run_one_after_another():
    assert not bench_train.one_after_another(["torch", "ms:head_trim+micro2"], sequential=False)
    assert bench_train.one_after_another(["torch", "ms:head_trim+micro2"], sequential=True)
    assert bench_train.one_after_another(["ms:head_trim+micro2+cache"] * 2, sequential=False)


def test_paired_ratio_compares_steps_taken_back_to_back():
    # the run of 2026-12-05: both sides' medians fall between the host's two speeds, so
    # the ratio of medians (4.21 / 3.75 = 1.12) says less than the step-by-step pairs
    peer = [5.529, 5.219, 3.827, 4.243, 4.183, 4.09, 4.116, 5.206]
    ours = [4.385, 4.11, 3.32, 3.312, 3.456, 3.367, 4.037, 4.04]
    assert bench_train.paired_ratio(peer, ours) == 1.238
    assert bench_train.paired_ratio([2.0, 9.0, 3.0], [1.0, 3.0, 3.0]) == 2.0
    with pytest.raises(ValueError, match="3 peer steps against 2"):
        bench_train.paired_ratio([1.0, 1.0, 1.0], [1.0, 1.0])


def test_ratio_spread_reads_the_paired_ratio_too():
    results = [{"name": "ours", "paired_speed_ratio_vs_peer": 1.2, "speed_ratio_vs_peer": 1.1},
               {"name": "ours", "paired_speed_ratio_vs_peer": 1.3, "speed_ratio_vs_peer": 1.0}]
    assert bench_train.ratio_spread(results, "paired_speed_ratio_vs_peer") == {"ours": (1.2, 1.25, 1.3)}
