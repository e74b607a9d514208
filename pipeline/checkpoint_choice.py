"""Which checkpoint to submit: the most math on validation that keeps SQuAD on held-out items.

The contest disqualifies a fine-tune whose SQuAD F1 or EM falls under 90% of the base
model's, and longer training buys arithmetic at SQuAD's expense (docs/experiments.md
sections 12-13: one recipe landed on either side of the gate). So the choice is made on
items the scored results never see: math on the validation split, SQuAD on a held-out
spread of the contest's items disjoint from the scored subset (`data squad --subset 100
--after 100`), each gated against the base model decoded on the same held-out items.

Rule: among the scored checkpoints whose held-out F1 and EM keep at least `keep` of the
base's (default KEEP = 0.95: the contest's 0.9 plus a margin for the noise of ~100 items),
the one with the highest validation accuracy under the headline rule, the earliest on a tie.
When none keeps that much, the one keeping the most F1, marked as passing nothing.

``choose`` returns the choice; ``apply_choice`` writes it to results/<run>/checkpoint_choice.json
and points the run manifest's adapter at it, so `infer` decodes with the chosen adapter.
"""
from __future__ import annotations

from pathlib import Path

from pipeline import contest, runs
from pipeline.errors import PipelineError

CHOICE_FILE = "checkpoint_choice.json"
KEEP = 0.95
# Candidates: the final adapter and those CANDIDATE_EVERY steps before it (the main job and
# the dashboard's job take the last CANDIDATES of them).
CANDIDATE_EVERY = 100
CANDIDATES = 2


def first_candidate(last_step: int, count: int = CANDIDATES, every: int = CANDIDATE_EVERY) -> int:
    """The earliest step of the last `count` candidates ending at `last_step`
    (eval-checkpoints --every `every` --from-step it)."""
    return max(0, last_step - every * (count - 1))


def follows(manifest: dict, choice: dict | None) -> bool:
    """Whether the run's adapter still points at the choice (a resumed training points it
    back at its last step)."""
    return bool(choice) and (manifest.get("adapter") or {}).get("chosen_step") == choice.get("step")


def _kept(point_squad: dict, base: dict) -> dict:
    """F1 and EM of a point as fractions of the base's (1.0 where the base scored 0)."""
    def frac(metric):
        b = base["mindformers"][metric]
        return 1.0 if b <= 0 else point_squad["mindformers"][metric] / b
    return {"f1": frac("f1"), "em": frac("em")}


def choose(curve: list[dict], base: dict, keep: float = KEEP) -> dict:
    """The choice among the curve's points that carry held-out SQuAD scores (see module
    docstring). Raises PipelineError when no point has them or `keep` is out of range."""
    if not 0 < keep <= 1:
        raise PipelineError(f"keep must be in (0, 1], got {keep}")
    scored = [p for p in curve if p.get("squad") and p.get("rules")]
    sha = base.get("tests_sha256")
    scored = [p for p in scored if p["squad"].get("tests_sha256") == sha]
    if not scored:
        raise PipelineError("no checkpoint has held-out SQuAD scores on the base's items: run "
                            "eval-checkpoints with --squad first")
    # Compare math measured on the same rows only (the newest point's tests and limit).
    same = {k: scored[-1].get(k) for k in ("tests_sha256", "limit", "max_new_tokens")}
    scored = [p for p in scored if {k: p.get(k) for k in same} == same]
    candidates = []
    for p in scored:
        kept = _kept(p["squad"], base)
        acc = p["rules"][p["headline_rule"]]
        candidates.append({"step": p["step"], "adapter": p["adapter"], "math": acc,
                           "f1": p["squad"]["mindformers"]["f1"],
                           "em": p["squad"]["mindformers"]["em"],
                           "kept_f1": kept["f1"], "kept_em": kept["em"],
                           "passes": kept["f1"] >= keep and kept["em"] >= keep})
    passing = [c for c in candidates if c["passes"]]
    if passing:
        best = max(passing, key=lambda c: (c["math"], -c["step"]))
        reason = (f"the most validation math ({best['math']:.1%}) among the checkpoints "
                  f"keeping >= {keep:.0%} of the base's held-out SQuAD F1 and EM")
    else:
        best = max(candidates, key=lambda c: (c["kept_f1"], -c["step"]))
        reason = (f"no checkpoint keeps {keep:.0%} of the base's held-out SQuAD F1 and EM; "
                  f"this one keeps the most F1 ({best['kept_f1']:.0%}): expect it to fail the gate")
    return {"step": best["step"], "adapter": best["adapter"], "passes": best["passes"],
            "reason": reason, "keep": keep, "contest_fraction": contest.RETENTION,
            "math_rule": scored[0]["headline_rule"], "math_rows": scored[0].get("rows"),
            "math_tests_sha256": scored[0].get("tests_sha256"),
            "base_squad": base, "candidates": candidates}


def read_choice(run: Path) -> dict | None:
    path = Path(run) / CHOICE_FILE
    return runs.read_json(path) if path.is_file() else None


def apply_choice(run: Path, choice: dict) -> None:
    """Write the choice and point the manifest's adapter at the chosen checkpoint (the final
    one stays named in `adapter.final`), so the run's inference uses it."""
    run = Path(run)
    manifest = runs.read_manifest(run)
    adapter = dict(manifest.get("adapter") or {})
    if not adapter:
        raise PipelineError("run has no adapter to choose among", run)
    final = adapter.get("final") or adapter.get("path")
    path = choice["adapter"]
    if not (run / path).is_file():
        raise PipelineError(f"chosen adapter {path} is missing", run)
    runs.write_json_atomic(run / CHOICE_FILE, choice)
    adapter.update(path=path, final=final, chosen_step=choice["step"], chosen_by=CHOICE_FILE)
    runs.update_manifest(run, adapter=adapter)


def render_choice(choice: dict) -> str:
    base = choice["base_squad"]["mindformers"]
    lines = [f"held-out SQuAD base F1 {base['f1']:.2f} / EM {base['em']:.2f} "
             f"({choice['base_squad'].get('items')} items); a checkpoint must keep "
             f">= {choice['keep']:.0%} (the contest asks {choice['contest_fraction']:.0%})",
             f"{'step':>6} {'math':>7} {'F1':>7} {'kept':>6} {'EM':>6}  passes"]
    for c in choice["candidates"]:
        mark = "  <- chosen" if c["step"] == choice["step"] else ""
        lines.append(f"{c['step']:>6} {100 * c['math']:6.1f}% {c['f1']:7.2f} "
                     f"{100 * c['kept_f1']:5.0f}% {c['em']:6.2f}  "
                     f"{'yes' if c['passes'] else 'no':<6}{mark}")
    lines.append(f"chosen: step {choice['step']} ({choice['adapter']}): {choice['reason']}")
    return "\n".join(lines)
