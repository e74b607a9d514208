"""The main job's plan: stage order, commands, and skip checks on real files."""
import json

import numpy as np

from pipeline.__main__ import build_parser
from pipeline.checkpoint_choice import CANDIDATE_EVERY
from pipeline.commands import main_job


def _args(tmp_path, *extra):
    args = build_parser().parse_args(["main", "--no-dashboard", "--results", str(tmp_path), *extra])
    args.base_run, args.run = "base", "tuned"
    return args


def test_plan_orders_stages_and_passes_sizes(tmp_path):
    stages = main_job.plan(_args(tmp_path, "--quick", "--math-n", "7"))
    names = [s.name for s in stages]
    assert names[0] == "prepare data" and names[-1] == "evaluate (tuned)"
    assert names.index("evaluate (base)") < names.index("train (tuned)") < names.index("infer math (tuned)")
    infer_math = next(s for s in stages if s.name == "infer math (base)")
    assert infer_math.argv[infer_math.argv.index("--limit") + 1] == "7"
    assert "--base-only" in infer_math.argv
    train = next(s for s in stages if s.name.startswith("train"))
    assert train.argv[train.argv.index("--max-steps") + 1] == str(main_job.VARIANTS["quick"]["steps"])
    final = stages[-1]
    assert final.argv[final.argv.index("--baseline") + 1] == "base"


def test_skip_checks_follow_the_files(tmp_path):
    run = tmp_path / "tuned"
    run.mkdir()
    assert not main_job._inferred(run, "math", 2)
    np.save(run / "predictions_math.npy", np.array(["a", "b"]))
    (run / "infer_math.jsonl").write_text('{"index": 0}\n', encoding="utf-8")
    assert not main_job._inferred(run, "math", 2)            # one row short: resume, not skip
    (run / "infer_math.jsonl").write_text('{"index": 0}\n{"index": 1}\n', encoding="utf-8")
    assert main_job._inferred(run, "math", 2)

    assert not main_job._trained(run, 10)
    (run / "train_state.json").write_text(json.dumps({"last_step": 9}), encoding="utf-8")
    assert not main_job._trained(run, 10)
    (run / "train_state.json").write_text(json.dumps({"last_step": 10}), encoding="utf-8")
    assert main_job._trained(run, 10)


def test_evaluated_only_when_metrics_newer_than_predictions(tmp_path):
    import os
    run = tmp_path / "r"
    run.mkdir()
    pred = run / "predictions_math.npy"
    pred.write_bytes(b"x")
    assert not main_job._evaluated(run, [pred])
    (run / "metrics.json").write_text("{}", encoding="utf-8")
    os.utime(pred, (pred.stat().st_mtime + 10, pred.stat().st_mtime + 10))
    assert not main_job._evaluated(run, [pred])               # predictions changed after scoring
    os.utime(run / "metrics.json", (pred.stat().st_mtime + 5, pred.stat().st_mtime + 5))
    assert main_job._evaluated(run, [pred])


def test_baseline_stages_reuse_unless_told_not_to(tmp_path):
    args = _args(tmp_path)
    base = [s for s in main_job.plan(args) if s.name.startswith("infer") and "(base)" in s.name]
    assert len(base) == 2 and all("--reuse" in s.argv for s in base)
    tuned = [s for s in main_job.plan(args) if s.name.startswith("infer") and "(tuned)" in s.name]
    assert tuned and not any("--reuse" in s.argv for s in tuned)   # adapters are never reused
    args.no_reuse = True
    assert not any("--reuse" in s.argv for s in main_job.plan(args))


def test_checkpoint_is_chosen_on_heldout_items_after_training(tmp_path):
    stages = main_job.plan(_args(tmp_path))
    names = [s.name for s in stages]
    assert names.index("train (tuned)") < names.index("choose checkpoint (tuned)") \
        < names.index("infer math (tuned)")
    sizes = main_job.VARIANTS["full"]
    arg = lambda stage, flag: stage.argv[stage.argv.index(flag) + 1]
    scored = next(s for s in stages if s.name == "squad subset")
    heldout = next(s for s in stages if s.name == "squad held-out")
    assert arg(heldout, "--after") == arg(scored, "--subset") == str(sizes["squad_n"])
    choose = next(s for s in stages if s.name.startswith("choose"))
    assert arg(choose, "--squad") == arg(heldout, "--out")
    assert arg(choose, "--tests").endswith("validation.jsonl")
    assert arg(choose, "--limit") == str(sizes["val_n"]) and "--choose" in choose.argv
    # the final adapter and the one CANDIDATE_EVERY steps before it
    assert arg(choose, "--from-step") == str(sizes["steps"] - CANDIDATE_EVERY)
    assert arg(choose, "--every") == str(CANDIDATE_EVERY)


def test_choice_is_done_only_when_the_manifest_follows_it(tmp_path):
    run = tmp_path / "tuned"
    run.mkdir()
    assert not main_job._chosen(run, 600)
    (run / "manifest.json").write_text(json.dumps({"adapter": {"path": "adapter/step_600.ckpt"}}))
    (run / "checkpoint_choice.json").write_text(json.dumps(
        {"step": 500, "candidates": [{"step": 500}, {"step": 600}]}))
    assert not main_job._chosen(run, 600)                    # chosen, not applied
    (run / "manifest.json").write_text(json.dumps({"adapter": {"chosen_step": 500}}))
    assert main_job._chosen(run, 600)
    assert not main_job._chosen(run, 700)                    # trained on since: choose again
