"""The contest's 15 problem types: templates, classification, operands, reference answers.

Each type is a small registry entry (``PROBLEM_TYPES[name]``) holding the regex of its exact
problem template (docs/contest.md section 2), the regex of its solution template, and an
operand parser. ``classify`` picks the type of a problem by those templates; anything
that matches no Chinese template but reads like free-form maths (ASCII letters or LaTeX)
is ``english``; the rest is ``unknown``.

Numbers in the templates: operands are signed decimals (``-2369.17``), a negative second
operand is written ``+ -x`` / ``- -x``; the linear equation's ``B`` may be written with its
own sign (``+ -3``) or as ``- 3`` (both accepted, operand ``B`` is returned signed).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

# A signed decimal as the templates print it (no exponent, no thousands separator).
_NUM = r"-?\d+(?:\.\d+)?"
_INT = r"-?\d+"
# The Chinese templates end with a full-width question mark; tolerate the ASCII one too.
_Q = r"[？?]"


@dataclass(frozen=True)
class ProblemType:
    """One problem type: its templates and how to read its operands.

    name: registry key; pattern: compiled regex of the full problem (``fullmatch``);
    solution: compiled regex of the solution with the answer in group ``r`` (None: free-form);
    operands: match -> dict of operand strings (None where the template has no fixed operands).
    """
    name: str
    description: str
    pattern: re.Pattern | None
    solution: re.Pattern | None
    operands: Callable[[re.Match], dict] | None = field(default=None, repr=False)


def _groups(match: re.Match) -> dict:
    return dict(match.groupdict())


def _equation_operands(match: re.Match) -> dict:
    """``Kx + B = 0`` / ``Kx - B = 0`` -> K and the signed B."""
    b = match.group("b")
    if match.group("op") == "-":
        b = b[1:] if b.startswith("-") else "-" + b
    return {"k": match.group("k"), "b": b}


def _mean_operands(match: re.Match) -> dict:
    values = [v.strip() for v in match.group("values").split(",") if v.strip()]
    return {"values": values}


def _binary(symbol: str, name: str, description: str) -> ProblemType:
    op = re.escape(symbol)
    return ProblemType(
        name, description,
        re.compile(rf"计算\s*(?P<a>{_NUM})\s*{op}\s*(?P<b>{_NUM})\s*等于多少\s*{_Q}"),
        re.compile(r".*=\s*(?P<r>\S+)\s*", re.S),
        _groups)


_TYPE_LIST = [
    _binary("+", "add", "计算 A + B 等于多少？ -> A + B = R (2 decimals)"),
    _binary("-", "sub", "计算 A - B 等于多少？ -> A - B = R (2 decimals)"),
    _binary("*", "mul", "计算 A * B 等于多少？ -> A * B = R (4 decimals)"),
    _binary("/", "div", "计算 A / B 等于多少？ -> A / B = R (28 significant digits)"),
    ProblemType(
        "equation", "解方程 Kx + B = 0 -> 方程的解为：R (repr(-B / K))",
        re.compile(rf"解方程\s*(?P<k>{_INT})\s*x\s*(?P<op>[+-])\s*(?P<b>{_INT})\s*=\s*0\s*"),
        re.compile(r"方程的解为\s*[：:]\s*(?P<r>\S+)\s*"),
        _equation_operands),
    ProblemType(
        "sqrt", "计算 A 的平方根？ -> √A = R (28 significant digits)",
        re.compile(rf"计算\s*(?P<a>{_NUM})\s*的平方根\s*{_Q}"),
        re.compile(r".*=\s*(?P<r>\S+)\s*", re.S),
        _groups),
    ProblemType(
        "power", "计算 A 的 N 次方？ -> A^N = R (exact)",
        re.compile(rf"计算\s*(?P<a>{_NUM})\s*的\s*(?P<n>{_INT})\s*次方\s*{_Q}"),
        re.compile(r".*=\s*(?P<r>\S+)\s*", re.S),
        _groups),
    ProblemType(
        "function", "当 x = X 时，求函数 y = Kx^N 的值 -> 函数的值为：R (often E+34 notation)",
        re.compile(rf"当\s*x\s*=\s*(?P<x>{_NUM})\s*时\s*[，,]\s*求函数\s*y\s*=\s*"
                   rf"(?P<k>{_NUM})\s*x\s*\^\s*(?P<n>{_INT})\s*的值\s*[。.]?\s*"),
        re.compile(r"函数的值为\s*[：:]\s*(?P<r>\S+)\s*"),
        _groups),
    ProblemType(
        "mean", "求以下数据的平均值：[a, b, ...] -> 平均值为 R (repr(sum / len))",
        re.compile(rf"求以下数据的平均值\s*[：:]\s*\[(?P<values>\s*{_NUM}(?:\s*,\s*{_NUM})*\s*)\]\s*"),
        re.compile(r"平均值为\s*(?P<r>\S+)\s*"),
        _mean_operands),
    ProblemType(
        "area", "一个长方形的长为 L 厘米，宽为 W 厘米，请计算其面积。 -> 面积为 R 平方厘米",
        re.compile(rf"一个长方形的长为\s*(?P<l>{_NUM})\s*厘米\s*[，,]\s*宽为\s*(?P<w>{_NUM})\s*厘米"
                   r"\s*[，,]\s*请计算其面积\s*[。.]?\s*"),
        re.compile(r"面积为\s*(?P<r>[^\s平]+)\s*(?:平方厘米)?\s*"),
        _groups),
    ProblemType(
        "discount", "商品原价为 P 元，打折后的价格为 Q 元，请计算打折的折扣比例。 -> R",
        re.compile(rf"商品原价为\s*(?P<p>{_NUM})\s*元\s*[，,]\s*打折后的价格为\s*(?P<q>{_NUM})\s*元"
                   r"\s*[，,]\s*请计算打折的折扣比例\s*[。.]?\s*"),
        re.compile(r"\s*(?P<r>\S+)\s*"),
        _groups),
    ProblemType(
        "sales", "去年销售额为 S 万元，今年销售额增加了 G%，请计算今年的销售额。 -> R",
        re.compile(rf"去年销售额为\s*(?P<s>{_NUM})\s*万元\s*[，,]\s*今年销售额增加了\s*(?P<g>{_NUM})\s*[%％]"
                   r"\s*[，,]\s*请计算今年的销售额\s*[。.]?\s*"),
        re.compile(r"\s*(?P<r>\S+)\s*"),
        _groups),
    ProblemType(
        "mass", "某物体的密度为 D 克/立方厘米，体积为 V 立方厘米，请计算该物体的质量。 -> R 克",
        re.compile(rf"某物体的密度为\s*(?P<d>{_NUM})\s*克\s*/\s*立方厘米\s*[，,]\s*体积为\s*(?P<v>{_NUM})"
                   r"\s*立方厘米\s*[，,]\s*请计算该物体的质量\s*[。.]?\s*"),
        re.compile(r"\s*(?P<r>[^\s克]+)\s*(?:克)?\s*"),
        _groups),
    ProblemType(
        "fraction", "将分数 a/b 进行简化。 -> 最简化的形式为：c/d",
        re.compile(r"将分数\s*(?P<a>-?\d+)\s*/\s*(?P<b>-?\d+)\s*进行简化\s*[。.]?\s*"),
        re.compile(r"最简化的形式为\s*[：:]\s*(?P<r>\S+)\s*"),
        _groups),
    ProblemType(
        "english", "free-form competition maths (LaTeX); answer in \\boxed{...}",
        None, None, None),
    ProblemType(
        "unknown", "matches no contest template", None, None, None),
]

PROBLEM_TYPES: dict[str, ProblemType] = {t.name: t for t in _TYPE_LIST}
# Stable display order (tables, charts, by_type summaries).
TYPES: tuple[str, ...] = tuple(t.name for t in _TYPE_LIST)
_TEMPLATED = tuple(t for t in _TYPE_LIST if t.pattern is not None)
# Every template starts with a fixed character; try only the templates that share it.
_BY_FIRST_CHAR: dict[str, tuple] = {}
for _t in _TEMPLATED:
    _first = _t.pattern.pattern[0]
    _BY_FIRST_CHAR[_first] = _BY_FIRST_CHAR.get(_first, ()) + (_t,)
_CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")
_ENGLISH_HINT = re.compile(r"[A-Za-z\\$]")
_BOXED = "\\boxed{"


def classify(problem: str, solution: str | None = None) -> str:
    """The type name of a problem, by the exact contest templates.

    problem: the problem text; solution: optional, only used to tell English rows
    (a ``\\boxed{}`` answer) from stray text. Returns one of TYPES, never raises.
    """
    text = (problem or "").strip()
    if not text:
        return "unknown"
    for ptype in _BY_FIRST_CHAR.get(text[0], ()):
        if ptype.pattern.fullmatch(text):
            return ptype.name
    if _CJK.search(text) is None and (_ENGLISH_HINT.search(text) or
                                      (solution is not None and _BOXED in solution)):
        return "english"
    return "unknown"


def extract_operands(problem: str, type_name: str | None = None) -> dict | None:
    """Operand strings of a templated problem (``{"a": "4204.22", "b": "-2369.17"}``).

    Returns None for english/unknown problems or when the problem does not match the
    template of ``type_name`` (classified when not given).
    """
    name = type_name or classify(problem)
    ptype = PROBLEM_TYPES.get(name)
    if ptype is None or ptype.pattern is None:
        return None
    match = ptype.pattern.fullmatch((problem or "").strip())
    return ptype.operands(match) if match and ptype.operands else None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces), or None."""
    start = text.rfind(_BOXED)
    while start != -1:
        depth, i = 1, start + len(_BOXED)
        begin = i
        while i < len(text):
            ch = text[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[begin:i].strip()
            i += 1
        # Unbalanced (cut-off output): try an earlier \boxed.
        start = text.rfind(_BOXED, 0, start)
    return None


_LAST_NUMBER = re.compile(r"-?\d+(?:/\d+|\.\d+)?(?:[eE][+-]?\d+)?")


def reference_answer(solution: str, type_name: str | None = None) -> str:
    """The reference answer string of a contest solution.

    ``"4204.22 + -2369.17 = 1835.05"`` -> ``"1835.05"``; ``"面积为 35 平方厘米"`` -> ``"35"``;
    ``"最简化的形式为：3/4"`` -> ``"3/4"``; ``"R 克"`` -> ``"R"``; English -> the last
    ``\\boxed{}`` content. A solution that does not fit its template falls back to the last
    ``\\boxed{}``, then the last number; an empty/numberless solution gives the stripped text.
    """
    text = (solution or "").strip()
    ptype = PROBLEM_TYPES.get(type_name or "")
    if ptype is not None and ptype.solution is not None:
        match = ptype.solution.fullmatch(text)
        if match:
            return match.group("r").rstrip("。.")
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    numbers = _LAST_NUMBER.findall(text)
    return numbers[-1] if numbers else text
