"""import: NPU contest files (real contest logs from tests/fixtures/contest) -> a scored run."""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline import runs
from pipeline.__main__ import main
from pipeline.errors import PipelineError
from pipeline.importer import import_run
from pipeline.npy import save_predictions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contest"
TRAIN_LOG = FIXTURES / "finetune_worker_0.log"        # "Network Parameters: 3407872."
SQUAD_LOG = FIXTURES / "squad_eval_base_truncated.log"  # stops at a running score (1190 items)
ROWS = [("计算 1.00 + 2.00 等于多少？", "1.00 + 2.00 = 3.00", "1.00 + 2.00 = 3.00"),
        ("计算 4.00 + 5.00 等于多少？", "4.00 + 5.00 = 9.00", "4.00 + 5.00 = 8.00"),
        ("计算 3.00 的平方根？", "√3.00 = 1.732050807568877293527446342", "√3.00 = 1.73")]


@pytest.fixture()
def npu_files(tmp_path):
    preds = tmp_path / "result_npy.npy"
    # the contest's inference fed the bare problem: prediction = problem + continuation
    save_predictions(preds, [p + c for p, _, c in ROWS])
    tests = tmp_path / "test.jsonl"
    tests.write_text("".join(json.dumps({"problem": p, "solution": s}, ensure_ascii=False) + "\n"
                             for p, s, _ in ROWS), encoding="utf-8")
    return preds, tests


def test_import_scores_math_ratio_and_squad_from_logs(tmp_path, npu_files):
    preds, tests = npu_files
    results = tmp_path / "results"
    out = import_run("npu-r8", preds, tests, train_log=TRAIN_LOG, eval_log=SQUAD_LOG,
                     results=results)
    run = results / "npu-r8"
    m = out["metrics"]
    assert m["trainable_params"] == 3_407_872 and m["total_params"] == 8_030_000_000
    assert m["trainable_ratio"] == pytest.approx(0.000424393, abs=1e-9)   # the contest baseline
    tol = m["math"]["rules"]["tolerance"]
    # 1.73 for 1.7320508...: wrong when exact, right rounded to its 2 places and within 0.01
    assert (tol["correct"], tol["total"], m["math"]["rules"]["exact"]["correct"]) == (2, 3, 1)
    assert m["math"]["rules"]["rounded"]["correct"] == 2
    # the headline is the contest's rule (exact): 1 of 3
    assert m["math"]["headline_rule"] == "exact"
    assert m["score"] == pytest.approx((1 - 3_407_872 / 8.03e9) * 0.3 + 0.7 * 1 / 3)
    assert m["squad"]["source"] == "log"
    assert m["squad"]["mindformers"]["f1"] == pytest.approx(3.517236178087883)
    assert m["squad"]["count"] == 1190 and m["squad"]["gate"]["pass"] is False
    assert any("1190" in w for w in out["warnings"])
    manifest = runs.read_manifest(run)
    assert manifest["kind"] == "imported" and manifest["model"]["name"] == "Llama3-8B"
    assert (run / "predictions_math.npy").read_bytes() == preds.read_bytes()
    assert (run / "train.log").read_bytes() == TRAIN_LOG.read_bytes()
    assert (run / "squad_eval.log").is_file() and (run / "samples_math.jsonl").is_file()
    assert [r["type"] for r in runs.read_jsonl(run / "tests_math.jsonl")] == ["add", "add", "sqrt"]


def test_import_refuses_bad_input_before_writing(tmp_path, npu_files):
    preds, tests = npu_files
    results = tmp_path / "results"
    short = tmp_path / "short.jsonl"
    short.write_text(tests.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="3 math predictions but 1 test rows"):
        import_run("x", preds, short, results=results)
    evil = tmp_path / "evil.npy"
    arr = np.empty(1, dtype=object)
    arr[0] = collections.OrderedDict(text_generation_text=["hi"])   # a non-numpy global
    np.save(evil, arr, allow_pickle=True)
    with pytest.raises(PipelineError, match="refusing to load"):
        import_run("x", evil, tests, results=results)
    with pytest.raises(PipelineError, match="no SQuAD scores"):
        import_run("x", preds, tests, eval_log=TRAIN_LOG, results=results)
    with pytest.raises(PipelineError, match="not allowed"):
        import_run("../x", preds, tests, results=results)
    assert not (results / "x").exists()
    import_run("x", preds, tests, results=results)
    with pytest.raises(PipelineError, match="already exists"):
        import_run("x", preds, tests, results=results)
    assert import_run("x", preds, tests, results=results, force=True)["metrics"]["math"]["total"] == 3


def test_import_without_train_log_has_no_ratio(tmp_path, npu_files):
    preds, tests = npu_files
    m = import_run("bare", preds, tests, results=tmp_path)["metrics"]
    assert m["trainable_ratio"] is None and m["score"] is None and m["squad"] is None


def test_cli_import_then_runs_listing(tmp_path, npu_files, monkeypatch, capsys):
    preds, tests = npu_files
    monkeypatch.setattr(runs, "RESULTS_DIR", tmp_path / "results")
    code = main(["import", "--predictions", str(preds), "--tests", str(tests),
                 "--train-log", str(TRAIN_LOG), "--name", "npu", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["run_id"] == "npu"
    assert main(["runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["run_id"] == "npu" and listed[0]["kind"] == "imported"
    assert listed[0]["math_accuracy"] == pytest.approx(1 / 3)   # exact: the contest's rule
    assert main(["runs"]) == 0
    assert "npu" in capsys.readouterr().out
    # a bad file is a one-line error and exit code 2
    assert main(["import", "--predictions", str(tests), "--tests", str(tests), "--name", "y"]) == 2
    assert "not an .npy file" in capsys.readouterr().err


# ---------------------------------------------------------------- SQuAD predictions
PHASE2 = FIXTURES / "phase2_predictions.npy"


def squad_texts(items):
    """prompt + continuation per item: gold, a partial answer, a wrong one, an empty one and
    a two-line one, so F1 and EM differ and both metrics have work to do."""
    out = []
    for i, item in enumerate(items):
        gold = item["answers"][0]
        cont = [gold, " ".join(gold.split()[:1]), "the answer is unknown", "",
                f" {gold}\nand more"][i % 5]
        out.append(item["prompt"] + cont)
    return out


def write_unicode_npy(path, texts, shape):
    # what MindFormers' SQuAD eval writes: a '<U' array, not the object-of-dicts layout
    np.save(path, np.array(texts, dtype=str).reshape(shape), allow_pickle=False)
    return path


@pytest.mark.parametrize("shape", [(2067,), (2067, 1)], ids=["1-D", "Nx1"])
def test_import_squad_predictions_scores_exactly_like_score_squad(tmp_path, capsys, shape):
    from pipeline.data.squad import SQUAD_DEV, build_squad_eval
    items = build_squad_eval()
    assert len(items) == 2067
    preds = write_unicode_npy(tmp_path / "squad_npy.npy", squad_texts(items), shape)
    from pipeline.npy import load_predictions
    try:
        load_predictions(preds)
    except PipelineError:
        pytest.skip("pipeline.npy does not read the (N,1) layout yet")
    expected = {}
    for metric in ("mindformers", "official"):
        assert main(["score-squad", str(preds), "--squad", str(SQUAD_DEV), "--metric", metric,
                     "--json"]) == 0
        expected[metric] = json.loads(capsys.readouterr().out)
    results = tmp_path / "results"
    m = import_run("npu-squad", squad_predictions=preds, results=results)["metrics"]
    run = results / "npu-squad"
    for metric in ("mindformers", "official"):
        assert m["squad"][metric] == {"f1": expected[metric]["f1"], "em": expected[metric]["em"]}
    assert m["squad"]["count"] == 2067 and m["math"] is None
    assert 0 < m["squad"]["mindformers"]["em"] < m["squad"]["mindformers"]["f1"] < 100
    gate = m["squad"]["gate"]   # no --baseline: the contest's base Llama3-8B numbers
    assert gate["baseline_run"] is None and gate["base_f1"] == pytest.approx(59.87023775108988)
    assert len(runs.read_jsonl(run / "samples_squad.jsonl")) == 2067
    assert (run / "predictions_squad.npy").read_bytes() == preds.read_bytes()
    assert runs.read_manifest(run)["data"]["squad_tests"]["rows"] == 2067
    assert not (run / "predictions_math.npy").exists()


def small_squad(tmp_path, n=6):
    from pipeline.data.squad import write_squad_eval
    path = tmp_path / "squad6.jsonl"
    write_squad_eval(path, limit=n)
    return path, runs.read_jsonl(path)


def test_import_both_tasks_gated_against_a_baseline_run(tmp_path, npu_files, capsys):
    preds, tests = npu_files
    squad, items = small_squad(tmp_path)
    results = tmp_path / "results"
    gold = write_unicode_npy(tmp_path / "gold.npy",
                             [it["prompt"] + it["answers"][0] for it in items], (len(items),))
    base = import_run("npu-base", squad_predictions=gold, squad=squad, results=results)["metrics"]
    assert base["squad"]["mindformers"] == {"f1": 100.0, "em": 100.0}
    half = write_unicode_npy(tmp_path / "half.npy", squad_texts(items), (len(items),))
    m = import_run("npu-r8", preds, tests, train_log=TRAIN_LOG, squad_predictions=half,
                   squad=squad, baseline="npu-base", results=results)["metrics"]
    assert m["math"]["total"] == 3 and m["trainable_params"] == 3_407_872
    gate = m["squad"]["gate"]
    assert gate["baseline_run"] == "npu-base" and gate["f1_threshold"] == pytest.approx(90.0)
    assert gate["pass"] is False and m["squad"]["count"] == 6
    # the same numbers score-squad prints for that file and eval set
    assert main(["score-squad", str(half), "--squad", str(squad), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["f1"] == m["squad"]["mindformers"]["f1"]
    run = results / "npu-r8"
    assert {p.name for p in run.glob("samples_*.jsonl")} == {"samples_math.jsonl", "samples_squad.jsonl"}
    assert runs.read_manifest(run)["baseline_run"] == "npu-base"


def test_import_squad_refusals(tmp_path, npu_files):
    preds, tests = npu_files
    squad, items = small_squad(tmp_path, n=2)
    results = tmp_path / "results"
    too_many = write_unicode_npy(tmp_path / "many.npy", ["a", "b", "c"], (3,))
    with pytest.raises(PipelineError, match="3 SQuAD predictions but the eval set .* only 2 items"):
        import_run("x", squad_predictions=too_many, squad=squad, results=results)
    for kwargs in ({"squad_predictions": PHASE2}, {"predictions": PHASE2, "tests": tests}):
        with pytest.raises(PipelineError, match="phase-2 prediction file .*multiple-choice"):
            import_run("x", results=results, **kwargs)
    with pytest.raises(PipelineError, match="nothing to import"):
        import_run("x", results=results)
    with pytest.raises(PipelineError, match="both the predictions .* and the test rows"):
        import_run("x", preds, results=results)
    with pytest.raises(PipelineError, match="/dev/zero: is not a regular file"):
        import_run("x", preds, Path("/dev/zero"), results=results)
    with pytest.raises(PipelineError, match="no such run folder"):
        import_run("x", preds, tests, baseline="nope", results=results)
    assert not (results / "x").exists()
    # fewer predictions than items: refused, or scored against the first ones with partial,
    # as score-squad [--partial] does
    one = write_unicode_npy(tmp_path / "one.npy", [items[0]["prompt"] + items[0]["answers"][0]], (1,))
    with pytest.raises(PipelineError, match="1 SQuAD predictions but .* 2 items; .*--partial"):
        import_run("x", squad_predictions=one, squad=squad, results=results)
    assert not (results / "x").exists()
    out = import_run("x", squad_predictions=one, squad=squad, results=results, partial=True)
    assert out["metrics"]["squad"]["count"] == 1 and "first 1 items" in out["warnings"][0]


def test_cli_import_squad_only_then_force_reimport_math_only(tmp_path, npu_files, monkeypatch, capsys):
    preds, tests = npu_files
    squad, items = small_squad(tmp_path, n=3)
    gold = write_unicode_npy(tmp_path / "gold.npy", [it["prompt"] + it["answers"][0] for it in items], (3,))
    monkeypatch.setattr(runs, "RESULTS_DIR", tmp_path / "results")
    assert main(["import", "--squad-predictions", str(gold), "--squad", str(squad),
                 "--name", "sq"]) == 0
    out = capsys.readouterr().out
    assert "squad (3): MindFormers F1 100.00 EM 100.00" in out and "gate vs contest base" in out
    # a forced re-import with math only leaves no SQuAD file of the earlier import behind
    assert main(["import", "--predictions", str(preds), "--tests", str(tests), "--name", "sq",
                 "--force", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["squad"] is None and m["math"]["total"] == 3
    assert not (tmp_path / "results" / "sq" / "predictions_squad.npy").exists()
    assert main(["import", "--name", "none"]) == 2
    assert "nothing to import" in capsys.readouterr().err


def _crash_in_evaluate(monkeypatch):
    """A failure after the files are written (what a full disk or a kill mid-score does)."""
    import pipeline.evaluate

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(pipeline.evaluate, "evaluate", crash)


def test_failed_import_leaves_no_half_made_run(tmp_path, npu_files, monkeypatch):
    preds, tests = npu_files
    results = tmp_path / "results"
    results.mkdir()
    _crash_in_evaluate(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        import_run("npu", preds, tests, train_log=TRAIN_LOG, results=results)
    assert list(results.iterdir()) == []


def test_failed_forced_reimport_puts_the_old_run_back(tmp_path, npu_files, monkeypatch):
    preds, tests = npu_files
    results = tmp_path / "results"
    import_run("npu", preds, tests, train_log=TRAIN_LOG, results=results)
    run = results / "npu"
    (run / "job.log").write_text("the dashboard job's log\n")   # not the import's: kept
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    _crash_in_evaluate(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        import_run("npu", preds, tests, results=results, force=True)   # no train log this time
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert runs.read_manifest(run)["adapter"]["trainable_params"] == 3_407_872
