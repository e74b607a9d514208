"""Chart builders and pure frames of the Compare page and the position heatmap (via .to_dict())."""
import pandas as pd

from dashboard import charts, compare


def test_run_colors_depend_on_the_run_not_on_the_selection():
    every = ["b-run", "a-run", "c-run"]
    scale = charts.run_colors(every).to_dict()
    assert scale["domain"] == ["a-run", "b-run", "c-run"]
    assert len(set(scale["range"])) == 3
    assert charts.run_colors(list(reversed(every))).to_dict() == scale


def test_position_heatmap_keeps_reading_order_and_a_panel_per_run():
    frame = pd.DataFrame({"run": ["x", "x", "y"], "type": ["add", "add", "add"],
                          "position": ["tens", "sign", "sign"], "accuracy": [0.3, 0.9, 1.0],
                          "correct": [3, 9, 10], "n": [10, 10, 10]})
    spec = charts.position_heatmap(frame, ["sign", "tens"], ["add"], ["y", "x"]).to_dict()
    assert spec["facet"]["column"]["sort"] == ["y", "x"]
    assert spec["spec"]["layer"][0]["encoding"]["x"]["sort"] == ["sign", "tens"]


def test_accuracy_ratio_minutes_leaves_out_runs_that_train_nothing():
    points = pd.DataFrame({"run": ["base", "lora"], "accuracy": [0.1, 0.5],
                           "ratio": [0.0, 0.003], "minutes": [None, 12.0]})
    spec = charts.accuracy_ratio_minutes(points.astype({"minutes": float}),
                                         charts.run_colors(["base", "lora"])).to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert [r["run"] for r in rows] == ["lora"]
    assert spec["layer"][0]["encoding"]["size"]["field"] == "minutes"


def test_compare_rows_and_positions_long():
    manifest = {"kind": "finetuned", "adapter": {"rank": 8, "alpha": 16, "targets": ["wq", "wv"]},
                "config": {"train": {"lr": 1e-4, "max_steps": 30}}}
    metrics = {"math": {"headline_rule": "exact", "rules": {"exact": {
        "accuracy": 0.5, "correct": 5, "total": 10,
        "by_type": {"sub": {"accuracy": 0.25, "correct": 1, "total": 4},
                    "add": {"accuracy": 0.5, "correct": 3, "total": 6}}}},
        "positions": {"add": {"sign": {"correct": 6, "total": 6, "accuracy": 1.0},
                              "tens": {"correct": 2, "total": 6, "accuracy": 2 / 6}}}},
        "trainable_ratio": 0.01}
    loss = pd.DataFrame({"global_step": [1, 2, 3], "lr": [1e-5, 1e-4, 5e-5],
                         "wall_min": [0.0, 1.0, 2.5]})
    training = compare.training_from_loss(loss)
    assert training == {"steps": 3, "peak_lr": 1e-4, "minutes": 2.5}
    rows = compare.compare_rows({"r": {"manifest": manifest, "metrics": metrics,
                                       "training": training}}, "exact")
    row = rows.iloc[0]
    assert (row["lora_rank"], row["targets"], row["lr"], row["steps"], row["minutes"]) == \
        (8, "wq,wv", 1e-4, 30, 2.5)
    assert row["math_acc"] == 50.0 and [c for c in rows.columns if c.startswith("acc_")] == \
        ["acc_add", "acc_sub"]  # contest type order
    cells, positions, types = compare.positions_long({"r": metrics, "none": None})
    assert positions == ["sign", "tens"] and types == ["add"] and set(cells["run"]) == {"r"}
