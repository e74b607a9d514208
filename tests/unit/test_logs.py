"""MindFormers log parsers: hand-written lines, the real contest logs, damaged input."""
import json
import math
from pathlib import Path

import pytest

from pipeline.data.squad import build_squad_eval
from pipeline.errors import PipelineError
from pipeline.logs import parse_log, parse_squad_log, parse_squad_text, parse_training_log, parse_training_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contest"
TRAIN_LOG = FIXTURES / "finetune_worker_0.log"
SQUAD_LOG = FIXTURES / "squad_eval_base_truncated.log"

PREFIX = "2024-07-25 18:28:34,547 - mindformers[mindformers/core/callback/callback.py:316] - INFO - "
SINK = ("{ Epoch:[  1/ 10], step:[    2/ 1625], loss: 1.518, per_step_time: 323225ms, "
        "lr: 1.8461538e-08, overflow cond: False, loss_scale: 1.0")
NON_SINK = ("{ Epoch:[  2/  3], step:[    5/   10], loss:[1.392/1.400], per_step_time: 259ms, "
            "lr: 3.558719e-08, overflow cond: True, loss_scale: 65536.0, global_norm: [2.5]")


def test_sink_line_behind_a_spinner():
    log = parse_training_text("-\r\\\r|\r/" + PREFIX + SINK)
    [p] = log.loss
    assert (p.epoch, p.epochs, p.step, p.steps_per_epoch, p.global_step) == (1, 10, 2, 1625, 2)
    assert (p.loss, p.loss_mean, p.lr, p.per_step_time_ms) == (1.518, None, 1.8461538e-08, 323225.0)
    assert (p.overflow, p.loss_scale, p.global_norm) == (False, 1.0, None)
    assert p.time == "2024-07-25T18:28:34.547"
    assert log.warnings == []


def test_non_sink_line_with_mean_and_global_norm():
    [p] = parse_training_text(NON_SINK).loss
    assert p.global_step == (2 - 1) * 10 + 5 == 15
    assert (p.loss, p.loss_mean, p.overflow, p.loss_scale, p.global_norm) == (1.392, 1.4, True, 65536.0, 2.5)
    assert p.time is None


def test_run_facts():
    text = "\n".join([
        "INFO - global_batch_size = batch_size * data_parallel * micro_batch_interleave_num"
        " * gradient_accumulation_steps = 32 = 32 * 1 * 1 * 1",
        "INFO - Create train dataset finish, dataset size:1625",
        "INFO - Network Parameters: 3407872.",
    ])
    log = parse_training_text(text)
    assert (log.trainable_params, log.trainable_params_rounded) == (3407872, False)
    assert (log.dataset_size, log.global_batch_size) == (1625, 32)


def test_parameters_in_millions_are_flagged_as_rounded():
    log = parse_training_text("INFO - Network Parameters: 8030 M.")
    assert (log.trainable_params, log.trainable_params_rounded) == (8_030_000_000, True)
    assert any("approximate" in w for w in log.warnings)


def test_resumed_run_keeps_the_latest_duplicate():
    first = "{ Epoch:[  1/  2], step:[    3/    4], loss: 2.000, per_step_time: 10ms, lr: 1e-05"
    again = "{ Epoch:[  1/  2], step:[    3/    4], loss: 1.500, per_step_time: 10ms, lr: 1e-05"
    later = "{ Epoch:[  2/  2], step:[    1/    4], loss: 1.000, per_step_time: 10ms, lr: 1e-05"
    log = parse_training_text("\n".join([later, first, again]))
    assert [(p.global_step, p.loss) for p in log.loss] == [(3, 1.5), (5, 1.0)]
    assert log.warnings == ["1 repeated global step(s) (a resumed run?): kept the latest of each"]


def test_cut_line_and_nan_loss_warn_without_raising():
    text = "\n".join([
        "{ Epoch:[  1/  1], step:[    1/    3], loss: nan, per_step_time: 10ms, lr: 1e-05",
        "{ Epoch:[  1/  1], step:[    2/    3], loss: 1.25, per_step_time: 10ms, lr: 1e-05",
        "{ Epoch:[  1/  1], step:[    3/    3], loss: 1.2",  # the file ends mid-number
    ])
    log = parse_training_text(text)
    assert [p.global_step for p in log.loss] == [1, 2]
    assert math.isnan(log.loss[0].loss)
    assert "line 3: unreadable loss line (cut short?)" in log.warnings
    assert any("nan/inf" in w for w in log.warnings)


def test_real_training_log():
    log = parse_training_log(TRAIN_LOG)
    assert len(log.loss) == 8125
    assert (log.trainable_params, log.trainable_params_rounded) == (3_407_872, False)
    assert (log.dataset_size, log.global_batch_size) == (1625, 32)
    assert {(p.epochs, p.steps_per_epoch) for p in log.loss} == {(10, 1625)}
    # Sink mode logs every 2nd global step: 2, 4, ..., 16250 (the epoch counter restarts,
    # so epochs alternate between 812 and 813 logged steps).
    assert [p.global_step for p in log.loss] == list(range(2, 16251, 2))
    per_epoch = [sum(p.epoch == e for p in log.loss) for e in range(1, 11)]
    assert per_epoch == [812, 813] * 5
    first, last = log.loss[0], log.loss[-1]
    assert (first.loss, first.per_step_time_ms) == (1.518, 323225.0)  # includes compilation
    assert (last.epoch, last.step, last.loss, last.lr) == (10, 1625, 1.078, 1.0000009e-06)
    assert first.line == 837  # editor line numbers, though the line holds a \r spinner
    assert log.warnings == []


SQUAD_TEXT = """pred is:
 ['Denver Broncos\\'']
 label is:
 ['Denver Broncos']
The F1/Em of this example is:  {'F1': 100.0, 'Em': 0.0}
pred is:
 ['']
 label is:
 ["it's"]
The F1/Em of this example is:  {'F1': 0.0, 'Em': 0.0}
F1 score: 50.0, Em score: 0.0, total_count: 2
"""


def test_squad_log_with_final_score():
    log = parse_squad_text(SQUAD_TEXT)
    assert [(s.pred, s.label, s.f1, s.em) for s in log.samples] == [
        ("Denver Broncos'", "Denver Broncos", 100.0, 0.0), ("", "it's", 0.0, 0.0)]
    assert log.final == {"f1": 50.0, "em": 0.0, "count": 2, "final": True}
    assert log.score() == log.final
    assert log.warnings == []


def test_real_truncated_squad_log_reports_not_final():
    log = parse_squad_log(SQUAD_LOG)
    assert len(log.samples) == 1199 and len(log.running) == 119
    assert log.final is None
    assert log.score() == {"f1": 3.517236178087883, "em": 2.0168067226890756, "count": 1190,
                           "final": False}
    assert any("no final score" in w for w in log.warnings)
    # The contest eval set is the first question/answer of each paragraph: labels line up.
    items = build_squad_eval()
    assert [s.label for s in log.samples] == [it["answers"][0] for it in items[:1199]]
    assert sum(s.pred == "" for s in log.samples) == 1138  # Llama3 stopping at once


def test_parse_log_detects_kinds(tmp_path):
    train = parse_log(TRAIN_LOG)
    assert train["kind"] == "training" and train["squad"] is None
    assert len(train["loss"]) == 8125 and train["trainable_params"] == 3407872
    assert set(train["loss"][0]) >= {"epoch", "step", "global_step", "loss", "lr", "per_step_time_ms"}
    squad = parse_log(SQUAD_LOG)
    assert squad["kind"] == "squad" and squad["loss"] == []
    assert squad["squad"]["final"] is False and squad["squad"]["count"] == 1190
    # An eval log prints the whole model as "Network Parameters: 8030 M."
    assert (squad["trainable_params"], squad["trainable_params_rounded"]) == (8_030_000_000, True)
    json.dumps(train, allow_nan=False)  # strict JSON


def test_parse_log_on_garbage_and_nan(tmp_path):
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"\x00\xff\xfe garbage \x80\nno useful lines\n")
    result = parse_log(junk)
    assert result["kind"] == "unknown" and result["loss"] == [] and result["squad"] is None
    assert result["warnings"] == ["no MindFormers training or SQuAD evaluation lines found"]
    nan = tmp_path / "nan.log"
    nan.write_text("{ Epoch:[  1/  1], step:[    1/    1], loss: nan, per_step_time: 5ms, lr: 0.1\n")
    result = parse_log(nan)
    assert result["loss"][0]["loss"] is None
    json.dumps(result, allow_nan=False)


def test_missing_log_is_a_pipeline_error(tmp_path):
    with pytest.raises(PipelineError, match="file not found"):
        parse_log(tmp_path / "absent.log")


def test_windows_line_endings(tmp_path):
    path = tmp_path / "crlf.log"
    path.write_bytes((PREFIX + SINK + "\r\n" + SQUAD_TEXT.replace("\n", "\r\n")).encode())
    result = parse_log(path)
    assert result["kind"] == "training+squad"
    assert result["loss"][0]["loss_scale"] == 1.0 and result["loss"][0]["line"] == 1
    assert result["squad"] == {"f1": 50.0, "em": 0.0, "count": 2, "final": True}
    assert parse_squad_log(path).samples[1].label == "it's"


def test_resume_marker_replaces_the_steps_logged_before_the_kill_without_warning():
    from pipeline.train import resume_lines, step_line
    before = [step_line(1, 1, s, 6, 2.0 - s / 10, 10, 1e-4) for s in range(1, 5)]   # killed after 4
    after = [step_line(1, 1, s, 6, 1.0 - s / 10, 10, 1e-4) for s in range(3, 7)]    # resumed from 2
    text = "\n".join(before + resume_lines(2, 6, 6) + after)
    log = parse_training_text(text)
    assert [(p.global_step, p.loss) for p in log.loss] == [
        (1, 1.9), (2, 1.8), (3, 0.7), (4, 0.6), (5, 0.5), (6, 0.4)]
    assert log.resumes == [{"line": 7, "step": 2, "replaced": 2}]
    assert log.warnings == []
