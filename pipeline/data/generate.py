"""A seeded generator of the contest's 14 Chinese problem types (docs/contest.md section 2).

Every row is ``{"problem": str, "solution": str}`` with the contest's exact templates and
answer rules. Each rule is a pure function of the operand strings (``RULES[type](ops)``),
so a test can recompute any generated solution from its problem alone.

Type shares: the spec gives shares of *unique* rows over 15 types; English is free-form and
not generated, so by default the 14 Chinese shares are renormalised to sum to 1
(add 16.4 / 98.03 = 16.73% ...). Types whose operand space is small (area, mass, discount,
sales: 10,000 pairs) repeat, as in the contest file; shares here are shares of drawn rows.

Operand ranges (spec section 2; where the spec says "about" we take the natural range):
add/sub/mul/div: cents uniform in [-9999.99, 9999.99] (divisor non-zero); power: base in
[-999.99, 999.99] non-zero, exponent 0..5; sqrt: [1.00, 9999.99]; equation: K in
[-100, 100] non-zero, B in [-100, 100], written ``Kx + B = 0`` (``+ -45``); function:
x in [0.01, 9.99], K 1..100, N 1..99; mean: 3..10 integers in 1..100; area, mass,
discount, sales, fraction: integers 1..100 (sales growth G 1..100: equal unique counts of
discount and sales rows in the contest file, 1.1% each, need equal 100 x 100 spaces).

Reproducible: one ``random.Random(seed)``; the same (n, seed, types) gives the same rows in
the same order, so ``write_generated`` gives byte-identical files.
"""
from __future__ import annotations

import json
import math
import random
from decimal import Context, Decimal
from pathlib import Path
from typing import Callable, Iterator

from pipeline.errors import PipelineError

# Shares of unique rows in the contest's train.json, percent (docs/contest.md section 2).
SPEC_SHARES: dict[str, float] = {
    "add": 16.4, "sub": 16.3, "mul": 16.4, "div": 16.4, "equation": 7.3, "sqrt": 7.1,
    "power": 7.1, "function": 3.6, "mean": 3.6, "area": 1.6, "discount": 1.1, "sales": 1.1,
    "mass": 0.02, "fraction": 0.01,
}
GENERATED_TYPES: tuple[str, ...] = tuple(SPEC_SHARES)

# Python's default decimal context (28 significant digits, half-even), pinned so a caller
# changing decimal.getcontext() cannot change the answers.
_CTX = Context(prec=28)
_CHUNK = 10_000  # rows per progress update; fixed so output never depends on the display


def default_shares(types: list[str] | tuple[str, ...] | None = None) -> dict[str, float]:
    """Spec shares renormalised over ``types`` (default: all 14), as fractions summing to 1.

    Raises PipelineError for a type the generator does not produce.
    """
    chosen = list(types) if types else list(GENERATED_TYPES)
    unknown = [t for t in chosen if t not in SPEC_SHARES]
    if unknown:
        raise PipelineError(f"cannot generate type(s) {', '.join(unknown)}; "
                            f"choose from {', '.join(GENERATED_TYPES)}")
    total = sum(SPEC_SHARES[t] for t in chosen)
    return {t: SPEC_SHARES[t] / total for t in chosen}


# ---- answer rules: operand strings -> solution text (pure) ----------------------------

def _dec(text: str) -> Decimal:
    return Decimal(text)


def _binary_rule(symbol: str, operation):
    """The rule "a <symbol> b = <exact Decimal result>" for one of the four operations."""
    def solve(ops: dict) -> str:
        return f"{ops['a']} {symbol} {ops['b']} = {operation(_dec(ops['a']), _dec(ops['b']))}"
    return solve


solve_add = _binary_rule("+", _CTX.add)
solve_sub = _binary_rule("-", _CTX.subtract)
solve_mul = _binary_rule("*", _CTX.multiply)
solve_div = _binary_rule("/", _CTX.divide)


def solve_sqrt(ops: dict) -> str:
    return f"√{ops['a']} = {_CTX.sqrt(_dec(ops['a']))}"


def solve_power(ops: dict) -> str:
    return f"{ops['a']}^{ops['n']} = {_CTX.power(_dec(ops['a']), int(ops['n']))}"


def solve_equation(ops: dict) -> str:
    return f"方程的解为：{-int(ops['b']) / int(ops['k'])!r}"


def solve_function(ops: dict) -> str:
    # K * (x ** N): the power is rounded to 28 digits first, then the product, as Python does.
    value = _CTX.multiply(_dec(ops["k"]), _CTX.power(_dec(ops["x"]), int(ops["n"])))
    return f"函数的值为：{value}"


def solve_mean(ops: dict) -> str:
    values = [int(v) for v in ops["values"]]
    return f"平均值为 {sum(values) / len(values)!r}"


def solve_area(ops: dict) -> str:
    return f"面积为 {int(ops['l']) * int(ops['w'])} 平方厘米"


def solve_discount(ops: dict) -> str:
    p, q = int(ops["p"]), int(ops["q"])
    return repr((p - q) / p * 100)


def solve_sales(ops: dict) -> str:
    s, g = int(ops["s"]), int(ops["g"])
    return repr(s + s * g / 100)


def solve_mass(ops: dict) -> str:
    return f"{int(ops['d']) * int(ops['v'])} 克"


def solve_fraction(ops: dict) -> str:
    a, b = int(ops["a"]), int(ops["b"])
    g = math.gcd(a, b)
    return f"最简化的形式为：{a // g}/{b // g}"


RULES: dict[str, Callable[[dict], str]] = {
    "add": solve_add, "sub": solve_sub, "mul": solve_mul, "div": solve_div,
    "equation": solve_equation, "sqrt": solve_sqrt, "power": solve_power,
    "function": solve_function, "mean": solve_mean, "area": solve_area,
    "discount": solve_discount, "sales": solve_sales, "mass": solve_mass,
    "fraction": solve_fraction,
}


# ---- problem makers: rng -> (problem, operands) ----------------------------------------

def _cents(rng: random.Random, low: int, high: int, nonzero: bool = False) -> str:
    """A 2-decimal operand string from an integer number of cents in [low, high]."""
    while True:
        c = rng.randint(low, high)
        if c or not nonzero:
            return f"{c / 100:.2f}"


def _binary(symbol: str, nonzero_b: bool = False):
    def make(rng: random.Random) -> tuple[str, dict]:
        a = _cents(rng, -999_999, 999_999)
        b = _cents(rng, -999_999, 999_999, nonzero=nonzero_b)
        return f"计算 {a} {symbol} {b} 等于多少？", {"a": a, "b": b}
    return make


def _make_equation(rng):
    k = 0
    while k == 0:
        k = rng.randint(-100, 100)
    b = rng.randint(-100, 100)
    return f"解方程 {k}x + {b} = 0", {"k": str(k), "b": str(b)}


def _make_sqrt(rng):
    a = _cents(rng, 100, 999_999)
    return f"计算 {a} 的平方根？", {"a": a}


def _make_power(rng):
    a = _cents(rng, -99_999, 99_999, nonzero=True)
    n = rng.randint(0, 5)
    return f"计算 {a} 的 {n} 次方？", {"a": a, "n": str(n)}


def _make_function(rng):
    x = _cents(rng, 1, 999)
    k, n = rng.randint(1, 100), rng.randint(1, 99)
    return f"当 x = {x} 时，求函数 y = {k}x^{n} 的值", {"x": x, "k": str(k), "n": str(n)}


def _make_mean(rng):
    values = [rng.randint(1, 100) for _ in range(rng.randint(3, 10))]
    return f"求以下数据的平均值：{values}", {"values": [str(v) for v in values]}


def _two_ints(template: str, first: str, second: str):
    """A maker for a word problem over two integers 1..100 (template: two ``{}`` fields)."""
    def make(rng):
        x, y = rng.randint(1, 100), rng.randint(1, 100)
        return template.format(x, y), {first: str(x), second: str(y)}
    return make


_make_area = _two_ints("一个长方形的长为 {} 厘米，宽为 {} 厘米，请计算其面积。", "l", "w")
_make_discount = _two_ints("商品原价为 {} 元，打折后的价格为 {} 元，请计算打折的折扣比例。", "p", "q")
_make_sales = _two_ints("去年销售额为 {} 万元，今年销售额增加了 {}%，请计算今年的销售额。", "s", "g")
_make_mass = _two_ints("某物体的密度为 {} 克/立方厘米，体积为 {} 立方厘米，请计算该物体的质量。", "d", "v")
_make_fraction = _two_ints("将分数 {}/{} 进行简化。", "a", "b")


MAKERS: dict[str, Callable[[random.Random], tuple[str, dict]]] = {
    "add": _binary("+"), "sub": _binary("-"), "mul": _binary("*"),
    "div": _binary("/", nonzero_b=True), "equation": _make_equation, "sqrt": _make_sqrt,
    "power": _make_power, "function": _make_function, "mean": _make_mean,
    "area": _make_area, "discount": _make_discount, "sales": _make_sales,
    "mass": _make_mass, "fraction": _make_fraction,
}


# ---- generation ------------------------------------------------------------------------

def generate_rows(n: int, seed: int, types=None, with_type: bool = False) -> Iterator[dict]:
    """Yield ``n`` rows ``{"problem", "solution"}`` (plus ``"type"`` when with_type).

    types: restrict to these generated types (shares renormalised over them).
    Raises PipelineError for n < 0 or an unknown type.
    """
    if n < 0:
        raise PipelineError(f"--n must be >= 0, got {n}")
    shares = default_shares(types)
    names = list(shares)
    cum, acc = [], 0.0
    for name in names:
        acc += shares[name]
        cum.append(acc)
    rng = random.Random(seed)
    done = 0
    while done < n:
        size = min(_CHUNK, n - done)
        for name in rng.choices(names, cum_weights=cum, k=size):
            problem, ops = MAKERS[name](rng)
            row = {"problem": problem, "solution": RULES[name](ops)}
            if with_type:
                row["type"] = name
            yield row
        done += size


def write_generated(path, n: int, seed: int, types=None, progress: bool = True) -> dict:
    """Write ``n`` generated rows as contest JSON Lines to ``path``; return counts per type.

    Output is UTF-8, one ``{"problem": ..., "solution": ...}`` per line, byte-identical for
    the same (n, seed, types). Raises PipelineError when the folder cannot be written.
    """
    from pipeline.progress import Progress

    default_shares(types)  # fail on a bad type before touching the file
    if n < 0:
        raise PipelineError(f"--n must be >= 0, got {n}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise PipelineError(f"cannot write: {exc.strerror}", path) from exc
    counts: dict[str, int] = {}
    dumps = json.dumps
    with handle, Progress(n, "generate", unit="row", disable=not progress) as bar:
        buffer = []
        for row in generate_rows(n, seed, types, with_type=True):
            name = row.pop("type")
            counts[name] = counts.get(name, 0) + 1
            buffer.append(dumps(row, ensure_ascii=False))
            if len(buffer) == _CHUNK:
                handle.write("\n".join(buffer) + "\n")
                bar.update(len(buffer))
                buffer = []
        if buffer:
            handle.write("\n".join(buffer) + "\n")
            bar.update(len(buffer))
    return {t: counts[t] for t in GENERATED_TYPES if t in counts}
