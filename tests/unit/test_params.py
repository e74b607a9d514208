"""Analytic LoRA counts against numbers the contest logged and hand arithmetic."""
import json

import pytest

from pipeline.__main__ import main
from pipeline.errors import PipelineError
from pipeline.model.params import (dense_shapes, dims_for, exact_total_for, lora_summary,
                                   lora_trainable, target_regex, total_params)


@pytest.mark.parametrize("rank,targets,expected", [
    (8, "wq,wv", 3_407_872),          # contest baseline, "Network Parameters: 3407872."
    (12, "wq,wv", 5_111_808),
    (16, "wq,wv", 6_815_744),
    (16, "wq,wk,wv,wo", 13_631_488),  # leaderboard #2
    (64, "wq,wk,wv,wo", 54_525_952),  # leaderboard #1
])
def test_llama3_8b_counts_match_contest_logs(rank, targets, expected):
    assert lora_trainable("llama3-8b", rank, targets) == expected


def test_llama3_8b_ratio_uses_contest_total():
    s = lora_summary("llama3-8b", 8, ["wq", "wv"])
    assert s["total"] == 8_030_000_000
    assert s["ratio"] == pytest.approx(0.000424393, abs=5e-10)


def test_per_layer_shapes_by_hand():
    # Llama3-8B: wq/wo 4096x4096, wk/wv 4096 -> 8 x 128, MLP 4096 <-> 14336.
    shapes = dense_shapes(dims_for("llama3-8b"))
    assert shapes["wk"] == (4096, 1024) and shapes["w2"] == (14336, 4096)
    # r1 on every target, one layer: 8192 + 5120*2 + 8192 + 18432*3 = 81920; x32 layers.
    assert lora_trainable("llama3-8b", 1, "wq,wk,wv,wo,w1,w2,w3") == 81_920 * 32


def test_smollm2_totals_by_hand():
    # 576x576 q/o, 576x192 k/v, 3 x 576x1536 MLP, two norms per layer; tied embeddings.
    per_layer = 2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536 + 2 * 576
    assert total_params("smollm2-135m") == 49152 * 576 + 30 * per_layer + 576 == 134_515_008
    # r8 wq,wv: 30 layers x 8 x ((576+576) + (576+192)) = 460,800
    assert lora_trainable("smollm2-135m", 8, "wq,wv") == 460_800


def test_untied_model_counts_its_head():
    d = dims_for("llama3-8b")
    assert exact_total_for(d) == 8_030_261_248  # the real Llama3-8B count; the log rounds to 8030 M


@pytest.mark.parametrize("bad", ["wq,wx", "", "wq,wq"])
def test_bad_targets_are_refused(bad):
    with pytest.raises(PipelineError):
        lora_trainable("llama3-8b", 8, bad)


def test_bad_rank_and_model_refused():
    with pytest.raises(PipelineError, match="rank"):
        lora_trainable("llama3-8b", 0, "wq")
    with pytest.raises(PipelineError, match="unknown model"):
        lora_trainable("gpt5", 8, "wq")


def test_target_regex_is_mindformers_style():
    assert target_regex("wq,wv") == ".*wq|.*wv"


def test_cli_lora_params_json(capsys):
    assert main(["lora-params", "--model", "llama3-8b", "--rank", "16", "--targets", "wq,wk,wv,wo",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trainable"] == 13_631_488 and out["total"] == 8_030_000_000
    assert out["ratio"] == pytest.approx(13_631_488 / 8_030_000_000)


def test_cli_lora_params_bad_target_exits_2(capsys):
    assert main(["lora-params", "--model", "smollm2-135m", "--rank", "8", "--targets", "q_proj"]) == 2
    assert "q_proj" in capsys.readouterr().err



def test_first_layer_counts_and_excludes_the_lower_layers():
    import re
    from pipeline.model.params import dims_for, excluded_layers, lora_trainable_for
    dims = dims_for("smollm2-135m")
    all_layers = lora_trainable_for(dims, 4, "wq,wk,wv,wo,w1,w2,w3")
    assert all_layers == 1_221_120
    assert lora_trainable_for(dims, 4, "wq,wk,wv,wo,w1,w2,w3", 15) == all_layers // 2 == 610_560
    assert excluded_layers(0) is None
    (pattern,) = excluded_layers(15)
    # MindFormers matches it against each cell's own name: a decoder layer's is its index
    assert [str(i) for i in range(30) if re.match(pattern, str(i))] == [str(i) for i in range(15)]
    assert not any(re.match(pattern, name) for name in ("150", "attention", "wq", "layers"))
    with pytest.raises(PipelineError, match="first_layer"):
        lora_trainable_for(dims, 4, "wq", 30)
