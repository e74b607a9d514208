"""MindRecord round trip with the real SmolLM2 tokenizer and mindspore.dataset."""
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.data import prompts
from pipeline.data.io import sha256_file
from pipeline.data.mindrecord import IGNORE_ID, build_record, read_mindrecord, write_mindrecord
from pipeline.data.prepare import prepare
from pipeline.data.recipes import load_recipe, recipe_from_dict
from pipeline.errors import PipelineError
from pipeline.model.tokenizer import EOS_ID, PAD_ID, load_tokenizer


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


PROBLEMS = ["计算 4204.22 + -2369.17 等于多少？", "解方程 -81x + -45 = 0"]
ANSWERS = ["4204.22 + -2369.17 = 1835.05", "方程的解为：-0.56"]


def test_build_record_masks_the_prompt_and_appends_eos():
    ids, labels, long = build_record([5, 6, 7], [8, 9], seq_length=7)
    assert ids.tolist() == [5, 6, 7, 8, 9, EOS_ID, PAD_ID, PAD_ID]  # seq_length + 1
    assert labels.tolist() == [IGNORE_ID] * 3 + [8, 9, EOS_ID] + [IGNORE_ID] * 2
    assert ids.dtype == np.int32 and labels.dtype == np.int32 and not long
    ids, labels, long = build_record([5, 6, 7], [8, 9, 10, 11, 12], seq_length=6)
    assert long and len(ids) == 7


def test_round_trip_through_mindspore_dataset(tmp_path, tok):
    path = tmp_path / "train.mindrecord"
    full = [prompts.build_prompt(p, "alpaca", "vicuna") for p in PROBLEMS]
    report = write_mindrecord(path, full, ANSWERS, tok, seq_length=128, progress=False)
    assert report["written"] == 2 and report["overlong"]["count"] == 0
    assert (tmp_path / "train.mindrecord.db").is_file()
    records = read_mindrecord(path)
    assert len(records) == 2
    for rec, prompt, answer in zip(records, full, ANSWERS):
        ids, labels = rec["input_ids"], rec["labels"]
        assert ids.shape == (129,) and labels.shape == (129,) and ids.dtype == np.int32
        n_prompt = len(tok.encode(prompt, add_special_tokens=False).ids)
        n_answer = len(tok.encode(" " + answer, add_special_tokens=False).ids)
        real = n_prompt + n_answer + 1
        assert (labels[:n_prompt] == IGNORE_ID).all()                 # prompt masked
        assert (labels[n_prompt:real] == ids[n_prompt:real]).all()    # answer learned, unshifted
        assert ids[real - 1] == EOS_ID and (ids[real:] == PAD_ID).all() and (labels[real:] == IGNORE_ID).all()
        assert tok.decode(ids[:real].tolist(), skip_special_tokens=False) == \
            prompt + " " + answer + "<|im_end|>"
        assert tok.decode(labels[n_prompt:real].tolist()) == " " + answer


def test_overlong_rows_are_counted_not_silently_cut(tmp_path, tok):
    full = [prompts.build_prompt(p, "minimal") for p in PROBLEMS]
    lengths = [len(tok.encode(p).ids) + len(tok.encode(" " + a).ids) + 1 for p, a in zip(full, ANSWERS)]
    seq = min(lengths) - 1  # record length seq + 1: the shorter row fits exactly, the longer not
    assert max(lengths) > seq + 1 >= min(lengths)
    report = write_mindrecord(tmp_path / "d.mindrecord", full, ANSWERS, tok, seq, types=["add", "equation"],
                              overlong="drop", progress=False, ids=["r0", "r1"])
    long_type = ["add", "equation"][int(np.argmax(lengths))]
    assert report["written"] == 1 and report["overlong"]["by_type"] == {long_type: 1}
    assert len(read_mindrecord(tmp_path / "d.mindrecord")) == 1
    report = write_mindrecord(tmp_path / "t.mindrecord", full, ANSWERS, tok, seq, overlong="truncate",
                              progress=False)
    assert report["written"] == 2 and report["overlong"]["count"] == 1
    assert all(len(r["input_ids"]) == seq + 1 for r in read_mindrecord(tmp_path / "t.mindrecord"))
    with pytest.raises(PipelineError, match=r"row r\d has \d+ tokens"):
        write_mindrecord(tmp_path / "e.mindrecord", full, ANSWERS, tok, seq, overlong="error",
                         progress=False, ids=["r0", "r1"])


def test_tiny_recipe_end_to_end(tmp_path, tok):
    recipe = load_recipe(Path(__file__).resolve().parents[2] / "configs" / "data" / "tiny.yaml")
    manifest = prepare(recipe, tokenizer=tok, out_dir=tmp_path, progress=False)
    train = manifest["splits"]["train"]["rows"]
    dropped = manifest["overlong"]["train"]["count"]
    records = read_mindrecord(tmp_path / "train.mindrecord")
    assert len(records) == train - dropped == manifest["files"]["train.mindrecord"]["rows"]
    assert all(r["input_ids"].shape == (recipe.output.seq_length + 1,) for r in records)
    on_disk = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    for name, info in on_disk["files"].items():
        assert sha256_file(tmp_path / name) == info["sha256"], name
    # the first record is the first train.jsonl row written with the recipe's prompt
    first = json.loads((tmp_path / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    ids = records[0]["input_ids"]
    text = tok.decode(ids[ids != PAD_ID].tolist(), skip_special_tokens=False)
    assert text == prompts.build_prompt(first["problem"], "minimal") + " " + first["target"] + "<|im_end|>"


def test_vicuna_recipe_tokenises_the_wrapped_prompt(tmp_path, tok):
    recipe = recipe_from_dict({"source": {"generate": 30, "seed": 2, "types": ["area"]},
                               "prompt": {"template": "alpaca", "wrapper": "vicuna"},
                               "output": {"formats": ["conversation", "mindrecord"], "seq_length": 200}},
                              "v.yaml")
    prepare(recipe, tokenizer=tok, out_dir=tmp_path, progress=False)
    conv = json.loads((tmp_path / "train_conversation.json").read_text(encoding="utf-8"))
    human = conv[0]["conversations"][0]["value"]
    assert human.startswith("Below is an instruction")        # the kit's JSON holds the alpaca prompt
    ids = read_mindrecord(tmp_path / "train.mindrecord")[0]["input_ids"]
    text = tok.decode(ids[ids != PAD_ID].tolist(), skip_special_tokens=False)
    assert text.startswith(prompts.VICUNA_SYSTEM + " USER: " + human + " ASSISTANT: 面积为 ")


def test_training_from_jsonl_writes_the_layout_and_refuses_overlong_rows(tmp_path, tok):
    """A preset pointing at JSON Lines trains on a MindRecord written in the run folder; a row
    over seq_length + 1 tokens is refused by file and line, never cut."""
    from pipeline.data.training_rows import load_training_arrays
    from pipeline.model.presets import load_preset, with_data
    from pipeline.runs import write_jsonl
    tiny = Path(__file__).resolve().parents[2] / "configs" / "tiny_llama_lora_cpu.yaml"
    rows = [{"problem": p, "solution": a} for p, a in zip(PROBLEMS, ANSWERS)]
    good = tmp_path / "good.jsonl"
    write_jsonl(good, rows)
    preset = with_data(load_preset(tiny), str(good))
    src, ids, labels = load_training_arrays(preset, tmp_path / "run")
    assert src == good and ids.shape == (2, preset.train.seq_length + 1)
    prompt = tok.encode(preset.data.template.format(problem=PROBLEMS[0]), add_special_tokens=False).ids
    answer = tok.encode(" " + ANSWERS[0], add_special_tokens=False).ids + [EOS_ID]
    assert ids[0, :len(prompt) + len(answer)].tolist() == prompt + answer
    assert labels[0, :len(prompt) + len(answer)].tolist() == [IGNORE_ID] * len(prompt) + answer
    assert (tmp_path / "run" / "data" / "train.mindrecord").is_file()

    long = tmp_path / "long.jsonl"
    write_jsonl(long, rows + [{"problem": "1 + 2 " * 40, "solution": "3"}])
    with pytest.raises(PipelineError, match=r"1 row\(s\) have more than .*65 tokens \(line 3;") as err:
        load_training_arrays(with_data(preset, str(long)), tmp_path / "run2")
    assert str(long) in str(err.value) and "seq_length" in str(err.value)
    assert not (tmp_path / "run2" / "data" / "train.mindrecord").exists()
