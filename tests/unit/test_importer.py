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
    with pytest.raises(PipelineError, match="3 predictions but 1 test rows"):
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
