"""Choosing the checkpoint to submit: validation math among checkpoints that keep the base's
held-out SQuAD (pipeline.checkpoint_choice), on hand-made curves whose answer is known."""
import json

import pytest

from pipeline import runs
from pipeline.checkpoint_choice import CHOICE_FILE, apply_choice, choose, render_choice
from pipeline.errors import PipelineError

SHA = "heldout-sha"


def _point(step, math, f1, em=0.0, sha=SHA, tests="val-sha", limit=200):
    return {"step": step, "adapter": f"adapter/step_{step}.ckpt", "rows": limit,
            "tests_sha256": tests, "limit": limit, "max_new_tokens": None,
            "headline_rule": "exact", "rules": {"exact": math}, "by_type": {},
            "squad": {"tests_sha256": sha, "limit": None, "items": 100,
                      "mindformers": {"f1": f1, "em": em}, "official": {"f1": f1, "em": em}}}


BASE = {"tests_sha256": SHA, "limit": None, "items": 100,
        "mindformers": {"f1": 20.0, "em": 10.0}, "official": {"f1": 22.0, "em": 10.0}}


def test_most_math_among_those_keeping_the_margin():
    curve = [_point(400, 0.40, 19.5, 10), _point(500, 0.55, 19.6, 9.6), _point(600, 0.60, 18.5, 10)]
    choice = choose(curve, BASE)              # 600 keeps 92.5% of F1: under the 95% margin
    assert choice["step"] == 500 and choice["passes"] and choice["adapter"] == "adapter/step_500.ckpt"
    assert [c["passes"] for c in choice["candidates"]] == [True, True, False]
    assert choice["candidates"][2]["kept_f1"] == pytest.approx(0.925)
    assert choose(curve, BASE, keep=0.9)["step"] == 600   # the contest's own 90%: 600 passes
    # EM counts too: 500 keeps 98% of F1 but 96% of EM; at keep 0.97 only 400 is left
    assert choose(curve, BASE, keep=0.97)["step"] == 400


def test_ties_go_to_the_earlier_step_and_a_zero_base_em_passes_any_em():
    curve = [_point(500, 0.5, 20.0, 0.0), _point(600, 0.5, 21.0, 0.0)]
    base = {**BASE, "mindformers": {"f1": 20.0, "em": 0.0}}
    assert choose(curve, base)["step"] == 500


def test_when_none_keeps_enough_the_one_keeping_most_f1_is_named_a_likely_failure():
    curve = [_point(500, 0.5, 15.0), _point(600, 0.6, 12.0)]
    choice = choose(curve, BASE)
    assert choice["step"] == 500 and not choice["passes"]
    assert "expect it to fail the gate" in choice["reason"]


def test_only_points_on_the_same_items_and_rows_compete():
    curve = [_point(400, 0.9, 20.0, 10, sha="other-items"),      # other held-out items
             _point(450, 0.9, 20.0, 10, tests="old-val"),          # math on other rows
             _point(500, 0.5, 20.0, 10), _point(600, 0.6, 20.0, 10)]
    choice = choose(curve, BASE)
    assert [c["step"] for c in choice["candidates"]] == [500, 600] and choice["step"] == 600
    no_squad = [{k: v for k, v in p.items() if k != "squad"} for p in curve]
    with pytest.raises(PipelineError, match="--squad"):
        choose(no_squad, BASE)
    with pytest.raises(PipelineError, match="keep"):
        choose(curve, BASE, keep=1.5)


def test_render_marks_the_choice():
    text = render_choice(choose([_point(500, 0.5, 19.5, 10), _point(600, 0.6, 18.0, 10)], BASE))
    chosen = [line for line in text.splitlines() if "<- chosen" in line]
    assert len(chosen) == 1 and chosen[0].split()[0] == "500"
    assert "F1 20.00" in text and "(the contest asks 90%)" in text


def test_apply_points_the_manifest_adapter_at_the_choice(tmp_path):
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "step_500.ckpt").write_bytes(b"x")
    runs.update_manifest(run, adapter={"path": "adapter/step_600.ckpt", "rank": 4})
    choice = choose([_point(500, 0.5, 20.0, 10), _point(600, 0.6, 15.0, 10)], BASE)
    apply_choice(run, choice)
    adapter = runs.read_manifest(run)["adapter"]
    assert adapter == {"path": "adapter/step_500.ckpt", "rank": 4, "final": "adapter/step_600.ckpt",
                       "chosen_step": 500, "chosen_by": CHOICE_FILE}
    assert json.loads((run / CHOICE_FILE).read_text())["step"] == 500
    apply_choice(run, choice)                                  # again: the final stays the final
    assert runs.read_manifest(run)["adapter"]["final"] == "adapter/step_600.ckpt"
    missing = {**choice, "adapter": "adapter/step_400.ckpt"}
    with pytest.raises(PipelineError, match="step_400.ckpt is missing"):
        apply_choice(run, missing)
