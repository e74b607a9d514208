"""eval-checkpoints: accuracy against training step from a run's saved adapters."""
from __future__ import annotations

from pipeline.commands import emit


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-checkpoints", help="score a run's saved adapters: accuracy against training step",
        description="Decode math tests with each saved adapter/step_<N>.ckpt of a run and write "
                    "results/<run>/checkpoints_math.json (accuracy under every rule, per type "
                    "under the headline rule). Resumable: scored points are kept. Choose the "
                    "checkpoint on validation rows, not on the test. With --squad, each "
                    "checkpoint's SQuAD on held-out items too, against the base model on the same "
                    "items; --choose then picks the checkpoint to submit. Examples: python -m "
                    "pipeline eval-checkpoints --run smollm2-lora --tests "
                    "data/prepared/default/validation.jsonl --limit 200 --every 50; python -m "
                    "pipeline eval-checkpoints --run main-lora --tests "
                    "data/prepared/default/validation.jsonl --limit 200 --every 100 --from-step "
                    "400 --squad data/prepared/default/squad_heldout_100.jsonl --choose")
    p.add_argument("--run", required=True, help="run id or folder holding adapter/step_<N>.ckpt")
    p.add_argument("--tests", required=True, help="math rows (JSONL of problem/solution)")
    p.add_argument("--limit", type=int, help="only the first N rows (same N for every point)")
    p.add_argument("--every", type=int,
                   help="only steps that are multiples of K, plus the last (default: every "
                        "saved adapter)")
    p.add_argument("--from-step", type=int, help="only adapters from step S on")
    p.add_argument("--squad", metavar="PATH",
                   help="also score SQuAD items per checkpoint (held-out ones: data squad "
                        "--subset 100 --after 100), and the base model on them once")
    p.add_argument("--squad-limit", type=int, help="only the first N SQuAD items")
    p.add_argument("--choose", action="store_true",
                   help="with --squad: choose the checkpoint with the most math among those "
                        "keeping --keep of the base's held-out SQuAD F1 and EM, write "
                        "checkpoint_choice.json and point the run's adapter at it (infer then "
                        "decodes with it)")
    p.add_argument("--keep", type=float, default=None,
                   help="fraction of the base's held-out SQuAD a checkpoint must keep "
                        "(default 0.95: the contest's 0.9 plus a margin for ~100 items' noise)")
    p.add_argument("--no-reuse", action="store_true",
                   help="decode the base model on the --squad items even when a matching base "
                        "decode exists in the results folder")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int,
                   help="default: as infer (room for the run's longest training target)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_eval_checkpoints)


def _eval_checkpoints(args) -> int:
    from pipeline.checkpoint_choice import KEEP, apply_choice, choose, render_choice
    from pipeline.checkpoint_curve import base_squad, eval_checkpoints, render_curve
    from pipeline.errors import PipelineError
    from pipeline.runs import resolve_run
    if (args.choose or args.keep is not None) and not args.squad:
        raise PipelineError("--choose and --keep need --squad (held-out SQuAD items)")
    curve = eval_checkpoints(args.run, args.tests, limit=args.limit, every=args.every,
                             batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                             quiet=args.json, command=args.command_line, squad_tests=args.squad,
                             squad_limit=args.squad_limit, from_step=args.from_step)
    if not args.squad:
        emit(curve, args.json, render_curve)
        return 0
    base = base_squad(args.run, args.squad, limit=args.squad_limit, batch_size=args.batch_size,
                      quiet=args.json, command=args.command_line, reuse=not args.no_reuse)
    choice = choose(curve, base, KEEP if args.keep is None else args.keep)
    if args.choose:
        apply_choice(resolve_run(args.run), choice)
    emit({"curve": curve, "choice": choice, "applied": args.choose}, args.json,
         lambda r: render_curve(r["curve"]) + "\n\n" + render_choice(r["choice"])
         + ("\nthe run's adapter now points at it: infer decodes with it" if r["applied"]
            else "\n(not applied: pass --choose to point the run's adapter at it)"))
    return 0
