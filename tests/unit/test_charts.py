"""Chart builders checked through their Vega-Lite dicts (.to_dict())."""
import pandas as pd
import pytest

from dashboard import charts
from pipeline.scoring.stats import paired_table


@pytest.fixture
def table():
    frame = pd.DataFrame({"type": ["add"] * 4 + ["mul"] * 6,
                          "base": [True, False, False, False] + [True] * 6,
                          "cand": [True] * 4 + [True, True, True, False, False, False]})
    return paired_table(frame)


def layer_data(spec, i, datasets=None):
    """Rows of layer i: inline values, or the named dataset Altair hoisted them into."""
    layer = spec["layer"][i]
    data = layer.get("data") or spec.get("data")
    if "values" in data:
        return data["values"]
    return (datasets or spec["datasets"])[data["name"]]


def test_accuracy_by_type_groups_runs_with_wilson_whiskers(table):
    spec = charts.accuracy_by_type(table, "base", "cand", ["add", "mul", "all"]).to_dict()
    bars, whiskers = spec["layer"]
    assert bars["mark"]["type"] == "bar" and whiskers["mark"]["type"] == "rule"
    assert bars["encoding"]["xOffset"]["field"] == "run"
    assert bars["encoding"]["x"]["sort"] == ["add", "mul", "all"]
    assert whiskers["encoding"]["y"]["field"] == "low" and whiskers["encoding"]["y2"]["field"] == "high"
    rows = spec["datasets"][spec["data"]["name"]]
    assert len(rows) == 6  # 3 groups x 2 runs: aggregated, never per-sample
    add_cand = next(r for r in rows if r["type"] == "add" and r["run"] == "cand")
    assert add_cand["accuracy"] == 1.0 and add_cand["low"] < 1.0 == add_cand["high"]


def test_paired_difference_colours_significance(table):
    spec = charts.paired_difference(table, alpha=0.3).to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    label = {r["type"]: r["significant"] for r in rows}
    assert label["add"] == "p < 0.3"     # p = 0.25
    assert label["all"] == "p ≥ 0.3"     # 3 vs 3 discordant: p = 1
    assert spec["encoding"]["y"]["field"] == "diff"


def test_squad_scores_draws_threshold_lines():
    frame = pd.DataFrame({"run": ["a", "a", "b", "b"], "metric": ["F1", "EM", "F1", "EM"],
                          "value": [60.0, 45.0, 50.0, 30.0]})
    spec = charts.squad_scores(frame, {"F1": 53.88, "EM": 39.75}).to_dict()
    assert len(spec["hconcat"]) == 2
    f1 = spec["hconcat"][0]
    rule_layer = f1["layer"][1]
    assert rule_layer["mark"]["type"] == "rule"
    assert layer_data(f1, 1, spec["datasets"])[0]["threshold"] == 53.88
    assert f1["title"] == "SQuAD F1"


def test_training_curve_layers_raw_smooth_and_epochs():
    curves = pd.DataFrame({"run": ["r"] * 4, "global_step": [1, 2, 3, 4],
                           "loss": [2.0, 1.5, 1.2, 1.0], "loss_smooth": [2.0, 1.8, 1.6, 1.4]})
    epochs = pd.DataFrame({"run": ["r"], "global_step": [3], "epoch": [2]})
    spec = charts.training_curve(curves, "global_step", "loss", "step", "loss",
                                 smooth="loss_smooth", epochs=epochs).to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["line", "line", "rule"]
    assert spec["layer"][0]["mark"]["opacity"] == 0.3
    assert spec["layer"][1]["encoding"]["y"]["field"] == "loss_smooth"
    no_smooth = charts.training_curve(curves, "global_step", "loss", "s", "l").to_dict()
    assert [layer["mark"]["type"] for layer in no_smooth["layer"]] == ["line"]


def test_pareto_log_x_and_front_only_line():
    points = pd.DataFrame({"name": ["a", "b", "c", "zero"], "source": ["ours", "leaderboard", "leaderboard", "ours"],
                           "ratio": [1e-4, 1e-3, 2e-3, 0.0], "accuracy": [0.5, 0.7, 0.6, 0.3],
                           "score": [0.6, 0.7, 0.6, 0.5], "front": [True, True, False, True]})
    spec = charts.pareto(points).to_dict()
    front, dots, labels = spec["layer"]
    assert dots["encoding"]["x"]["scale"]["type"] == "log"
    assert sorted(r["name"] for r in layer_data(spec, 0)) == ["a", "b"]   # the front line
    assert sorted(r["name"] for r in layer_data(spec, 1)) == ["a", "b", "c"]  # ratio 0 has no log x
    assert [r["label"] for r in layer_data(spec, 2)] == ["a"]             # labels: our runs


def test_pareto_labels_of_runs_on_one_spot_are_stacked_not_overprinted():
    points = pd.DataFrame({"name": ["r8-a", "r8-b", "r8-c", "r4"], "source": "ours",
                           "ratio": [1e-3, 1e-3, 1e-3, 5e-4], "accuracy": [0.30, 0.31, 0.60, 0.30],
                           "score": 0.5, "front": False})
    labels = layer_data(charts.pareto(points).to_dict(), 2)
    # equal ratio and close accuracy: one label with both names; a far accuracy keeps its own
    assert sorted(r["label"] for r in labels) == ["r4", "r8-b\nr8-a", "r8-c"]
    assert charts.pareto(points).to_dict()["layer"][2]["mark"]["lineBreak"] == "\n"


def test_squad_scores_label_every_run_and_show_a_legend():
    frame = pd.DataFrame({"run": [f"run-{i}" for i in range(7)] * 2, "metric": ["F1"] * 7 + ["EM"] * 7,
                          "value": range(14)})
    spec = charts.squad_scores(frame, {"F1": 50.0, "EM": 40.0}).to_dict()
    bars = spec["hconcat"][0]["layer"][0]["encoding"]
    assert bars["x"]["axis"]["labelOverlap"] is False
    assert bars["color"]["legend"]["title"] == "run"


def test_accuracy_by_rule_and_bucket_share_the_grouped_layout():
    frame = pd.DataFrame({"run": ["a", "b"], "rule": ["exact", "exact"], "accuracy": [0.5, 0.6],
                          "low": [0.4, 0.5], "high": [0.6, 0.7], "n": [10, 10]})
    spec = charts.accuracy_by_rule(frame, ["contains", "exact"]).to_dict()
    assert spec["layer"][0]["encoding"]["x"]["field"] == "rule"
    bucket = frame.rename(columns={"rule": "answer_len"})
    spec = charts.accuracy_by_bucket(bucket, "answer_len", "answer digits", ["1-2"]).to_dict()
    assert spec["title"] == "Accuracy by answer digits"


def test_accuracy_by_step_marks_the_best_checkpoint():
    from dashboard.derive import checkpoint_long
    points = [{"step": 50, "headline_rule": "exact", "rules": {"exact": 0.1}, "by_type": {"add": 0.2}},
              {"step": 100, "headline_rule": "exact", "rules": {"exact": 0.3}, "by_type": {"add": 0.5}}]
    frame = checkpoint_long(points)
    assert frame.to_dict("records") == [
        {"step": 50, "series": "all", "accuracy": 0.1}, {"step": 50, "series": "add", "accuracy": 0.2},
        {"step": 100, "series": "all", "accuracy": 0.3}, {"step": 100, "series": "add", "accuracy": 0.5}]
    spec = charts.accuracy_by_step(frame, 100).to_dict()
    rule = [layer for layer in spec["layer"] if layer["mark"]["type"] == "rule"]
    assert len(rule) == 1
    best = spec["datasets"][rule[0]["data"]["name"]]
    assert best == [{"step": 100, "label": "best: step 100"}]
    assert spec["layer"][0]["encoding"]["x"]["field"] == "step"
    assert len(charts.accuracy_by_step(frame, None).to_dict()["layer"]) == 1


def test_heldout_squad_by_step_draws_base_margin_gate_and_the_choice():
    from dashboard.derive import heldout_squad_long
    choice = {"candidates": [{"step": 600, "f1": 18.0, "kept_f1": 0.9, "passes": False},
                             {"step": 500, "f1": 19.5, "kept_f1": 0.975, "passes": True}]}
    frame = heldout_squad_long(choice)
    assert frame["step"].tolist() == [500, 600] and frame["passes"].tolist() == ["yes", "no"]
    spec = charts.heldout_squad_by_step(frame, 20.0, 19.0, 18.0, 500).to_dict()
    rows = layer_data(spec, 0)
    assert [(r["step"], r["f1"], r["note"]) for r in rows] == [
        (500, 19.5, "F1 19.50 (98% kept)"), (600, 18.0, "F1 18.00 (90% kept)")]
    colors = spec["layer"][0]["encoding"]["color"]["scale"]
    assert colors == {"domain": ["yes", "no"], "range": ["#2e7d32", "#c62828"]}
    rules = [layer_data(spec, i) for i, l in enumerate(spec["layer"])
             if l["mark"]["type"] == "rule"]
    assert [(r[0]["f1"], r[0]["label"]) for r in rules] == [
        (20.0, "base 20.00"), (19.0, "the choice asks 19.00"), (18.0, "contest 90%: 18.00")]
    ring = layer_data(spec, len(spec["layer"]) - 1)
    assert spec["layer"][-1]["mark"]["type"] == "point" and [r["step"] for r in ring] == [500]
    # zoomed to the values (18-20, one span either side), so a point of F1 is visible
    assert spec["layer"][0]["encoding"]["y"]["scale"]["domain"] == [16.0, 22.0]
    # a choice outside the drawn steps gets no ring
    assert all(l["mark"]["type"] != "point" for l in
               charts.heldout_squad_by_step(frame, 20.0, 19.0, 18.0, 700).to_dict()["layer"])


def test_accuracy_by_step_marks_the_chosen_checkpoint_beside_the_best():
    from dashboard.derive import checkpoint_long
    points = [{"step": s, "headline_rule": "exact", "rules": {"exact": a}, "by_type": {}}
              for s, a in ((500, 0.5), (600, 0.6))]
    spec = charts.accuracy_by_step(checkpoint_long(points), 600, chosen_step=500).to_dict()
    labels = [layer_data(spec, i)[0]["label"] for i, l in enumerate(spec["layer"])
              if l["mark"]["type"] == "text"]
    assert labels == ["best: step 600", "chosen: step 500"]
    plain = charts.accuracy_by_step(checkpoint_long(points), 600).to_dict()
    assert len(plain["layer"]) == len(spec["layer"]) - 2
    # at the right end the label sits left of its rule (not under the legend)
    texts = [l for l in plain["layer"] if l["mark"]["type"] == "text"]
    assert texts[0]["mark"]["align"] == "right"
    same = charts.accuracy_by_step(checkpoint_long(points), 600, chosen_step=600).to_dict()
    labels = [layer_data(same, i)[0]["label"] for i, l in enumerate(same["layer"])
              if l["mark"]["type"] == "text"]
    assert labels == ["best and chosen: step 600"]
