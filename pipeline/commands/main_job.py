"""``python -m pipeline main``: the README's end-to-end job on the embedded default.

prepare data -> baseline inference + scoring -> LoRA fine-tune -> choose the checkpoint
(validation math, held-out SQuAD: pipeline.checkpoint_choice) -> finetuned inference +
scoring -> dashboard. The baseline's rows are copied from a matching run when one exists
(`infer --reuse`: same model, tests, settings, batch size, decoder and versions).
Each stage runs as its own ``python -m pipeline ...`` process (memory is returned between
stages and a crash loses only that stage), shows its own progress bar, and is skipped when
its outputs are already there and complete, so rerunning the job after a crash or a Ctrl-C
continues where it stopped.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline import jobs
from pipeline.checkpoint_choice import CANDIDATES
from pipeline.errors import PipelineError
from pipeline.runs import REPO_ROOT, RESULTS_DIR, read_json

# Sizes of the two variants. "full" fits in about an hour on 2 cores; "quick" in about 10
# minutes, for a first look (its numbers are noisy: few samples, few steps).
# squad_n: the scored SQuAD items; on 100 the 90% gate's verdict was a coin flip (bootstrap
# sd of the kept F1 0.10, docs/experiments.md section 14), on 300 it is ~0.06.
# heldout_n / val_n: held-out SQuAD items (disjoint from the scored ones) and validation math
# rows the checkpoint is chosen on (pipeline.checkpoint_choice); choose_last: the final
# adapter and those CANDIDATE_EVERY steps before it, up to this many.
VARIANTS = {
    "full": {"math_n": 300, "squad_n": 300, "steps": 600, "heldout_n": 100, "val_n": 200,
             "choose_last": CANDIDATES},
    "quick": {"math_n": 40, "squad_n": 16, "steps": 30, "heldout_n": 16, "val_n": 40,
              "choose_last": 1},
}


@dataclass
class Stage:
    name: str
    argv: list[str]
    done: Callable[[], bool]
    seconds: float | None = None
    status: str = "pending"
    notes: list[str] = field(default_factory=list)


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def _prepared_ok(out_dir: Path) -> bool:
    manifest = out_dir / "manifest.json"
    if not manifest.is_file():
        return False
    files = read_json(manifest).get("files", {})
    return bool(files) and all((out_dir / name).is_file() for name in files)


def _inferred(run: Path, task: str, n: int) -> bool:
    return (run / f"predictions_{task}.npy").is_file() and _count_lines(run / f"infer_{task}.jsonl") >= n


def _trained(run: Path, steps: int) -> bool:
    state = run / "train_state.json"
    return state.is_file() and read_json(state).get("last_step", 0) >= steps


def _chosen(run: Path, steps: int) -> bool:
    """checkpoint_choice.json covers the final step and the manifest's adapter follows it."""
    from pipeline.checkpoint_choice import follows, read_choice
    choice = read_choice(run) if (run / "manifest.json").is_file() else None
    if not choice or steps not in [c["step"] for c in choice.get("candidates", [])]:
        return False
    return follows(read_json(run / "manifest.json"), choice)


def _evaluated(run: Path, after: list[Path]) -> bool:
    metrics = run / "metrics.json"
    if not metrics.is_file():
        return False
    newest_input = max((p.stat().st_mtime for p in after if p.exists()), default=0)
    return metrics.stat().st_mtime >= newest_input


def plan(args) -> list[Stage]:
    """The stages of the main job, in order, with their skip checks."""
    sizes = dict(VARIANTS["quick" if args.quick else "full"])
    for key in ("math_n", "squad_n", "steps", "heldout_n", "val_n"):
        if getattr(args, key, None) is not None:
            sizes[key] = getattr(args, key)
    recipe = Path(args.recipe)
    from pipeline.data.recipes import load_recipe
    # Paths go into commands (and so into manifests) relative to the repository, where
    # every stage runs; the skip checks resolve them.
    out_rel = Path(load_recipe(recipe).output.dir)
    out_dir = REPO_ROOT / out_rel  # an absolute output.dir stays absolute
    math_tests = out_rel / "test.jsonl"
    squad_tests = out_rel / f"squad_subset_{sizes['squad_n']}.jsonl"
    heldout = out_rel / f"squad_heldout_{sizes['heldout_n']}.jsonl"
    results = Path(args.results or RESULTS_DIR)
    base, tuned = results / args.base_run, results / args.run
    py = [sys.executable, "-m", "pipeline"]
    infer_common = ["--batch-size", str(args.batch_size)]
    # The baseline does not change between main jobs with the same model, tests, settings
    # and versions: reuse a matching one (e.g. the shipped smollm2-base) and give the
    # minutes to training (pipeline.baseline_reuse).
    base_flags = ["--base-only"] + ([] if args.no_reuse else ["--reuse"])

    def infer(run: Path, task: str, extra: list[str]) -> Stage:
        n = sizes["math_n"] if task == "math" else sizes["squad_n"]
        tests = math_tests if task == "math" else squad_tests
        return Stage(f"infer {task} ({run.name})",
                     py + ["infer", "--run", run.name, "--task", task, "--tests", str(tests),
                           "--limit", str(n), "--config", args.config] + extra + infer_common,
                     lambda: _inferred(run, task, n))

    return [
        Stage("prepare data", py + ["data", "prepare", "--recipe", str(recipe)],
              lambda: _prepared_ok(out_dir)),
        Stage("squad subset", py + ["data", "squad", "--out", str(squad_tests),
                                    "--subset", str(sizes["squad_n"])],
              lambda: _count_lines(REPO_ROOT / squad_tests) == sizes["squad_n"]),
        # the next items of the same ranking: never scored, they choose the checkpoint
        Stage("squad held-out", py + ["data", "squad", "--out", str(heldout),
                                      "--subset", str(sizes["heldout_n"]),
                                      "--after", str(sizes["squad_n"])],
              lambda: _count_lines(REPO_ROOT / heldout) == sizes["heldout_n"]),
        infer(base, "math", base_flags),
        infer(base, "squad", base_flags),
        Stage(f"evaluate ({base.name})", py + ["evaluate", "--run", base.name],
              lambda: _evaluated(base, [base / "predictions_math.npy", base / "predictions_squad.npy"])),
        Stage(f"train ({tuned.name})",
              py + ["train", "--config", args.config, "--run", tuned.name,
                    "--data", str(out_rel / "train.mindrecord"), "--max-steps", str(sizes["steps"])]
              + (["--resume"] if (tuned / "train_state.json").is_file() else []),
              lambda: _trained(tuned, sizes["steps"])),
        Stage(f"choose checkpoint ({tuned.name})",
              jobs.choose_checkpoint_argv(tuned.name, out_rel / "validation.jsonl", heldout,
                                          sizes["steps"], sizes["val_n"], sizes["choose_last"])
              + infer_common + (["--no-reuse"] if args.no_reuse else []),
              lambda: _chosen(tuned, sizes["steps"])),
        infer(tuned, "math", []),
        infer(tuned, "squad", []),
        Stage(f"evaluate ({tuned.name})",
              py + ["evaluate", "--run", tuned.name, "--baseline", base.name],
              lambda: _evaluated(tuned, [tuned / "predictions_math.npy", tuned / "predictions_squad.npy",
                                         base / "metrics.json"])),
    ]


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def run_stages(stages: list[Stage], results: Path, force: bool = False) -> None:
    # Every stage reads results/ from $PIPELINE_RESULTS (pipeline.runs), so one setting
    # points them all at the same folder.
    env = dict(os.environ, PIPELINE_RESULTS=str(results))
    for i, stage in enumerate(stages, 1):
        header = f"[{i}/{len(stages)}] {stage.name}"
        if not force and stage.done():
            stage.status = "skipped (outputs present)"
            print(f"{header}: outputs present, skipped", flush=True)
            continue
        print(f"{header}: {' '.join(stage.argv[2:])}", flush=True)
        start = time.monotonic()
        proc = subprocess.run(stage.argv, cwd=REPO_ROOT, env=env)
        stage.seconds = time.monotonic() - start
        if proc.returncode != 0:
            stage.status = f"failed (exit {proc.returncode})"
            raise PipelineError(f"stage '{stage.name}' failed with exit code {proc.returncode}; "
                                "fix the error above and rerun the same command to continue")
        stage.status = "done"
        print(f"{header}: done in {_fmt_s(stage.seconds)}", flush=True)


def summary_table(stages: list[Stage], runs: list[Path]) -> str:
    lines = ["", "stage                                   status                      wall time"]
    for s in stages:
        lines.append(f"{s.name:<40}{s.status:<28}{_fmt_s(s.seconds)}")
    lines.append("")
    lines.append("run                     math (exact)       SQuAD F1 / EM (MindFormers)   ratio      score")
    for run in runs:
        path = run / "metrics.json"
        if not path.is_file():
            continue
        m = read_json(path)
        math = m.get("math") or {}
        acc = math.get("rules", {}).get(math.get("headline_rule"), {}).get("accuracy")
        sq = (m.get("squad") or {}).get("mindformers") or {}
        ratio, score = m.get("trainable_ratio"), m.get("score")
        lines.append(f"{run.name:<24}{'-' if acc is None else f'{acc:.1%}':<19}"
                     f"{sq.get('f1', float('nan')):6.2f} / {sq.get('em', float('nan')):6.2f}{'':<15}"
                     f"{'-' if ratio is None else f'{ratio:.5f}':<11}{'-' if score is None else f'{score:.4f}'}")
    return "\n".join(lines)


def serve_dashboard(port: int, results: Path) -> int:
    """Serve the dashboard on localhost until Ctrl-C."""
    env = dict(os.environ, PIPELINE_RESULTS=str(results))
    argv = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "dashboard" / "app.py"),
            "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true"]
    print(f"\nDashboard: http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.run(argv, cwd=REPO_ROOT, env=env).returncode
    except KeyboardInterrupt:
        return 0


def cmd_main(args) -> int:
    stages = plan(args)
    results = Path(args.results or RESULTS_DIR)
    start = time.monotonic()
    try:
        run_stages(stages, results, force=args.force)
    finally:
        print(summary_table(stages, [results / args.base_run, results / args.run]))
        print(f"total wall time: {_fmt_s(time.monotonic() - start)}")
        Path(results).mkdir(parents=True, exist_ok=True)
        with open(results / f"main_job_{'quick' if args.quick else 'full'}.json", "w", encoding="utf-8") as fh:
            json.dump([{"stage": s.name, "status": s.status, "seconds": s.seconds,
                        "command": " ".join(s.argv[1:])} for s in stages], fh, indent=2)
    if args.no_dashboard:
        return 0
    return serve_dashboard(args.port, results)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "main", help="the end-to-end job: data -> baseline -> LoRA -> finetuned -> dashboard",
        description="Prepare data with the default recipe, run and score the base model, "
                    "LoRA fine-tune it, run and score the finetuned model, then serve the "
                    "dashboard on localhost. Every stage is skipped when its outputs are "
                    "complete, so rerunning continues after a crash. "
                    "Example: python -m pipeline main --quick")
    p.add_argument("--quick", action="store_true",
                   help=f"about 10 minutes: {VARIANTS['quick']} instead of {VARIANTS['full']}")
    p.add_argument("--recipe", default="configs/data/default.yaml", help="data recipe")
    p.add_argument("--config", default="configs/smollm2_135m_lora_cpu.yaml", help="model preset")
    p.add_argument("--base-run", default=None, help="baseline run id (default main-base, or quick-base)")
    p.add_argument("--run", default=None, help="finetuned run id (default main-lora, or quick-lora)")
    p.add_argument("--math-n", type=int, help="math test rows to decode")
    p.add_argument("--squad-n", type=int, help="SQuAD subset size (scored)")
    p.add_argument("--heldout-n", type=int,
                   help="held-out SQuAD items the checkpoint is chosen on")
    p.add_argument("--val-n", type=int, help="validation math rows the checkpoint is chosen on")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--batch-size", type=int, default=8, help="decoding batch size (default 8)")
    p.add_argument("--results", help="results folder (default results/ or $PIPELINE_RESULTS)")
    p.add_argument("--force", action="store_true", help="rerun every stage even if its outputs exist")
    p.add_argument("--no-reuse", action="store_true",
                   help="decode the baseline even when a run in the results folder already "
                        "decoded the same tests with the same model, settings and versions")
    p.add_argument("--no-dashboard", action="store_true", help="stop after scoring")
    p.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501)")
    p.set_defaults(func=_with_defaults)


def _with_defaults(args) -> int:
    # Not the shipped runs' ids (smollm2-base/-lora): a fresh clone then makes its own runs
    # beside the shipped ones instead of finding them "already done".
    prefix = "quick" if args.quick else "main"
    args.base_run = args.base_run or f"{prefix}-base"
    args.run = args.run or f"{prefix}-lora"
    return cmd_main(args)
