"""The importer: JSON Lines or a JSON array, bad rows reported by line, dedup, type tags."""
import hashlib
import json

import pytest

from pipeline.data import io
from pipeline.errors import PipelineError

ADD = {"problem": "计算 1.00 + 2.00 等于多少？", "solution": "1.00 + 2.00 = 3.00"}
EQ = {"problem": "解方程 2x + 34 = 0", "solution": "方程的解为：-17.0"}
EN = {"problem": "What is $1+1$?", "solution": "So the answer is \\boxed{2}."}


def _jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_with_broken_lines_reports_their_numbers_and_keeps_the_rest(tmp_path):
    path = _jsonl(tmp_path / "train.json", [
        json.dumps(ADD, ensure_ascii=False),
        '{"problem": "计算 1.00 + ',            # line 2: cut off
        "",                                    # blank lines are skipped, not errors
        json.dumps(EQ, ensure_ascii=False),
        "[1, 2]",                              # line 5: not an object
        '{"problem": "x"}',                    # line 6: no solution
        '{"problem": 3, "solution": "3"}',     # line 7: not a string
        json.dumps(ADD, ensure_ascii=False),   # duplicate of line 1
        json.dumps(EN),
    ])
    rows, report = io.import_file(path)
    assert [m[0] for m in report.malformed] == [2, 5, 6, 7]
    assert "not valid JSON" in report.malformed[0][1]
    assert "missing field 'solution'" in report.malformed[2][1]
    assert "'problem' is not a string" in report.malformed[3][1]
    assert report.malformed_count == 4
    assert report.rows_read == 4 and report.duplicates == 1 and report.rows_kept == 3
    assert [r["type"] for r in rows] == ["add", "equation", "english"]


def test_counts_after_dedup_are_per_type(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [json.dumps(r, ensure_ascii=False) for r in (ADD, EQ, ADD, EN)])
    rows, report = io.import_file(path)
    assert report.duplicates == 1
    assert [r["type"] for r in rows] == ["add", "equation", "english"]
    assert report.counts == {"add": 1, "equation": 1, "english": 1}
    rows, report = io.import_file(path, dedup=False)
    assert report.counts == {"add": 2, "equation": 1, "english": 1}


def test_json_array_is_accepted_and_bad_items_are_numbered(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps([ADD, {"problem": "x"}, EQ], ensure_ascii=False), encoding="utf-8")
    rows, report = io.import_file(path)
    assert [r["type"] for r in rows] == ["add", "equation"]
    assert report.malformed == [(2, "item 2: missing field 'solution'")]


def test_byte_order_mark_is_tolerated(tmp_path):
    path = tmp_path / "bom.json"
    path.write_text("\ufeff" + json.dumps(ADD, ensure_ascii=False) + "\n", encoding="utf-8")
    assert io.read_contest_rows(path) == [ADD]


@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_empty_file_is_an_error_naming_the_file(tmp_path, content):
    path = tmp_path / "empty.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PipelineError, match="empty") as err:
        io.import_file(path)
    assert str(path) in str(err.value)


def test_missing_file_and_all_bad_rows_are_errors(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        io.import_file(tmp_path / "nope.json")
    path = _jsonl(tmp_path / "bad.json", ["not json", '{"a": 1}'])
    with pytest.raises(PipelineError, match=r"no valid rows \(2 malformed; line 1: not valid JSON"):
        io.import_file(path)


def test_broken_json_array_names_the_line(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text('[\n{"problem": "a", "solution": "b"},\n{oops}\n]', encoding="utf-8")
    with pytest.raises(PipelineError, match="line 3"):
        io.read_contest_rows(path)


def test_extra_keys_are_kept_only_when_asked(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [json.dumps({**ADD, "type": "add", "id": "x-1", "junk": 1},
                                                    ensure_ascii=False)])
    assert io.read_contest_rows(path) == [ADD]
    assert io.read_contest_rows(path, extra_keys=("id", "type")) == [{**ADD, "id": "x-1", "type": "add"}]


def test_jsonl_round_trip_and_sha256(tmp_path):
    path = tmp_path / "out.jsonl"
    rows = [{**ADD, "type": "add", "extra": 1}, {**EQ, "type": "equation", "extra": 2}]
    assert io.write_jsonl(path, rows, keys=("problem", "solution", "type")) == 2
    assert io.read_jsonl(path) == [{**ADD, "type": "add"}, {**EQ, "type": "equation"}]
    assert "计算" in path.read_text(encoding="utf-8")  # UTF-8, not \\u escapes
    assert io.sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_jsonl_names_a_broken_line(tmp_path):
    path = _jsonl(tmp_path / "x.jsonl", ['{"a": 1}', "{broken"])
    with pytest.raises(PipelineError, match="line 2"):
        io.read_jsonl(path)
