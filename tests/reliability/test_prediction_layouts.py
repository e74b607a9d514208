"""Every prediction layout the contest's tools wrote is read, in row order, by every reader
(the loader, score-math, score-squad, import); any other shape is one clear error.

MindFormers' SQuAD evaluation saves an (N, 1) ``<U`` array; the contest's inference script a
1-D object array of ``{'text_generation_text': [...]}``. Each file here is built by the test.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.__main__ import main
from pipeline.errors import PipelineError
from pipeline.npy import load_predictions

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "data" / "squad" / "dev-v1.1.json"
TEXTS = ["1 + 1 = 2", "问题：3*4 答案 12", "last"]


def _objects(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


ENCODINGS = {
    "U": lambda texts: np.array(texts),
    "S": lambda texts: np.array([t.encode("utf-8") for t in texts], dtype=bytes),
    "object-str": lambda texts: _objects(texts),
    "object-dict": lambda texts: _objects([{"text_generation_text": [t]} for t in texts]),
}
LAYOUTS = {
    "1-D": lambda a: a,
    "(N,1)": lambda a: a.reshape(-1, 1),
    "(1,N)": lambda a: a.reshape(1, -1),
    "(N,1) fortran": lambda a: np.asfortranarray(a.reshape(-1, 1)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_layout_reads_in_row_order(tmp_path, encoding, layout):
    array = LAYOUTS[layout](ENCODINGS[encoding](TEXTS))
    path = tmp_path / "pred.npy"
    np.save(path, array, allow_pickle=encoding.startswith("object"))
    assert load_predictions(path) == TEXTS


def test_an_object_column_of_several_texts_flattens_in_order(tmp_path):
    array = _objects([{"text_generation_text": ["a", "b"]}, {"text_generation_text": ["c"]}])
    np.save(tmp_path / "p.npy", array.reshape(-1, 1), allow_pickle=True)
    assert load_predictions(tmp_path / "p.npy") == ["a", "b", "c"]


@pytest.mark.parametrize("array, shape", [
    (np.array(TEXTS * 2).reshape(2, 3), "(2, 3)"),                     # N x K, K > 1
    (np.array(TEXTS * 4).reshape(2, 3, 2), "(2, 3, 2)"),               # 3-D
    (np.array(TEXTS).reshape(3, 1, 1), "(3, 1, 1)"),                   # 3-D of one column
    (np.array("alone"), "()"),                                         # 0-D
    (np.zeros((0, 1), dtype="<U3"), None),                             # empty column
], ids=["NxK", "3-D", "3-D-column", "0-D", "empty-column"])
def test_other_shapes_are_refused_naming_file_and_shape(tmp_path, array, shape):
    path = tmp_path / "odd.npy"
    np.save(path, array)
    with pytest.raises(PipelineError) as err:
        load_predictions(path)
    assert str(path) in str(err.value)
    assert (f"shape {shape}" if shape else "empty") in str(err.value)


@pytest.mark.parametrize("layout", ["1-D", "(N,1)"])
def test_numbers_are_refused_naming_the_shape(tmp_path, layout):
    path = tmp_path / "numbers.npy"
    np.save(path, LAYOUTS[layout](np.arange(3.0)))
    with pytest.raises(PipelineError, match="holds no text.*shape"):
        load_predictions(path)


def _squad_items(n):
    from pipeline.data.squad import build_squad_eval
    return build_squad_eval(DEV)[:n]


def test_score_squad_reads_mindformers_column_file_like_the_flat_one(tmp_path, capsys):
    """A MindFormers-style (2067, 1) <U file scores exactly as the same texts flattened."""
    items = _squad_items(2067)
    answers = [it["answers"][0] if i % 3 else "unknown" for i, it in enumerate(items)]
    np.save(tmp_path / "column.npy", np.array(answers).reshape(-1, 1))
    np.save(tmp_path / "flat.npy", np.array(answers))
    assert np.load(tmp_path / "column.npy").shape == (2067, 1)
    scores = []
    for name in ("column.npy", "flat.npy"):
        assert main(["score-squad", str(tmp_path / name), "--squad", str(DEV), "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    assert scores[0] == scores[1] and scores[0]["count"] == 2067
    assert 60 < scores[0]["em"] < 70  # two of three answers are the gold text


def test_score_math_and_import_read_column_and_row_files(tmp_path, capsys, monkeypatch):
    from pipeline import runs
    tests = [{"problem": f"计算 {i} + {i}", "solution": str(2 * i)} for i in range(4)]
    (tmp_path / "tests.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in tests), encoding="utf-8")
    outputs = [f"{r['problem']} 答案 {r['solution']}" for r in tests]
    np.save(tmp_path / "col.npy", np.array(outputs).reshape(-1, 1))
    np.save(tmp_path / "row.npy", _objects([{"text_generation_text": [t]} for t in outputs])
            .reshape(1, -1), allow_pickle=True)
    assert main(["score-math", str(tmp_path / "col.npy"), str(tmp_path / "tests.jsonl"),
                 "--rule", "exact", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] == 4
    monkeypatch.setattr(runs, "RESULTS_DIR", tmp_path / "results")
    assert main(["import", "--predictions", str(tmp_path / "row.npy"), "--tests",
                 str(tmp_path / "tests.jsonl"), "--name", "rowwise", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["math"]["rules"]["exact"]["correct"] == 4
