"""``python -m pipeline data generate|import|prepare|stats|squad``: the data stage."""
from __future__ import annotations

import argparse

from pathlib import Path

from pipeline.commands import emit
from pipeline.errors import PipelineError

EPILOG = """examples:
  python -m pipeline data generate --n 800000 --seed 0 --out data/train.json
  python -m pipeline data import data/train.json --out data/imported.jsonl
  python -m pipeline data prepare --recipe configs/data/default.yaml
  python -m pipeline data stats data/prepared/default/train.jsonl --seq-length 256
  python -m pipeline data squad --out data/squad_eval.jsonl --limit 200
"""


def _counts_table(counts: dict[str, int]) -> str:
    total = sum(counts.values()) or 1
    return "\n".join(f"  {name:<10} {n:>8}  {n / total * 100:6.2f}%" for name, n in counts.items())


def cmd_generate(args) -> int:
    from pipeline.data.generate import write_generated
    types = args.types.split(",") if args.types else None
    counts = write_generated(args.out, args.n, args.seed, types, progress=not args.json)
    result = {"path": args.out, "rows": sum(counts.values()), "seed": args.seed, "counts": counts}
    emit(result, args.json, lambda r: f"wrote {r['rows']} rows to {r['path']} (seed {r['seed']})\n"
         + _counts_table(r["counts"]))
    return 0


def cmd_import(args) -> int:
    from pipeline.data import io
    rows, report = io.import_file(args.path, dedup=not args.keep_duplicates, progress=not args.json)
    if args.out:
        io.write_jsonl(args.out, rows, keys=("problem", "solution", "type"))
    result = {**report.to_dict(), "out": args.out}

    def human(r):
        lines = [f"{r['path']}: {r['rows_read']} valid rows, {r['malformed_count']} malformed, "
                 f"{r['duplicates']} duplicates removed, {r['rows_kept']} kept"]
        lines += [f"  line {m['line']}: {m['reason']}" for m in r["malformed"]]
        if r["malformed_count"] > len(r["malformed"]):
            lines.append(f"  ... and {r['malformed_count'] - len(r['malformed'])} more")
        lines.append(_counts_table(r["counts"]))
        if r["out"]:
            lines.append(f"wrote {r['out']}")
        return "\n".join(lines)
    emit(result, args.json, human)
    return 0


def cmd_prepare(args) -> int:
    from pipeline.data.prepare import prepare
    from pipeline.data.recipes import load_recipe
    recipe = load_recipe(args.recipe)
    manifest = prepare(recipe, out_dir=args.out, progress=not args.json)

    def human(m):
        lines = [f"recipe {m['recipe']['name']} -> {m['dir']}"]
        lines += [f"  {s['step']:<17} {s['rows']:>8} rows" for s in m["steps"]]
        for name, split in m["splits"].items():
            lines.append(f"  {name:<17} {split['rows']:>8} rows  "
                         + ", ".join(f"{t} {n}" for t, n in split["by_type"].items()))
        for name, info in m["overlong"].items():
            if info["count"]:
                lines.append(f"  {name}: {info['count']} rows over seq_length {m['seq_length']} "
                             f"({info['action']}): " + ", ".join(f"{t} {n}" for t, n in info["by_type"].items()))
        lines += [f"  wrote {name}" for name in m["files"]]
        lines += [f"  warning: {w}" for w in m.get("warnings", [])]
        return "\n".join(lines)
    emit(manifest, args.json, human)
    return 0


def cmd_stats(args) -> int:
    from pipeline.data.stats import data_stats, format_stats
    tokenizer = None
    if args.tokenizer != "none":
        from pipeline.data.prepare import load_tokenizer_by_name
        tokenizer = load_tokenizer_by_name(args.tokenizer)
    stats = data_stats(args.path, tokenizer, template=args.template, wrapper=args.wrapper,
                       seq_length=args.seq_length)
    emit(stats, args.json, format_stats)
    return 0


def cmd_squad(args) -> int:
    from pipeline.data.squad import squad_subset, write_squad_eval
    from pipeline.runs import write_jsonl
    if args.subset and args.limit:
        raise PipelineError("give --limit (first N items) or --subset (a fixed spread of N), not both")
    if args.after and not args.subset:
        raise PipelineError("--after skips items of a --subset ranking: give --subset too")
    if args.subset:
        items = squad_subset(args.subset, seed=args.seed, after=args.after)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(Path(args.out), items)
        rows = len(items)
    else:
        rows = write_squad_eval(args.out, limit=args.limit)
    emit({"path": args.out, "rows": rows}, args.json, lambda r: f"wrote {r['rows']} SQuAD items to {r['path']}")
    return 0


def register(subparsers) -> None:
    from pipeline.data.prompts import PROMPTS, WRAPPERS

    data = subparsers.add_parser(
        "data", help="generate, import, prepare and inspect training data",
        description="The data stage: a faithful generator of the contest's train.json, an "
                    "importer for your own, recipes (configs/data/*.yaml) that turn rows into "
                    "training files (JSONL, contest conversation JSON, MindRecord), and stats.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(func=func)
        return p

    p = add("generate", cmd_generate,
            "write N contest-style rows (14 Chinese types, exact templates and answer rules) "
            "as JSON Lines; the same --seed gives a byte-identical file")
    p.add_argument("--n", type=int, required=True, help="rows to write (the contest had 800,000 Chinese)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output .json/.jsonl path")
    p.add_argument("--types", help="comma-separated types to generate (shares renormalised), "
                                   "e.g. add,sub,equation")

    p = add("import", cmd_import,
            "validate a train.json (JSON Lines or a JSON array), report malformed lines, "
            "de-duplicate, tag types and print per-type counts")
    p.add_argument("path", help="your train.json")
    p.add_argument("--out", help="write the clean rows (problem, solution, type) as JSON Lines")
    p.add_argument("--keep-duplicates", action="store_true", help="do not de-duplicate")

    p = add("prepare", cmd_prepare,
            "run a data recipe: sampling, answer rewriting, prompts, splits, and the writers "
            "(JSONL, conversation JSON, MindRecord) plus manifest.json")
    p.add_argument("--recipe", required=True, help="configs/data/NAME.yaml")
    p.add_argument("--out", help="output folder (default: the recipe's output.dir)")

    p = add("stats", cmd_stats, "rows per type and token lengths of a data file")
    p.add_argument("path", help="a contest train.json or a prepared train/validation/test .jsonl")
    p.add_argument("--tokenizer", default="smollm2", choices=["smollm2", "none"],
                   help="tokenizer for lengths (default smollm2; none: counts only)")
    p.add_argument("--template", default="minimal", choices=list(PROMPTS),
                   help="prompt for rows without their own 'prompt' field (default minimal)")
    p.add_argument("--wrapper", default="none", choices=list(WRAPPERS), help="prompt wrapper")
    p.add_argument("--seq-length", type=int, help="also count rows longer than this")

    p = add("squad", cmd_squad, "write the contest's SQuAD eval set (2,067 items, contest prompt) as JSONL")
    p.add_argument("--out", required=True, help="output .jsonl path")
    p.add_argument("--limit", type=int, help="only the first N items")
    p.add_argument("--subset", type=int,
                   help="a fixed N-item spread over all articles (sha256 of seed:id; same on every machine)")
    p.add_argument("--seed", type=int, default=0, help="seed of --subset (default 0)")
    p.add_argument("--after", type=int, default=0,
                   help="with --subset: skip the first K of the same ranking, e.g. --subset 100 "
                        "--after 100 gives 100 held-out items disjoint from --subset 100's")
