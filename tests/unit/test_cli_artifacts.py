"""score-squad, parse-log, contest-score through the real CLI (subprocess)."""
import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat
import pytest

from pipeline.data.squad import build_squad_eval, write_squad_eval
from pipeline.npy import save_predictions

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "contest"
DEV = ROOT / "data" / "squad" / "dev-v1.1.json"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert proc.stdout == ""


@pytest.fixture(scope="module")
def squad_files(tmp_path_factory):
    """20 eval items as JSONL, and predictions = prompt + gold answer + a run-on line."""
    folder = tmp_path_factory.mktemp("squad")
    eval_path = folder / "tests_squad.jsonl"
    write_squad_eval(eval_path, limit=20)
    items = build_squad_eval()[:20]
    texts = [it["prompt"] + " " + it["answers"][0] + "\n\n### Input:\nmore" for it in items]
    texts[1] = items[1]["prompt"] + " Newton"  # "Cam Newton": MF F1 0.5, official 2/3
    pred_path = folder / "predictions_squad.npy"
    save_predictions(pred_path, texts)
    return eval_path, pred_path


def test_score_squad_on_jsonl_set(squad_files):
    eval_path, pred_path = squad_files
    proc = run_cli("score-squad", pred_path, "--squad", eval_path, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == {"f1": 100.0 * 19.5 / 20, "em": 100.0 * 19 / 20, "count": 20,
                      "metric": "mindformers"}
    official = json.loads(run_cli("score-squad", pred_path, "--squad", eval_path,
                                  "--metric", "official", "--json").stdout)
    assert official["f1"] == pytest.approx(100.0 * (19 + 2 / 3) / 20)
    assert official["metric"] == "official"


def test_score_squad_on_dev_json_scores_first_n_and_warns(squad_files):
    _, pred_path = squad_files
    proc = run_cli("score-squad", pred_path, "--squad", DEV, "--json")
    assert proc.returncode == 2 and "--partial" in proc.stderr  # never by position silently
    proc = run_cli("score-squad", pred_path, "--squad", DEV, "--partial", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["count"] == 20 and result["em"] == 95.0
    assert result["warnings"] == ["20 predictions for 2067 items: scored the first 20 items only"]


def test_parse_log_json():
    proc = run_cli("parse-log", FIXTURES / "finetune_worker_0.log", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["kind"], result["trainable_params"], len(result["loss"])) == ("training", 3407872, 8125)
    squad = json.loads(run_cli("parse-log", FIXTURES / "squad_eval_base_truncated.log", "--json").stdout)
    assert squad["squad"] == {"f1": 3.517236178087883, "em": 2.0168067226890756, "count": 1190,
                              "final": False}


def test_contest_score_json():
    proc = run_cli("contest-score", "--accuracy", "0.64", "--trainable", "3407872", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    ratio = 3407872 / 8030000000
    assert result == {"ratio": ratio, "score": (1 - ratio) * 0.3 + 0.64 * 0.7, "leaderboard_rank": 3}
    phase2 = json.loads(run_cli("contest-score", "--accuracy", "0.5", "--trainable", "7321000",
                                "--phase", "2", "--json").stdout)
    assert phase2["ratio"] == 0.001 and phase2["leaderboard_rank"] is None
    assert phase2["score"] == pytest.approx(0.99 * 0.3 + 0.35, abs=1e-15)


def test_contest_score_rejects_percent():
    proc = run_cli("contest-score", "--accuracy", "64", "--trainable", "3407872", "--json")
    assert_one_line_error(proc, "--accuracy must be a fraction in 0..1", "64.0")
    proc = run_cli("contest-score", "--accuracy", "0.5", "--trainable", "9000000000")
    assert_one_line_error(proc, "trainable parameters must be in 0..8030000000")


def test_missing_files(tmp_path, squad_files):
    eval_path, _ = squad_files
    missing = tmp_path / "absent.npy"
    assert_one_line_error(run_cli("score-squad", missing, "--squad", eval_path), str(missing), "file not found")
    assert_one_line_error(run_cli("parse-log", tmp_path / "absent.log"), "absent.log: file not found")


def test_wrong_json_eval_set(tmp_path, squad_files):
    _, pred_path = squad_files
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answers": ["x"]}\n{"id": "b", oops}\n')
    assert_one_line_error(run_cli("score-squad", pred_path, "--squad", bad), str(bad), "line 2: not valid JSON")
    dev = tmp_path / "dev.json"
    dev.write_text('{"version": "1.1"}')
    assert_one_line_error(run_cli("score-squad", pred_path, "--squad", dev), str(dev), "'data' list")


def test_pickle_with_other_objects(tmp_path, squad_files):
    eval_path, _ = squad_files
    path = tmp_path / "dates.npy"
    array = np.empty(1, dtype=object)
    array[0] = {"text_generation_text": [datetime.datetime(2024, 7, 25)]}
    np.save(path, array, allow_pickle=True)
    assert_one_line_error(run_cli("score-squad", path, "--squad", eval_path), str(path),
                          "datetime.datetime")


def test_malicious_pickle_does_not_run(tmp_path, squad_files):
    eval_path, _ = squad_files
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    with open(path, "wb") as fh:
        npformat.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": (1,)})
        fh.write(f"cbuiltins\neval\n(S\"open('{marker}', 'w')\"\ntR.".encode())
    assert_one_line_error(run_cli("score-squad", path, "--squad", eval_path), str(path), "builtins.eval")
    assert not marker.exists()


def test_empty_array(tmp_path, squad_files):
    eval_path, _ = squad_files
    path = tmp_path / "empty.npy"
    np.save(path, np.empty(0, dtype=object), allow_pickle=True)
    assert_one_line_error(run_cli("score-squad", path, "--squad", eval_path), str(path), "empty")


def test_too_many_predictions(tmp_path, squad_files):
    eval_path, _ = squad_files
    path = tmp_path / "many.npy"
    save_predictions(path, ["x"] * 21)
    assert_one_line_error(run_cli("score-squad", path, "--squad", eval_path),
                          "21 predictions but the SQuAD set has only 20 items")
