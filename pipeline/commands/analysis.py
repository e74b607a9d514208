"""errors, report: what a run got wrong, and a shareable report on several runs.

    python -m pipeline errors --run RUN [--type add] [--rule R] [--json]
    python -m pipeline report --runs A B [...] --out report.md [--rule R]
"""
from __future__ import annotations

from pathlib import Path

from pipeline.commands import emit


def _errors(args) -> int:
    from pipeline.compare import error_breakdown
    emit(error_breakdown(args.run, rule=args.rule, ptype=args.type), args.json, render_errors)
    return 0


def render_errors(res: dict) -> str:
    """The terminal view of ``compare.error_breakdown``: class counts, then positions."""
    scope = f" ({res['type']} only)" if res["type"] else ""
    lines = [f"run {res['run']}{scope}: {res['wrong']} of {res['total']} wrong under "
             f"'{res['rule']}'", "", f"{'class':<12}{'count':>6}{'share':>8}  example"]
    for cls, count in res["classes"].items():
        if not count:
            continue
        ex = res["examples"].get(cls) or {}
        example = (f"{ex.get('problem')}  ref {ex.get('reference')}  got {ex.get('extracted')}"
                   if ex else "")
        lines.append(f"{cls:<12}{count:>6}{count / max(res['wrong'], 1):>8.0%}  {example}")
    for ptype, positions in res["positions"].items():
        names = list(positions)
        widths = [max(5, len(n)) for n in names]
        lines += ["", f"{ptype}: share of rows with the right digit at each position"]
        lines.append("  " + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths)))
        lines.append("  " + "  ".join(f"{positions[n]['accuracy']:>{w}.0%}"
                                      for n, w in zip(names, widths)))
        lines.append("  " + "  ".join(f"{'n=' + str(positions[n]['total']):>{w}}"
                                      for n, w in zip(names, widths)))
    return "\n".join(lines)


def _report(args) -> int:
    from pipeline.report import write_report
    written = write_report(args.runs, Path(args.out), rule=args.rule)
    print("\n".join(f"wrote {p}" for p in written))
    return 0


def register(subparsers) -> None:
    from pipeline.scoring.rules import HEADLINE_RULE, RULES

    p = subparsers.add_parser(
        "errors", help="what a run's math answers got wrong: error classes and digit positions",
        description="Counts the error classes of the answers wrong under a rule (carry, digit, "
                    "rounding, wrong_sign, magnitude, ... see docs/error_classes.md) with one "
                    "example each, and per problem type how often each digit position (sign, "
                    "thousands ... hundredths) is right. Reads samples_math.jsonl only. "
                    "Example: python -m pipeline errors --run smollm2-lora --type sub")
    p.add_argument("--run", required=True, help="run id or run folder (scored by evaluate)")
    p.add_argument("--type", help="only this problem type (add, sub, mul, div, ...)")
    p.add_argument("--rule", choices=list(RULES),
                   help="rule that decides right/wrong (default: the run's headline rule)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_errors)

    p = subparsers.add_parser(
        "report", help="a Markdown report on several runs, charts as PNG beside it",
        description="Headline table (settings, accuracy, SQuAD, gate, score, rank), per-type "
                    "accuracy with Wilson intervals and exact McNemar p against the first run "
                    "(rows paired by problem text and reference), error classes, and the "
                    "charts as PNG in <out stem>_files/. Example: python -m pipeline report "
                    "--runs smollm2-base smollm2-lora --out report.md")
    p.add_argument("--runs", nargs="+", required=True, metavar="RUN",
                   help="run ids; the first is the reference of the paired tests")
    p.add_argument("--out", required=True, help="Markdown file to write")
    p.add_argument("--rule", choices=list(RULES), default=HEADLINE_RULE,
                   help=f"math rule for accuracy and score (default: {HEADLINE_RULE})")
    p.set_defaults(func=_report)
