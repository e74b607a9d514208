"""The dashboard never breaks on odd folders or corrupt files, and never misleads: rows of two
runs pair by problem, failed jobs stay listed, the train form works on a fresh results folder.
AppTest against copies of the fixture runs; what the pages *say* is asserted."""
import json
import shutil
import sys
import time

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from pipeline import jobs
from tests.dashboard.test_pages import APP, BASE, CAND, FIXTURES, IMPORTED, rows

PAGES = ("overview", "math_by_type", "error_cases", "squad", "training", "score", "import_run")


@pytest.fixture
def results(tmp_path, monkeypatch):
    path = tmp_path / "results"
    shutil.copytree(FIXTURES, path)
    monkeypatch.setenv("PIPELINE_RESULTS", str(path))
    return path


def run_app(page=None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, at.exception
    return at


def texts(at) -> str:
    """Everything the page and sidebar say, as one string."""
    parts = []
    for kind in ("markdown", "caption", "warning", "error", "info", "success", "title", "subheader",
                 "text", "code"):
        parts += [getattr(e, "value", "") or getattr(e, "body", "") for e in at.get(kind)]
        parts += [getattr(e, "value", "") or "" for e in getattr(at.sidebar, kind, [])]
    parts += [m.label + " " + str(m.value) for m in at.metric]
    return "\n".join(str(p) for p in parts)


def write_rows(path, data):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data), encoding="utf-8")


def test_odd_folders_and_corrupt_files_break_no_page(results):
    shutil.copytree(results / BASE, results / "smollm2-base copy")
    shutil.copytree(results / CAND, results / "运行一")
    shutil.copytree(results / CAND, results / "broken-metrics")
    (results / "broken-metrics" / "metrics.json").write_text('{"math": {"rules": ', encoding="utf-8")
    shutil.copytree(results / CAND, results / "wrong-shape")
    (results / "wrong-shape" / "metrics.json").write_text('{"math": {"rules": {"exact": 1}}}')
    (results / "no-manifest-json").mkdir()
    (results / "no-manifest-json" / "manifest.json").write_text("[1, 2]")
    at = run_app()
    listed = set(at.dataframe[0].value["run"])
    assert {BASE, CAND, IMPORTED, "smollm2-base copy", "运行一"} <= listed
    assert not listed & {"broken-metrics", "wrong-shape", "no-manifest-json"}
    said = texts(at)
    assert "3 run folder(s) skipped" in " ".join(e.label for e in at.sidebar.expander)
    assert "broken-metrics: metrics.json: not valid JSON" in said
    assert "wrong-shape: metrics.json math.rules must map" in said
    assert "no-manifest-json: manifest.json: is not a JSON object" in said
    # every page, with the odd-named runs selected
    for page in PAGES:
        at = run_app(page, baseline="smollm2-base copy", candidate="运行一")
        assert not at.exception, page
    at = run_app("math_by_type", baseline="smollm2-base copy", candidate="运行一")
    cand = rows(results, CAND)
    assert at.dataframe[0].value.set_index("type").loc["all", "n"] == len(cand)


def test_a_corrupt_samples_file_is_named_on_the_page(results):
    (results / CAND / "samples_math.jsonl").write_text('{"id": "math-00000"\n', encoding="utf-8")
    for page in ("math_by_type", "error_cases"):
        at = run_app(page)
        assert any("samples_math.jsonl" in e.value and "not valid JSON" in e.value for e in at.error), page


def foreign_copy(results, name, keep: int):
    """A copy of the candidate whose problems differ except the first `keep` (ids unchanged)."""
    shutil.copytree(results / CAND, results / name)
    data = rows(results, name)
    for row in data[keep:]:
        row["problem"] += "（另一组）"
    write_rows(results / name / "samples_math.jsonl", data)
    return data


def test_runs_on_different_test_sets_pair_only_shared_problems(results):
    foreign_copy(results, "npu-foreign", keep=0)
    at = run_app("math_by_type", candidate="npu-foreign")
    said = texts(at)
    assert "No paired statistics" in said and "0 problems in common" in said
    assert not at.dataframe and not at.get("vega_lite_chart")  # no McNemar, no paired charts
    data = foreign_copy(results, "npu-partial", keep=10)
    at = run_app("math_by_type", candidate="npu-partial")
    assert "Only 10 problems in common" in texts(at)
    table = at.dataframe[0].value.set_index("type")
    assert table.loc["all", "n"] == 10
    base = {(r["problem"], r["reference"]): r["verdicts"]["tolerance"] for r in rows(results, BASE)}
    shared = [r for r in data if (r["problem"], r["reference"]) in base]
    assert table.loc["all", "base_only"] == sum(base[(r["problem"], r["reference"])] and not r["verdicts"]["tolerance"]
                                                 for r in shared)
    # the error-case pair filters only know the shared rows' baseline verdicts
    at = run_app("error_cases", candidate="npu-partial")
    at.selectbox(key="err_pair").select("baseline right, candidate wrong").run()
    shown = at.dataframe[0].value
    assert set(shown["id"]) <= {r["id"] for r in shared}
    assert any(f"answered 10 of these {len(data)} problems" in c.value for c in at.caption)


def test_fixes_filter_is_not_emptied_by_the_default_verdict(results):
    at = run_app("error_cases")
    base = {r["id"]: r["verdicts"]["tolerance"] for r in rows(results, BASE)}
    fixed = [r for r in rows(results, CAND) if r["verdicts"]["tolerance"] and not base[r["id"]]]
    assert fixed, "the fixture needs a row only the candidate got right"
    at.selectbox(key="err_pair").select("baseline wrong, candidate right").run()
    assert f"**{len(fixed)}** of" in at.markdown[0].value
    implied = at.selectbox(key="err_verdict_implied")
    assert implied.value == "right" and implied.disabled


def test_overview_defaults_and_empty_cells(results):
    # a newer fine-tuned run (any name) becomes the default candidate, with its recorded baseline
    shutil.copytree(results / CAND, results / "aaa-newest")
    man = json.loads((results / "aaa-newest" / "manifest.json").read_text())
    man.update(created="2026-12-01T00:00:00+00:00", baseline_run=IMPORTED)
    (results / "aaa-newest" / "manifest.json").write_text(json.dumps(man))
    imported = json.loads((results / IMPORTED / "manifest.json").read_text())
    imported["adapter"] = {"path": None, "trainable_params": 3_407_872}  # as `import` records it
    (results / IMPORTED / "manifest.json").write_text(json.dumps(imported))
    met = json.loads((results / IMPORTED / "metrics.json").read_text())
    met["squad"] = None  # the baseline has no SQuAD
    (results / IMPORTED / "metrics.json").write_text(json.dumps(met))
    at = run_app()
    assert (at.session_state["candidate"], at.session_state["baseline"]) == ("aaa-newest", IMPORTED)
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[IMPORTED, "gate"] == "—" and table.loc[IMPORTED, "adapter"] == "unknown (3,407,872 trainable)"
    metrics = {m.label: m.value for m in at.metric}
    assert "nan" not in " ".join(map(str, metrics.values())).lower()
    assert "None" not in " ".join(map(str, metrics.values()))
    # number cells a run lacks (the baseline's SQuAD F1) show a dash, not Streamlit's "None"
    assert pd.isna(table.loc[IMPORTED, "squad_f1"])
    assert at.dataframe[0].proto.placeholder == "—"


def wait_done(run_dir, timeout=60):
    deadline = time.monotonic() + timeout
    while jobs.is_alive(run_dir):
        assert time.monotonic() < deadline, f"job did not end: {jobs.tail(run_dir)}"
        time.sleep(0.2)


def test_failed_jobs_stay_listed_until_dismissed(results):
    new = results / "lora-fails-fast"  # a train job's folder: no manifest yet, never a run
    jobs.start(new, [sys.executable, "-c", "import sys; print('loading'); print('error: no data'); sys.exit(2)"])
    wait_done(new)
    jobs.start(results / IMPORTED, [sys.executable, "-c", "print('scored')"])
    wait_done(results / IMPORTED)
    at = run_app("score")  # any page; neither job's folder is the candidate
    said = texts(at)
    assert "lora-fails-fast" in said and "error: no data" in said and "loading" in said
    assert IMPORTED in said and "done" in said and "Job history** (2)" in said
    at.sidebar.button(key=f"job_dismiss_{__import__('dashboard.derive').derive.digest('lora-fails-fast')}").click().run()
    said = texts(at)
    assert "error: no data" not in said and "Job history** (1)" in said
    assert json.loads((new / "job.json").read_text())["dismissed"] is True


@pytest.mark.integration
def test_train_form_prepares_data_and_trains_on_a_fresh_results_folder(tmp_path, monkeypatch):
    from dashboard.derive import digest
    results, prepared = tmp_path / "results", tmp_path / "prepared"
    monkeypatch.setenv("PIPELINE_RESULTS", str(results))
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(prepared))  # nothing prepared: as in a fresh clone
    at = run_app()
    assert any("No runs yet" in w.value for w in at.sidebar.warning)
    preset = "configs/tiny_llama_lora_cpu.yaml"
    at.sidebar.selectbox(key="train_preset").select(preset).run()
    key = digest(preset)
    # the preset's own LoRA, not r8/a16/wq,wv; its data recipe, not yet prepared
    assert at.sidebar.number_input(key=f"train_rank_{key}").value == 4
    assert at.sidebar.number_input(key=f"train_alpha_{key}").value == 8.0
    assert at.sidebar.multiselect(key=f"train_targets_{key}").value == ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]
    assert at.sidebar.selectbox(key=f"train_recipe_{preset}").value == "tiny"
    assert any("Not prepared yet" in c.value for c in at.sidebar.caption)
    at.sidebar.text_input(key=f"train_name_{key}").input("tiny-fresh")
    at.sidebar.number_input(key=f"train_rank_{key}").set_value(2)
    at.sidebar.number_input(key=f"train_steps_{key}").set_value(3)
    next(b for b in at.sidebar.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    run = results / "tiny-fresh"
    job = json.loads((run / "job.json").read_text())
    assert job["stages"] == ["prepare data", "train"]
    wait_done(run, timeout=300)
    assert jobs.read_job(run)["status"] == "done", jobs.tail(run, 40)
    assert (prepared / "tiny" / "train.mindrecord").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["adapter"]["rank"] == 2 and manifest["adapter"]["alpha"] == 8.0
    assert len(manifest["adapter"]["targets"]) == 7
    at = run_app("training")
    said = texts(at)
    assert "tiny-fresh" in said and "done" in said
    assert at.dataframe[0].value.loc["tiny-fresh", "steps"] == 3
