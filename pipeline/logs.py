"""MindFormers logs: parsers for training (loss curve, parameter count) and SQuAD evaluation,
and the training lines our trainer writes in the same format (step_line, params_line,
resume_lines), so the format has one home.

Logs are often cut short (a killed job, a copy taken mid-run) or carry noise (tqdm spinners,
interleaved warnings, binary garbage). The parsers never raise on content: they return what
the text holds plus a list of ``warnings``. Only an unreadable *file* is a PipelineError.
Lines are searched, not anchored, because a line may begin with a spinner (``-\\|/``).
"""
from __future__ import annotations

import ast
import math
import re
import time
from dataclasses import asdict, dataclass, field

from pipeline.errors import PipelineError

_NUM = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf)"
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}),(\d{3})")
# "{ Epoch:[  1/ 10], step:[    2/ 1625], loss: 1.518," (sink) or "loss:[1.392/1.400]," (non-sink)
_LOSS = re.compile(
    r"Epoch:\[\s*(\d+)/\s*(\d+)\],\s*step:\[\s*(\d+)/\s*(\d+)\],\s*"
    rf"loss:\s*(?:\[\s*({_NUM})\s*/\s*({_NUM})\s*\]|({_NUM})\s*,)", re.IGNORECASE)
_STEP_TIME = re.compile(r"per_step_time:\s*(\d+(?:\.\d+)?)\s*ms")
_LR = re.compile(rf"\blr:\s*\[?\s*({_NUM})", re.IGNORECASE)
_OVERFLOW = re.compile(r"overflow cond:\s*(True|False)")
_LOSS_SCALE = re.compile(rf"loss_scale:\s*\[?\s*({_NUM})", re.IGNORECASE)
_GLOBAL_NORM = re.compile(rf"global_norm:\s*\[?\s*({_NUM})", re.IGNORECASE)
# "Network Parameters: 3407872." (older builds, exact) or "Network Parameters: 8030 M." (floored)
_PARAMS = re.compile(r"Network Parameters:\s*(\d+)\s*(M)?")
_DATASET_SIZE = re.compile(r"dataset size:\s*(\d+)")
# MindFormers' resume_training prints "initial step: N" (global steps already done)
_INITIAL_STEP = re.compile(r"\binitial step:\s*(\d+)")
_GLOBAL_BATCH = re.compile(r"global_batch_size\s*(?:=[^=]*=\s*|:\s*)(\d+)")

_SQUAD_RUNNING = re.compile(rf"F1 score:\s*({_NUM}),\s*Em score:\s*({_NUM}),\s*current_count:\s*(\d+)")
_SQUAD_FINAL = re.compile(rf"F1 score:\s*({_NUM}),\s*Em score:\s*({_NUM}),\s*total_count:\s*(\d+)")
_SQUAD_SAMPLE = re.compile(r"The F1/Em of this example is:\s*(\{.*\})")


# The source fields MindFormers prints; our trainer's lines carry the same.
LOG_SOURCE = "mindformers[mindformers/core/callback/callback.py:316]"
PARAMS_SOURCE = "mindformers[mindformers/trainer/base_trainer.py:543]"
RESUME_SOURCE = "mindformers[mindformers/trainer/base_trainer.py:1178]"
INITIAL_STEP_SOURCE = "mindformers[mindformers/trainer/utils.py:436]"


@dataclass
class LossPoint:
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    global_step: int  # (epoch - 1) * steps_per_epoch + step
    loss: float
    loss_mean: float | None  # non-sink mode prints loss:[current/mean]
    lr: float | None
    per_step_time_ms: float | None  # the first step includes graph compilation
    overflow: bool | None
    loss_scale: float | None
    global_norm: float | None
    time: str | None  # the log line's timestamp, ISO 8601 without zone
    line: int


@dataclass
class TrainingLog:
    loss: list[LossPoint] = field(default_factory=list)
    trainable_params: int | None = None
    trainable_params_rounded: bool = False  # "N M." is floored to millions by MindFormers
    dataset_size: int | None = None
    global_batch_size: int | None = None
    # {"line", "step", "replaced"} per resume marker: steps after `step` logged before it
    # (between the last checkpoint and the kill) were replaced by the resumed run's
    resumes: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class SquadSample:
    index: int
    pred: str  # first element of the printed list (the contest used batch size 1)
    label: str
    preds: list[str]
    labels: list[str]
    f1: float | None  # 0..100, as printed
    em: float | None


@dataclass
class SquadLog:
    samples: list[SquadSample] = field(default_factory=list)
    running: list[dict] = field(default_factory=list)  # {"f1", "em", "count"} every 10 samples
    final: dict | None = None  # {"f1", "em", "count", "final": True}
    warnings: list[str] = field(default_factory=list)

    def score(self) -> dict | None:
        """The final score, else the last running one marked ``final: False``; None if neither."""
        if self.final is not None:
            return dict(self.final)
        if self.running:
            return {**self.running[-1], "final": False}
        return None


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)


def _iso_time(line: str, end: int) -> str | None:
    match = _TIME.search(line, 0, end)
    return f"{match.group(1)}T{match.group(2)}.{match.group(3)}" if match else None


def read_log_text(path) -> str:
    """A log file's text (undecodable bytes replaced). PipelineError if it cannot be read,
    is not a regular file, or is over the size limit (pipeline.fileio)."""
    from pipeline import fileio
    # decoded as a whole, not split on newlines: a spinner's bare \r stays inside its line
    # (line numbers match an editor)
    return fileio.read_text(path, "log file", errors="replace")


def _parse_loss_line(line: str, line_no: int, match: re.Match) -> LossPoint:
    epoch, epochs, step, steps = (int(match.group(i)) for i in range(1, 5))
    current, mean, sink = match.group(5), match.group(6), match.group(7)
    rest = line[match.end():]
    step_time, lr = _STEP_TIME.search(rest), _LR.search(rest)
    overflow, scale, norm = _OVERFLOW.search(rest), _LOSS_SCALE.search(rest), _GLOBAL_NORM.search(rest)
    return LossPoint(
        epoch=epoch, epochs=epochs, step=step, steps_per_epoch=steps,
        global_step=(epoch - 1) * steps + step,
        loss=float(sink if sink is not None else current), loss_mean=_float(mean),
        lr=_float(lr.group(1)) if lr else None,
        per_step_time_ms=float(step_time.group(1)) if step_time else None,
        overflow=(overflow.group(1) == "True") if overflow else None,
        loss_scale=_float(scale.group(1)) if scale else None,
        global_norm=_float(norm.group(1)) if norm else None,
        time=_iso_time(line, match.start()), line=line_no)


def parse_training_text(text: str) -> TrainingLog:
    """Loss points and run facts from a MindFormers training log's text.

    A resume marker ("initial step: N", as MindFormers and our trainer print it) drops the
    points after step N logged before it (recorded in ``resumes``, no warning); any other
    duplicate global step keeps the latest occurrence, with a warning. Points come back
    sorted by global_step. A loss line that is cut short is skipped, with a
    warning naming its line.
    """
    result = TrainingLog()
    by_step: dict[int, LossPoint] = {}
    duplicates = 0
    for line_no, line in enumerate(text.split("\n"), start=1):
        if "Epoch:[" in line and "loss" in line:  # other callbacks print Epoch:[..] too
            match = _LOSS.search(line)
            if match is None:
                result.warnings.append(f"line {line_no}: unreadable loss line (cut short?)")
                continue
            point = _parse_loss_line(line, line_no, match)
            if point.global_step in by_step:
                duplicates += 1
            by_step[point.global_step] = point
            continue
        if "initial step" in line and (m := _INITIAL_STEP.search(line)):
            resumed_at = int(m.group(1))
            stale = [g for g in by_step if g > resumed_at]
            for g in stale:
                del by_step[g]
            if resumed_at or stale:
                result.resumes.append({"line": line_no, "step": resumed_at, "replaced": len(stale)})
        elif "Network Parameters" in line and (m := _PARAMS.search(line)):
            value, in_millions = int(m.group(1)), m.group(2) is not None
            result.trainable_params = value * 1_000_000 if in_millions else value
            result.trainable_params_rounded = in_millions
        elif "dataset size" in line and (m := _DATASET_SIZE.search(line)):
            result.dataset_size = int(m.group(1))
        elif "global_batch_size" in line and (m := _GLOBAL_BATCH.search(line)):
            result.global_batch_size = int(m.group(1))
    if duplicates:
        result.warnings.append(
            f"{duplicates} repeated global step(s) (a resumed run?): kept the latest of each")
    result.loss = sorted(by_step.values(), key=lambda p: p.global_step)
    bad = [p.global_step for p in result.loss if not math.isfinite(p.loss)]
    if bad:
        result.warnings.append(f"{len(bad)} loss value(s) are nan/inf (first at global step {bad[0]})")
    if result.trainable_params_rounded:
        result.warnings.append("trainable parameters printed in millions (floored): "
                               f"{result.trainable_params:,} is approximate")
    return result


def _literal_list(text: str) -> list[str] | None:
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def parse_squad_text(text: str) -> SquadLog:
    """Per-sample rows and scores from an EmF1Metric evaluation log's text.

    EmF1Metric.update prints "pred is:" / the list on the next line / "label is:" / the list /
    "The F1/Em of this example is:  {...}", every 10 samples a running score, and eval() a
    final one with total_count. A log without the final line gets a warning (truncated).
    """
    result = SquadLog()
    lines = text.split("\n")  # not splitlines(): spinners use \r inside a line
    preds: list[str] | None = None
    labels: list[str] | None = None
    for i, line in enumerate(lines):
        line_no = i + 1
        if "pred is:" in line or "label is:" in line:
            listed = _literal_list(lines[i + 1]) if i + 1 < len(lines) else None
            if listed is None:
                result.warnings.append(f"line {line_no}: unreadable prediction/label list")
            if "pred is:" in line:
                preds, labels = listed, None
            else:
                labels = listed
        elif "The F1/Em of this example is:" in line:
            match = _SQUAD_SAMPLE.search(line)
            scores = None
            if match:
                try:
                    scores = ast.literal_eval(match.group(1))
                except (ValueError, SyntaxError):
                    scores = None
            if not isinstance(scores, dict):
                result.warnings.append(f"line {line_no}: unreadable per-sample score")
                scores = {}
            if preds is None or labels is None:
                result.warnings.append(f"line {line_no}: per-sample score without its pred/label")
            p, l = preds or [], labels or []
            result.samples.append(SquadSample(
                index=len(result.samples), pred=p[0] if p else "", label=l[0] if l else "",
                preds=p, labels=l, f1=_float_or_none(scores.get("F1")),
                em=_float_or_none(scores.get("Em"))))
            preds = labels = None
        elif "current_count" in line and (m := _SQUAD_RUNNING.search(line)):
            result.running.append({"f1": float(m.group(1)), "em": float(m.group(2)),
                                   "count": int(m.group(3))})
        elif "total_count" in line and (m := _SQUAD_FINAL.search(line)):
            result.final = {"f1": float(m.group(1)), "em": float(m.group(2)),
                            "count": int(m.group(3)), "final": True}
    if result.final is None and (result.samples or result.running):
        last = result.running[-1]["count"] if result.running else 0
        result.warnings.append(
            f"no final score (log truncated?): {len(result.samples)} samples logged, "
            f"last running score covers {last}")
    return result


def _float_or_none(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _json_safe(point: dict) -> dict:
    """NaN/inf losses (a diverged run) become None so the dict is strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in point.items()}


def parse_training_log(path) -> TrainingLog:
    return parse_training_text(read_log_text(path))


def parse_squad_log(path) -> SquadLog:
    return parse_squad_text(read_log_text(path))


def parse_log(path) -> dict:
    """Detect a log's kind and summarise it as a JSON-ready dict.

    Returns ``{"kind": "training"|"squad"|"training+squad"|"unknown", "trainable_params",
    "trainable_params_rounded", "dataset_size", "global_batch_size", "resumes": [{"line",
    "step", "replaced"}], "loss": [point dicts],
    "squad": {"f1", "em", "count", "final"} | None, "squad_samples": int, "warnings": [...]}``.
    Raises PipelineError only when the file cannot be read.
    """
    text = read_log_text(path)
    training = parse_training_text(text)
    squad = parse_squad_text(text) if ("F1 score:" in text or "pred is:" in text) else SquadLog()
    # An eval log also prints "Network Parameters", so only loss lines make it a training log.
    has_training = bool(training.loss)
    has_squad = bool(squad.samples) or bool(squad.running) or squad.final is not None
    kind = "+".join(k for k, present in (("training", has_training), ("squad", has_squad))
                    if present) or "unknown"
    warnings = training.warnings + squad.warnings
    if kind == "unknown":
        warnings.append("no MindFormers training or SQuAD evaluation lines found")
    return {
        "kind": kind,
        "trainable_params": training.trainable_params,
        "trainable_params_rounded": training.trainable_params_rounded,
        "dataset_size": training.dataset_size,
        "global_batch_size": training.global_batch_size,
        "resumes": training.resumes,
        "loss": [_json_safe(asdict(p)) for p in training.loss],
        "squad": squad.score(),
        "squad_samples": len(squad.samples),
        "warnings": warnings,
    }


# ---------------------------------------------------------------- writing (the trainer's lines)
def timestamp() -> str:
    """Local time as MindFormers prints it: 2026-11-30 12:00:00,123."""
    t = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f",{int(t % 1 * 1000):03d}"


def step_line(epoch: int, epochs: int, step: int, steps: int, loss: float,
              step_ms: float, lr: float, when: str | None = None) -> str:
    """One MindFormers-format step line (as MindFormers' MFLossMonitor prints it in sink mode)."""
    import numpy as np   # lr printed as MindFormers prints a float32
    when = when or timestamp()
    return (f"{when} - {LOG_SOURCE} - INFO - {{ Epoch:[{epoch:3d}/{epochs:3d}], "
            f"step:[{step:5d}/{steps:5d}], loss: {loss:.3f}, per_step_time: {int(round(step_ms))}ms, "
            f"lr: {str(np.float32(lr))}, overflow cond: False, loss_scale: 1.0")


def info_line(text: str, when: str | None = None) -> str:
    """A free-text INFO line under the trainer's source."""
    return f"{when or timestamp()} - {PARAMS_SOURCE} - INFO - {text}"


def params_line(trainable: int, when: str | None = None) -> str:
    return info_line(f"Network Parameters: {trainable}.", when)


def resume_lines(step: int, total: int, steps_per_epoch: int, when: str | None = None) -> list[str]:
    """The resume marker, as MindFormers' own resume_training prints it ("initial step: N"):
    the log's steps after N written before the kill are superseded by those that follow."""
    when = when or timestamp()
    return [f"{when} - {RESUME_SOURCE} - INFO - .............Start load resume context from "
            "checkpoint..................",
            f"{when} - {INITIAL_STEP_SOURCE} - INFO - initial epoch: {step // steps_per_epoch}",
            f"{when} - {INITIAL_STEP_SOURCE} - INFO - initial step: {step}",
            info_line(f"resumed at step {step}/{total}", when)]
