"""Pure table transforms behind the pages: hand-checked cases."""
import numpy as np
import pandas as pd
import pytest

from dashboard import derive


def test_llama3_lora_params_match_contest_logs():
    assert derive.llama3_lora_params(8, ["wq", "wv"]) == 3_407_872
    assert derive.llama3_lora_params(16, ["wq", "wk", "wv", "wo"]) == 13_631_488
    assert derive.llama3_lora_params(64, ["wq", "wk", "wv", "wo"]) == 54_525_952
    with pytest.raises(ValueError, match="unknown target"):
        derive.llama3_lora_params(8, ["q_proj"])


def test_what_if_ratio_score_and_rank():
    scores = [0.799232916, 0.793620729, 0.747872682]  # the top three phase-1 teams
    res = derive.what_if(8, ["wq", "wv"], 0.65, scores)
    assert res["params"] == 3_407_872
    assert res["ratio"] == pytest.approx(0.000424393, abs=5e-10)  # as published, 9 digits
    assert res["score"] == pytest.approx((1 - 3_407_872 / 8_030_000_000) * 0.3 + 0.65 * 0.7)
    assert res["rank"] == 3
    assert derive.what_if(8, ["wq", "wv"], 0.63, scores)["rank"] == 4  # 0.7409 < 0.7479


def test_ema_debiased_first_value_and_constant():
    s = pd.Series([2.0, 2.0, 2.0])
    assert list(derive.ema(s, 0.9)) == pytest.approx([2.0, 2.0, 2.0])
    out = derive.ema(pd.Series([1.0, 3.0]), 0.5)
    assert out.iloc[0] == pytest.approx(1.0)
    assert out.iloc[1] == pytest.approx((0.25 + 1.5) / 0.75)  # (0.5*0.5*1 + 0.5*3) / (1 - 0.25)
    with pytest.raises(ValueError):
        derive.ema(s, 1.0)


def test_mark_answer_marks_last_occurrence_and_escapes_html():
    assert derive.mark_answer("1 + 2 = 3, so 3", "3") == "1 + 2 = 3, so 【3】"
    assert derive.mark_answer("no number", None) == "no number"
    assert derive.mark_answer(float("nan"), "3") == ""
    assert derive.highlight_html("<b>x</b> = 5", "5") == "&lt;b&gt;x&lt;/b&gt; = <mark>5</mark>"


def frame():
    return pd.DataFrame({
        "id": ["a", "b", "c", "d"], "type": ["add", "add", "mul", "sqrt"],
        "problem": ["计算 1 + 2", "计算 3 + 4", "计算 2 * 2", "计算 9 的平方根"],
        "output": ["3", "8", "4", "-3"], "reference": ["3", "7", "4", "3"],
        "extracted": ["3", "8", "4", "-3"], "error_class": [None, "other", None, "wrong_sign"],
        "ok_exact": [True, False, True, False], "base_ok_exact": [False, True, True, np.nan]})


def test_filter_errors_paired_and_search():
    f = frame()
    assert list(derive.filter_errors(f, "exact")["id"]) == ["b", "d"]
    assert list(derive.filter_errors(f, "exact", pair=derive.PAIR_FILTERS[1])["id"]) == ["b"]
    assert list(derive.filter_errors(f, "exact", verdict="any", pair=derive.PAIR_FILTERS[2])["id"]) == ["a"]
    assert list(derive.filter_errors(f, "exact", verdict="any", classes=["correct"])["id"]) == ["a", "c"]
    assert list(derive.filter_errors(f, "exact", verdict="any", text="平方根")["id"]) == ["d"]
    assert list(derive.filter_errors(f, "exact", verdict="any", types=["mul"])["id"]) == ["c"]
    no_base = f.drop(columns="base_ok_exact")
    assert derive.filter_errors(no_base, "exact", pair=derive.PAIR_FILTERS[1]).empty


def test_pareto_front():
    pts = pd.DataFrame({"ratio": [1e-4, 2e-4, 3e-4, 4e-4], "accuracy": [0.3, 0.2, 0.5, 0.5]})
    assert list(derive.pareto_front(pts)) == [True, False, True, False]


def test_a_baseline_is_the_gate_reference_not_a_fail():
    assert derive.gate_label({"baseline_run": None, "pass": False}, "baseline") == "— reference"
    assert "FAIL" in derive.gate_label({"baseline_run": "other-base", "pass": False}, "baseline")
    assert "FAIL" in derive.gate_label({"baseline_run": None, "pass": False}, "finetuned")
    assert "pass" in derive.gate_label({"baseline_run": "b", "pass": True}, "finetuned")
    assert derive.gate_label({}, "baseline") is None
    # a baseline EM of 0 gives an EM threshold of 0: the cell says F1 alone decided
    vacuous = {"baseline_run": "b", "pass": True, "em_threshold": 0.0}
    assert derive.gate_label(vacuous, "finetuned") == "✅ pass" + derive.GATE_F1_ONLY
    assert derive.GATE_F1_ONLY not in derive.gate_label({**vacuous, "em_threshold": 5.4},
                                                        "finetuned")


def test_overview_table_recomputes_score_for_the_rule():
    summaries = [{"run_id": "r", "manifest": {"kind": "finetuned", "model": {"name": "M"},
                                              "adapter": {"rank": 4, "alpha": 8, "targets": ["wq"]}},
                  "metrics": {"trainable_ratio": 0.01,
                              "math": {"rules": {"exact": {"accuracy": 0.5, "total": 10}}},
                              "squad": {"mindformers": {"f1": 60, "em": 40}, "gate": {"pass": False}}}},
                 {"run_id": "empty", "manifest": {}, "metrics": None}]
    table = derive.overview_table(summaries, "exact", [0.7, 0.6, 0.5]).set_index("run")
    assert table.loc["r", "score"] == pytest.approx(0.99 * 0.3 + 0.5 * 0.7)  # 0.647
    assert table.loc["r", "rank"] == 2
    assert table.loc["r", "adapter"] == "r4 a8 wq" and "FAIL" in table.loc["r", "gate"]
    assert pd.isna(table.loc["empty", "score"]) and table.loc["empty", "adapter"] == "none"


def test_training_long_marks_epochs_and_hides_compile_steps():
    f = pd.DataFrame({"global_step": [1, 2, 3, 4], "epoch": [1, 1, 2, 2], "loss": [2.0, 1.8, 1.5, 1.4],
                      "lr": [1e-5] * 4, "per_step_time_ms": [90000.0, 2000.0, 2100.0, 1900.0],
                      "wall_min": [1.5, 1.53, 1.57, 1.6]})
    curves, epochs = derive.training_long({"r": f}, 0.5)
    assert np.isnan(curves["per_step_time_ms"].iloc[0]) and curves["per_step_time_ms"].iloc[1] == 2000.0
    assert list(epochs["global_step"]) == [3] and list(epochs["epoch"]) == [2]
    assert derive.safe_run_name(" My run #2 ") == "My-run-2"


def test_a_pair_filter_fixes_the_candidate_verdict():
    frame = pd.DataFrame({"ok_exact": [True, False, True, False], "base_ok_exact": [False, True, True, False],
                          "type": "add", "error_class": None, "problem": "", "output": "",
                          "reference": "", "extracted": ""})
    # the page's default verdict "wrong" must not empty the "fixes" filter
    fixes = derive.filter_errors(frame, "exact", verdict="wrong", pair=derive.PAIR_FILTERS[2])
    assert list(fixes.index) == [0]
    assert derive.implied_verdict(derive.PAIR_FILTERS[2]) == "right"
    assert list(derive.filter_errors(frame, "exact", verdict="wrong", pair=derive.PAIR_FILTERS[1]).index) == [1]


def test_a_stale_selection_picks_nothing():
    shown = pd.DataFrame({"id": ["a", "b"]})
    assert derive.picked_row(shown, [1])["id"] == "b"
    assert derive.picked_row(shown.iloc[0:0], [1]) is None and derive.picked_row(shown, []) is None
    assert derive.picked_row(shown, [2]) is None


def test_untrusted_text_is_escaped_for_html_and_markdown():
    sample = pd.Series({"id": "math-1", "type": "add", "problem": "![t](http://host/x.png) `a <img src=x>",
                        "reference": "3", "extracted": "3", "output": "<b>1+2=3</b>", "error_class": None})
    out = derive.sample_html(sample)
    assert "<img" not in out and "&lt;img src=x&gt;" in out and "&lt;b&gt;1+2=<mark>3</mark>" in out
    assert derive.md_text("![t](http://h/x.png) `a` $x$ :red[z]") == \
        r"\!\[t\]\(http\://h/x\.png\) \`a\` \$x\$ \:red\[z\]"
    assert derive.md_code("a`b") == "``a`b``" and derive.md_code("run") == "`run`"


def test_missing_cells_read_as_a_dash_and_unknown_adapters_say_so():
    assert derive.text_or_dash(None) == derive.text_or_dash(float("nan")) == "—"
    assert derive.fmt(float("nan")) == "—" and derive.fmt(None) == "—"
    assert derive.adapter_label({"path": None, "trainable_params": 3_407_872}) == "unknown (3,407,872 trainable)"
    assert derive.adapter_label({"trainable_params": None}) == "unknown"
    assert derive.adapter_label({"rank": 8, "alpha": 16, "targets": ["wq", "wv"]}) == "r8 a16 wq,wv"
    assert derive.adapter_label({"rank": 4, "alpha": 8, "targets": ["wq"], "first_layer": 15}) == \
        "r4 a8 wq from layer 15"


def test_reused_note_names_the_source_of_copied_rows():
    assert derive.reused_note(None) is None
    assert derive.reused_note({"inference": {"math": {"settings": {}}}}) is None
    assert derive.reused_note({"inference": {"math": {"reused_from": "smollm2-base"},
                                             "squad": {"reused_from": "smollm2-base"}}}) == \
        "math and squad rows reused from smollm2-base"
    assert derive.reused_note({"inference": {"math": {"reused_from": "a"}, "squad": {}}}) == \
        "math rows reused from a"


def test_squad_metric_rows_keep_both_metrics_and_say_the_gate():
    rows = derive.squad_metric_rows({
        "a": {"squad": {"mindformers": {"f1": 15.9015, "em": 1.0}, "official": {"f1": 5.9657, "em": 2.0},
                        "gate": {"pass": True, "baseline_run": "base"}}},
        "b": {"squad": {"mindformers": {"f1": 10.0, "em": 0.0}, "gate": {"pass": False}}},
        "c": {"math": {}}, "d": None})
    assert rows == [{"run": "a", "MindFormers F1": 15.9, "MindFormers EM": 1.0, "official F1": 5.97,
                     "official EM": 2.0, "gate": "passed (vs base)"},
                    {"run": "b", "MindFormers F1": 10.0, "MindFormers EM": 0.0, "official F1": None,
                     "official EM": None, "gate": "failed (vs the contest's Llama3-8B)"}]
    # the baseline itself, scored without a baseline, is the reference, not a failure
    base = {"squad": {"mindformers": {"f1": 15.8, "em": 0.0}, "gate": {"pass": False}}}
    assert derive.squad_metric_rows({"b": base}, {"b": "baseline"})[0]["gate"] == "reference (the baseline)"
    assert derive.squad_metric_rows({"b": base}, {"b": "finetuned"})[0]["gate"] == \
        "failed (vs the contest's Llama3-8B)"
