"""Many runs side by side: their settings, their results, and paired tests against the first.

Pure tables from what run folders hold (manifest.json, metrics.json, samples_math.jsonl,
train.log), shared by the dashboard's Compare page and ``python -m pipeline report``.
Settings come from the manifest, with the training log filling in what an imported NPU
run's manifest lacks (steps, peak learning rate, minutes).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline import contest, runs
from pipeline.errors import PipelineError
from pipeline.evaluate import gate_verdict
from pipeline.logs import parse_log
from pipeline.problems import TYPES
from pipeline.scoring.digits import positions_by_type
from pipeline.scoring.errors import ERROR_CLASSES, wrong_answer_class
from pipeline.scoring.stats import mcnemar_exact, wilson_interval
from pipeline.scoring.stats import pair_rows as stats_pair_rows


def training_summary(log_path: Path) -> dict:
    """{"steps", "peak_lr", "minutes"} from a MindFormers-format train.log (None where the log
    does not say; all None without a log). Minutes: first to last logged step's time stamp,
    else the sum of the logged step times."""
    out = {"steps": None, "peak_lr": None, "minutes": None}
    if not Path(log_path).is_file():
        return out
    points = parse_log(Path(log_path)).get("loss") or []
    if not points:
        return out
    out["steps"] = max(p.get("global_step") or 0 for p in points) or None
    lrs = [p["lr"] for p in points if p.get("lr") is not None]
    out["peak_lr"] = max(lrs) if lrs else None
    stamps = [p.get("time") for p in points]
    if all(stamps) and len(stamps) > 1:
        seconds = (datetime.fromisoformat(stamps[-1]) - datetime.fromisoformat(stamps[0])).total_seconds()
        out["minutes"] = seconds / 60.0
    elif all(p.get("per_step_time_ms") is not None for p in points):
        out["minutes"] = sum(p["per_step_time_ms"] for p in points) / 60_000.0
    return out


def run_settings(manifest: dict, training: dict | None = None) -> dict:
    """kind, lora_rank, lora_alpha, targets, lr, steps, recipe, minutes of one run (None
    where unknown; the training ones None for a run that trained nothing).

    manifest: the run's manifest.json; training: ``training_summary`` of its train.log.
    The manifest's training config wins; the log fills the gaps (imported runs).
    """
    training = training or {}
    adapter = manifest.get("adapter") or {}
    trained = bool(manifest.get("adapter")) or any(v is not None for v in training.values())
    # a base model's manifest holds its preset's training section, but nothing was trained
    train_cfg = ((manifest.get("config") or {}).get("train") or {}) if trained else {}
    data = ((manifest.get("data") or {}).get("train") or {}) if trained else {}
    targets = adapter.get("targets")
    return {"kind": manifest.get("kind"),
            "lora_rank": adapter.get("rank"), "lora_alpha": adapter.get("alpha"),
            "targets": ",".join(targets) if targets else None,
            "lr": train_cfg.get("lr", training.get("peak_lr")),
            "steps": train_cfg.get("max_steps") or training.get("steps"),
            "recipe": data.get("recipe") or (((manifest.get("config") or {}).get("name"))
                                             if trained else None),
            "minutes": training.get("minutes")}


def run_results(metrics: dict | None, rule: str, kind: str | None = None) -> dict:
    """accuracy (0..1) under `rule`, per-type accuracies, SQuAD F1/EM, gate
    (``evaluate.gate_verdict``: "pass", "FAIL", "reference" or None), ratio, score and
    leaderboard_rank under
    that rule (recomputed from the rule's accuracy, like the Overview page). kind: the
    manifest's kind."""
    metrics = metrics or {}
    math = metrics.get("math") or {}
    entry = (math.get("rules") or {}).get(rule)
    squad = metrics.get("squad") or {}
    ratio = metrics.get("trainable_ratio")
    accuracy = entry["accuracy"] if entry else None
    score = contest.contest_score(accuracy, ratio) if accuracy is not None and ratio is not None \
        else None
    gate = squad.get("gate") or {}
    return {"accuracy": accuracy, "correct": entry["correct"] if entry else None,
            "total": entry["total"] if entry else None,
            "by_type": dict((entry or {}).get("by_type") or {}),
            "squad_f1": (squad.get("mindformers") or {}).get("f1"),
            "squad_em": (squad.get("mindformers") or {}).get("em"),
            "gate": gate_verdict(gate, kind),
            "ratio": ratio, "score": score,
            "leaderboard_rank": contest.leaderboard_rank(score) if score is not None else None}


def compare_table(run_ids: list[str], results: Path | None = None, rule: str = "exact") -> list[dict]:
    """One row per run: {"run", **run_settings, **run_results} (per-type accuracies under
    "by_type"). Raises PipelineError for a run id that names no run folder."""
    rows = []
    for run_id in run_ids:
        run = runs.resolve_run(run_id, results)
        manifest = runs.read_manifest(run)
        metrics = runs.read_json(run / "metrics.json") if (run / "metrics.json").is_file() else None
        rows.append({"run": run.name, **run_settings(manifest, training_summary(run / "train.log")),
                     **run_results(metrics, rule, manifest.get("kind"))})
    return rows


# ---------------------------------------------------------------- paired rows

def pair_rows(first: list[dict], other: list[dict]) -> list[tuple[dict, dict]]:
    """(first's row, other's row) for each problem both answered, in first's order: the one
    pairing rule of the project (pipeline.scoring.stats.pair_rows, problem text + reference,
    the k-th copy of a repeated problem with the k-th copy)."""
    return [(mine, theirs) for theirs, mine in stats_pair_rows(other, first)]


def per_type_against_first(samples: dict[str, list[dict]], rule: str) -> list[dict]:
    """Per type (contest order, then "all"): each run's n, accuracy and Wilson 95% bounds,
    and for every run after the first the exact McNemar p over the rows paired with the
    first run's (``pair_rows``). samples: {run: samples_math.jsonl rows}, first = reference.
    Returns [{"type", "runs": {run: {"n", "correct", "accuracy", "low", "high", "p",
    "paired"}}}]; "p" and "paired" are None for the first run."""
    names = list(samples)
    first = names[0] if names else None
    seen = {row["type"] for rows in samples.values() for row in rows}
    order = [t for t in TYPES if t in seen] + sorted(seen - set(TYPES)) + ["all"]
    pairs = {name: pair_rows(samples[first], samples[name]) for name in names[1:]}
    out = []
    for ptype in order:
        entry = {"type": ptype, "runs": {}}
        for name in names:
            rows = [r for r in samples[name] if ptype == "all" or r["type"] == ptype]
            correct = sum(bool(r["verdicts"].get(rule)) for r in rows)
            low, high = wilson_interval(correct, len(rows)) if rows else (None, None)
            cell = {"n": len(rows), "correct": correct,
                    "accuracy": correct / len(rows) if rows else None,
                    "low": low, "high": high, "p": None, "paired": None}
            if name != first:
                both = [(a, b) for a, b in pairs[name] if ptype == "all" or a["type"] == ptype]
                first_only = sum(bool(a["verdicts"].get(rule)) and not b["verdicts"].get(rule)
                                 for a, b in both)
                other_only = sum(not a["verdicts"].get(rule) and bool(b["verdicts"].get(rule))
                                 for a, b in both)
                cell["p"] = mcnemar_exact(first_only, other_only) if both else None
                cell["paired"] = len(both)
            entry["runs"][name] = cell
        out.append(entry)
    return out


def wrong_rows(rows: list[dict], rule: str):
    """(row, error class) for each row wrong under `rule` (classes recomputed, so any scored
    rule works, not only the headline the samples were written under)."""
    for row in rows:
        if not row["verdicts"].get(rule):
            yield row, wrong_answer_class(row.get("problem") or "", row.get("reference") or "",
                                          row.get("extracted"), row.get("output") or "",
                                          row.get("type"))


def class_counts(rows: list[dict], rule: str) -> dict[str, int]:
    """Error classes of the rows wrong under `rule` ({class: count}, registry order)."""
    counts = dict.fromkeys(ERROR_CLASSES, 0)
    for _, cls in wrong_rows(rows, rule):
        counts[cls] += 1
    return counts


def error_breakdown(run_id: str, results: Path | None = None, rule: str | None = None,
                    ptype: str | None = None) -> dict:
    """One run's wrong answers: class counts and per-position accuracy (``errors`` command).

    rule: the rule that decides right/wrong (default: the run's headline rule); ptype: only
    rows of that problem type. Returns {"run", "rule", "type", "total", "wrong", "classes",
    "examples" (first problem/reference/answer per class), "positions" (per type)}.
    Raises PipelineError without samples_math.jsonl, or for a rule/type the run lacks.
    """
    run = runs.resolve_run(run_id, results)
    path = runs.task_file(run, "samples", "math")
    if not path.is_file():
        raise PipelineError("no scored math samples: run `python -m pipeline evaluate --run "
                            f"{run.name}` first", path)
    rows = runs.read_jsonl(path)
    if rule is None:
        metrics = runs.read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {}
        rule = ((metrics or {}).get("math") or {}).get("headline_rule") or "exact"
    if rows and rule not in rows[0].get("verdicts", {}):
        raise PipelineError(f"rule {rule!r} was not scored; the samples have "
                            f"{', '.join(rows[0]['verdicts'])}", path)
    if ptype is not None:
        types = sorted({r["type"] for r in rows})
        rows = [r for r in rows if r["type"] == ptype]
        if not rows:
            raise PipelineError(f"no {ptype!r} rows; the run has {', '.join(types)}", path)
    classes, examples = dict.fromkeys(ERROR_CLASSES, 0), {}
    for row, cls in wrong_rows(rows, rule):
        classes[cls] += 1
        examples.setdefault(cls, {"id": row.get("id"), "problem": row.get("problem"),
                                  "reference": row.get("reference"),
                                  "extracted": row.get("extracted")})
    return {"run": run.name, "rule": rule, "type": ptype, "total": len(rows),
            "wrong": sum(classes.values()), "classes": classes, "examples": examples,
            "positions": positions_by_type(rows)}
