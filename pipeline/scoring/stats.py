"""Statistics for comparing two runs on the same test rows.

Accuracy on 128 or 2,000 samples is noisy: a Wilson interval says how noisy one
run's accuracy is, and an exact McNemar test on the paired verdicts says whether
a candidate's gain over a baseline (same rows) is more than chance. The maths is
statsmodels' and scipy's, not hand-rolled. Two runs' rows are paired by the problem
itself (pair_rows: normalised problem text + reference), never by position or id, so
runs on different test sets share only the problems they really have in common.
"""
from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint


def wilson_interval(correct, total, alpha: float = 0.05):
    """Wilson score interval for correct/total at confidence 1 - alpha.

    Inputs are ints or equal-length arrays. Returns (low, high) in 0..1 (arrays
    for array input); for total == 0 returns (nan, nan) rather than raising.
    Raises ValueError when correct < 0 or correct > total.
    """
    correct_a = np.asarray(correct, dtype=float)
    total_a = np.asarray(total, dtype=float)
    if np.any(correct_a < 0) or np.any(correct_a > total_a):
        raise ValueError(f"need 0 <= correct <= total, got {correct}/{total}")
    safe_total = np.where(total_a > 0, total_a, 1.0)
    low, high = proportion_confint(correct_a, safe_total, alpha=alpha, method="wilson")
    low = np.where(total_a > 0, low, np.nan)
    high = np.where(total_a > 0, high, np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def mcnemar_exact(base_only: int, cand_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts.

    base_only: rows the baseline got right and the candidate wrong; cand_only:
    the reverse. Under H0 each discordant pair is a fair coin, so the p-value is
    scipy's exact two-sided binomial test of cand_only out of the discordant
    total at p = 0.5 (the same number statsmodels' mcnemar(exact=True) gives).
    No discordant pairs -> 1.0. Raises ValueError for negative counts.
    """
    if base_only < 0 or cand_only < 0:
        raise ValueError(f"counts must be >= 0, got {base_only}, {cand_only}")
    n = int(base_only) + int(cand_only)
    if n == 0:
        return 1.0
    return float(binomtest(int(cand_only), n, 0.5, alternative="two-sided").pvalue)


def paired_counts(base_correct, cand_correct) -> dict:
    """2x2 table of paired verdicts: both, base_only, cand_only, neither, total."""
    base = np.asarray(base_correct, dtype=bool)
    cand = np.asarray(cand_correct, dtype=bool)
    if base.shape != cand.shape:
        raise ValueError(f"paired verdicts differ in length: {base.shape} vs {cand.shape}")
    return {"both": int(np.sum(base & cand)), "base_only": int(np.sum(base & ~cand)),
            "cand_only": int(np.sum(~base & cand)), "neither": int(np.sum(~base & ~cand)),
            "total": int(base.size)}


def paired_table(frame: pd.DataFrame, group: str = "type", base: str = "base",
                 cand: str = "cand") -> pd.DataFrame:
    """Per-group paired comparison of two boolean verdict columns, plus an "all" row.

    frame: one row per test item present in both runs, with boolean columns
    `base` and `cand` and a grouping column `group`.
    Returns one row per group: n, base_correct, cand_correct, base_acc,
    cand_acc, diff (cand - base), base_only, cand_only, p_value (exact McNemar),
    with Wilson bounds for both accuracies. Sorted by group, "all" last.
    """
    b = frame[base].astype(bool)
    c = frame[cand].astype(bool)
    parts = pd.DataFrame({
        "group": frame[group].astype(str), "n": 1, "base_correct": b.astype(int),
        "cand_correct": c.astype(int), "base_only": (b & ~c).astype(int),
        "cand_only": (~b & c).astype(int)})
    table = parts.groupby("group", sort=True).sum(numeric_only=True)
    table.loc["all"] = parts.drop(columns="group").sum()
    table = table.reset_index().rename(columns={"group": group})
    table["base_acc"] = table["base_correct"] / table["n"]
    table["cand_acc"] = table["cand_correct"] / table["n"]
    table["diff"] = table["cand_acc"] - table["base_acc"]
    table["p_value"] = [mcnemar_exact(x, y) for x, y in zip(table["base_only"], table["cand_only"])]
    for side in ("base", "cand"):
        low, high = wilson_interval(table[f"{side}_correct"].to_numpy(), table["n"].to_numpy())
        table[f"{side}_low"], table[f"{side}_high"] = low, high
    return table


def problem_key(problem, reference) -> str:
    """What makes two test rows the same problem: the problem text and the reference answer,
    NFKC-normalised with whitespace collapsed. Ids and positions are not used: an imported
    test file numbers its rows math-00000.. just as a generated one does."""
    def norm(text) -> str:
        return " ".join(unicodedata.normalize("NFKC", "" if text is None else str(text)).split())
    return f"{norm(problem)}\x1f{norm(reference)}"


def pair_keys(problems, references) -> list[str]:
    """One key per row: problem_key plus the occurrence number, so a problem that appears twice
    in both runs pairs first with first and second with second."""
    seen: dict[str, int] = {}
    keys = []
    for problem, reference in zip(problems, references):
        key = problem_key(problem, reference)
        seen[key] = seen.get(key, 0) + 1
        keys.append(f"{key}\x1f{seen[key]}")
    return keys


def pair_rows(base_rows: list[dict], cand_rows: list[dict]) -> list[tuple[dict, dict]]:
    """(baseline row, candidate row) for every problem both runs answered, in the candidate's
    order. Rows are samples_math rows (problem, reference); rows only one run has are left out."""
    base = dict(zip(pair_keys([r.get("problem") for r in base_rows],
                              [r.get("reference") for r in base_rows]), base_rows))
    keys = pair_keys([r.get("problem") for r in cand_rows], [r.get("reference") for r in cand_rows])
    return [(base[k], row) for k, row in zip(keys, cand_rows) if k in base]
