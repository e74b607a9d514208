"""Benchmark: grade N contest-style predictions under every math rule.

    python bench/bench_scoring.py            # 800,000 rows (the contest's Chinese set size)
    python bench/bench_scoring.py --n 50000  # quicker

Rows follow the contest's type shares (docs/contest.md section 2) with synthetic operands
computed by the contest's own answer rules; each prediction is prompt + continuation with a
mix of right, rounded, sign-flipped, echoed and empty answers. Reports rows/s for
``score_math`` (all four rules + extraction + error classes) against a peer measured in the
same run: the contest kit's plain ``reference in prediction`` loop.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from decimal import Decimal, getcontext

from pipeline.problems import reference_answer
from pipeline.scoring.math import RULES, score_math

PROMPT = "{problem}\n\n### Response:"
# Shares of unique rows per type (docs/contest.md); English ~1.8%.
SHARES = {"add": 16.4, "sub": 16.3, "mul": 16.4, "div": 16.4, "equation": 7.3, "sqrt": 7.1,
          "power": 7.1, "function": 3.6, "mean": 3.6, "area": 1.6, "discount": 1.1,
          "sales": 1.1, "mass": 0.02, "fraction": 0.01, "english": 1.8}


def _d2(rng) -> str:
    return f"{rng.choice((-1, 1)) * rng.uniform(10, 9999.99):.2f}"


def make_row(kind: str, rng: random.Random) -> dict:
    """One synthetic {"problem", "solution"} row of a type, answers by the contest rules."""
    getcontext().prec = 28
    if kind in ("add", "sub", "mul", "div"):
        a, b = _d2(rng), _d2(rng)
        op = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[kind]
        da, db = Decimal(a), Decimal(b)
        r = {"add": da + db, "sub": da - db, "mul": da * db, "div": da / db}[kind]
        return {"problem": f"计算 {a} {op} {b} 等于多少？", "solution": f"{a} {op} {b} = {r}"}
    if kind == "equation":
        k, b = rng.choice([i for i in range(-100, 101) if i]), rng.randint(-100, 100)
        return {"problem": f"解方程 {k}x + {b} = 0", "solution": f"方程的解为：{-b / k!r}"}
    if kind == "sqrt":
        a = f"{rng.uniform(30, 9900):.2f}"
        return {"problem": f"计算 {a} 的平方根？", "solution": f"√{a} = {Decimal(a).sqrt()}"}
    if kind == "power":
        a, n = f"{rng.uniform(-999, 999):.2f}", rng.randint(0, 5)
        return {"problem": f"计算 {a} 的 {n} 次方？", "solution": f"{a}^{n} = {Decimal(a) ** n}"}
    if kind == "function":
        x, k, n = f"{rng.uniform(0.01, 9.99):.2f}", rng.randint(1, 100), rng.randint(1, 99)
        return {"problem": f"当 x = {x} 时，求函数 y = {k}x^{n} 的值",
                "solution": f"函数的值为：{k * Decimal(x) ** n}"}
    if kind == "mean":
        vals = [rng.randint(1, 100) for _ in range(rng.randint(3, 10))]
        return {"problem": f"求以下数据的平均值：[{', '.join(map(str, vals))}]",
                "solution": f"平均值为 {sum(vals) / len(vals)!r}"}
    if kind in ("area", "mass"):
        x, y = rng.randint(1, 100), rng.randint(1, 100)
        if kind == "area":
            return {"problem": f"一个长方形的长为 {x} 厘米，宽为 {y} 厘米，请计算其面积。",
                    "solution": f"面积为 {x * y} 平方厘米"}
        return {"problem": f"某物体的密度为 {x} 克/立方厘米，体积为 {y} 立方厘米，请计算该物体的质量。",
                "solution": f"{x * y} 克"}
    if kind == "discount":
        p, q = rng.randint(50, 1000), rng.randint(10, 900)
        return {"problem": f"商品原价为 {p} 元，打折后的价格为 {q} 元，请计算打折的折扣比例。",
                "solution": repr((p - q) / p * 100)}
    if kind == "sales":
        s, g = rng.randint(1, 100), rng.randint(15, 99)
        return {"problem": f"去年销售额为 {s} 万元，今年销售额增加了 {g}%，请计算今年的销售额。",
                "solution": repr(s + s * g / 100)}
    if kind == "fraction":
        c, d, m = rng.randint(1, 20), rng.randint(21, 40), rng.randint(2, 9)
        return {"problem": f"将分数 {c * m}/{d * m} 进行简化。", "solution": f"最简化的形式为：{c}/{d}"}
    n = rng.randint(2, 99)
    return {"problem": f"What is the sum of the first {n} positive integers? Show $x$.",
            "solution": f"The sum is $\\frac{{n(n+1)}}{{2}}$, so \\boxed{{{n * (n + 1) // 2}}}."}


def make_prediction(row: dict, rng: random.Random) -> str:
    """prompt + a continuation: right (40%), rounded, sign-flipped, echoed, empty, other."""
    ref = reference_answer(row["solution"], None)
    roll = rng.random()
    if roll < 0.40:
        cont = row["solution"]
    elif roll < 0.60 and "." in ref:
        cont = f"答案为 {float(ref.replace('E', 'e')):.2f}"
    elif roll < 0.70:
        cont = f"= {ref[1:] if ref.startswith('-') else '-' + ref}"
    elif roll < 0.80:
        cont = row["problem"]
    elif roll < 0.85:
        cont = ""
    else:
        cont = f"{row['problem']} = {rng.uniform(-1e4, 1e4):.4f}。"
    return PROMPT.replace("{problem}", row["problem"]) + " " + cont


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=800_000, help="rows to grade (default 800000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    kinds, weights = list(SHARES), list(SHARES.values())
    t0 = time.perf_counter()
    tests = [make_row(k, rng) for k in rng.choices(kinds, weights, k=args.n)]
    outputs = [make_prediction(row, rng) for row in tests]
    print(f"generated {args.n:,} rows in {time.perf_counter() - t0:.1f} s")

    # Peer: the contest kit's rule, a bare substring test over the reference answers.
    refs = [reference_answer(t["solution"], None) for t in tests]
    t0 = time.perf_counter()
    peer_correct = sum(ref in out for ref, out in zip(refs, outputs))
    peer = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows, summary = score_math(outputs, tests, prompt=PROMPT)
    took = time.perf_counter() - t0

    print(f"score_math, rules {', '.join(RULES)}: {args.n:,} rows in {took:.2f} s "
          f"= {args.n / took:,.0f} rows/s")
    print(f"peer (contest kit substring loop): {peer:.3f} s = {args.n / peer:,.0f} rows/s; "
          f"score_math / peer time ratio {took / peer:.0f}x")
    for rule, entry in summary["rules"].items():
        print(f"  {rule:9s} accuracy {entry['accuracy']:.4f}")
    assert summary["rules"]["contains"]["correct"] == peer_correct, "contains disagrees with peer"
    return 0


if __name__ == "__main__":
    sys.exit(main())
