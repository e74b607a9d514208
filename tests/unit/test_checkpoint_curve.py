"""The accuracy-vs-step curve's pure parts: step selection, best point, the table, and
which adapters training keeps for it."""
import pytest

from pipeline.checkpoint_curve import best_point, render_curve, select_steps
from pipeline.errors import PipelineError
from pipeline.train import prune_adapters


def test_select_steps_keeps_multiples_and_the_last():
    steps = [10, 20, 30, 40, 50, 60, 70]
    assert select_steps(steps, 20) == [20, 40, 60, 70]
    assert select_steps(steps, 10) == steps and select_steps(steps, None) == steps
    assert select_steps([], 5) == []
    with pytest.raises(PipelineError, match="--every"):
        select_steps(steps, -1)


def _point(step, acc, headline="exact"):
    return {"step": step, "headline_rule": headline, "rules": {"exact": acc, "tolerance": acc + .1},
            "by_type": {"add": acc}}


def test_best_point_is_the_highest_and_earliest_of_a_tie():
    curve = [_point(50, 0.10), _point(100, 0.30), _point(150, 0.30), _point(200, 0.20)]
    assert best_point(curve)["step"] == 100
    assert best_point(curve, "tolerance")["step"] == 100
    assert best_point([]) is None
    table = render_curve(curve)
    best_line = [line for line in table.splitlines() if "<- best" in line]
    assert len(best_line) == 1 and best_line[0].split()[0] == "100" and "30.0%" in best_line[0]


def test_prune_keeps_the_newest_and_the_curve_points(tmp_path):
    for step in range(10, 210, 10):
        (tmp_path / f"step_{step}.ckpt").write_bytes(b"x")
        (tmp_path / f"step_{step}.json").write_text("{}")
    prune_adapters(tmp_path, 3, keep_every=50)
    kept = sorted(int(p.stem.split("_")[1]) for p in tmp_path.glob("*.ckpt"))
    assert kept == [50, 100, 150, 180, 190, 200]
    assert sorted(int(p.stem.split("_")[1]) for p in tmp_path.glob("*.json")) == kept
    prune_adapters(tmp_path, 1)
    assert [p.name for p in tmp_path.glob("*.ckpt")] == ["step_200.ckpt"]
