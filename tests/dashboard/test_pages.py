"""Every page under Streamlit's AppTest, against the fixture runs (copied to tmp_path).

Expected numbers are recomputed here straight from the fixture files, not from
the dashboard's own code paths.
"""
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pipeline import jobs

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "runs"
APP = str(REPO / "dashboard" / "app.py")
BASE, CAND, IMPORTED = "smollm2-base", "smollm2-lora-r8", "npu-llama3-r8"


@pytest.fixture
def results(tmp_path, monkeypatch):
    path = tmp_path / "results"
    shutil.copytree(FIXTURES, path)
    monkeypatch.setenv("PIPELINE_RESULTS", str(path))
    return path


def rows(results, run, name="samples_math.jsonl"):
    return [json.loads(line) for line in (results / run / name).read_text().splitlines()]


def app_on(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"app_pages/{page}.py")
        at.run()
        assert not at.exception, at.exception
    return at


def test_overview_table_and_rule_switch(results):
    at = app_on()
    table = at.dataframe[0].value.set_index("run")
    assert set(table.index) == {BASE, CAND, IMPORTED}
    met = json.loads((results / CAND / "metrics.json").read_text())
    assert table.loc[CAND, "math_acc"] == pytest.approx(100 * met["math"]["rules"]["exact"]["accuracy"])
    assert table.loc[CAND, "score"] == pytest.approx(met["score"])
    assert table.loc[CAND, "adapter"] == "r8 a16 wq,wv"
    assert "FAIL" in table.loc[IMPORTED, "gate"] and "pass" in table.loc[CAND, "gate"]
    # Defaults: the baseline run and the fine-tuned run.
    assert at.session_state["baseline"] == BASE and at.session_state["candidate"] == CAND
    at.sidebar.selectbox(key="rule").select("contains").run()
    table = at.dataframe[0].value.set_index("run")
    contains = met["math"]["rules"]["contains"]["accuracy"]
    assert table.loc[CAND, "math_acc"] == pytest.approx(100 * contains)
    assert table.loc[CAND, "score"] == pytest.approx((1 - met["trainable_ratio"]) * 0.3 + contains * 0.7)


def test_selection_is_kept_across_pages(results):
    at = app_on()
    at.sidebar.selectbox(key="candidate").select(IMPORTED).run()
    at.switch_page("app_pages/score.py").run()
    assert at.session_state["candidate"] == IMPORTED
    assert at.sidebar.selectbox(key="candidate").value == IMPORTED
    assert any(IMPORTED in m.label for m in at.metric)


def test_math_by_type_paired_counts(results):
    at = app_on("math_by_type")
    base = {r["id"]: r["verdicts"]["exact"] for r in rows(results, BASE)}
    cand = {r["id"]: (r["verdicts"]["exact"], r["type"]) for r in rows(results, CAND)}
    table = at.dataframe[0].value.set_index("type")
    for t in ("add", "div", "all"):
        ids = [i for i, (_, ty) in cand.items() if t == "all" or ty == t]
        only_base = sum(base[i] and not cand[i][0] for i in ids)
        only_cand = sum(cand[i][0] and not base[i] for i in ids)
        assert (table.loc[t, "n"], table.loc[t, "base_only"], table.loc[t, "cand_only"]) == \
            (len(ids), only_base, only_cand)
    assert len(at.get("vega_lite_chart")) >= 4  # by type, difference, two buckets, rules
    assert table.index[-1] == "all" and table.index[0] == "add"  # contest type order


def test_error_cases_filters(results):
    at = app_on("error_cases")
    cand = rows(results, CAND)
    base = {r["id"]: r["verdicts"]["exact"] for r in rows(results, BASE)}
    wrong = [r for r in cand if not r["verdicts"]["exact"]]
    assert f"**{len(wrong)}** of {len(cand)}" in at.markdown[0].value
    at.selectbox(key="err_pair").select("baseline right, candidate wrong").run()
    regressed = [r for r in wrong if base[r["id"]]]
    assert f"**{len(regressed)}** of" in at.markdown[0].value
    shown = at.dataframe[0].value
    assert sorted(shown["id"]) == sorted(r["id"] for r in regressed)
    at.selectbox(key="err_pair").select("all rows").run()
    at.selectbox(key="err_verdict").select("any").run()
    at.text_input(key="err_text").input("平方根").run()
    sqrt_rows = [r for r in cand if "平方根" in r["problem"]]
    assert f"**{len(sqrt_rows)}** of" in at.markdown[0].value
    assert set(at.dataframe[0].value["type"]) == {"sqrt"}


def test_squad_sorted_by_loss_from_baseline(results):
    at = app_on("squad")
    table = at.dataframe[0].value
    base = {r["id"]: r["mf_f1"] for r in rows(results, BASE, "samples_squad.jsonl")}
    cand = {r["id"]: r["mf_f1"] for r in rows(results, CAND, "samples_squad.jsonl")}
    worst = max(base[i] - cand[i] for i in cand)
    assert table["f1_loss"].iloc[0] == pytest.approx(worst)
    assert list(table["f1_loss"]) == sorted(table["f1_loss"], reverse=True)
    assert len(table) == len(cand)


def test_squad_page_shows_both_metrics_per_run(results):
    """The gate's metric and the official one side by side, as metrics.json has them."""
    at = app_on("squad")
    table = at.table[0].value
    for run in (BASE, CAND, IMPORTED):
        squad = json.loads((results / run / "metrics.json").read_text())["squad"]
        assert table.loc[run, "MindFormers F1"] == pytest.approx(squad["mindformers"]["f1"], abs=0.005)
        assert table.loc[run, "official F1"] == pytest.approx(squad["official"]["f1"], abs=0.005)
    assert any("official SQuAD v1.1 script" in c.value for c in at.caption)
    # the baseline is what the others are gated against, never "passed/failed" itself
    assert table.loc[BASE, "gate"] == "reference (the baseline)"
    cand_gate = json.loads((results / CAND / "metrics.json").read_text())["squad"]["gate"]
    assert table.loc[CAND, "gate"] == (f"{'passed' if cand_gate['pass'] else 'failed'} "
                                       f"(vs {cand_gate['baseline_run']})")


def test_training_dedups_resumed_steps(results):
    at = app_on("training")
    summary = at.dataframe[0].value
    assert summary.loc[CAND, "steps"] == 30  # 2 epochs x 15 steps; 16-20 were logged twice
    assert any("repeated global step" in c.value for c in at.caption)
    at.multiselect(key="train_runs").select(IMPORTED).run()
    assert not at.exception
    assert set(at.dataframe[0].value.index) == {CAND, IMPORTED}


def test_training_draws_accuracy_against_step_and_names_the_best(results):
    at = app_on("training")
    assert any("eval-checkpoints" in c.value for c in at.caption)   # none yet: says how
    points = [{"step": s, "adapter": f"adapter/step_{s}.ckpt", "rows": 40, "headline_rule": "exact",
               "rules": {"exact": a, "tolerance": a + 0.05}, "by_type": {"add": a, "sub": a / 2}}
              for s, a in ((10, 0.05), (20, 0.225), (30, 0.2))]
    (results / CAND / "checkpoints_math.json").write_text(json.dumps(points))
    at = app_on("training")
    best = [c.value for c in at.caption if c.value.startswith("Best checkpoint")]
    assert best == [f"Best checkpoint of `{CAND}`: step 20 (22.5%, adapter `adapter/step_20.ckpt`). "
                    "Choose it on validation rows, not on the test."]
    chart = at.get("vega_lite_chart")[-1].proto.spec
    spec = json.loads(chart)
    assert "3 checkpoints, 40 rows, exact rule" in json.dumps(spec)


def test_training_shows_the_checkpoint_chosen_on_heldout_squad(results):
    """The choice's chart and sentence say which adapter, why, and whether the run's
    predictions were decoded with it; a broken choice file is named, not drawn."""
    from pipeline.checkpoint_choice import apply_choice, choose
    run = results / CAND
    (run / "adapter").mkdir()
    for step in (20, 30):
        (run / "adapter" / f"step_{step}.ckpt").write_bytes(b"x")
    base = {"tests_sha256": "h", "limit": None, "items": 100,
            "mindformers": {"f1": 20.0, "em": 0.0}, "official": {"f1": 20.0, "em": 0.0}}
    points = [{"step": s, "adapter": f"adapter/step_{s}.ckpt", "rows": 40, "headline_rule": "exact",
               "tests_sha256": "v", "limit": 40, "max_new_tokens": None,
               "rules": {"exact": a}, "by_type": {"add": a},
               "squad": {**base, "mindformers": {"f1": f1, "em": 0.0}}}
              for s, a, f1 in ((10, 0.05, 21.0), (20, 0.2, 19.5), (30, 0.3, 18.0))]
    (run / "checkpoints_math.json").write_text(json.dumps(points))
    apply_choice(run, choose(points, base))       # 30 keeps 90% < 95%: step 20
    at = app_on("training")
    said = " ".join(m.value for m in at.markdown).replace("\\", "")   # markdown escapes
    assert ("**Chosen for submission: step 20** (adapter `adapter/step_20.ckpt`): the most "
            "validation math (20.0%) among the checkpoints keeping >= 95% of the base's held-out "
            "SQuAD F1 and EM.") in said
    assert "predictions were decoded with" not in said     # the fixture has no inference record
    assert ("held-out SQuAD F1 of the candidate checkpoints** (100 items never scored, the "
            "base model on the same items)") in said
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    heldout = specs[-1]                     # its values: tests/unit/test_charts.py
    assert heldout["layer"][0]["encoding"]["y"]["title"] == "held-out SQuAD F1 (MindFormers)"
    accuracy = specs[-2]                                  # the accuracy chart marks it too
    assert any(l["mark"].get("color") == "#2e7d32" for l in accuracy["layer"])
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["inference"] = {"math": {"settings": {"adapter": "adapter/step_30.ckpt"}}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    at = app_on("training")
    assert ("The run's math predictions were decoded with another adapter"
            in " ".join(m.value for m in at.markdown))
    (run / "checkpoint_choice.json").write_text(json.dumps({"step": 20, "candidates": "none"}))
    at = app_on("training")
    warned = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "checkpoint_choice.json" in warned and "not an eval-checkpoints --choose file" in warned


def _adapters_beside_a_validation_split(results, tmp_path, steps):
    """The candidate run with (unloadable) kept adapters at `steps`, its training data
    pointed at a prepared folder holding a validation split; (run, prepared folder)."""
    run = results / CAND
    (run / "adapter").mkdir()
    for step in steps:
        (run / "adapter" / f"step_{step}.ckpt").write_bytes(b"not a checkpoint")
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "validation.jsonl").write_text('{"problem": "p", "solution": "1"}\n')
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["data"]["train"]["path"] = str(prepared / "train.mindrecord")
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run, prepared


def _wait_for_job(run, seconds=60):
    deadline = time.time() + seconds
    while jobs.read_job(run)["status"] == "running" and time.time() < deadline:
        time.sleep(0.5)


def test_sidebar_starts_eval_checkpoints_on_the_runs_validation_split(results, tmp_path):
    at = app_on()
    assert not [b for b in at.sidebar.button if b.key == "job_curve"]   # no adapters: no button
    run, prepared = _adapters_beside_a_validation_split(results, tmp_path, [10])
    at = app_on()
    at.sidebar.button(key="job_curve").click().run()
    job = json.loads((run / "job.json").read_text())
    assert job["argv"][3:] == ["eval-checkpoints", "--run", str(run), "--tests",
                               str(prepared / "validation.jsonl"), "--limit", "200"]
    _wait_for_job(run)


def test_sidebar_starts_the_checkpoint_choice_where_heldout_items_were_prepared(results, tmp_path):
    """The main job's choice stage as a job: the last adapter and the one 100 steps before,
    on the validation split and the held-out SQuAD items prepared beside it."""
    run, prepared = _adapters_beside_a_validation_split(results, tmp_path, [50, 100, 150, 200])
    at = app_on()
    assert not [b for b in at.sidebar.button if b.key == "job_choose"]  # no held-out items yet
    (prepared / "squad_heldout_100.jsonl").write_text('{"id": "q"}\n')
    at = app_on()
    at.sidebar.button(key="job_choose").click().run()
    job = json.loads((run / "job.json").read_text())
    assert job["argv"][3:] == ["eval-checkpoints", "--run", str(run), "--tests",
                               str(prepared / "validation.jsonl"), "--limit", "200",
                               "--every", "100", "--from-step", "100",
                               "--squad", str(prepared / "squad_heldout_100.jsonl"), "--choose"]
    _wait_for_job(run)


def test_score_what_if(results):
    at = app_on("score")
    values = {m.label: m.value for m in at.metric}
    assert values["trainable params"] == "3,407,872"  # the contest baseline: r8 on wq,wv
    at.number_input(key="wi_rank").set_value(16).run()
    at.multiselect(key="wi_targets").select("wk").select("wo").run()
    values = {m.label: m.value for m in at.metric}
    assert values["trainable params"] == "13,631,488"  # r16 q,k,v,o in the contest logs


def test_import_previews_safely_and_refuses_unsafe_pickles(results, tmp_path):
    at = app_on("import_run")
    at.radio(key="imp_mode").set_value("Paths on this machine").run()
    at.text_input(key="imp_path_predictions").input(str(results / CAND / "predictions_math.npy")).run()
    at.text_input(key="imp_path_tests").input(str(results / CAND / "tests_math.jsonl")).run()
    assert any("96 predictions read safely" in s.value for s in at.success)
    assert not at.button(key="imp_go").disabled
    evil = tmp_path / "evil.npy"
    from collections import OrderedDict
    arr = np.empty(1, dtype=object)
    arr[0] = OrderedDict(text_generation_text=["x"])  # a global outside numpy's machinery
    np.save(evil, arr, allow_pickle=True)
    at.text_input(key="imp_path_predictions").input(str(evil)).run()
    assert any("refusing to load" in e.value for e in at.error)
    assert at.button(key="imp_go").disabled


def wait_done(run_dir, timeout=60):
    deadline = time.monotonic() + timeout
    while jobs.is_alive(run_dir):
        assert time.monotonic() < deadline, "job did not end"
        time.sleep(0.1)


def test_sidebar_job_disables_buttons_and_shows_failure(results):
    run = results / CAND
    jobs.start(run, [sys.executable, "-c", "import time; time.sleep(20)"])
    try:
        at = app_on()
        assert at.sidebar.button(key="job_eval").disabled
        assert at.sidebar.button(key="job_math").disabled
    finally:
        jobs.stop(run)
        wait_done(run)
    jobs.start(run, [sys.executable, "-c", "import sys; print('working'); print('error: boom'); sys.exit(2)"])
    wait_done(run)
    at = app_on()
    assert not at.sidebar.button(key="job_eval").disabled
    assert any("error: boom" in e.value for e in at.sidebar.error)
    assert any("working" in c.value for c in at.sidebar.code)  # the log is kept and shown


def test_sidebar_rescore_button_starts_a_job(results):
    at = app_on()
    at.sidebar.button(key="job_eval").click().run()
    job = json.loads((results / CAND / "job.json").read_text())
    assert job["argv"][1:5] == ["-m", "pipeline", "evaluate", "--run"]
    assert job["argv"][5] == str(results / CAND)
    assert job["argv"][6:] == ["--baseline", str(results / BASE)]  # the sidebar's baseline
    wait_done(results / CAND)


def test_overview_says_when_a_baseline_reused_another_runs_rows(results):
    """A baseline made by `infer --reuse` (the main job's default) says whose decode it holds."""
    path = results / BASE / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.setdefault("inference", {})["math"] = {"settings": {}, "reused_from": "oldbase"}
    path.write_text(json.dumps(manifest))
    captions = " ".join(c.value for c in app_on().caption)
    assert "math rows reused from oldbase" in captions and "not decoded again" in captions
