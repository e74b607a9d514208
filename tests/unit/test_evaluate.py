"""evaluate: run folder files -> metrics.json + samples, hand-checked numbers, no inference."""
from __future__ import annotations

import json

import pytest

from pipeline import contest, runs
from pipeline.errors import PipelineError
from pipeline.evaluate import evaluate, render_report
from pipeline.npy import save_predictions

MINIMAL = "{problem}\n\n### Response:"
MATH = [  # (problem, solution, generated continuation)
    ("计算 1.00 + 2.00 等于多少？", "1.00 + 2.00 = 3.00", " 1.00 + 2.00 = 3.00"),       # right
    ("计算 4.00 + 5.00 等于多少？", "4.00 + 5.00 = 9.00", " 4.00 + 5.00 = 8.00"),       # wrong
    ("计算 5.00 - 7.25 等于多少？", "5.00 - 7.25 = -2.25", " 5.00 - 7.25 = 2.25"),      # sign
    ("计算 9.00 - 1.50 等于多少？", "9.00 - 1.50 = 7.50", " 9.00 - 1.50 = 7.50"),       # right
]
SQUAD = [
    {"id": "q1", "context": "Denver won.", "question": "Who won?", "answers": ["Denver Broncos"],
     "all_answers": ["Denver Broncos"], "prompt": "P1 ### Response:"},
    {"id": "q2", "context": "At Santa Clara.", "question": "Where?", "answers": ["Santa Clara"],
     "all_answers": ["Santa Clara"], "prompt": "P2 ### Response:"},
]


def _make_run(root, name, continuations, squad_answers=None, trainable=10, total=1000,
              seconds=None):
    run = runs.run_dir(name, root, create=True)
    runs.update_manifest(run, kind="finetuned" if trainable else "baseline",
                         model={"preset": "tiny", "name": "tiny", "total_params": total},
                         adapter=None if trainable == 0 else {"trainable_params": trainable},
                         prompt_template={"math": MINIMAL})
    tests = [{"id": f"math-{i:05d}", "problem": p, "solution": s} for i, (p, s, _) in enumerate(MATH)]
    runs.write_jsonl(run / "tests_math.jsonl", tests)
    save_predictions(run / "predictions_math.npy",
                     [MINIMAL.replace("{problem}", p) + c for (p, _, _), c in zip(MATH, continuations)])
    if seconds is not None:
        runs.write_jsonl(run / "infer_math.jsonl",
                         [{"index": i, "continuation": c, "seconds": s, "new_tokens": 3}
                          for i, (c, s) in enumerate(zip(continuations, seconds))])
    if squad_answers is not None:
        runs.write_jsonl(run / "tests_squad.jsonl", SQUAD)
        save_predictions(run / "predictions_squad.npy",
                         [item["prompt"] + " " + a + "\nnext line" for item, a in zip(SQUAD, squad_answers)])
    return run


def test_math_rules_types_ratio_score(tmp_path):
    run = _make_run(tmp_path, "tuned", [c for _, _, c in MATH], seconds=[0.5, 0.25, 1.0, 2.0])
    result = evaluate(run)
    m = result["metrics"]
    tol = m["math"]["rules"]["tolerance"]
    assert (tol["correct"], tol["total"], tol["accuracy"]) == (2, 4, 0.5)
    assert tol["by_type"]["add"] == {"accuracy": 0.5, "correct": 1, "total": 2}
    assert tol["by_type"]["sub"] == {"accuracy": 0.5, "correct": 1, "total": 2}
    assert set(m["math"]["rules"]) == {"contains", "exact", "rounded", "tolerance"}
    assert m["trainable_ratio"] == pytest.approx(0.01)
    assert m["score"] == pytest.approx(0.99 * 0.3 + 0.5 * 0.7)              # 0.647
    assert m["score_by_rule"]["exact"] == pytest.approx(0.647)
    assert m["leaderboard_rank"] == contest.leaderboard_rank(m["score"])
    assert m["squad"] is None
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk["math"]["rules"]["tolerance"]["accuracy"] == 0.5
    samples = runs.read_jsonl(run / "samples_math.jsonl")
    assert [s["verdicts"]["tolerance"] for s in samples] == [True, False, False, True]
    assert samples[2]["error_class"] == "wrong_sign" and samples[0]["error_class"] is None
    assert samples[0]["output"] == "1.00 + 2.00 = 3.00"        # continuation only
    assert [s["gen_seconds"] for s in samples] == [0.5, 0.25, 1.0, 2.0]


def test_rescoring_reads_files_only(tmp_path):
    run = _make_run(tmp_path, "tuned", [c for _, _, c in MATH], seconds=[1, 1, 1, 1])
    first = evaluate(run)["metrics"]
    (run / "infer_math.jsonl").unlink()        # no inference state at all: still scores
    second = evaluate(run)["metrics"]
    assert second["math"] == first["math"]
    assert runs.read_jsonl(run / "samples_math.jsonl")[0]["gen_seconds"] is None


def test_squad_gate_against_baseline_and_contest_base(tmp_path):
    wrong = [" 0"] * 4
    _make_run(tmp_path, "base", wrong, squad_answers=["Denver Broncos", "Santa Clara"], trainable=0)
    run = _make_run(tmp_path, "tuned", [c for _, _, c in MATH],
                    squad_answers=["Denver Broncos", "nowhere"])
    alone = evaluate(run, results=tmp_path)["metrics"]["squad"]
    assert alone["mindformers"] == {"f1": 50.0, "em": 50.0}
    assert alone["official"] == {"f1": 50.0, "em": 50.0}
    # against the contest's base Llama3-8B: F1 50 < 53.88 fails, EM 50 >= 39.75 passes
    assert alone["gate"]["baseline_run"] is None
    assert (alone["gate"]["f1_pass"], alone["gate"]["em_pass"], alone["gate"]["pass"]) == (False, True, False)

    result = evaluate("tuned", baseline="base", results=tmp_path)
    gate = result["metrics"]["squad"]["gate"]
    assert (gate["baseline_run"], gate["base_f1"], gate["base_em"]) == ("base", 100.0, 100.0)
    assert gate["f1_threshold"] == pytest.approx(90.0) and not gate["em_pass"]
    assert runs.read_manifest(run)["baseline_run"] == "base"
    samples = runs.read_jsonl(run / "samples_squad.jsonl")
    assert [s["prediction"] for s in samples] == ["Denver Broncos", "nowhere"]   # cut at newline
    # the baseline was scored in memory: nothing written into it
    assert not (tmp_path / "base" / "metrics.json").exists()
    # per-type comparison: the baseline got nothing right
    table = {row["type"]: row for row in result["comparison"]}
    assert table["ALL"]["delta"] == pytest.approx(0.5) and table["add"]["baseline"] == 0.0
    text = render_report(result)
    assert "FAIL" in text and "add" in text and "+50.0" in text
    # the manifest's baseline_run is used on a later plain evaluate
    assert evaluate(run, results=tmp_path)["metrics"]["squad"]["gate"]["baseline_run"] == "base"


def test_report_calls_a_baseline_the_reference_not_a_fail(tmp_path):
    # the base run's SQuAD (F1 50) is under the contest base's 53.88: as a candidate it would
    # fail, but a baseline is what its fine-tunes are gated against (as the dashboard shows)
    base = _make_run(tmp_path, "base", [" 0"] * 4, squad_answers=["Denver Broncos", "nowhere"],
                     trainable=0)
    text = render_report(evaluate(base))
    assert "gate: reference" in text and "--baseline base" in text and "FAIL" not in text


def test_a_baseline_with_em_zero_makes_the_em_gate_vacuous_and_says_so(tmp_path, monkeypatch,
                                                                       capsys):
    # baseline EM 0 (neither answer exact), F1 > 0: the EM threshold is 0, so only F1 tests
    base = _make_run(tmp_path, "base", [" 0"] * 4, squad_answers=["Denver", "Santa"],
                     trainable=0)
    evaluate(base)
    good = _make_run(tmp_path, "good", [" 0"] * 4, squad_answers=["Denver", "Santa"])
    bad = _make_run(tmp_path, "bad", [" 0"] * 4, squad_answers=["x", "y"])
    for run, verdict in ((good, "pass"), (bad, "FAIL")):
        result = evaluate(run, baseline="base", results=tmp_path)
        gate = result["metrics"]["squad"]["gate"]
        assert gate["base_em"] == 0 and contest.em_gate_vacuous(gate) and gate["em_pass"]
        text = render_report(result)
        assert f"gate vs base: {verdict}" in text
        assert contest.EM_VACUOUS_NOTE in text
    # `runs` uses the same words: the baseline is the reference, not FAIL; a footnote for EM
    from pipeline.__main__ import main
    monkeypatch.setattr(runs, "RESULTS_DIR", tmp_path)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert "reference" in lines["base"] and "FAIL" not in lines["base"]
    assert "pass*" in lines["good"] and "FAIL*" in lines["bad"]
    assert f"* {contest.EM_VACUOUS_NOTE}" in out
    assert main(["runs", "--json"]) == 0
    listed = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["base"]["gate"] == "reference" and listed["bad"]["gate"] == "FAIL"
    assert listed["good"]["gate_em_vacuous"] is True


def test_the_em_gate_is_real_against_the_contest_base(tmp_path):
    run = _make_run(tmp_path, "r", [" 0"] * 4, squad_answers=["Denver Broncos", "Santa Clara"])
    result = evaluate(run)
    assert not contest.em_gate_vacuous(result["metrics"]["squad"]["gate"])
    assert contest.EM_VACUOUS_NOTE not in render_report(result)


def test_base_only_run_has_ratio_zero(tmp_path):
    run = _make_run(tmp_path, "base", [c for _, _, c in MATH], trainable=0)
    m = evaluate(run)["metrics"]
    assert (m["trainable_params"], m["trainable_ratio"]) == (0, 0.0)
    assert m["score"] == pytest.approx(0.3 + 0.7 * 0.5)


def test_squad_from_an_imported_log(tmp_path):
    run = runs.run_dir("npu", tmp_path, create=True)
    runs.update_manifest(run, kind="imported", model={"total_params": 8_030_000_000},
                         adapter={"trainable_params": None},
                         squad_log={"f1": 60.0, "em": 45.0, "count": 2067, "final": True})
    m = evaluate(run)["metrics"]
    assert m["squad"]["source"] == "log" and m["squad"]["official"] is None
    assert m["squad"]["gate"]["pass"] is True
    assert m["math"] is None and m["trainable_ratio"] is None and m["score"] is None


def test_bad_runs_are_refused(tmp_path):
    run = runs.run_dir("empty", tmp_path, create=True)
    runs.update_manifest(run, kind="baseline")
    with pytest.raises(PipelineError, match="nothing to score"):
        evaluate(run)
    run = _make_run(tmp_path, "short", [c for _, _, c in MATH])
    runs.write_jsonl(run / "tests_math.jsonl", runs.read_jsonl(run / "tests_math.jsonl")[:3])
    with pytest.raises(PipelineError, match="4 predictions but 3 test rows"):
        evaluate(run)
    with pytest.raises(PipelineError, match="its own baseline"):
        evaluate("short", baseline="short", results=tmp_path)
    _make_run(tmp_path, "nosquad", [c for _, _, c in MATH])
    _make_run(tmp_path, "withsquad", [c for _, _, c in MATH], squad_answers=["a", "b"])
    with pytest.raises(PipelineError, match="baseline run has no SQuAD"):
        evaluate("withsquad", baseline="nosquad", results=tmp_path)
    with pytest.raises(PipelineError, match="no such run"):
        evaluate("missing", results=tmp_path)


def test_math_answers_get_room_for_the_longest_training_target():
    from pipeline.infer import MAX_NEW_TOKENS, default_new_tokens
    trained = {"data": {"train": {"longest_target_tokens": 100}}}
    assert default_new_tokens("math", trained) == 108
    assert default_new_tokens("math", {"data": {"train": {"longest_target_tokens": 20}}}) == MAX_NEW_TOKENS["math"]
    assert default_new_tokens("math", trained, base_only=True) == MAX_NEW_TOKENS["math"]
    assert default_new_tokens("squad", trained) == MAX_NEW_TOKENS["squad"]
    assert default_new_tokens("math", {}) == MAX_NEW_TOKENS["math"]


def test_an_adapter_from_another_run_gets_room_for_its_training_targets(tmp_path):
    """`infer --run new --adapter results/trained/adapter/step_N.ckpt`: the new run's manifest
    knows nothing of the training rows, the adapter's run does (the shipped adapter's
    `reversed` working is ~90 tokens: cut at 48, no answer would be read)."""
    import json

    from pipeline.infer import MAX_NEW_TOKENS, default_new_tokens
    trained = tmp_path / "trained"
    (trained / "adapter").mkdir(parents=True)
    (trained / "manifest.json").write_text(json.dumps({"data": {"train": {"longest_target_tokens": 91}}}))
    adapter = trained / "adapter" / "step_600.ckpt"
    assert default_new_tokens("math", {}, adapter=adapter) == 99
    # this run's own record wins; no record anywhere keeps the default
    assert default_new_tokens("math", {"data": {"train": {"longest_target_tokens": 100}}}, adapter=adapter) == 108
    assert default_new_tokens("math", {}, adapter=tmp_path / "elsewhere" / "a.ckpt") == MAX_NEW_TOKENS["math"]
    assert default_new_tokens("math", {}, base_only=True, adapter=adapter) == MAX_NEW_TOKENS["math"]


def test_baseline_pairs_rows_by_problem_not_position(tmp_path):
    # the baseline answered the same four problems in reverse order, ids renumbered (as an
    # import of another test file would): the first and last right, the others wrong
    base = _make_run(tmp_path, "base", [c for _, _, c in MATH], trainable=0)
    tests = runs.read_jsonl(base / "tests_math.jsonl")[::-1]
    for i, row in enumerate(tests):
        row["id"] = f"math-{i:05d}"
    runs.write_jsonl(base / "tests_math.jsonl", tests)
    save_predictions(base / "predictions_math.npy",
                     [MINIMAL.replace("{problem}", t["problem"]) + " " + t["solution"] if i in (0, 3)
                      else MINIMAL.replace("{problem}", t["problem"]) + " 0" for i, t in enumerate(tests)])
    # by problem: the baseline got problem 3 (9.00 - 1.50) and problem 0 (1.00 + 2.00) right
    tuned = _make_run(tmp_path, "tuned", [c for _, _, c in MATH])
    result = evaluate(tuned, baseline="base", results=tmp_path)
    assert result["metrics"]["comparison"] == {"baseline": "base", "paired_rows": 4}
    table = {row["type"]: row for row in result["comparison"]}
    assert table["ALL"]["baseline"] == 0.5 and table["ALL"]["delta"] == 0.0
    assert table["add"]["baseline"] == 0.5 and table["sub"]["baseline"] == 0.5
    on_disk = json.loads((tuned / "metrics.json").read_text())
    assert on_disk["comparison"] == {"baseline": "base", "paired_rows": 4}


def test_baseline_on_a_foreign_test_set_shares_no_rows(tmp_path):
    base = _make_run(tmp_path, "base", [c for _, _, c in MATH], trainable=0)
    tests = runs.read_jsonl(base / "tests_math.jsonl")
    for row in tests:  # same ids, other problems
        row["problem"] = row["problem"].replace("等于多少", "是多少")
    runs.write_jsonl(base / "tests_math.jsonl", tests)
    tuned = _make_run(tmp_path, "tuned", [c for _, _, c in MATH])
    result = evaluate(tuned, baseline="base", results=tmp_path)
    assert result["metrics"]["comparison"] == {"baseline": "base", "paired_rows": 0}
    text = render_report(result)
    assert "0 of this run's 4 math rows" in text and "no per-type comparison" in text
    assert "delta" not in text
