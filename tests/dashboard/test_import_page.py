"""The Import page under AppTest: what it says before it offers an import, the SQuAD slot,
and staged uploads that go away. Imports really run (the pipeline CLI as a job)."""
import json
import os
import sys
import time

import numpy as np
import pytest

from pipeline import jobs, runs
from tests.dashboard.test_pages import BASE, CAND, FIXTURES, app_on, results, wait_done  # noqa: F401

PHASE2 = FIXTURES.parents[0] / "contest" / "phase2_predictions.npy"


def on_paths(**fields):
    at = app_on("import_run")
    at.radio(key="imp_mode").set_value("Paths on this machine").run()
    for field, value in fields.items():
        at.text_input(key=f"imp_path_{field}").input(str(value)).run()
    assert not at.exception, at.exception
    return at


def errors(at):
    return " | ".join(e.value for e in at.error)


def squad_npy(results, path):
    """A '<U' SQuAD prediction file (as MindFormers writes it): gold answers for the base
    run's 24 eval items, the first 12 replaced by a wrong answer."""
    items = runs.read_jsonl(results / BASE / "tests_squad.jsonl")
    texts = [it["prompt"] + (" nothing" if i < 12 else " " + it["answers"][0]) for i, it in enumerate(items)]
    np.save(path, np.array(texts), allow_pickle=False)
    return path


def test_device_file_as_tests_is_refused_without_reading_it(results):
    preds = results / CAND / "predictions_math.npy"
    at = on_paths(predictions=preds, tests="/dev/zero")
    assert "/dev/zero: is not a regular file (a device, pipe or socket)" in errors(at)
    assert at.button(key="imp_go").disabled


@pytest.mark.parametrize("content, says", [
    ("rows95", "96 math predictions but 95 test rows"),
    ("array", "the math test file is a JSON array; expected JSON Lines"),
    ("empty", "the math test file is empty; expected JSON Lines"),
])
def test_tests_that_do_not_fit_keep_import_disabled(results, tmp_path, content, says):
    rows = (results / CAND / "tests_math.jsonl").read_text(encoding="utf-8").splitlines()
    text = {"rows95": "\n".join(rows[:95]) + "\n",
            "array": "[" + ",\n".join(rows) + "]\n", "empty": ""}[content]
    tests = tmp_path / "tests.jsonl"
    tests.write_text(text, encoding="utf-8")
    at = on_paths(predictions=results / CAND / "predictions_math.npy", tests=tests)
    assert says in errors(at)
    assert at.button(key="imp_go").disabled
    assert not at.success


def test_each_slot_says_what_the_file_is_and_nothing_given_is_not_importable(results):
    at = on_paths()
    captions = [c.value for c in at.caption]
    assert any("one {\"problem\", \"solution\"} object per line, in prediction order" in c for c in captions)
    assert any("row i answers item i of the 2,067-item contest set" in c for c in captions)
    assert any("math predictions with their test rows, the SQuAD predictions, or both" in i.value
               for i in at.info)
    assert at.button(key="imp_go").disabled


def test_phase2_file_is_refused_with_a_sentence(results):
    at = on_paths(squad_predictions=PHASE2)
    assert "phase-2 prediction file (InternLM-7B multiple-choice answers" in errors(at)
    assert at.button(key="imp_go").disabled


def test_math_and_squad_import_gated_against_a_baseline_shows_in_overview(results, tmp_path):
    squad = squad_npy(results, tmp_path / "squad_npy.npy")
    at = on_paths(predictions=results / CAND / "predictions_math.npy",
                  tests=results / CAND / "tests_math.jsonl",
                  squad_predictions=squad, squad=results / BASE / "tests_squad.jsonl")
    successes = [s.value for s in at.success]
    assert any("96 predictions read safely" in s for s in successes)
    assert any("SQuAD: 24 predictions read safely for 24 eval items" in s for s in successes)
    at.text_input(key="imp_name").input("npu-both").run()
    at.selectbox(key="imp_baseline").select(BASE).run()
    at.button(key="imp_go").click().run()
    run = results / "npu-both"
    wait_done(run)
    assert json.loads((run / "job.json").read_text())["status"] == "done"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["math"]["total"] == 96 and metrics["squad"]["count"] == 24
    assert metrics["squad"]["gate"]["baseline_run"] == BASE
    at = app_on()
    table = at.dataframe[0].value.set_index("run")
    assert "npu-both" in table.index and table.loc["npu-both", "gate"]
    assert table.loc["npu-both", "math_acc"] == pytest.approx(
        100 * metrics["math"]["rules"][metrics["math"]["headline_rule"]]["accuracy"])
    # the SQuAD page pairs its 24 samples with the baseline: the wrong answers (first 12)
    # lost F1 wherever the baseline had some
    base_rows = runs.read_jsonl(results / BASE / "samples_squad.jsonl")
    lost = sum(1 for r in base_rows[:12] if r["mf_f1"] > 0)
    at.sidebar.selectbox(key="candidate").select("npu-both").run()
    at.switch_page("app_pages/squad.py").run()
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == 24
    assert any("24 questions" in c.value and f"; {lost} lost F1" in c.value for c in at.caption)


def test_uploads_are_staged_per_slot_and_removed_after_the_import(results, tmp_path):
    squad = squad_npy(results, tmp_path / "squad_npy.npy")
    at = app_on("import_run")
    at.text_input(key="imp_name").input("npu-up").run()
    # both NPU files are called result_npy.npy: each slot keeps its own
    at.file_uploader(key="imp_up_predictions").set_value(
        ("result_npy.npy", (results / CAND / "predictions_math.npy").read_bytes(), "application/octet-stream")).run()
    at.file_uploader(key="imp_up_tests").set_value(
        ("test.jsonl", (results / CAND / "tests_math.jsonl").read_bytes(), "application/json")).run()
    at.file_uploader(key="imp_up_squad_predictions").set_value(
        ("result_npy.npy", squad.read_bytes(), "application/octet-stream")).run()
    at.file_uploader(key="imp_up_squad").set_value(
        ("tests_squad.jsonl", (results / BASE / "tests_squad.jsonl").read_bytes(), "application/json")).run()
    assert not at.exception, at.exception
    staged = results / "_uploads" / "npu-up"
    assert (staged / "predictions" / "result_npy.npy").read_bytes() != \
        (staged / "squad_predictions" / "result_npy.npy").read_bytes()
    at.button(key="imp_go").click().run()
    wait_done(results / "npu-up")
    # an abandoned folder (untouched for over an hour) and one of a live job
    for name in ("abandoned", "busy"):
        old = results / "_uploads" / name / "tests" / "t.jsonl"
        old.parent.mkdir(parents=True)
        old.write_text("{}\n")
        past = time.time() - 2 * 3600
        os.utime(old, (past, past))
    jobs.start(results / "busy", [sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        at = app_on("import_run")
        assert any("Removed 2 staged upload folder(s) of finished or abandoned imports: "
                   "abandoned, npu-up." in c.value for c in at.caption)
        assert sorted(p.name for p in (results / "_uploads").iterdir()) == ["busy"]
    finally:
        jobs.stop(results / "busy")
        wait_done(results / "busy")
    m = json.loads((results / "npu-up" / "metrics.json").read_text())
    assert m["math"]["total"] == 96 and m["squad"]["count"] == 24
