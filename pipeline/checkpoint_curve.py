"""Accuracy against training step: score a run's saved adapters on math tests.

Teams choose which checkpoint to submit from this curve, and it shows where training time
stops buying accuracy. ``eval_checkpoints`` decodes the test rows with each selected
``adapter/step_<N>.ckpt`` and writes ``results/<run>/checkpoints_math.json``:

    [{"step": 50, "adapter": "adapter/step_50.ckpt", "rows": 200, "tests_sha256": "...",
      "headline_rule": "exact", "rules": {rule: accuracy}, "by_type": {type: accuracy}}, ...]

sorted by step; ``by_type`` is under the headline rule. Each checkpoint decodes into a run
folder of its own, ``results/<run>/checkpoints/step_<N>/``, so a killed job resumes inside
a checkpoint through infer's own resume, and a finished point is never decoded again while
its tests are the same.
"""
from __future__ import annotations

import re
from pathlib import Path

from pipeline import runs
from pipeline.errors import PipelineError

CURVE_FILE = "checkpoints_math.json"
_STEP = re.compile(r"^step_(\d+)\.ckpt$")


def saved_adapters(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of every adapter/step_<N>.ckpt in a run, by step."""
    folder = Path(run) / "adapter"
    found = [(int(m.group(1)), p) for p in folder.glob("step_*.ckpt")
             if (m := _STEP.match(p.name))]
    return sorted(found)


def select_steps(steps: list[int], every: int | None) -> list[int]:
    """Steps that are multiples of `every`, plus the last one (the adapter train ends on);
    every None or 0: all of them."""
    if every is not None and every < 0:
        raise PipelineError(f"--every must be >= 1, got {every}")
    if not every:
        return list(steps)
    chosen = [s for s in steps if s % every == 0]
    if steps and steps[-1] not in chosen:
        chosen.append(steps[-1])
    return chosen


def read_curve(run: Path) -> list[dict]:
    """The points already in checkpoints_math.json ([] when there is none)."""
    path = Path(run) / CURVE_FILE
    if not path.is_file():
        return []
    points = runs.read_json(path)
    if not isinstance(points, list) or not all(isinstance(p, dict) and "step" in p
                                               for p in points):
        raise PipelineError("expected a list of {step, rules, by_type} points", path)
    return points


def validation_tests(run: Path) -> Path | None:
    """The validation split prepared beside the run's training data (data prepare writes
    train.mindrecord / train.jsonl and validation.jsonl into one folder), None if absent."""
    train = ((runs.read_manifest(run).get("data") or {}).get("train") or {}).get("path")
    if not train:
        return None
    candidate = Path(train).parent / "validation.jsonl"
    if not candidate.is_absolute():
        candidate = runs.REPO_ROOT / candidate
    return candidate if candidate.is_file() else None


def heldout_squad_tests(run: Path) -> Path | None:
    """The held-out SQuAD items prepared beside the run's validation split (the main job's
    `data squad --subset N --after K` writes squad_heldout_<N>.jsonl there), None if none;
    the newest when there are several."""
    validation = validation_tests(run)
    if validation is None:
        return None
    found = sorted(validation.parent.glob("squad_heldout_*.jsonl"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def best_point(points: list[dict], rule: str | None = None) -> dict | None:
    """The point with the highest accuracy under `rule` (default: each point's headline);
    the earliest step wins a tie (fewer steps, same accuracy)."""
    scored = [p for p in points if (p.get("rules") or {}).get(rule or p.get("headline_rule"))
              is not None]
    if not scored:
        return None
    return max(scored, key=lambda p: (p["rules"][rule or p["headline_rule"]], -p["step"]))


def _point_folder(run: Path, name: str, manifest: dict, kind: str,
                  fields: tuple[str, ...]) -> Path:
    """results/<run>/checkpoints/<name>/: a run folder of its own, whose manifest carries
    `fields` of the training run's (what infer reads from it), made once."""
    point = run / "checkpoints" / name
    point.mkdir(parents=True, exist_ok=True)
    if not (point / "manifest.json").is_file():
        runs.update_manifest(point, run_id=f"{run.name}@{name.removeprefix('step_')}",
                             kind=kind, created=runs.now_iso(),
                             **{k: manifest[k] for k in fields if k in manifest})
    return point


def _point_run(run: Path, step: int, manifest: dict) -> Path:
    """results/<run>/checkpoints/step_<N>/: carries the preset, prompt template and longest
    training target infer reads from the training run."""
    return _point_folder(run, f"step_{step}", manifest, "checkpoint",
                         ("model", "config", "prompt_template", "data"))


def _score_point(point: Path, template: str | None) -> dict:
    from pipeline.npy import load_predictions
    from pipeline.scoring.math import HEADLINE_RULE, score_math
    texts = load_predictions(runs.task_file(point, "predictions", "math"))
    tests = runs.read_jsonl(runs.task_file(point, "tests", "math"))
    _, summary = score_math(texts, tests, prompt=template)
    rules = summary["rules"]
    return {"headline_rule": HEADLINE_RULE,
            "rules": {name: entry["accuracy"] for name, entry in rules.items()},
            "by_type": {t: v["accuracy"] for t, v in rules[HEADLINE_RULE]["by_type"].items()}}


def _squad_scores(point: Path, key: dict) -> dict:
    """{tests_sha256, limit, items, mindformers: {f1, em}, official: {f1, em}} of a decoded
    SQuAD point."""
    from pipeline.evaluate import score_squad_run
    scores, _ = score_squad_run(point, runs.read_manifest(point))
    return {**key, "items": scores["count"], "mindformers": scores["mindformers"],
            "official": scores["official"]}


def _squad_key(path: Path, limit: int | None) -> dict:
    return {"tests_sha256": runs.file_sha256(path), "limit": limit}


def base_squad(run_ref, squad_tests, limit: int | None = None, batch_size: int = 8,
               results: Path | None = None, quiet: bool = False,
               command: str | None = None, reuse: bool = True) -> dict:
    """The base model's SQuAD scores on `squad_tests`, the reference a checkpoint's held-out
    SQuAD is gated against; decoded once into results/<run>/checkpoints/base/ (or copied
    from a matching base decode: pipeline.baseline_reuse) and kept while the tests are the same."""
    from pipeline.infer import infer
    run = runs.resolve_run(run_ref, results)
    squad_tests = Path(squad_tests)
    if not squad_tests.is_file():
        raise PipelineError("SQuAD tests file not found", squad_tests)
    key = _squad_key(squad_tests, limit)
    path = run / "checkpoints" / "base" / "squad_scores.json"
    if path.is_file():
        kept = runs.read_json(path)
        if {k: kept.get(k) for k in key} == key:
            return kept
    folder = _point_folder(run, "base", runs.read_manifest(run), "baseline", ("model", "config"))
    infer(folder, "squad", squad_tests, base_only=True, limit=limit, batch_size=batch_size,
          restart=path.is_file(), reuse=reuse, quiet=quiet, command=command)
    scores = _squad_scores(folder, key)
    runs.write_json_atomic(path, scores)
    return scores


def eval_checkpoints(run_ref, tests, limit: int | None = None, every: int | None = None,
                     batch_size: int = 8, max_new_tokens: int | None = None,
                     results: Path | None = None, quiet: bool = False,
                     command: str | None = None, squad_tests=None,
                     squad_limit: int | None = None, from_step: int | None = None) -> list[dict]:
    """Score each selected adapter of run `run_ref` on math `tests` (JSONL path), and on
    SQuAD items `squad_tests` when given (a point's "squad"); returns and writes the whole
    curve (earlier points of the same tests are kept, not redone). `from_step`: only
    adapters from that step on.

    Raises PipelineError when the run has no saved adapters or the tests are unreadable.
    """
    from pipeline.infer import infer
    from pipeline.progress import Progress
    run = runs.resolve_run(run_ref, results)
    manifest = runs.read_manifest(run)
    adapters = dict(saved_adapters(run))
    if not adapters:
        raise PipelineError("no adapter/step_<N>.ckpt to score: train this run first "
                            "(training keeps every curve_interval-th adapter for this curve)", run)
    tests = Path(tests)
    if not tests.is_file():
        raise PipelineError("tests file not found", tests)
    squad_key = None
    if squad_tests is not None:
        squad_tests = Path(squad_tests)
        if not squad_tests.is_file():
            raise PipelineError("SQuAD tests file not found", squad_tests)
        squad_key = _squad_key(squad_tests, squad_limit)
    steps = select_steps(sorted(adapters), every)
    if from_step is not None:
        steps = [s for s in steps if s >= from_step]
        if not steps:
            raise PipelineError(f"no saved adapter at step >= {from_step} "
                                f"(saved: {sorted(adapters)})", run)
    points = {p["step"]: p for p in read_curve(run)}
    key = {"tests_sha256": runs.file_sha256(tests), "limit": limit,
           "max_new_tokens": max_new_tokens}

    def math_done(step):
        return {k: points.get(step, {}).get(k) for k in key} == key

    def squad_done(step):
        kept = points.get(step, {}).get("squad") or {}
        return squad_key is None or {k: kept.get(k) for k in squad_key} == squad_key

    todo = [s for s in steps if not (math_done(s) and squad_done(s))]
    template = (manifest.get("prompt_template") or {}).get("math")
    with Progress(len(steps), f"checkpoints of {run.name}", unit="ckpt",
                  initial=len(steps) - len(todo), disable=quiet or None) as bar:
        for step in todo:
            point = _point_run(run, step, manifest)
            if not math_done(step):
                # A point scored on other tests is decoded afresh; a killed one resumes.
                result = infer(point, "math", tests, adapter=adapters[step], limit=limit,
                               batch_size=batch_size, max_new_tokens=max_new_tokens,
                               restart=step in points, quiet=quiet, command=command)
                kept_squad = points.get(step, {}).get("squad")
                points[step] = {"step": step, "adapter": f"adapter/{adapters[step].name}",
                                "rows": result.rows, **key, **_score_point(point, template),
                                **({"squad": kept_squad} if kept_squad else {})}
            if not squad_done(step):
                infer(point, "squad", squad_tests, adapter=adapters[step], limit=squad_limit,
                      batch_size=batch_size, restart="squad" in points[step], quiet=quiet,
                      command=command)
                points[step]["squad"] = _squad_scores(point, squad_key)
            curve = [points[s] for s in sorted(points)]
            runs.write_json_atomic(run / CURVE_FILE, curve)   # after each point: resumable
            bar.update(1, step=step, acc=f"{points[step]['rules'][points[step]['headline_rule']]:.1%}")
    curve = [points[s] for s in sorted(points)]
    runs.write_json_atomic(run / CURVE_FILE, curve)
    return curve


def render_curve(curve: list[dict]) -> str:
    """The curve as a console table, the best point (headline rule) marked."""
    if not curve:
        return "no checkpoints scored"
    best = best_point(curve)
    types = sorted({t for p in curve for t in p.get("by_type", {})})
    head = f"{'step':>6} {'rows':>5} {'accuracy':>9}  " + " ".join(f"{t[:8]:>8}" for t in types)
    lines = [f"accuracy under the headline rule ({curve[-1].get('headline_rule')}) per step",
             head]
    for p in curve:
        acc = p["rules"][p["headline_rule"]]
        cells = " ".join(f"{100 * p['by_type'][t]:7.1f}%" if t in p["by_type"] else f"{'-':>8}"
                         for t in types)
        mark = "  <- best" if p is best else ""
        lines.append(f"{p['step']:>6} {p.get('rows', 0):>5} {100 * acc:8.1f}%  {cells}{mark}")
    return "\n".join(lines)
