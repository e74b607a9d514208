"""Inference for real on the tiny preset (real SmolLM2 tokenizer, 2-layer random Llama):
contest .npy written and read back, resume after a kill, LoRA through the same decoder,
SQuAD with min_new_tokens, and the CLI end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")

from pipeline import runs  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.infer import infer  # noqa: E402
from pipeline.npy import load_predictions  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny_llama_lora_cpu.yaml"
MATH_ROWS = [
    {"problem": "计算 1.00 + 2.00 等于多少？", "solution": "1.00 + 2.00 = 3.00"},
    {"problem": "计算 12.50 * 2.00 等于多少？", "solution": "12.50 * 2.00 = 25.0000"},
    {"problem": "解方程 2x + 4 = 0", "solution": "方程的解为：-2.0"},
    {"problem": "Compute $\\frac{1}{2} + 3$.", "solution": "So it is $\\boxed{3.5}$."},
    {"problem": "求以下数据的平均值：[1, 2, 3]", "solution": "平均值为 2.0"},
]


@pytest.fixture()
def math_tests(tmp_path) -> Path:
    path = tmp_path / "math.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in MATH_ROWS),
                    encoding="utf-8")
    return path


def _infer_rows(run: Path, task: str) -> dict[int, dict]:
    return {r["index"]: r for r in runs.read_jsonl(run / f"infer_{task}.jsonl")}


def test_math_npy_round_trip_and_resume_after_kill(tmp_path, math_tests):
    run = tmp_path / "base"
    first = infer(run, "math", math_tests, base_only=True, preset_path=TINY, batch_size=2,
                  max_new_tokens=5, quiet=True)
    assert (first.rows, first.decoded) == (5, 5)
    texts = load_predictions(run / "predictions_math.npy")
    rows = _infer_rows(run, "math")
    template = "{problem}\n\n### Response:"        # 'minimal', the default for math
    assert texts == [template.replace("{problem}", r["problem"]) + rows[i]["continuation"]
                     for i, r in enumerate(MATH_ROWS)]
    assert all(1 <= rows[i]["new_tokens"] <= 5 or rows[i]["continuation"] == "" for i in rows)
    manifest = runs.read_manifest(run)
    assert manifest["kind"] == "baseline" and manifest["adapter"] is None
    assert manifest["prompt_template"]["math"] == template
    assert manifest["data"]["math_tests"]["rows"] == 5
    assert [r["problem"] for r in runs.read_jsonl(run / "tests_math.jsonl")] == \
        [r["problem"] for r in MATH_ROWS]

    # A kill after two rows, mid-write of the third: the rerun decodes only the rest.
    lines = (run / "infer_math.jsonl").read_text(encoding="utf-8").splitlines()
    (run / "infer_math.jsonl").write_text("\n".join(lines[:2]) + '\n{"index": 3, "contin',
                                          encoding="utf-8")
    (run / "predictions_math.npy").unlink()
    again = infer(run, "math", math_tests, base_only=True, preset_path=TINY, batch_size=2,
                  max_new_tokens=5, quiet=True)
    assert again.decoded == 3
    assert load_predictions(run / "predictions_math.npy") == texts   # greedy: same text

    # Other settings must not mix with rows already decoded.
    with pytest.raises(PipelineError, match="--restart"):
        infer(run, "math", math_tests, base_only=True, preset_path=TINY, max_new_tokens=4,
              quiet=True)
    limited = infer(run, "math", math_tests, base_only=True, preset_path=TINY, max_new_tokens=4,
                    limit=2, restart=True, quiet=True)
    assert limited.rows == 2 and len(load_predictions(run / "predictions_math.npy")) == 2


def _random_adapter(tmp_path: Path) -> Path:
    """A LoRA adapter with non-zero B (a fresh one is a no-op), saved as training saves it."""
    from pipeline.model.build import build_model, save_adapter, setup_context
    from pipeline.model.presets import load_preset
    setup_context()
    preset = load_preset(TINY)
    model = build_model(preset, for_training=True, seq_length=32, batch_size=1)
    rng = np.random.default_rng(0)
    for p in model.get_parameters():
        if "mindpet_delta_lora" in p.name:
            p.set_data(ms.Tensor(rng.normal(0, 0.3, p.shape).astype(np.float32)))
    return save_adapter(model, tmp_path / "train" / "adapter" / "step_1.ckpt", preset.lora, 1)


def test_adapter_decodes_like_mindformers_lora_forward(tmp_path, math_tests):
    from pipeline.model.build import build_model
    from pipeline.model.presets import load_preset
    from pipeline.model.tokenizer import load_tokenizer
    adapter = _random_adapter(tmp_path)
    base = infer(tmp_path / "base", "math", math_tests, base_only=True, preset_path=TINY,
                 max_new_tokens=4, limit=3, quiet=True)
    tuned = infer(tmp_path / "tuned", "math", math_tests, adapter=adapter, preset_path=TINY,
                  max_new_tokens=4, limit=3, quiet=True)
    assert (base.rows, tuned.rows) == (3, 3)
    manifest = runs.read_manifest(tmp_path / "tuned")
    assert manifest["kind"] == "finetuned"
    # rank 4 on all 7 targets of a 2-layer model (hidden 64, kv 32, ffn 128), rank * (in + out):
    # wq 128, wk 96, wv 96, wo 128, w1 192, w2 192, w3 192 -> 1024 per layer
    assert manifest["adapter"]["trainable_params"] == 2 * 4 * 1024

    # Reference: greedy loop over MindFormers' own LoRA (PetModel) forward, full recompute.
    seq = 48
    model = build_model(load_preset(TINY), adapter_path=adapter, seq_length=seq, batch_size=1)
    tok = load_tokenizer()
    tuned_rows, base_rows = _infer_rows(tmp_path / "tuned", "math"), _infer_rows(tmp_path / "base", "math")
    for i, row in enumerate(MATH_ROWS[:3]):
        ids = tok.encode(row["problem"] + "\n\n### Response:", add_special_tokens=False).ids
        start = len(ids)
        for _ in range(4):
            x = np.zeros((1, seq), np.int32)
            x[0, :len(ids)] = ids
            logits = model(ms.Tensor(x))[0].asnumpy()[0, len(ids) - 1]
            nxt = int(logits.argmax())
            if nxt in (0, 2):
                break
            ids.append(nxt)
        assert tuned_rows[i]["continuation"] == tok.decode(ids[start:])
    assert any(tuned_rows[i]["continuation"] != base_rows[i]["continuation"] for i in range(3))


def test_squad_forces_one_token_and_scores(tmp_path):
    from pipeline.data.squad import write_squad_eval
    from pipeline.evaluate import evaluate
    items_path = tmp_path / "squad.jsonl"
    write_squad_eval(items_path, limit=3)
    run = tmp_path / "squad-run"
    result = infer(run, "squad", items_path, base_only=True, preset_path=TINY, batch_size=2,
                   max_new_tokens=3, quiet=True)
    assert result.rows == 3
    rows = _infer_rows(run, "squad")
    assert all(rows[i]["new_tokens"] >= 1 for i in range(3))    # min_new_tokens 1 by default
    items = runs.read_jsonl(items_path)
    texts = load_predictions(run / "predictions_squad.npy")
    assert [t[:len(it["prompt"])] for t, it in zip(texts, items)] == [it["prompt"] for it in items]
    metrics = evaluate(run)["metrics"]
    assert metrics["squad"]["count"] == 3
    assert metrics["squad"]["gate"]["baseline_run"] is None
    assert 0 <= metrics["squad"]["mindformers"]["f1"] <= 100
    assert len(runs.read_jsonl(run / "samples_squad.jsonl")) == 3


def test_cli_infer_evaluate_runs(tmp_path, math_tests):
    env = {**os.environ, "PIPELINE_RESULTS": str(tmp_path / "results"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        return proc
    proc = cli("infer", "--run", "cli-base", "--task", "math", "--tests", str(math_tests),
               "--config", str(TINY), "--base-only", "--max-new-tokens", "3", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["rows"] == 5 and out["decoded"] == 5
    proc = cli("evaluate", "--run", "cli-base", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads(proc.stdout)["metrics"]
    assert set(metrics["math"]["rules"]) >= {"contains", "exact", "rounded", "tolerance"}
    assert metrics["trainable_ratio"] == 0.0
    assert metrics["score"] == pytest.approx(0.3 + 0.7 * metrics["math"]["rules"]["tolerance"]["accuracy"])
    listed = json.loads(cli("runs", "--json").stdout)
    assert [r["run_id"] for r in listed] == ["cli-base"]
    proc = cli("infer", "--run", "../escape", "--task", "math", "--tests", str(math_tests))
    assert proc.returncode == 2 and "not allowed" in proc.stderr


def test_training_run_decodes_with_its_adapter_and_prompt(tmp_path, math_tests, monkeypatch):
    """A run folder as `train` leaves it: infer picks its adapter, preset and prompt."""
    from pipeline.data.prompts import PROMPTS
    from pipeline.model.presets import load_preset
    run = tmp_path / "train"
    adapter = _random_adapter(tmp_path)            # written to <tmp>/train/adapter/step_1.ckpt
    preset = load_preset(TINY)
    runs.update_manifest(run, kind="finetuned", adapter={"path": "adapter/step_1.ckpt",
                                                         "rank": 4, "trainable_params": 8192},
                         model={"preset": "tiny", "name": "tiny", "total_params": 3219776},
                         prompt_template={"math": PROMPTS["alpaca"]}, config=preset.as_dict())
    infer(run, "math", math_tests, max_new_tokens=3, limit=2, quiet=True)
    manifest = runs.read_manifest(run)
    assert manifest["kind"] == "finetuned"
    assert manifest["inference"]["math"]["settings"]["adapter"] == "adapter/step_1.ckpt"
    assert manifest["inference"]["math"]["settings"]["prompt_template"] == PROMPTS["alpaca"]
    texts = load_predictions(run / "predictions_math.npy")
    assert texts[0].startswith(PROMPTS["alpaca"].replace("{problem}", MATH_ROWS[0]["problem"]))
    # same adapter into a fresh run: its training prompt is found next to the adapter
    infer(tmp_path / "other", "math", math_tests, adapter=adapter, preset_path=TINY,
          max_new_tokens=3, limit=2, quiet=True)
    assert load_predictions(tmp_path / "other" / "predictions_math.npy") == texts
    # given relative to the working directory, the adapter is recorded relative to the run
    # folder, so a later infer on that run (no --adapter, any cwd) still finds it
    monkeypatch.chdir(tmp_path)
    infer(Path("third"), "math", math_tests, adapter="train/adapter/step_1.ckpt", preset_path=TINY,
          max_new_tokens=3, limit=2, quiet=True)
    assert runs.read_manifest(tmp_path / "third")["adapter"]["path"] == "../train/adapter/step_1.ckpt"
    monkeypatch.chdir(REPO)
    again = infer(tmp_path / "third", "math", math_tests, max_new_tokens=3, limit=2, quiet=True)
    assert again.decoded == 0 and load_predictions(tmp_path / "third" / "predictions_math.npy") == texts
    with pytest.raises(PipelineError, match="fine-tuned adapter"):
        infer(run, "math", math_tests, base_only=True, quiet=True)


def test_reuse_copies_a_matching_baseline_and_only_a_matching_one(tmp_path, math_tests):
    """`infer --reuse` (the main job's baseline): a base-model run with the same tests,
    settings, batch size, model and versions is copied, not decoded again, and the
    manifest says so; change one setting, or ask for an adapter, and it decodes."""
    source = tmp_path / "results" / "shipped-base"
    first = infer(source, "math", math_tests, base_only=True, preset_path=TINY, batch_size=2,
                  max_new_tokens=5, quiet=True)
    assert first.decoded == 5
    assert runs.read_manifest(source)["inference"]["math"]["batch_size"] == 2

    again = tmp_path / "results" / "main-base"
    reused = infer(again, "math", math_tests, base_only=True, preset_path=TINY, batch_size=2,
                   max_new_tokens=5, quiet=True, reuse=True)
    assert (reused.decoded, reused.new_tokens, reused.extra["reused_from"]) == (0, 0, "shipped-base")
    assert load_predictions(again / "predictions_math.npy") == \
        load_predictions(source / "predictions_math.npy")
    entry = runs.read_manifest(again)["inference"]["math"]
    assert entry["reused_from"] == "shipped-base" and entry["batch_size"] == 2
    # A reuse of the reuse names the run that really decoded.
    third = infer(tmp_path / "results" / "third", "math", math_tests, base_only=True,
                  preset_path=TINY, batch_size=2, max_new_tokens=5, quiet=True, reuse=True)
    assert third.extra["reused_from"] == "shipped-base"

    # Another batch size (padding can change greedy tokens), other tests, or an adapter:
    # no match, so it decodes and records no source.
    other_batch = infer(tmp_path / "results" / "b4", "math", math_tests, base_only=True,
                        preset_path=TINY, batch_size=4, max_new_tokens=5, quiet=True, reuse=True)
    assert other_batch.decoded == 5 and "reused_from" not in other_batch.extra
    assert "reused_from" not in runs.read_manifest(tmp_path / "results" / "b4")["inference"]["math"]
    fewer = infer(tmp_path / "results" / "fewer", "math", math_tests, base_only=True,
                  preset_path=TINY, batch_size=2, max_new_tokens=5, limit=3, quiet=True, reuse=True)
    assert fewer.decoded == 3 and "reused_from" not in fewer.extra

    # A source whose rows are not all finished is no source.
    lines = (source / "infer_math.jsonl").read_text(encoding="utf-8").splitlines()
    (source / "infer_math.jsonl").write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")
    for name in ("main-base", "third"):   # the copies would match too; take them away
        (tmp_path / "results" / name / "manifest.json").unlink()
    partial = infer(tmp_path / "results" / "late", "math", math_tests, base_only=True,
                    preset_path=TINY, batch_size=2, max_new_tokens=5, quiet=True, reuse=True)
    assert partial.decoded == 5 and "reused_from" not in partial.extra


def test_reuse_needs_the_same_matmul_kernel(tmp_path, math_tests, monkeypatch):
    """A baseline decoded with MindSpore's MatMul (as every run before the packed kernel) is
    another decoder: a decode on the packed kernel does not copy it, and each manifest
    records the decoder that really ran."""
    from pipeline import kernels
    from pipeline.baseline_reuse import DECODER, decoder_name
    if kernels.packed_matmul_library() is None:
        pytest.skip(f"packed kernel unavailable: {kernels.last_error}")
    monkeypatch.setenv(kernels.ENV, "mindspore")
    source = tmp_path / "results" / "old-base"
    infer(source, "math", math_tests, base_only=True, preset_path=TINY, batch_size=2,
          max_new_tokens=5, quiet=True)
    assert runs.read_manifest(source)["inference"]["math"]["decoder"] == DECODER
    monkeypatch.delenv(kernels.ENV)
    fresh = infer(tmp_path / "results" / "new-base", "math", math_tests, base_only=True,
                  preset_path=TINY, batch_size=2, max_new_tokens=5, quiet=True, reuse=True)
    assert fresh.decoded == 5 and "reused_from" not in fresh.extra
    entry = runs.read_manifest(tmp_path / "results" / "new-base")["inference"]["math"]
    assert entry["decoder"] == decoder_name("packed") != DECODER
    # and the packed decode is reused by the next packed one
    again = infer(tmp_path / "results" / "again", "math", math_tests, base_only=True,
                  preset_path=TINY, batch_size=2, max_new_tokens=5, quiet=True, reuse=True)
    assert again.extra["reused_from"] == "new-base"
