"""Contest prediction .npy files: real fixture, round trip, and files that must be refused."""
import datetime
import pickle
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat
import pytest

from pipeline.errors import PipelineError
from pipeline.npy import load_predictions, save_predictions

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "contest" / "phase2_predictions.npy"


def _object_array(elements) -> np.ndarray:
    array = np.empty(len(elements), dtype=object)
    for i, element in enumerate(elements):
        array[i] = element
    return array


def _write_npy_with_payload(path: Path, payload: bytes, shape=(1,)) -> Path:
    """A .npy file with an object-dtype header followed by arbitrary pickle bytes."""
    with open(path, "wb") as fh:
        npformat.write_array_header_1_0(
            fh, {"descr": "|O", "fortran_order": False, "shape": shape})
        fh.write(payload)
    return path


def test_real_contest_file_loads_2000_rows_equal_to_numpy():
    texts = load_predictions(FIXTURE)
    assert len(texts) == 2000
    # The fixture is our own trusted copy, so numpy's pickle loader may serve as the reference.
    reference = [t for d in np.load(FIXTURE, allow_pickle=True) for t in d["text_generation_text"]]
    assert texts == reference
    assert texts[0].startswith("<|User|>:Here is a question about computer security")


def test_round_trip_keeps_every_string(tmp_path):
    texts = ["计算 1.00 + 2.00 等于多少？\n\n### Response: 3.00", "", "line1\nline2", "E+34 ✓"]
    path = tmp_path / "predictions_math.npy"
    save_predictions(path, texts)
    assert load_predictions(path) == texts
    # The written file is the contest format: numpy itself sees dicts of one-item lists.
    raw = np.load(path, allow_pickle=True)
    assert raw.dtype == object and raw.shape == (4,)
    assert raw[0] == {"text_generation_text": [texts[0]]}
    assert not (tmp_path / "predictions_math.npy.tmp").exists()


def test_save_refuses_empty_and_non_str(tmp_path):
    with pytest.raises(PipelineError, match="empty"):
        save_predictions(tmp_path / "p.npy", [])
    with pytest.raises(PipelineError, match="prediction 1 is a int"):
        save_predictions(tmp_path / "p.npy", ["a", 3])


def test_elements_with_several_texts_are_flattened_in_order(tmp_path):
    path = tmp_path / "multi.npy"
    np.save(path, _object_array([{"text_generation_text": ["a", "b"]},
                                 {"text_generation_text": "c"}, "d"]), allow_pickle=True)
    assert load_predictions(path) == ["a", "b", "c", "d"]


def test_plain_unicode_and_utf8_bytes_arrays(tmp_path):
    np.save(tmp_path / "u.npy", np.array(["x = 1", "平方根"]))
    assert load_predictions(tmp_path / "u.npy") == ["x = 1", "平方根"]
    np.save(tmp_path / "s.npy", np.array(["平方".encode(), b"ok"]))
    assert load_predictions(tmp_path / "s.npy") == ["平方", "ok"]


MARKER_SCRIPT = "open({!r}, 'w').write('ran')"


class _EvalOnLoad:
    """An object whose unpickling would call builtins.eval (the classic .npy attack)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (eval, (MARKER_SCRIPT.format(str(self.marker)),))


def test_pickle_calling_eval_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    # np.save pickles the whole array; the element's __reduce__ puts builtins.eval in the stream.
    np.save(path, _object_array([{"text_generation_text": ["fine"]}, _EvalOnLoad(marker)]),
            allow_pickle=True)
    with pytest.raises(PipelineError) as info:
        load_predictions(path)
    assert "builtins.eval" in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()
    # Sanity check that the file really is malicious: numpy's own loader would run it.
    np.load(path, allow_pickle=True)
    assert marker.read_text() == "ran"


def test_pickle_naming_os_system_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()  # protocol 0: os.system(...)
    path = _write_npy_with_payload(tmp_path / "evil.npy", payload)
    with pytest.raises(PipelineError, match=r"os\.system"):
        load_predictions(path)
    assert not marker.exists()


def test_other_globals_are_refused(tmp_path):
    path = tmp_path / "dates.npy"
    np.save(path, _object_array([datetime.date(2024, 7, 25)]), allow_pickle=True)
    with pytest.raises(PipelineError, match=r"datetime\.date"):
        load_predictions(path)


def test_payload_that_is_not_an_array_is_refused(tmp_path):
    path = _write_npy_with_payload(tmp_path / "dict.npy", pickle.dumps({"a": 1}, protocol=3))
    with pytest.raises(PipelineError, match="not an array"):
        load_predictions(path)


@pytest.mark.parametrize("element, message", [
    ({"text": ["x"]}, r"element 1: no 'text_generation_text' key \(keys: 'text'\)"),
    ({"text_generation_text": ["x", 5]}, r"element 1: 'text_generation_text'\[1\] is a int"),
    ({"text_generation_text": 3.5}, r"element 1: 'text_generation_text' is a float"),
    (("x",), r"element 1: expected a dict .* got tuple"),
    ({1, 2}, r"builtins\.set"),  # protocol 3 pickles a set through a global
])
def test_wrong_element_shapes_name_the_index(tmp_path, element, message):
    path = tmp_path / "bad.npy"
    np.save(path, _object_array([{"text_generation_text": ["ok"]}, element]), allow_pickle=True)
    with pytest.raises(PipelineError, match=message):
        load_predictions(path)


def test_empty_array_is_an_error(tmp_path):
    np.save(tmp_path / "empty.npy", np.empty(0, dtype=object), allow_pickle=True)
    with pytest.raises(PipelineError, match="empty"):
        load_predictions(tmp_path / "empty.npy")


def test_non_text_and_non_1d_arrays_are_errors(tmp_path):
    np.save(tmp_path / "f.npy", np.arange(3.0))
    with pytest.raises(PipelineError, match="holds no text"):
        load_predictions(tmp_path / "f.npy")
    np.save(tmp_path / "2d.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(PipelineError, match=r"1-D .* shape \(2, 2\)"):
        load_predictions(tmp_path / "2d.npy")


def test_missing_not_npy_and_truncated_files(tmp_path):
    with pytest.raises(PipelineError, match="file not found"):
        load_predictions(tmp_path / "nope.npy")
    (tmp_path / "text.npy").write_text("not numpy at all")
    with pytest.raises(PipelineError, match="not an .npy file"):
        load_predictions(tmp_path / "text.npy")
    data = FIXTURE.read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(PipelineError, match="corrupt pickle payload"):
        load_predictions(tmp_path / "cut.npy")
