"""Pure table transforms for the pages: no Streamlit, no file reading, tested directly.

Pages call these to shape what data.py loaded: the overview table, error-case
filters, answer highlighting, loss smoothing, the LoRA what-if and the Pareto front.
"""
from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

from pipeline import contest
from pipeline.evaluate import gate_verdict
from pipeline.model.params import LORA_TARGETS, lora_trainable

MISSING = "—"  # how a table shows a value a run does not have (Streamlit would say "None")
PAIR_FILTERS = ("all rows", "baseline right, candidate wrong", "baseline wrong, candidate right")


def adapter_label(adapter: dict | None) -> str:
    """'r8 a16 wq,wv' for a LoRA adapter, 'none' without one; an adapter whose shape is
    not recorded (an import without a training log naming it) is 'unknown', with its
    trainable parameter count when the log gave one."""
    if not adapter:
        return "none"
    if adapter.get("rank") is None and not adapter.get("targets"):
        params = adapter.get("trainable_params")
        return f"unknown ({params:,} trainable)" if isinstance(params, int) else "unknown"
    alpha = adapter.get("alpha")
    parts = [f"r{adapter.get('rank', '?')}"]
    if alpha is not None:
        parts.append(f"a{alpha:g}")
    parts.append(",".join(adapter.get("targets") or []) or "?")
    if adapter.get("first_layer"):
        parts.append(f"from layer {adapter['first_layer']}")
    return " ".join(parts)


def reused_note(manifest: dict | None) -> str | None:
    """'math and squad rows reused from smollm2-base' when `infer --reuse` copied a run's
    decoded rows (pipeline.baseline_reuse) instead of decoding them; None otherwise."""
    inference = (manifest or {}).get("inference") or {}
    by_source: dict[str, list[str]] = {}
    for task, entry in sorted(inference.items()):
        if isinstance(entry, dict) and isinstance(entry.get("reused_from"), str):
            by_source.setdefault(entry["reused_from"], []).append(task)
    if not by_source:
        return None
    return "; ".join(f"{' and '.join(tasks)} rows reused from {source}"
                     for source, tasks in by_source.items())


def overview_table(summaries: list[dict], rule: str, leaderboard_scores: list[float]) -> pd.DataFrame:
    """One row per run for the overview: accuracy, score and rank under `rule`.

    summaries: [{run_id, manifest, metrics}] as data.run_summaries() returns.
    The score is recomputed from the rule's accuracy and the run's trainable ratio
    (contest.contest_score), so switching the rule re-ranks the runs.
    """
    rows = []
    for item in summaries:
        man, met = item["manifest"] or {}, item["metrics"] or {}
        adapter = man.get("adapter")
        math = (met.get("math") or {}).get("rules", {}).get(rule) if met.get("math") else None
        squad = met.get("squad") or {}
        gate = squad.get("gate") or {}
        ratio = met.get("trainable_ratio")
        accuracy = math["accuracy"] if math else None
        score = contest.contest_score(accuracy, ratio) if accuracy is not None and ratio is not None \
            else None
        rows.append({
            "run": item["run_id"], "kind": text_or_dash(man.get("kind")),
            "model": text_or_dash((man.get("model") or {}).get("name")),
            "adapter": adapter_label(adapter), "trainable_ratio": ratio,
            "math_acc": None if accuracy is None else 100.0 * accuracy,
            "math_n": math["total"] if math else None,
            "squad_f1": (squad.get("mindformers") or {}).get("f1"),
            "squad_em": (squad.get("mindformers") or {}).get("em"),
            "gate": text_or_dash(gate_label(gate, man.get("kind"))),
            "score": score,
            "rank": None if score is None else contest.rank_among(score, leaderboard_scores),
        })
    return pd.DataFrame(rows)


GATE_REFERENCE = "— reference"
GATE_F1_ONLY = " (F1 only)"  # appended when the EM half cannot fail (contest.em_gate_vacuous)


def gate_label(gate: dict, kind: str | None) -> str | None:
    """The SQuAD gate cell in pipeline.evaluate.gate_verdict's words: a reference baseline
    gets GATE_REFERENCE rather than a "FAIL" against the contest's Llama3-8B numbers; a gate
    whose EM half cannot fail says that F1 alone decided it."""
    verdict = gate_verdict(gate, kind)
    if verdict is None:
        return None
    if verdict == "reference":
        return GATE_REFERENCE
    label = "✅ pass" if verdict == "pass" else "❌ FAIL"
    return label + (GATE_F1_ONLY if contest.em_gate_vacuous(gate) else "")


def filter_errors(frame: pd.DataFrame, rule: str, types: list[str] | None = None,
                  verdict: str = "wrong", pair: str = PAIR_FILTERS[0],
                  classes: list[str] | None = None, text: str = "") -> pd.DataFrame:
    """Rows of the error-case table that pass every filter.

    verdict: 'wrong' | 'right' | 'any' under `rule`, ignored under a pair filter
    (which fixes the candidate's verdict); pair: one of PAIR_FILTERS (needs
    base_ok_<rule>; rows without a baseline verdict drop out of the paired filters); classes: error classes ('correct' matches rows with none);
    text: case-insensitive substring of problem, output, reference or extracted.
    """
    ok = frame[f"ok_{rule}"]
    mask = pd.Series(True, index=frame.index)
    if types:
        mask &= frame["type"].isin(types)
    if pair == PAIR_FILTERS[0] and verdict == "wrong":
        mask &= ~ok
    elif pair == PAIR_FILTERS[0] and verdict == "right":
        mask &= ok
    if pair != PAIR_FILTERS[0]:
        base = frame.get(f"base_ok_{rule}")
        if base is None:
            return frame.iloc[0:0]
        known = base.notna()
        base = base.astype("boolean").fillna(False).astype(bool)
        mask &= known & ((base & ~ok) if pair == PAIR_FILTERS[1] else (~base & ok))
    if classes:
        cls = frame["error_class"].fillna("correct")
        mask &= cls.isin(classes)
    if text:
        needle = text.lower()
        hit = pd.Series(False, index=frame.index)
        for col in ("problem", "output", "reference", "extracted"):
            hit |= frame[col].fillna("").astype(str).str.lower().str.contains(needle, regex=False)
        mask &= hit
    return frame[mask]


def implied_verdict(pair: str) -> str:
    """The candidate verdict a pair filter implies ('wrong' for a regression)."""
    return "wrong" if pair == PAIR_FILTERS[1] else "right" if pair == PAIR_FILTERS[2] else "any"


def picked_row(shown: pd.DataFrame, picked: list[int]) -> pd.Series | None:
    """The selected row of the table on screen, None without one or when it is gone."""
    if not picked or not 0 <= picked[0] < len(shown):
        return None
    return shown.iloc[picked[0]]


def digest(value) -> str:
    """A short stable hash of a value's repr (widget keys that change with their inputs)."""
    import hashlib
    return hashlib.sha1(repr(value).encode("utf-8")).hexdigest()[:12]


def md_code(text) -> str:
    """Text as a Markdown code span that no backtick inside can close early."""
    text = "" if missing(text) else str(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}" if text else "` `"


def md_text(text) -> str:
    """Text for st.markdown with every Markdown/Streamlit marker escaped (no links, images,
    emphasis, code, colour directives or maths from data)."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~$:])", r"\\\1", "" if missing(text) else str(text))


def sample_html(sample) -> str:
    """One error case as escaped HTML: id, type, class, problem, reference, extracted answer
    and the output with the answer marked. Nothing in the row can become a tag, link or image."""
    esc = lambda v: html.escape(as_text(v) if not isinstance(v, (int, float)) else str(v))  # noqa: E731
    extracted = as_text(sample.get("extracted"))
    return (
        "<div style='font-size:0.95rem;line-height:1.5'>"
        f"<b>{esc(sample.get('id'))}</b> · {esc(sample.get('type'))} · error class "
        f"<code>{esc(as_text(sample.get('error_class')) or 'correct')}</code><br>"
        f"<b>Problem:</b> <span data-field='problem'>{esc(sample.get('problem'))}</span><br>"
        f"<b>Reference:</b> <code>{esc(sample.get('reference'))}</code> · "
        f"<b>Extracted:</b> <code>{esc(extracted or '(none)')}</code>"
        "<pre style='white-space:pre-wrap;margin-top:0.5rem'>"
        f"{highlight_html(sample.get('output'), extracted)}</pre></div>")


def as_text(value) -> str:
    """A cell as text: '' for None/NaN (pandas turns a missing string into NaN)."""
    return value if isinstance(value, str) else ""


def mark_answer(text: str | None, answer: str | None, left: str = "【", right: str = "】") -> str:
    """The text with the last occurrence of the extracted answer wrapped in markers."""
    text, answer = as_text(text), as_text(answer)
    if not answer or answer not in text:
        return text
    at = text.rfind(answer)
    return text[:at] + left + answer + right + text[at + len(answer):]


def highlight_html(text: str | None, answer: str | None) -> str:
    """HTML-escaped text with the answer in <mark>, safe to render with unsafe_allow_html."""
    marked = mark_answer(text, answer, "\x00", "\x01")
    return html.escape(marked).replace("\x00", "<mark>").replace("\x01", "</mark>")


def ema(values: pd.Series, weight: float) -> pd.Series:
    """TensorBoard-style smoothing: s_t = weight * s_{t-1} + (1 - weight) * x_t, debiased
    (pandas' adjusted exponential mean with alpha = 1 - weight is exactly that)."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    return values.astype(float).ewm(alpha=1.0 - weight, adjust=True).mean()


def llama3_lora_params(rank: int, targets: list[str]) -> int:
    """Trainable parameters of LoRA on Llama3-8B: 32 layers x rank x sum(in + out).

    r8 on wq,wv gives 3,407,872 (the contest baseline). Raises ValueError for an
    unknown target or a rank below 1.
    """
    unknown = sorted(set(targets) - set(LORA_TARGETS))
    if unknown:
        raise ValueError(f"unknown target module(s) {unknown}; choose from {list(LORA_TARGETS)}")
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    if not targets:
        return 0  # an empty pick in the what-if calculator: no adapter
    # The count itself is the pipeline's (pipeline.model.params), so page and CLI agree.
    return lora_trainable("llama3-8b", rank, sorted(set(targets), key=LORA_TARGETS.index))


def what_if(rank: int, targets: list[str], accuracy: float, leaderboard_scores: list[float]) -> dict:
    """{params, ratio, score, rank} for a Llama3-8B LoRA shape at a given accuracy (0..1)."""
    params = llama3_lora_params(rank, targets)
    ratio = contest.trainable_ratio(params)
    score = contest.contest_score(accuracy, ratio)
    return {"params": params, "ratio": ratio, "score": score,
            "rank": contest.rank_among(score, leaderboard_scores)}


def pareto_front(points: pd.DataFrame, x: str = "ratio", y: str = "accuracy") -> pd.Series:
    """Boolean mask of points no other point beats (lower x and higher-or-equal y)."""
    order = points.sort_values([x, y], ascending=[True, False]).index
    best, mask = -np.inf, pd.Series(False, index=points.index)
    for idx in order:
        if points.at[idx, y] > best:
            mask[idx] = True
            best = points.at[idx, y]
    return mask


def safe_run_name(text: str) -> str:
    """A run-id slug from free text ('My run #2' -> 'My-run-2')."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text.strip()).strip("-_")
    return slug[:100]


def missing(value) -> bool:
    """None, NaN or pandas NA: an empty cell."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or array is a value
        return False


def fmt(value, spec: str = ".4f", suffix: str = "") -> str:
    """A number formatted for a metric tile; '—' for None or NaN."""
    if missing(value):
        return "—"
    return f"{value:{spec}}{suffix}"


def text_or_dash(value) -> str:
    """A text cell for display: '—' when empty (never 'None' or 'nan')."""
    return "—" if missing(value) or value == "" else str(value)


def long_by_run(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Stack per-run tables into one with a 'run' column (for grouped charts)."""
    parts = [t.assign(run=name) for name, t in tables.items() if t is not None]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def squad_metric_rows(metrics_by_run: dict[str, dict | None],
                      kinds: dict[str, str | None] | None = None) -> list[dict]:
    """One row per run with SQuAD scores: both metrics, rounded as the pages show them, and
    whether the run passed the gate and against whose scores ('-' when none was computed).
    kinds: run -> manifest kind; a baseline scored without a baseline is the reference the
    others are gated against (gate_is_reference), not a failure against the contest's model."""
    out = []
    for run, metrics in metrics_by_run.items():
        squad = (metrics or {}).get("squad") or {}
        mf, official = squad.get("mindformers"), squad.get("official")
        if not mf:
            continue
        row = {"run": run, "MindFormers F1": round(mf["f1"], 2), "MindFormers EM": round(mf["em"], 2),
               "official F1": round(official["f1"], 2) if official else None,
               "official EM": round(official["em"], 2) if official else None}
        gate = squad.get("gate") or {}
        against = gate.get("baseline_run") or "the contest's Llama3-8B"   # no baseline: the contest's
        if "pass" not in gate:
            row["gate"] = "-"
        elif gate_verdict(gate, (kinds or {}).get(run)) == "reference":
            row["gate"] = "reference (the baseline)"
        else:
            row["gate"] = f"{'passed' if gate['pass'] else 'failed'} (vs {against})"
        out.append(row)
    return out


def rules_frame(metrics_by_run: dict[str, dict | None]) -> pd.DataFrame:
    """run, rule, accuracy, correct, n, low, high from each run's metrics.json math rules."""
    rows = []
    for run, met in metrics_by_run.items():
        for rule, val in (((met or {}).get("math") or {}).get("rules") or {}).items():
            rows.append({"run": run, "rule": rule, "accuracy": val["accuracy"],
                         "correct": val["correct"], "n": val["total"]})
    return with_wilson(rows)


def with_wilson(rows: list[dict]) -> pd.DataFrame:
    """Rows with correct and n as a frame, plus low/high: their Wilson 95% interval."""
    from pipeline.scoring.stats import wilson_interval
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["low"], frame["high"] = wilson_interval(frame["correct"].to_numpy(), frame["n"].to_numpy())
    return frame


def training_long(frames: dict[str, pd.DataFrame], weight: float,
                  hide_compile: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curves, epoch starts) for the training charts from per-run loss frames.

    curves: run, global_step, wall_min, loss, loss_smooth, lr, per_step_time_ms; a
    step more than 5x its run's median step time (graph compilation) gets NaN
    step time when hide_compile. epochs: run, global_step, wall_min, epoch at each
    epoch's first step (after the first).
    """
    parts, marks = [], []
    for run, frame in frames.items():
        if frame is None or frame.empty:
            continue
        part = frame.assign(run=run, loss_smooth=ema(frame["loss"], weight))
        if hide_compile and part["per_step_time_ms"].notna().any():
            median = part["per_step_time_ms"].median()
            part.loc[part["per_step_time_ms"] > 5 * median, "per_step_time_ms"] = np.nan
        parts.append(part)
        starts = part[part["epoch"].ne(part["epoch"].shift())].iloc[1:]
        marks.append(starts[["run", "global_step", "wall_min", "epoch"]])
    if not parts:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(parts, ignore_index=True), pd.concat(marks, ignore_index=True)


def heldout_squad_long(choice: dict) -> pd.DataFrame:
    """checkpoint_choice.json's candidates -> (step, f1, kept, passes), by step."""
    rows = [{"step": c["step"], "f1": c["f1"], "kept": c["kept_f1"],
             "passes": "yes" if c["passes"] else "no"} for c in choice.get("candidates", [])]
    return pd.DataFrame(rows, columns=["step", "f1", "kept", "passes"]).sort_values("step")


def checkpoint_long(points: list[dict]) -> pd.DataFrame:
    """eval-checkpoints points -> long frame (step, series, accuracy): series "all" under
    each point's headline rule, then one series per problem type."""
    rows = []
    for p in points:
        rule = p.get("headline_rule")
        overall = (p.get("rules") or {}).get(rule)
        if overall is not None:
            rows.append({"step": p["step"], "series": "all", "accuracy": overall})
        rows += [{"step": p["step"], "series": t, "accuracy": a}
                 for t, a in (p.get("by_type") or {}).items()]
    return pd.DataFrame(rows, columns=["step", "series", "accuracy"])
