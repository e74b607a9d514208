"""The catalogue's bad inputs through the dashboard's Import page ("Paths on this machine"),
under Streamlit's AppTest: the page shows one error naming the file, raises nothing, keeps
the Import button disabled, and no file of the workspace changes.

One AppTest serves every case (loading the app costs seconds, a case milliseconds); each
case sets both path fields afresh.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.reliability import bad_inputs
from tests.reliability.catalogue import record
from tests.reliability.conftest import FIXTURE_RUNS, REPO, RUN, snapshot

APP = str(REPO / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("import_page")
    results = root / "results"
    shutil.copytree(FIXTURE_RUNS, results)
    good = root / "good"
    good.mkdir()
    shutil.copy(results / RUN / "tests_math.jsonl", good / "tests.jsonl")
    shutil.copy(results / RUN / "predictions_math.npy", good / "pred.npy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIPELINE_RESULTS", str(results))
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        at.switch_page("app_pages/import_run.py")
        at.run()
        at.radio(key="imp_mode").set_value("Paths on this machine").run()
        assert not at.exception, at.exception
        yield at, root


def _show(at, predictions: Path, tests: Path):
    at.text_input(key="imp_path_predictions").input(str(predictions))
    at.text_input(key="imp_path_tests").input(str(tests)).run()
    assert not at.exception, at.exception


def _check_refused(case: str, at, root: Path, bad: Path, predictions: Path, tests: Path):
    watched = [root / "results", root / "good"]
    before = [snapshot(p) for p in watched]
    _show(at, predictions, tests)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and str(bad) in errors[0], errors
    assert "Traceback" not in errors[0]
    assert at.button(key="imp_go").disabled
    assert [snapshot(p) for p in watched] == before
    assert not (root / "PWNED").exists() and not (Path.cwd() / "PWNED").exists()
    record(f"{case} | Import page", errors[0])


@pytest.mark.parametrize("kind", bad_inputs.TEXT)
def test_bad_tests_file_on_the_import_page(page, kind, tmp_path):
    at, root = page
    bad = bad_inputs.TEXT[kind](tmp_path)
    _check_refused(kind, at, root, bad, root / "good/pred.npy", bad)


@pytest.mark.parametrize("kind", bad_inputs.NPY)
def test_bad_prediction_file_on_the_import_page(page, kind, tmp_path):
    at, root = page
    bad = bad_inputs.NPY[kind](tmp_path)
    _check_refused(f"{kind} (.npy)", at, root, bad, bad, root / "good/tests.jsonl")


@pytest.mark.parametrize("field", ["predictions", "tests"])
def test_dev_zero_on_the_import_page(page, field):
    at, root = page
    good = {"predictions": root / "good/pred.npy", "tests": root / "good/tests.jsonl"}
    paths = {**good, field: Path("/dev/zero")}
    _check_refused(f"/dev/zero as {field}", at, root, Path("/dev/zero"),
                   paths["predictions"], paths["tests"])


def test_good_files_enable_import_and_a_count_mismatch_is_refused(page, tmp_path):
    at, root = page
    _show(at, root / "good/pred.npy", root / "good/tests.jsonl")
    assert not at.error and not at.warning
    assert not at.button(key="imp_go").disabled
    rows = (root / "good/tests.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    short = tmp_path / "short.jsonl"
    short.write_text("".join(rows[:-1]), encoding="utf-8")
    _check_refused("count mismatch", at, root, short, root / "good/pred.npy", short)
    assert "96 math predictions but 95 test rows" in at.error[0].value


def test_a_mindformers_column_file_reads_on_the_import_page(page, tmp_path):
    """Issue 12: an (N, 1) <U array (MindFormers' SQuAD layout) previews like a flat one."""
    at, root = page
    rows = [json.loads(line) for line in (root / "good/tests.jsonl").read_text("utf-8").splitlines()]
    column = tmp_path / "column.npy"
    np.save(column, np.array([r["problem"] + " " + r["solution"] for r in rows]).reshape(-1, 1))
    _show(at, column, root / "good/tests.jsonl")
    assert not at.error
    assert [s.value for s in at.success] == ["Math: 96 predictions read safely, one per test row (96)."]
