"""CLI contracts of classify and score-math, run as `python -m pipeline ...` subprocesses."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PROMPT = "{problem}\n\n### Response:"
TESTS = [
    {"problem": "计算 4204.22 + -2369.17 等于多少？", "solution": "4204.22 + -2369.17 = 1835.05"},
    {"problem": "计算 5073.46 / -1586.04 等于多少？",
     "solution": "5073.46 / -1586.04 = -3.198822223903558548334216035"},
    {"problem": "当 x = 4.03 时，求函数 y = 57x^54 的值",
     "solution": "函数的值为：2.769155521409239378157128235E+34"},
    {"problem": "计算 1.00 + 2.00 等于多少？", "solution": "1.00 + 2.00 = 3.00"},
]
ANSWERS = [
    "4204.22 + -2369.17 = 1835.05",                      # right everywhere
    "-3.20",                                              # rounded / tolerance only
    "函数的值为：2.769155521409239378157128235E+034",     # exact value, other spelling
    "",                                                   # nothing generated
]


def run(*args):
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def write_tests(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_predictions(path, texts):
    np.save(path, np.array([{"text_generation_text": [t]} for t in texts], dtype=object),
            allow_pickle=True)
    return path


@pytest.fixture
def files(tmp_path):
    tests = write_tests(tmp_path / "tests.jsonl", TESTS)
    texts = [PROMPT.replace("{problem}", t["problem"]) + " " + a for t, a in zip(TESTS, ANSWERS)]
    return tests, write_predictions(tmp_path / "pred.npy", texts)


def test_classify_json(files):
    tests, _ = files
    res = run("classify", tests, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out == {"counts": {"add": 2, "div": 1, "function": 1},
                   "types": ["add", "div", "function", "add"]}


def test_classify_table(files):
    tests, _ = files
    res = run("classify", tests)
    assert res.returncode == 0
    assert "add" in res.stdout and "4 rows" in res.stdout


@pytest.mark.parametrize("rule,correct,by_type", [
    ("contains", 1, {"add": 1, "div": 0, "function": 0}),
    ("exact", 2, {"add": 1, "div": 0, "function": 1}),
    ("rounded", 3, {"add": 1, "div": 1, "function": 1}),
    ("tolerance", 3, {"add": 1, "div": 1, "function": 1}),
])
def test_score_math_json(files, rule, correct, by_type):
    tests, pred = files
    res = run("score-math", pred, tests, "--rule", rule, "--prompt", "{problem}\\n\\n### Response:", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["rule"] == rule
    assert (out["correct"], out["total"], out["accuracy"]) == (correct, 4, correct / 4)
    assert list(out["by_type"]) == ["add", "div", "function"]
    assert {t: v["correct"] for t, v in out["by_type"].items()} == by_type
    assert out["by_type"]["add"]["total"] == 2


def test_score_math_default_rule_is_the_contests_exact_and_samples_file(files, tmp_path):
    tests, pred = files
    samples = tmp_path / "samples.jsonl"
    res = run("score-math", pred, tests, "--json", "--samples", samples)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["rule"] == "exact" and out["correct"] == 2
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    assert [r["extracted"] for r in rows] == ["1835.05", "-3.20", "2.769155521409239378157128235E+034", None]
    # An error class exactly where the headline (exact) rule says wrong.
    assert [r["error_class"] is None for r in rows] == [r["verdicts"]["exact"] for r in rows]
    assert rows[3]["error_class"] == "no_number"
    assert set(rows[0]["verdicts"]) == {"contains", "exact", "rounded", "tolerance"}


def test_score_math_table(files):
    tests, pred = files
    res = run("score-math", pred, tests, "--rule", "exact")
    assert res.returncode == 0
    assert "rule: exact" in res.stdout and "50.00%" in res.stdout


def test_score_math_length_mismatch_is_one_line_naming_both(files, tmp_path):
    tests, _ = files
    short = write_predictions(tmp_path / "short.npy", ["a", "b", "c"])
    res = run("score-math", short, tests, "--json")
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "3 predictions" in lines[0] and "4 test rows" in lines[0]


def test_missing_field_names_line_and_field(tmp_path, files):
    _, pred = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(TESTS[0]) + "\n\n" + json.dumps({"problem": "x"}) + "\n", encoding="utf-8")
    res = run("score-math", pred, bad)
    assert res.returncode == 2
    assert "line 3" in res.stderr and "'solution'" in res.stderr and "bad.jsonl" in res.stderr
    # classify only needs the problem
    assert run("classify", bad, "--json").returncode == 0


def test_malformed_json_line_is_named(tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text(json.dumps(TESTS[0]) + "\n{not json\n", encoding="utf-8")
    res = run("classify", bad, "--json")
    assert res.returncode == 2
    assert "broken.jsonl" in res.stderr and "line 2" in res.stderr


def test_bad_tolerance_is_an_error(files):
    tests, pred = files
    res = run("score-math", pred, tests, "--abs-tol", "lots")
    assert res.returncode == 2 and "abs_tol" in res.stderr
