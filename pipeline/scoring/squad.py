"""SQuAD scoring: the contest's metric (MindFormers EmF1Metric) and the official v1.1 one.

The contest scored "original ability" with MindFormers' ``EmF1Metric``
(mindformers/core/metric/metric.py), which is NOT the official SQuAD script:

- the prediction is stripped and cut at its first newline (``update``);
- both sides are lower-cased and stripped; a fixed list of special characters is dropped;
- EM = the two strings are equal after that;
- F1 = 2PR/(P+R) over the longest common *contiguous* run of tokens, where each CJK char and
  each special char is its own token and every other run is cut by ``jieba.cut``;
- scores are ``100 * sum(per-sample value) / count``, using only the first gold answer.

This module reproduces it operation for operation (tests/unit/test_squad_metric.py checks it
against the installed class on real pairs) without importing MindSpore. The official v1.1
metric (normalize_answer, bag-of-words F1, max over all gold answers) sits beside it; both
see the same prediction cut (strip, first line) so their numbers are comparable.

Per-sample functions return fractions in 0..1 (the value the metric sums); aggregates and
per-sample rows are in 0..100 (EmF1Metric's per-sample print is 100 x the fraction).
"""
from __future__ import annotations

import re
import string
from collections import Counter

from pipeline.errors import PipelineError

# Verbatim from EmF1Metric.mixed_segmentation / remove_punctuation. '……' is two characters,
# so a single character never equals it: kept anyway so `in` behaves exactly as upstream.
MF_SPECIAL_CHARS = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
                    '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
                    '「', '」', '（', '）', '－', '～', '『', '』']
_CJK = re.compile(r'[\u4e00-\u9fa5]')

RESPONSE_MARKER = "### Response:"

_jieba = None


def _jieba_cut(text: str) -> list[str]:
    global _jieba
    if _jieba is None:  # imported lazily: jieba builds its dictionary on first use (~1 s)
        import logging

        import jieba
        jieba.setLogLevel(logging.WARNING)
        _jieba = jieba
    return list(_jieba.cut(text))


def cut_prediction(text: str) -> str:
    """The answer EmF1Metric.update scores: stripped, then everything before the first newline."""
    return text.strip().split("\n")[0]


def continuation_after_prompt(text: str, prompt: str | None = None) -> str:
    """The generated part of a contest prediction (prompt + continuation).

    If ``prompt`` is given and ``text`` starts with it, exactly the prompt is removed (so an
    answer that echoes "### Response:" keeps its first line). Otherwise everything up to and
    including the last "### Response:" is removed; text without the marker is returned as is.
    """
    if prompt and text.startswith(prompt):
        return text[len(prompt):]
    cut = text.rfind(RESPONSE_MARKER)
    return text if cut < 0 else text[cut + len(RESPONSE_MARKER):]


# ---- MindFormers EmF1Metric -------------------------------------------------------------

def mf_segments(text: str, rm_punc: bool = False) -> list[str]:
    """EmF1Metric.mixed_segmentation: CJK and special chars are tokens, the rest is jieba-cut."""
    text = str(text).lower().strip()
    segments: list[str] = []
    pending = ""
    for char in text:
        if rm_punc and char in MF_SPECIAL_CHARS:
            continue
        if _CJK.search(char) or char in MF_SPECIAL_CHARS:
            if pending != "":
                segments.extend(_jieba_cut(pending))
                pending = ""
            segments.append(char)
        else:
            pending += char
    if pending != "":
        segments.extend(_jieba_cut(pending))
    return segments


def mf_remove_punctuation(text: str) -> str:
    """EmF1Metric.remove_punctuation: lower, strip, drop the special characters."""
    return "".join(c for c in str(text).lower().strip() if c not in MF_SPECIAL_CHARS)


def longest_common_run(a: list[str], b: list[str]) -> int:
    """Length of the longest common contiguous run of tokens (EmF1Metric.find_lcs's mmax)."""
    best = 0
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0] * (len(b) + 1)
        for j, token_b in enumerate(b):
            if token_a == token_b:
                current[j + 1] = previous[j] + 1
                if current[j + 1] > best:
                    best = current[j + 1]
        previous = current
    return best


def mindformers_f1_em(prediction: str, label: str) -> tuple[float, float]:
    """One sample of EmF1Metric: (f1, em) as fractions in 0..1.

    ``prediction`` is the generated text (cut_prediction is applied here, as update() does);
    ``label`` is the first gold answer. The metric's per-sample print is 100 x these.
    Note the upstream quirk kept here: an empty prediction for an empty label is EM 1, F1 0.
    """
    prediction = cut_prediction(prediction)
    label_segs = mf_segments(label, rm_punc=True)
    pred_segs = mf_segments(prediction, rm_punc=True)
    run = longest_common_run(label_segs, pred_segs)
    if run == 0:
        f1 = 0.0
    else:
        precision = 1.0 * run / len(pred_segs)
        recall = 1.0 * run / len(label_segs)
        f1 = (2 * precision * recall) / (precision + recall)
    em = 1.0 if mf_remove_punctuation(label) == mf_remove_punctuation(prediction) else 0.0
    return f1, em


# ---- official SQuAD v1.1 ----------------------------------------------------------------

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalize_answer: lower, drop punctuation, drop articles, squash whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _official_f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def official_f1_em(prediction: str, answers: list[str]) -> tuple[float, float]:
    """Official SQuAD v1.1 (f1, em) in 0..1, max over all gold answers.

    The prediction gets the same cut_prediction as the contest metric. Raises ValueError
    when there is no gold answer.
    """
    if not answers:
        raise ValueError("official SQuAD metric needs at least one gold answer")
    prediction = cut_prediction(prediction)
    f1 = max(_official_f1(prediction, gold) for gold in answers)
    em = max(float(normalize_answer(prediction) == normalize_answer(gold)) for gold in answers)
    return f1, em


# ---- registry and aggregates ------------------------------------------------------------

def _mf_item(prediction: str, item: dict) -> tuple[float, float]:
    return mindformers_f1_em(prediction, item["answers"][0])


def _official_item(prediction: str, item: dict) -> tuple[float, float]:
    return official_f1_em(prediction, item.get("all_answers") or item["answers"])


METRICS = {"mindformers": _mf_item, "official": _official_item}


def score_squad(predictions: list[str], items: list[dict], metric: str = "mindformers") -> dict:
    """Aggregate SQuAD score of generated answers against eval items, position by position.

    ``predictions`` are continuations (prompt already removed); ``items`` are eval rows with
    ``answers`` (first gold first) and ``all_answers``. Returns
    ``{"f1", "em", "count", "metric"}`` with f1/em in 0..100, summed then divided as
    EmF1Metric.evaluate_pairs does (so the numbers are bit-identical to it).
    Raises PipelineError for an unknown metric, a length mismatch or no items.
    """
    if metric not in METRICS:
        raise PipelineError(f"unknown SQuAD metric {metric!r} (choose from {', '.join(METRICS)})")
    if len(predictions) != len(items):
        raise PipelineError(f"{len(predictions)} predictions for {len(items)} SQuAD items")
    if not items:
        raise PipelineError("no SQuAD items to score")
    score = METRICS[metric]
    f1_sum = em_sum = 0.0
    for prediction, item in zip(predictions, items):
        f1, em = score(prediction, item)
        f1_sum += f1
        em_sum += em
    count = len(items)
    return {"f1": 100.0 * f1_sum / count, "em": 100.0 * em_sum / count,
            "count": count, "metric": metric}


def squad_sample_rows(predictions: list[str], items: list[dict],
                      gen_seconds: list[float | None] | None = None) -> list[dict]:
    """Per-sample rows of samples_squad.jsonl (docs/run_format.md), scores in 0..100.

    ``prediction`` in a row is the continuation as scored (after cut_prediction).
    """
    if len(predictions) != len(items):
        raise PipelineError(f"{len(predictions)} predictions for {len(items)} SQuAD items")
    rows = []
    for index, (prediction, item) in enumerate(zip(predictions, items)):
        mf_f1, mf_em = _mf_item(prediction, item)
        off_f1, off_em = _official_item(prediction, item)
        rows.append({
            "id": item["id"], "index": index, "question": item["question"],
            "context": item["context"], "gold": item["answers"][0],
            "all_answers": list(item.get("all_answers") or item["answers"]),
            "prediction": cut_prediction(prediction),
            "mf_f1": 100.0 * mf_f1, "mf_em": 100.0 * mf_em,
            "official_f1": 100.0 * off_f1, "official_em": 100.0 * off_em,
            "gen_seconds": None if gen_seconds is None else gen_seconds[index],
        })
    return rows
