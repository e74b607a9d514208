"""Commands that score or read contest artifacts: score-squad, parse-log, contest-score."""
from __future__ import annotations

from pathlib import Path

from pipeline import contest
from pipeline.commands import emit
from pipeline.errors import PipelineError


def _score_squad(args) -> int:
    from pipeline.data.squad import load_squad_eval
    from pipeline.npy import load_predictions
    from pipeline.scoring.squad import continuation_after_prompt, score_squad

    texts = load_predictions(args.predictions)
    items = load_squad_eval(args.squad)
    warnings = []
    if len(texts) > len(items):
        raise PipelineError(f"{len(texts)} predictions but the SQuAD set has only {len(items)} items",
                            args.predictions)
    if len(texts) < len(items):
        if not args.partial:
            raise PipelineError(
                f"{len(texts)} predictions but the SQuAD set has {len(items)} items; they are "
                "matched by position, so the counts must agree (pass --partial to score a run "
                f"cut short against the first {len(texts)} items)", args.predictions)
        warnings.append(f"{len(texts)} predictions for {len(items)} items: "
                        f"scored the first {len(texts)} items only")
        items = items[:len(texts)]
    # A contest prediction is prompt + continuation; the metric scored only the continuation.
    answers = [continuation_after_prompt(t, item.get("prompt")) for t, item in zip(texts, items)]
    result = score_squad(answers, items, args.metric)
    if warnings:
        result["warnings"] = warnings
    emit(result, args.json, lambda r: (
        f"SQuAD ({r['metric']}) over {r['count']} items: F1 {r['f1']:.4f}, EM {r['em']:.4f}"
        + "".join(f"\nwarning: {w}" for w in r.get("warnings", []))))
    return 0


def _parse_log(args) -> int:
    from pipeline.logs import parse_log

    result = parse_log(args.log)

    def human(r):
        lines = [f"kind: {r['kind']}"]
        if r["trainable_params"] is not None:
            approx = " (approximate, printed in millions)" if r["trainable_params_rounded"] else ""
            lines.append(f"trainable params: {r['trainable_params']:,}{approx}")
        if r["loss"]:
            first, last = r["loss"][0], r["loss"][-1]
            lines.append(f"loss points: {len(r['loss'])} (global step {first['global_step']}.."
                         f"{last['global_step']}), loss {first['loss']} -> {last['loss']}")
        for resume in r.get("resumes", []):
            lines.append(f"resumed at global step {resume['step']} (line {resume['line']}): "
                         f"{resume['replaced']} step(s) logged before the restart replaced")
        if r["squad"]:
            s = r["squad"]
            lines.append(f"SQuAD: F1 {s['f1']:.4f}, EM {s['em']:.4f} over {s['count']}"
                         + ("" if s["final"] else " (not final)"))
        lines += [f"warning: {w}" for w in r["warnings"]]
        return "\n".join(lines)

    emit(result, args.json, human)
    return 0


def _contest_score(args) -> int:
    if not 0.0 <= args.accuracy <= 1.0:
        raise PipelineError(f"--accuracy must be a fraction in 0..1 (64%% is 0.64), got {args.accuracy}"
                            .replace("%%", "%"))
    total = args.total if args.total is not None else (
        contest.LLAMA3_8B_TOTAL_PARAMS if args.phase == 1 else contest.INTERNLM_7B_TOTAL_PARAMS)
    try:
        ratio = contest.trainable_ratio(args.trainable, total)
        score = contest.contest_score(args.accuracy, ratio, args.phase)
    except ValueError as exc:
        raise PipelineError(str(exc)) from None
    # The published leaderboard is phase 1 only.
    rank = contest.leaderboard_rank(score) if args.phase == 1 else None
    result = {"ratio": ratio, "score": score, "leaderboard_rank": rank}
    emit(result, args.json, lambda r: (
        f"ratio {r['ratio']:.9f}, score {r['score']:.9f}"
        + (f", would rank {r['leaderboard_rank']} of the 20 published phase-1 teams"
           if r["leaderboard_rank"] is not None else "")))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score-squad", help="score a contest SQuAD prediction .npy file",
        description="Score contest SQuAD predictions (prompt + continuation per row) against the "
                    "contest eval set. Predictions match items by position; the prompt (up to the "
                    "last '### Response:') is removed before scoring. Scores are 0..100.",
        epilog="example: python -m pipeline score-squad result_npy.npy "
               "--squad data/squad/dev-v1.1.json --json")
    p.add_argument("predictions", type=Path, metavar="PRED.npy",
                   help="contest-format predictions (object array of {'text_generation_text': [...]})")
    p.add_argument("--squad", type=Path, required=True, metavar="PATH",
                   help="dev-v1.1.json (the 2,067-item contest set is built from it) "
                        "or a JSONL eval set (tests_squad.jsonl rows)")
    p.add_argument("--metric", choices=["mindformers", "official"], default="mindformers",
                   help="mindformers = the contest's EmF1Metric (default); official = SQuAD v1.1")
    p.add_argument("--partial", action="store_true",
                   help="allow fewer predictions than items: score the first N items (a run cut "
                        "short); without it a count mismatch is an error")
    p.add_argument("--json", action="store_true", help="print {f1, em, count, metric} as JSON")
    p.set_defaults(func=_score_squad)

    p = subparsers.add_parser(
        "parse-log", help="read a MindFormers training or SQuAD eval log",
        description="Extract trainable parameters, the loss curve and SQuAD scores from a "
                    "MindFormers log. Truncated or noisy logs give what they hold plus warnings.",
        epilog="example: python -m pipeline parse-log finetune_worker_0.log --json")
    p.add_argument("log", type=Path, metavar="LOG")
    p.add_argument("--json", action="store_true", help="print the full result (every loss point) as JSON")
    p.set_defaults(func=_parse_log)

    p = subparsers.add_parser(
        "contest-score", help="contest score from accuracy and trainable parameters",
        description="Phase 1: (1 - ratio) * 0.3 + accuracy * 0.7; phase 2: (1 - 10 * ratio) * 0.3 "
                    "+ accuracy * 0.7, where ratio = trainable / total.",
        epilog="example: python -m pipeline contest-score --accuracy 0.64 --trainable 3407872 --json")
    p.add_argument("--accuracy", type=float, required=True, help="math accuracy as a fraction in 0..1")
    p.add_argument("--trainable", type=int, required=True, help="trainable parameter count")
    p.add_argument("--total", type=int, default=None,
                   help="total parameters (default 8030000000 for phase 1, 7321000000 for phase 2)")
    p.add_argument("--phase", type=int, choices=[1, 2], default=1)
    p.add_argument("--json", action="store_true", help="print {ratio, score, leaderboard_rank} as JSON")
    p.set_defaults(func=_contest_score)
