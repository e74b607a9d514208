"""The main job's plan: stage order, commands, and skip checks on real files."""
import json

import numpy as np

from pipeline.__main__ import build_parser
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
