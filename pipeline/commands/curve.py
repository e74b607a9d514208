"""eval-checkpoints: accuracy against training step from a run's saved adapters."""
from __future__ import annotations

from pipeline.commands import emit


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-checkpoints", help="score a run's saved adapters: accuracy against training step",
        description="Decode math tests with each saved adapter/step_<N>.ckpt of a run and write "
                    "results/<run>/checkpoints_math.json (accuracy under every rule, per type "
                    "under the headline rule). Resumable: scored points are kept. Choose the "
                    "checkpoint on validation rows, not on the test. Example: python -m pipeline "
                    "eval-checkpoints --run smollm2-lora --tests "
                    "data/prepared/default/validation.jsonl --limit 200 --every 50")
    p.add_argument("--run", required=True, help="run id or folder holding adapter/step_<N>.ckpt")
    p.add_argument("--tests", required=True, help="math rows (JSONL of problem/solution)")
    p.add_argument("--limit", type=int, help="only the first N rows (same N for every point)")
    p.add_argument("--every", type=int,
                   help="only steps that are multiples of K, plus the last (default: every "
                        "saved adapter)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int,
                   help="default: as infer (room for the run's longest training target)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_eval_checkpoints)


def _eval_checkpoints(args) -> int:
    from pipeline.checkpoint_curve import eval_checkpoints, render_curve
    curve = eval_checkpoints(args.run, args.tests, limit=args.limit, every=args.every,
                             batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                             quiet=args.json, command=args.command_line)
    emit(curve, args.json, render_curve)
    return 0
