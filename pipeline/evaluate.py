"""Score what a run folder holds into metrics.json + samples_<task>.jsonl (docs/run_format.md).

Reads only files (tests, predictions, infer timings, manifest, a baseline's metrics), so
rescoring never re-runs inference. Math is graded under every rule (per type); SQuAD under
MindFormers' EmF1Metric and the official metric; then the trainable ratio, the contest score
for each rule, the leaderboard rank and the SQuAD 90% retention gate (against a baseline run
when one is given, else the contest's base Llama3-8B numbers).
"""
from __future__ import annotations

from pathlib import Path

from pipeline import contest, runs
from pipeline.errors import PipelineError


def _gen_seconds(run: Path, task: str, rows: int) -> list | None:
    """Per-row generation seconds from infer_<task>.jsonl, None where unknown."""
    from pipeline.infer import finished_rows
    done = finished_rows(run, task, rows)
    if not done:
        return None
    return [done[i]["seconds"] if i in done else None for i in range(rows)]


def _task_inputs(run: Path, task: str) -> tuple[list[str], list[dict]] | None:
    """(predictions, tests) of a task, None when the run has no predictions for it."""
    from pipeline.npy import load_predictions
    pred_path = runs.task_file(run, "predictions", task)
    if not pred_path.exists() and not pred_path.is_symlink():
        return None
    tests_path = runs.task_file(run, "tests", task)
    if not tests_path.exists() and not tests_path.is_symlink():
        raise PipelineError(f"predictions without {tests_path.name}: cannot score them", run)
    texts = load_predictions(pred_path)
    tests = runs.read_jsonl(tests_path)
    if len(texts) != len(tests):
        raise PipelineError(f"{len(texts)} predictions but {len(tests)} test rows in "
                            f"{tests_path.name}", pred_path)
    return texts, tests


def score_math_run(run: Path, manifest: dict) -> tuple[dict, list[dict]] | None:
    """(metrics.math, samples rows), None when the run has no math predictions."""
    from pipeline.scoring.math import HEADLINE_RULE, score_math
    inputs = _task_inputs(run, "math")
    if inputs is None:
        return None
    texts, tests = inputs
    template = (manifest.get("prompt_template") or {}).get("math")
    rows, summary = score_math(texts, tests, prompt=template, headline=HEADLINE_RULE,
                               gen_seconds=_gen_seconds(run, "math", len(tests)))
    for row in rows:
        row.setdefault("gen_seconds", None)
    return {"total": summary["total"], "headline_rule": HEADLINE_RULE,
            "rules": summary["rules"], "positions": summary["positions"]}, rows


def score_squad_run(run: Path, manifest: dict) -> tuple[dict, list[dict]] | None:
    """(metrics.squad without gate, samples rows); from predictions, else from an eval log
    recorded by `import` (then no samples and no official metric); None when neither."""
    from pipeline.scoring.squad import continuation_after_prompt, score_squad, squad_sample_rows
    inputs = _task_inputs(run, "squad")
    if inputs is None:
        logged = manifest.get("squad_log")
        if logged and logged.get("f1") is not None:
            return {"count": logged.get("count"), "source": "log",
                    "mindformers": {"f1": logged["f1"], "em": logged["em"]},
                    "official": None}, []
        return None
    texts, items = inputs
    conts = [continuation_after_prompt(t, item.get("prompt")) for t, item in zip(texts, items)]
    mf = score_squad(conts, items, "mindformers")
    official = score_squad(conts, items, "official")
    rows = squad_sample_rows(conts, items, _gen_seconds(run, "squad", len(items)))
    return {"count": mf["count"], "mindformers": {"f1": mf["f1"], "em": mf["em"]},
            "official": {"f1": official["f1"], "em": official["em"]}}, rows


def _ratio(manifest: dict) -> tuple[int | None, int | None, float | None]:
    """(trainable, total, ratio) from the manifest; a run without adapter trains nothing."""
    total = (manifest.get("model") or {}).get("total_params")
    adapter = manifest.get("adapter")
    trainable = 0 if adapter is None else adapter.get("trainable_params")
    if trainable is None or not total:
        return trainable, total, None
    return trainable, total, contest.trainable_ratio(trainable, total)


def run_scores(ref, results: Path | None = None) -> dict:
    """A run's metrics: its metrics.json when present, else scored in memory (nothing written).

    Used for the baseline of a comparison. Raises PipelineError if the run does not exist.
    """
    run = runs.resolve_run(ref, results)
    path = run / "metrics.json"
    if path.is_file():
        return runs.read_json(path)
    manifest = runs.read_manifest(run)
    math = score_math_run(run, manifest)
    squad = score_squad_run(run, manifest)
    return {"run_id": run.name, "math": math and math[0], "squad": squad and squad[0]}


def _gate(squad: dict, baseline_id: str | None, baseline: dict | None) -> dict:
    f1, em = squad["mindformers"]["f1"], squad["mindformers"]["em"]
    if baseline_id is None:
        base_f1, base_em = contest.BASE_SQUAD_F1, contest.BASE_SQUAD_EM
    else:
        base_squad = (baseline or {}).get("squad")
        if not base_squad:
            raise PipelineError("the baseline run has no SQuAD scores to gate against; "
                                "run infer --task squad on it first", baseline_id)
        base_f1, base_em = base_squad["mindformers"]["f1"], base_squad["mindformers"]["em"]
    gate = contest.retention_gate(f1, em, base_f1, base_em)
    return {"baseline_run": baseline_id, "base_f1": base_f1, "base_em": base_em,
            "f1_threshold": gate["f1_threshold"], "em_threshold": gate["em_threshold"],
            "f1_pass": gate["f1_pass"], "em_pass": gate["em_pass"], "pass": gate["pass"]}


def gate_is_reference(gate: dict, kind: str | None) -> bool:
    """A baseline scored without a baseline of its own is the reference its fine-tunes are
    gated against, not a candidate: gating our CPU base model against the contest's
    Llama3-8B numbers would call it a "fail" that means nothing. (The report and the
    dashboard both ask this.)"""
    return kind == "baseline" and not gate.get("baseline_run")


def gate_verdict(gate: dict | None, kind: str | None) -> str | None:
    """The gate in one word, the same in the report, `runs` and the dashboard:
    "reference" (gate_is_reference), "pass" or "FAIL"; None without a gate."""
    if not gate:
        return None
    if gate_is_reference(gate, kind):
        return "reference"
    return "pass" if gate.get("pass") else "FAIL"


def baseline_math_rows(base_run: Path) -> list[dict]:
    """The baseline's scored math rows: its samples_math.jsonl, else scored in memory
    (nothing written); [] when it has no math predictions."""
    samples = runs.task_file(base_run, "samples", "math")
    if samples.is_file():
        return runs.read_jsonl(samples)
    scored = score_math_run(base_run, runs.read_manifest(base_run))
    return scored[1] if scored else []


def compare_math(metrics: dict, rows: list[dict], base_rows: list[dict] | None) -> list[dict]:
    """Per-type accuracy under the headline rule; with a baseline, both runs on the rows they
    share only (paired by the problem itself, stats.pair_rows), never by position."""
    from pipeline.scoring.stats import pair_rows
    math = metrics.get("math")
    if not math:
        return []
    rule = math["headline_rule"]
    if base_rows is None:
        mine = math["rules"][rule]
        return [{"type": name, "total": e["total"], "accuracy": e["accuracy"], "baseline": None,
                 "delta": None} for name, e in [("ALL", mine), *mine["by_type"].items()]]
    pairs = pair_rows(base_rows, rows)
    groups: dict[str, list[tuple[bool, bool]]] = {"ALL": []}
    for base, cand in pairs:
        verdicts = (bool(cand["verdicts"].get(rule)), bool(base["verdicts"].get(rule)))
        groups["ALL"].append(verdicts)
        groups.setdefault(cand.get("type") or "unknown", []).append(verdicts)
    order = ["ALL", *math["rules"][rule]["by_type"]]
    out = []
    for name, pairs_of_type in sorted(groups.items(), key=lambda g: order.index(g[0])
                                      if g[0] in order else len(order)):
        n = len(pairs_of_type)
        acc = sum(c for c, _ in pairs_of_type) / n if n else None
        base_acc = sum(b for _, b in pairs_of_type) / n if n else None
        out.append({"type": name, "total": n, "accuracy": acc, "baseline": base_acc,
                    "delta": None if acc is None else acc - base_acc})
    return out


def evaluate(ref, baseline: str | None = None, results: Path | None = None) -> dict:
    """Score run `ref` (id or folder); writes metrics.json and samples_<task>.jsonl.

    baseline: a run id/folder for the SQuAD gate and the comparison (default: the manifest's
    baseline_run, if any). Returns {"metrics", "comparison"}.
    Raises PipelineError when the run holds nothing to score or its files disagree.
    Concurrent evaluates of one run take turns (a per-run lock), so none reads another's
    half-written files.
    """
    run = runs.resolve_run(ref, results)
    with runs.run_lock(run):
        return _evaluate_run(run, baseline, results)


def _evaluate_run(run: Path, baseline: str | None, results: Path | None) -> dict:
    manifest = runs.read_manifest(run)
    baseline = baseline or manifest.get("baseline_run")
    base_metrics = base_rows = None
    if baseline:
        base_run = runs.resolve_run(baseline, results)
        if base_run.resolve() == run.resolve():
            raise PipelineError("a run cannot be its own baseline", run)
        base_metrics = run_scores(base_run)
        base_rows = baseline_math_rows(base_run)
        baseline = base_run.name

    math = score_math_run(run, manifest)
    squad = score_squad_run(run, manifest)
    if math is None and squad is None:
        raise PipelineError("nothing to score: no predictions_math.npy, predictions_squad.npy "
                            "or imported SQuAD log", run)
    if math is not None:
        runs.write_jsonl(runs.task_file(run, "samples", "math"), math[1])
    if squad is not None:
        squad[0]["gate"] = _gate(squad[0], baseline, base_metrics)
        if squad[1]:
            runs.write_jsonl(runs.task_file(run, "samples", "squad"), squad[1])

    trainable, total, ratio = _ratio(manifest)
    metrics = {"run_id": run.name, "math": math and math[0], "squad": squad and squad[0],
               "trainable_params": trainable, "total_params": total, "trainable_ratio": ratio,
               "score": None, "score_by_rule": {}, "leaderboard_rank": None,
               "evaluated": runs.now_iso()}
    comparison = compare_math(metrics, math[1] if math else [], base_rows)
    if baseline:
        paired = next((row["total"] for row in comparison if row["type"] == "ALL"), 0)
        metrics["comparison"] = {"baseline": baseline, "paired_rows": paired}
    if math is not None and ratio is not None:
        metrics["score_by_rule"] = {rule: contest.contest_score(entry["accuracy"], ratio)
                                    for rule, entry in math[0]["rules"].items()}
        metrics["score"] = metrics["score_by_rule"][math[0]["headline_rule"]]
        metrics["leaderboard_rank"] = contest.leaderboard_rank(metrics["score"])
    runs.write_json_atomic(run / "metrics.json", metrics)
    if baseline:
        runs.update_manifest(run, baseline_run=baseline)
    return {"metrics": metrics, "comparison": comparison,
            "baseline_run": baseline, "kind": manifest.get("kind")}


# ---------------------------------------------------------------- console
def _pct(value) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def render_report(result: dict) -> str:
    """Human summary of evaluate()'s result: headline numbers and the per-type table."""
    m = result["metrics"]
    lines = [f"run {m['run_id']}"]
    if m["math"]:
        rule = m["math"]["headline_rule"]
        accs = ", ".join(f"{r} {_pct(e['accuracy']).strip()}" for r, e in m["math"]["rules"].items())
        lines.append(f"math ({m['math']['total']} rows): {accs}  [headline: {rule}]")
    if m["squad"]:
        s = m["squad"]
        off = s.get("official")
        lines.append(f"squad ({s['count']}): MindFormers F1 {s['mindformers']['f1']:.2f} "
                     f"EM {s['mindformers']['em']:.2f}"
                     + (f"; official F1 {off['f1']:.2f} EM {off['em']:.2f}" if off else ""))
        g = s["gate"]
        if gate_verdict(g, result.get("kind")) == "reference":
            lines.append("gate: reference (fine-tunes scored with --baseline "
                         f"{m['run_id']} must keep 90% of these F1/EM)")
        else:
            lines.append(f"gate vs {g['baseline_run'] or 'contest base Llama3-8B'}: "
                         f"{gate_verdict(g, result.get('kind'))} (F1 >= {g['f1_threshold']:.2f} "
                         f"{'ok' if g['f1_pass'] else 'FAIL'}, EM >= {g['em_threshold']:.2f} "
                         f"{'ok' if g['em_pass'] else 'FAIL'})")
        if contest.em_gate_vacuous(g):
            lines.append(f"note: {contest.EM_VACUOUS_NOTE}")
    if m["trainable_ratio"] is not None:
        lines.append(f"trainable ratio {m['trainable_ratio']:.6g} "
                     f"({m['trainable_params']:,} / {m['total_params']:,})")
    if m["score"] is not None:
        lines.append(f"contest score {m['score']:.4f} (leaderboard rank {m['leaderboard_rank']})")
    table = result.get("comparison") or []
    base = result.get("baseline_run")
    if base and m["math"]:
        paired = (m.get("comparison") or {}).get("paired_rows", 0)
        lines.append(f"baseline {base}: {paired} of this run's {m['math']['total']} math rows are "
                     "in its test set (paired by problem and reference)"
                     + ("" if paired else "; no per-type comparison"))
        if not paired:
            table = []
    if table:
        lines.append("")
        lines.append(f"{'type':<18}{'rows':>6}  {'run':>7}  {('base' if base else ''):>7}  "
                     f"{('delta' if base else ''):>7}")
        for row in table:
            delta = "" if row["delta"] is None else f"{100 * row['delta']:+6.1f}"
            lines.append(f"{row['type']:<18}{row['total']:>6}  {_pct(row['accuracy']):>7}  "
                         f"{(_pct(row['baseline']) if base else ''):>7}  {delta:>7}")
    return "\n".join(lines)
