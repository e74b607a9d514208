"""`python -m pipeline data ...` end to end through the real argument parser."""
import json
from pathlib import Path

import pytest

from pipeline.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_generate_is_byte_identical_for_a_seed(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["data", "generate", "--n", "500", "--seed", "4", "--out", str(a), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 500 and sum(result["counts"].values()) == 500
    assert main(["data", "generate", "--n", "500", "--seed", "4", "--out", str(b)]) == 0
    assert "wrote 500 rows" in capsys.readouterr().out
    assert a.read_bytes() == b.read_bytes()


def test_generate_types_and_a_bad_type(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["data", "generate", "--n", "50", "--out", str(out), "--types", "area,mass", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["counts"]) <= {"area", "mass"}
    assert main(["data", "generate", "--n", "5", "--out", str(out), "--types", "add,english"]) == 2
    assert "error: cannot generate type(s) english" in capsys.readouterr().err


def test_import_reports_bad_lines_and_counts(tmp_path, capsys):
    src = tmp_path / "train.json"
    src.write_text('{"problem": "计算 1.00 + 2.00 等于多少？", "solution": "1.00 + 2.00 = 3.00"}\n'
                   '{"problem": "计算 1.00 + \n'
                   '{"problem": "解方程 2x + 34 = 0", "solution": "方程的解为：-17.0"}\n', encoding="utf-8")
    out = tmp_path / "clean.jsonl"
    assert main(["data", "import", str(src), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 valid rows, 1 malformed" in text and "line 2: not valid JSON" in text
    assert "add" in text and "equation" in text
    assert [json.loads(line)["type"] for line in out.read_text(encoding="utf-8").splitlines()] == ["add", "equation"]


def test_import_of_an_empty_file_exits_2_naming_it(tmp_path, capsys):
    src = tmp_path / "empty.json"
    src.write_text("", encoding="utf-8")
    assert main(["data", "import", str(src)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {src}: the file is empty")


def test_prepare_and_stats(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "source: {generate: 400, seed: 1}\n"
        "split: {test: 30}\n"
        "answers: {round: 2}\n"
        "prompt: {template: minimal}\n"
        f"output: {{formats: [jsonl], dir: {tmp_path / 'prep'}}}\n", encoding="utf-8")
    assert main(["data", "prepare", "--recipe", str(recipe)]) == 0
    text = capsys.readouterr().out
    assert "recipe r ->" in text and "wrote train.jsonl" in text and "wrote test.jsonl" in text
    train = tmp_path / "prep" / "train.jsonl"
    assert main(["data", "stats", str(train), "--tokenizer", "none", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text(encoding="utf-8"))
    assert stats["rows"] == manifest["splits"]["train"]["rows"]
    assert {t: e["rows"] for t, e in stats["by_type"].items()} == manifest["splits"]["train"]["by_type"]


def test_stats_warns_when_one_opening_starts_most_targets(tmp_path, capsys):
    """The warning `data prepare` records, for a file prepared anywhere (here: by hand)."""
    rows = [{"problem": f"计算 {i} + 1 等于多少？", "solution": f"{i} + 1 = {i + 1}", "type": "add",
             "target": f"+(0000{i % 10} + 00001 = 0000{i % 10 + 1})\n= {i + 1}"} for i in range(8)]
    rows += [{"problem": "计算 2 的 1 次方？", "solution": "2^1 = 2", "type": "power", "target": "2^1 = 2"}]
    src = tmp_path / "train.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert main(["data", "stats", str(src), "--tokenizer", "none", "--json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("89% of the training targets start with '+('")
    assert main(["data", "stats", str(src), "--tokenizer", "none"]) == 0
    assert "warning: 89% of the training targets start with '+('" in capsys.readouterr().out
    src.write_text("".join(json.dumps({**r, "target": r["solution"]}, ensure_ascii=False) + "\n"
                           for r in rows), encoding="utf-8")   # each starts with its own number
    assert main(["data", "stats", str(src), "--tokenizer", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_stats_with_the_tokenizer_counts_long_rows(tmp_path, capsys):
    src = tmp_path / "g.json"
    main(["data", "generate", "--n", "200", "--seed", "2", "--out", str(src), "--types", "div,area", "--json"])
    capsys.readouterr()
    assert main(["data", "stats", str(src), "--seq-length", "70", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    div, area = stats["by_type"]["div"], stats["by_type"]["area"]
    # a raw div row (28-digit answer, one token per digit) is ~87 tokens; an area row ~50
    assert div["over_seq_length"] == div["rows"] and area["over_seq_length"] == 0
    assert div["tokens"]["answer"]["mean"] > area["tokens"]["answer"]["mean"]


def test_prepare_with_an_unknown_type_exits_2_naming_the_key(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("source: {generate: 10}\ndrop_types: [algebra]\n", encoding="utf-8")
    assert main(["data", "prepare", "--recipe", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert f"{recipe}: drop_types: unknown type 'algebra'" in err


def test_squad_writes_the_eval_set(tmp_path, capsys):
    pytest.importorskip("pipeline.data.squad")
    if not (ROOT / "data" / "squad" / "dev-v1.1.json").is_file():
        pytest.skip("SQuAD dev set not present")
    out = tmp_path / "squad.jsonl"
    assert main(["data", "squad", "--out", str(out), "--limit", "3"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and "wrote 3 SQuAD items" in capsys.readouterr().out
    assert rows[0]["prompt"].startswith("Read the passage and answer the question below.")


def test_help_lists_every_action(capsys):
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    text = capsys.readouterr().out
    for action in ("generate", "import", "prepare", "stats", "squad"):
        assert action in text
