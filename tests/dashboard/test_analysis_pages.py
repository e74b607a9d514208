"""The Compare page, the Math page's digit charts and heatmap, and error classes per rule,
under Streamlit's AppTest against the fixture runs (expected numbers read from the files)."""
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

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


def app_on(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, at.exception
    return at


def chart_titled(at, words: str) -> dict:
    """The spec of the chart whose title holds `words`, with its rows (Streamlit ships them
    as Arrow beside the spec) under "rows"."""
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        if words in json.dumps(spec.get("title", "")):
            spec["rows"] = [row for ds in chart.proto.datasets
                            for row in pa.ipc.open_stream(ds.data.data).read_pandas()
                            .to_dict("records")]
            return spec
    raise AssertionError(f"no chart titled {words!r}")


def chart_rows(spec: dict) -> list[dict]:
    return spec["rows"]


def test_compare_page_lists_settings_and_results_of_every_picked_run(results):
    at = app_on("compare_runs")
    at.multiselect(key="compare_runs").set_value([BASE, CAND, IMPORTED]).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("run")
    assert list(table.index) == [BASE, CAND, IMPORTED]
    assert table.loc[CAND, "lora_rank"] == 8 and table.loc[CAND, "targets"] == "wq,wv"
    assert table.loc[IMPORTED, "kind"] == "imported" and table.loc[IMPORTED, "steps"] == 260
    met = json.loads((results / IMPORTED / "metrics.json").read_text())
    rule = at.session_state["rule"]
    assert table.loc[IMPORTED, "math_acc"] == pytest.approx(
        100 * met["math"]["rules"][rule]["accuracy"])
    assert table.loc[IMPORTED, "acc_add"] == pytest.approx(
        100 * met["math"]["rules"][rule]["by_type"]["add"]["accuracy"])
    bars = chart_titled(at, "Accuracy by type")
    assert {row["run"] for row in chart_rows(bars)} == {BASE, CAND, IMPORTED}
    scatter = chart_titled(at, "trainable ratio")
    assert {row["run"] for row in chart_rows(scatter)} == {CAND, IMPORTED}  # base: ratio 0
    assert at.get("download_button")


def test_a_run_keeps_its_colour_whatever_is_picked(results):
    at = app_on("compare_runs")
    at.multiselect(key="compare_runs").set_value([CAND, IMPORTED]).run()
    first = json.dumps(chart_titled(at, "Accuracy by type")["layer"][0]["encoding"]["color"]["scale"])
    at.multiselect(key="compare_runs").set_value([IMPORTED]).run()
    second = json.dumps(chart_titled(at, "Accuracy by type")["layer"][0]["encoding"]["color"]["scale"])
    assert first == second and BASE in first  # the domain is every run, not the picked ones


def test_math_page_digit_charts_have_their_bucket_labels(results):
    at = app_on("math_by_type")
    operand = chart_titled(at, "operand digits")
    labels = {row["operand_size"] for row in chart_rows(operand)}
    assert labels and labels <= {"1", "2", "3", "4", "5+"}
    answer = chart_titled(at, "answer digits")
    assert {row["answer_len"] for row in chart_rows(answer)} <= {"1-2", "3-4", "5-8", "9-16", "17+"}
    assert answer["layer"][0]["encoding"]["x"]["sort"] == ["1-2", "3-4", "5-8", "9-16", "17+"]


def test_math_page_heatmap_shows_each_runs_positions(results):
    at = app_on("math_by_type")
    heat = chart_titled(at, "Right digit by position")
    cells = {(r["run"], r["type"], r["position"]): r["accuracy"] for r in chart_rows(heat)}
    met = json.loads((results / CAND / "metrics.json").read_text())
    tens = met["math"]["positions"]["add"]["tens"]["accuracy"]
    assert cells[(CAND, "add", "tens")] == pytest.approx(tens)
    assert {run for run, _, _ in cells} == {BASE, CAND}
    assert heat["spec"]["layer"][0]["encoding"]["x"]["sort"][0] == "sign"


def test_error_classes_follow_the_rule_picked(results):
    # One answer right under the headline (tolerance) but not under exact, as 1835.06 for
    # 1835.05 would be: its stored class is None, and under exact it must still get one.
    path = results / CAND / "samples_math.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    near = next(r for r in rows if r["verdicts"]["tolerance"] and r["type"] == "add")
    near["verdicts"]["exact"] = False
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    at = app_on("error_cases")
    for rule in ("exact", "contains", "tolerance"):
        at.sidebar.selectbox(key="rule").select(rule).run()
        shown = at.dataframe[0].value  # default filter: wrong under this rule
        # the table names a right row's class "correct" (as the class filter does)
        assert len(shown) and shown["error_class"].notna().all(), rule
        assert (shown["error_class"] != "correct").all(), rule
        if rule == "exact":
            assert near["id"] in set(shown["id"])
    at.sidebar.selectbox(key="rule").select("exact").run()
    at.selectbox(key="err_verdict").select("right").run()
    assert (at.dataframe[0].value["error_class"] == "correct").all()
    assert "carry" in at.multiselect(key="err_classes").options
