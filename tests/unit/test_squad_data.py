"""The contest SQuAD eval set built from dev-v1.1.json."""
import json

import pytest

from pipeline.data.squad import (SQUAD_DEV, build_squad_eval, load_squad_eval, squad_subset,
                                 write_squad_eval)
from pipeline.errors import PipelineError
from pipeline.runs import read_jsonl


@pytest.fixture(scope="module")
def items():
    return build_squad_eval()


def test_contest_set_is_first_question_of_each_paragraph(items):
    assert len(items) == 2067  # one per paragraph (data/squad/README.md)
    assert len({it["id"] for it in items}) == 2067
    first, second = items[0], items[1]
    assert first["id"] == "56be4db0acb8001400a502ec"
    assert first["question"] == "Which NFL team represented the AFC at Super Bowl 50?"
    assert first["answers"] == ["Denver Broncos"] and first["all_answers"] == ["Denver Broncos"] * 3
    assert second["id"] == "56be4e1facb8001400a502f6" and second["answers"] == ["Cam Newton"]
    assert items[-1]["answers"] == ["kilogram-force"]
    assert first["prompt"] == ("Read the passage and answer the question below.\n\n### Instruction:\n"
                               + first["context"] + "\n\n### Input:\n"
                               "Which NFL team represented the AFC at Super Bowl 50?\n\n### Response:")
    assert first["context"].startswith("Super Bowl 50 was an American football game")


def test_first_answer_is_first_of_all_answers(items):
    assert all(it["answers"] == it["all_answers"][:1] for it in items)
    assert sum(len(it["all_answers"]) for it in items) > 2067


def test_write_and_load_jsonl(tmp_path, items):
    path = tmp_path / "tests_squad.jsonl"
    assert write_squad_eval(path, limit=5) == 5
    rows = read_jsonl(path)
    assert rows == items[:5]
    assert load_squad_eval(path) == items[:5]
    assert load_squad_eval(SQUAD_DEV)[:5] == items[:5]


def test_subset_is_stable_nested_and_in_file_order(items):
    a = squad_subset(50, seed=1, items=items)
    assert a == squad_subset(50, seed=1, items=items)
    order = {it["id"]: i for i, it in enumerate(items)}
    positions = [order[it["id"]] for it in a]
    assert positions == sorted(positions) and len(set(positions)) == 50
    bigger = {it["id"] for it in squad_subset(51, seed=1, items=items)}
    assert {it["id"] for it in a} < bigger
    assert {it["id"] for it in squad_subset(50, seed=2, items=items)} != {it["id"] for it in a}
    with pytest.raises(PipelineError, match="subset size"):
        squad_subset(0, items=items)


def test_heldout_items_follow_the_subset_in_the_same_ranking(items):
    scored = squad_subset(40, seed=0, items=items)
    heldout = squad_subset(30, seed=0, items=items, after=40)
    ids = lambda rows: {it["id"] for it in rows}
    assert not ids(scored) & ids(heldout) and len(heldout) == 30
    assert ids(scored) | ids(heldout) == ids(squad_subset(70, seed=0, items=items))
    order = {it["id"]: i for i, it in enumerate(items)}
    assert [order[it["id"]] for it in heldout] == sorted(order[it["id"]] for it in heldout)
    with pytest.raises(PipelineError, match="after skipping 40"):
        squad_subset(len(items) - 39, items=items, after=40)
    with pytest.raises(PipelineError, match="after must be >= 0"):
        squad_subset(5, items=items, after=-1)


def test_bad_sources(tmp_path):
    with pytest.raises(PipelineError, match="file not found"):
        build_squad_eval(tmp_path / "dev.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(PipelineError, match="not valid SQuAD JSON"):
        build_squad_eval(tmp_path / "broken.json")
    (tmp_path / "noqas.json").write_text(json.dumps({"data": [{"paragraphs": [{"context": "c"}]}]}))
    with pytest.raises(PipelineError, match=r"data\[0\]\.paragraphs\[0\]: missing SQuAD field"):
        build_squad_eval(tmp_path / "noqas.json")
    (tmp_path / "rows.jsonl").write_text('{"id": "x", "question": "q"}\n')
    with pytest.raises(PipelineError, match="row 1: missing field"):
        load_squad_eval(tmp_path / "rows.jsonl")
    (tmp_path / "badline.jsonl").write_text('{"id": "x", "question": "q", "answers": ["a"]}\n{oops\n')
    with pytest.raises(PipelineError, match="line 2: not valid JSON"):
        load_squad_eval(tmp_path / "badline.jsonl")
