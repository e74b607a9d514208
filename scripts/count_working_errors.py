"""Where the add/sub rows of one checkpoint go wrong inside their `aligned` working.

    python scripts/count_working_errors.py results/RUN/checkpoints/step_500/predictions_math.npy \
        data/prepared/default/validation.jsonl aligned          # or aligned_lsd, reversed

Reads the predictions `eval-checkpoints` (or `infer`) wrote for the first rows of the tests
file, rebuilds each add/sub row's expected working in STYLE, and counts: sign and padded
operands right; for `reversed`, the backwards operands right too; the final answer right under
the contest's rule; the result right (for `aligned_lsd` and `reversed`: the backwards result,
and whether the forward result is the backwards one turned round); wrong digits per row and by
place (0 = the last column). The counts behind docs/experiments.md sections 10, 11 and 16.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.data.rewrite import rewrite_target  # noqa: E402
from pipeline.scoring.math import grade  # noqa: E402


def pieces(line: str) -> list[str]:
    """``a op b = -(X + Y = R)`` -> ['-', '(', 'X', '+', 'Y', '=', 'R', ')']."""
    start = line.find("(")
    if start < 1:
        return []
    return line[start - 1:].replace("(", " ( ").replace(")", " ) ").split()


def wrong_places(want: str, got: str, backwards: bool) -> list[int]:
    if len(want) != len(got):
        return []
    bad = [k for k in range(len(want)) if want[k] != got[k]]
    return bad if backwards else [len(want) - 1 - k for k in bad]


def count(predictions: Path, tests: Path, style: str) -> dict:
    # Our own eval output (an object array of dicts, as the contest writes it).
    preds = np.load(predictions, allow_pickle=True)
    rows = [json.loads(line) for line in tests.open(encoding="utf-8")][:len(preds)]
    c, per_row, places = Counter(), Counter(), Counter()
    for row, pred in zip(rows, preds):
        if row["type"] not in ("add", "sub"):
            continue
        # the contest's rule (value equality) and continuation, as `evaluate` grades the row
        graded = grade(pred["text_generation_text"][0], row["solution"], row["problem"], row["type"],
                       prompt=row.get("prompt"), rules=["exact"])
        answer = graded.continuation.strip()
        want = rewrite_target(row["problem"], row["solution"], row["type"], 2, style)
        c["add/sub rows"] += 1
        c["final answer right"] += graded.verdicts["exact"]
        w, g = pieces(want.splitlines()[0]), pieces(answer.splitlines()[0] if answer else "")
        if g[:5] != w[:5]:
            continue
        c["sign and operands right"] += 1
        if style == "reversed":                     # ... = Xb op Yb = Rb = R)
            if g[6:9] != w[6:9]:
                continue
            c["backwards operands right"] += 1
        at = 10 if style == "reversed" else 6        # where the (backwards) result is
        backwards = style in ("aligned_lsd", "reversed")
        got_r = g[at] if len(g) > at else ""
        c["backwards result right" if backwards else "result right"] += got_r == w[at]
        if backwards:
            forward = g[at + 2] if len(g) > at + 2 else ""
            c["forward result = backwards turned round"] += forward == got_r[::-1]
            c["forward result right"] += forward == w[at + 2]
        bad = wrong_places(w[at], got_r, backwards=backwards)
        if bad:
            per_row[len(bad)] += 1
            places.update(bad)
    return {"counts": dict(c), "wrong digits per row": dict(sorted(per_row.items())),
            "wrong digits by place": dict(sorted(places.items()))}


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    print(json.dumps(count(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]), indent=1))
