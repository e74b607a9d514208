"""classify, score-math: the math side of scoring from files.

    python -m pipeline classify TESTS.jsonl [--json]
    python -m pipeline score-math PRED.npy TESTS.jsonl [--rule R] [--prompt TEMPLATE] [--json]
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipeline.commands import emit
from pipeline.errors import PipelineError

_PROGRESS_FROM = 50_000  # rows; smaller files score in about a second


def read_math_tests(path, need_solution: bool = True) -> list[dict]:
    """JSON Lines of {"problem", "solution"} rows; PipelineError naming line and field."""
    from pipeline.runs import read_jsonl

    rows = read_jsonl(path)
    if not rows:
        raise PipelineError('no rows: expected JSON Lines of {"problem": ..., "solution": ...}', path)
    fields = ("problem", "solution") if need_solution else ("problem",)
    for index, row in enumerate(rows):
        for name in fields:
            if not isinstance(row, dict) or not isinstance(row.get(name), str):
                line = _line_of(path, index)
                what = "is not a JSON object" if not isinstance(row, dict) else \
                    f"field {name!r} is missing or not a string"
                raise PipelineError(f"line {line}: {what}", path)
    return rows


def _line_of(path, index: int) -> int:
    """File line number of the index-th non-blank line (read_jsonl skips blank ones)."""
    with open(path, encoding="utf-8") as fh:
        seen = -1
        for line_no, line in enumerate(fh, start=1):
            if line.strip():
                seen += 1
                if seen == index:
                    return line_no
    return index + 1


def _table(header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_classify(args) -> int:
    from pipeline.problems import TYPES, classify

    rows = read_math_tests(args.tests, need_solution=False)
    types = [classify(row["problem"], row.get("solution")) for row in rows]
    counts = Counter(types)
    result = {"counts": {t: counts[t] for t in TYPES if counts[t]}, "types": types}

    def human(res):
        total = len(res["types"]) or 1
        body = [[t, n, f"{n / total:.1%}"] for t, n in res["counts"].items()]
        return _table(["type", "rows", "share"], body) + f"\n{len(res['types'])} rows"

    emit(result, args.json, human)
    return 0


def cmd_score_math(args) -> int:
    from pipeline.npy import load_predictions
    from pipeline.scoring.math import RULES, make_tolerance, score_math

    tests = read_math_tests(args.tests)
    outputs = load_predictions(args.predictions)
    if len(outputs) != len(tests):
        raise PipelineError(
            f"{len(outputs)} predictions in {args.predictions} but {len(tests)} test rows in "
            f"{args.tests}; they must match one to one")
    rules = dict(RULES)
    rules["tolerance"] = make_tolerance(args.abs_tol, args.rel_tol)
    chosen = rules if args.samples else {args.rule: rules[args.rule]}
    # A template typed in a shell arrives with literal "\n"; the contest prompts mean newlines.
    prompt = args.prompt.replace("\\n", "\n") if args.prompt else None
    rows, summary = score_math(outputs, tests, rules=chosen, prompt=prompt, headline=args.rule,
                               progress=len(tests) >= _PROGRESS_FROM)
    if args.samples:
        from pipeline.runs import write_jsonl
        write_jsonl(Path(args.samples), rows)
    entry = summary["rules"][args.rule]
    result = {"rule": args.rule, "accuracy": entry["accuracy"], "correct": entry["correct"],
              "total": entry["total"], "by_type": entry["by_type"]}

    def human(res):
        body = [[t, v["correct"], v["total"], f"{v['accuracy']:.2%}"] for t, v in res["by_type"].items()]
        body.append(["all", res["correct"], res["total"], f"{res['accuracy']:.2%}"])
        return f"rule: {res['rule']}\n" + _table(["type", "correct", "total", "accuracy"], body)

    emit(result, args.json, human)
    return 0


def register(subparsers) -> None:
    from pipeline.scoring.math import HEADLINE_RULE, RULES

    p = subparsers.add_parser(
        "classify", help="count the contest problem types in a tests file",
        description="Classify each row of a JSON Lines file of {\"problem\", \"solution\"} rows "
                    "into the 15 contest problem types (or 'unknown').")
    p.add_argument("tests", metavar="TESTS.jsonl", help="JSON Lines with a 'problem' field per row")
    p.add_argument("--json", action="store_true", help='print {"counts": {type: n}, "types": [...]}')
    p.set_defaults(func=cmd_classify)

    p = subparsers.add_parser(
        "score-math", help="grade contest predictions (.npy) against math tests",
        description="Grade a contest prediction file (prompt + continuation per row) against "
                    "the test rows it answers. Rules: contains (the contest kit's substring "
                    "check), exact (default: the contest's rule, the value equals the "
                    "reference), rounded and tolerance (lenient: within --abs-tol).")
    p.add_argument("predictions", metavar="PRED.npy", help="contest-format prediction file")
    p.add_argument("tests", metavar="TESTS.jsonl", help='JSON Lines of {"problem", "solution"}, same order')
    p.add_argument("--rule", choices=list(RULES), default=HEADLINE_RULE,
                   help=f"grading rule (default: {HEADLINE_RULE}, the contest's)")
    p.add_argument("--prompt", metavar="TEMPLATE", default=None,
                   help="the inference prompt template with {problem}, e.g. '{problem}\\n\\n### Response:'; "
                        "without it the echo is cut after the last copy of the problem")
    p.add_argument("--abs-tol", default="0.01", help="tolerance rule: absolute bound (default 0.01)")
    p.add_argument("--rel-tol", default="0", help="tolerance rule: relative bound (default 0)")
    p.add_argument("--samples", metavar="OUT.jsonl", default=None,
                   help="also write per-sample rows (samples_math.jsonl format, all rules)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_score_math)
