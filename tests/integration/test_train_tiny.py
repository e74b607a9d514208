"""The tiny preset really trains LoRA with MindFormers on CPU (seconds), resumes after
kill -9, writes MindFormers-format logs and adapter-only checkpoints, and its merged
weights reproduce the LoRA model's logits."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.__main__ import main
from pipeline.errors import PipelineError
from pipeline.model.params import lora_trainable_for
from pipeline.model.presets import load_preset, with_data
from pipeline.train import lr_schedule, train

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny_llama_lora_cpu.yaml"
FIXTURE_LOG = REPO / "tests" / "fixtures" / "contest" / "finetune_worker_0.log"
# The contest log's step line, as a parser reads it (unanchored: lines may start with a spinner).
STEP = re.compile(r"\{ Epoch:\[\s*(\d+)/\s*(\d+)\], step:\[\s*(\d+)/\s*(\d+)\], loss: ([\d.]+), "
                  r"per_step_time: (\d+)ms, lr: ([\d.e+-]+), overflow cond: False, loss_scale: 1.0$", re.M)
PARAMS = re.compile(r"Network Parameters: (\d+)\.$")


def write_mindrecord(path: Path, rows: int = 24, width: int = 65, seed: int = 0) -> Path:
    """Token rows in the data stage's layout: input_ids, labels (-100 on the prompt), fixed width.

    Every row cycles through the same 4 tokens from a random offset, so a tiny model
    learns "next = successor" within a few steps.
    """
    from mindspore.mindrecord import FileWriter
    rng = np.random.default_rng(seed)
    writer = FileWriter(str(path), shard_num=1, overwrite=True)
    writer.add_schema({"input_ids": {"type": "int32", "shape": [-1]},
                       "labels": {"type": "int32", "shape": [-1]}}, "test")
    samples = []
    for _ in range(rows):
        start = int(rng.integers(0, 4))
        ids = (150 + (start + np.arange(width - 8)) % 4).astype(np.int32)
        ids = np.concatenate([ids, np.zeros(8, np.int32)])        # 8 pad tokens (id 0)
        labels = ids.copy()
        labels[:10] = -100                                         # "prompt"
        labels[-8:] = -100                                         # padding
        samples.append({"input_ids": ids, "labels": labels})
    writer.write_raw_data(samples)
    writer.commit()
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_mindrecord(tmp_path_factory.mktemp("data") / "train.mindrecord")


def test_the_contest_log_matches_our_step_pattern():
    lines = FIXTURE_LOG.read_text(encoding="utf-8", errors="replace").splitlines()
    assert sum(bool(STEP.search(l)) for l in lines) == 10 * 1625 // 2  # sink size 2
    assert any(PARAMS.search(l) for l in lines)


def test_lr_schedule_by_hand():
    lrs = lr_schedule(1.0, "cosine", 0.25, 8)          # 2 warm-up steps, 6 cosine steps
    assert lrs[:2].tolist() == [0.5, 1.0]
    assert lrs[2] == 1.0 and lrs[-1] == pytest.approx(0.5 * (1 + np.cos(np.pi * 5 / 6)))
    assert lr_schedule(0.1, "linear", 0.0, 4).tolist() == pytest.approx([0.1, 0.075, 0.05, 0.025])
    assert lr_schedule(0.1, "constant", 0.0, 3).tolist() == pytest.approx([0.1] * 3)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """One CLI training run of the tiny preset: 12 steps (2 epochs), checkpoints every 4."""
    results = tmp_path_factory.mktemp("results")
    rc = main(["train", "--config", str(TINY), "--data", str(data), "--run", "tiny-a",
               "--results", str(results), "--max-steps", "12"])
    assert rc == 0
    return results / "tiny-a"


def test_training_writes_mindformers_log_with_falling_loss(trained):
    preset = load_preset(TINY)
    lines = (trained / "train.log").read_text(encoding="utf-8").splitlines()
    steps = [STEP.search(l) for l in lines if STEP.search(l)]
    assert [int(m.group(3)) for m in steps] == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]  # restarts each epoch
    losses = [float(m.group(5)) for m in steps]
    assert max(losses[-3:]) < losses[0] - 0.5, losses                      # it learns
    params = [int(PARAMS.search(l).group(1)) for l in lines if PARAMS.search(l)]
    # measured count printed by the run == analytic count: 2 layers x 4 x (sum of in+out over 7 layers)
    assert params == [lora_trainable_for(preset.dims, 4, preset.lora.targets)] == [2 * 4 * (128 + 96 + 96 + 128 + 192 * 3)]


def test_run_folder_follows_the_run_format(trained, data):
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["kind"] == "finetuned" and manifest["model"]["preset"] == "tiny"
    assert manifest["adapter"]["path"] == "adapter/step_12.ckpt"
    assert manifest["adapter"]["trainable_params"] == 8192 and manifest["adapter"]["rank"] == 4
    assert manifest["data"]["train"]["rows"] == 24 and manifest["data"]["train"]["path"] == str(data)
    assert manifest["training_layers"] == "fused"   # pipeline.model.fused_layers, the default
    assert len(manifest["data"]["train"]["sha256"]) == 64
    assert manifest["seed"] == 42 and "mindspore" in manifest["versions"]
    assert manifest["command"].startswith("python -m pipeline")
    state = json.loads((trained / "train_state.json").read_text())
    assert state["last_step"] == 12 and state["data_sha256"] == manifest["data"]["train"]["sha256"]
    assert sorted(p.name for p in (trained / "adapter").glob("*.ckpt")) == ["step_12.ckpt", "step_4.ckpt", "step_8.ckpt"]


def test_adapter_checkpoint_holds_only_lora(trained):
    import mindspore as ms
    params = ms.load_checkpoint(str(trained / "adapter" / "step_12.ckpt"))
    assert params and all("mindpet_delta_lora_" in k for k in params)
    assert sum(int(np.prod(p.shape)) for p in params.values()) == 8192
    # LoRA B starts at zero; after training it is not.
    b = params["model.layers.0.attention.wq.mindpet_delta_lora_b"].asnumpy()
    assert np.abs(b).max() > 0


def test_merged_weights_reproduce_the_lora_model(trained):
    """model_weights() merges W + B@A*alpha/r: a plain model with those weights gives
    the same logits as MindFormers' LoRA model with the adapter."""
    import mindspore as ms
    from pipeline.model.build import _load_into, build_model, model_weights, setup_context
    from pipeline.model.tokenizer import TokenIds
    preset = load_preset(TINY)
    adapter = trained / "adapter" / "step_12.ckpt"
    setup_context()
    ids = ms.Tensor(np.array([[1, 150, 160, 170, 180, 150, 160, 170] * 4], np.int32))
    lora_model = build_model(preset, adapter_path=adapter, seq_length=32, batch_size=1)
    lora_logits = lora_model(ids)[0].asnumpy()
    weights, dims = model_weights(preset, adapter)
    base = build_model(preset, seq_length=32, batch_size=1)
    base_logits = base(ids)[0].asnumpy()
    _load_into(base, weights, "merged")
    merged_logits = base(ids)[0].asnumpy()
    assert np.abs(merged_logits - lora_logits).max() < 1e-4
    assert np.abs(base_logits - lora_logits).max() > 1e-3      # the adapter does change the model
    assert TokenIds().pad == 0 and dims.kv_heads == 2 and dims.tie_embeddings is True


def test_first_layer_adapts_only_the_upper_layers(data, tmp_path):
    """lora.first_layer: 1 on the 2-layer tiny model: MindFormers' pet LoRA (exclude_layers)
    wraps layer 1 only, the count halves and matches the formula, the adapter holds layer
    1's A/B alone, the lower layer's weights stay the base's after merging, and the
    manifest and sidecar record it."""
    import dataclasses
    from pipeline.model.build import base_weights, load_adapter, model_weights
    base = load_preset(TINY)
    preset = dataclasses.replace(with_data(base, str(data)),
                                 lora=dataclasses.replace(base.lora, first_layer=1))
    result = train(preset, tmp_path / "upper", quiet=True)
    assert result.trainable == lora_trainable_for(preset.dims, 4, preset.lora.targets, 1) \
        == lora_trainable_for(preset.dims, 4, preset.lora.targets) // 2
    adapter, side = load_adapter(tmp_path / "upper" / result.adapter)
    assert side["first_layer"] == 1
    assert adapter and all(".layers.1." in name for name in adapter)
    merged, _ = model_weights(preset, tmp_path / "upper" / result.adapter)
    plain = base_weights(preset)
    layer0 = [k for k in plain if ".layers.0." in k]
    assert layer0 and all(np.array_equal(merged[k], plain[k]) for k in layer0)
    assert any(not np.array_equal(merged[k], plain[k]) for k in plain if ".layers.1.attention.wq" in k)
    manifest = json.loads((tmp_path / "upper" / "manifest.json").read_text())
    assert manifest["adapter"]["first_layer"] == 1 and manifest["config"]["lora"]["first_layer"] == 1


def test_resume_after_kill_9_continues_where_it_stopped(data, tmp_path, trained):
    """A run killed with SIGKILL resumes from its last checkpoint and, with dropout 0 and
    the seeded data order, reproduces the uninterrupted run's losses."""
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A long run (2000 steps) so the kill surely lands mid-run, right after the first checkpoint.
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "train", "--config", str(TINY),
                             "--data", str(data), "--run", "tiny-k", "--results", str(results),
                             "--max-steps", "2000"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = results / "tiny-k" / "train_state.json"
    try:
        deadline = time.time() + 180
        while not state.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert state.exists(), "no checkpoint before the deadline"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    killed_at = json.loads(state.read_text())["last_step"]
    assert 4 <= killed_at < 12, killed_at
    args = ["train", "--config", str(TINY), "--data", str(data), "--run", "tiny-k",
            "--results", str(results), "--max-steps", "12"]
    assert main(args) == 2                      # refuses to overwrite without --resume
    assert main(args + ["--resume"]) == 0

    def losses(run):  # global step -> loss (6 steps per epoch)
        text = (run / "train.log").read_text(encoding="utf-8")
        return [(int(m.group(1)) - 1) * 6 + int(m.group(3)) for m in STEP.finditer(text)], \
               [float(m.group(5)) for m in STEP.finditer(text)]
    steps, resumed = losses(results / "tiny-k")
    assert steps[-(12 - killed_at):] == list(range(killed_at + 1, 13))
    _, straight = losses(trained)
    # constant LR, dropout 0 and a seeded data order: the same losses as the run never killed
    assert resumed[-(12 - killed_at):] == pytest.approx(straight[killed_at:], abs=2e-3)
    assert "resumed at step" in (results / "tiny-k" / "train.log").read_text()
    # the resume point is marked as MindFormers marks it: the parser replaces the steps logged
    # between the checkpoint and the kill without calling them repeated
    from pipeline.logs import parse_log
    parsed = parse_log(results / "tiny-k" / "train.log")
    assert [p["global_step"] for p in parsed["loss"]] == list(range(1, 13))
    assert [r["step"] for r in parsed["resumes"]] == [killed_at]
    assert not any("repeated" in w for w in parsed["warnings"])


def test_micro_batches_give_the_whole_batch_update(data, tmp_path):
    """train.micro_batch 1 (4 passes of 1 row, gradients summed) trains exactly like one
    pass of 4 rows: same losses, same adapter (dropout 0, same seed and data order)."""
    import dataclasses
    import mindspore as ms
    preset = with_data(load_preset(TINY), str(data))
    runs_ = {}
    for micro in (4, 1):
        p = dataclasses.replace(preset, train=dataclasses.replace(preset.train, micro_batch=micro, max_steps=4))
        result = train(p, tmp_path / f"micro{micro}", quiet=True)
        runs_[micro] = (result.losses, ms.load_checkpoint(str(tmp_path / f"micro{micro}" / result.adapter)))
    assert runs_[1][0] == pytest.approx(runs_[4][0], abs=1e-4)
    assert runs_[4][0][-1] < runs_[4][0][0]
    for name, value in runs_[4][1].items():
        assert np.abs(runs_[1][1][name].asnumpy() - value.asnumpy()).max() < 1e-4, name


def test_micro_batch_must_divide_the_batch(tmp_path):
    text = TINY.read_text().replace("batch_size: 4", "batch_size: 4\n  micro_batch: 3")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(PipelineError, match="micro_batch"):
        load_preset(bad)


def test_bad_data_is_a_clear_error(tmp_path):
    preset = with_data(load_preset(TINY), str(tmp_path / "missing.mindrecord"))
    with pytest.raises(PipelineError, match="not found"):
        train(preset, tmp_path / "run")
    junk = tmp_path / "junk.mindrecord"
    junk.write_bytes(b"not a mindrecord")
    with pytest.raises(PipelineError, match="MindRecord"):
        train(with_data(preset, str(junk)), tmp_path / "run2")


def test_head_trim_loss_equals_mindformers_loss(data):
    """The LM head on labelled positions only gives MindFormers' own loss value."""
    import mindspore as ms
    from pipeline.model.build import build_model, setup_context
    from pipeline.data.mindrecord import read_mindrecord_arrays
    from pipeline.train_step import HeadTrimLoss, head_budget, label_positions
    preset = load_preset(TINY)
    ids, labels = read_mindrecord_arrays(data)
    setup_context()
    net = build_model(preset, for_training=True, seq_length=ids.shape[1] - 1, batch_size=4)
    rng = np.random.default_rng(0)
    for p in net.trainable_params():  # a non-zero adapter, so LoRA is in the path
        p.set_data(ms.Tensor(rng.normal(0, 0.1, p.shape).astype(np.float32)))
    x, y = ids[:4], labels[:4]
    k = head_budget(labels, 4)
    assert k == 4 * int((labels[:, 1:] != -100).sum(1).max()) < 4 * (ids.shape[1] - 1)
    full = float(net(ms.Tensor(x), ms.Tensor(y)).asnumpy())
    trimmed = HeadTrimLoss(net, k)
    trimmed.set_train(True)
    fast = float(trimmed(ms.Tensor(x), ms.Tensor(y), *map(ms.Tensor, label_positions(y, k))).asnumpy())
    assert fast == pytest.approx(full, rel=1e-5)
    assert {p.name for p in trimmed.trainable_params()} == {p.name for p in net.trainable_params()}


def test_label_positions_by_hand():
    from pipeline.train_step import label_positions
    labels = np.array([[-100, -100, 5, 6, -100], [-100, 7, -100, -100, -100]], np.int32)
    pos, tgt, w = label_positions(labels, 5)
    # predictions are labels[:, 1:] flattened: row 0 -> 0..3, row 1 -> 4..7
    assert pos.tolist() == [1, 2, 4, 0, 0] and tgt.tolist() == [5, 6, 7, 0, 0]
    assert w.tolist() == pytest.approx([1 / 3] * 3 + [0, 0])        # weights sum to 1: the mean
    _, _, w = label_positions(labels[:1], 5, batch_labels=3)           # a micro-batch's share
    assert w.tolist() == pytest.approx([1 / 3, 1 / 3, 0, 0, 0])
    with pytest.raises(PipelineError, match="budget"):
        label_positions(labels, 2)


def test_eval_checkpoints_scores_every_kept_adapter_and_resumes(trained, tmp_path, capsys):
    """Accuracy against step: each adapter decodes the rows itself, the points agree with
    re-scoring their own predictions, and a second call decodes nothing."""
    from pipeline import runs
    from pipeline.checkpoint_curve import CURVE_FILE, read_curve
    from pipeline.npy import load_predictions
    from pipeline.scoring.math import HEADLINE_RULE, score_math
    tests = tmp_path / "val.jsonl"
    rows = [{"problem": "计算 1.00 + 2.00 等于多少？", "solution": "1.00 + 2.00 = 3.00"},
            {"problem": "计算 5.00 - 7.25 等于多少？", "solution": "5.00 - 7.25 = -2.25"},
            {"problem": "计算 3.00 的平方根？", "solution": "√3.00 = 1.732050807568877293527446342"}]
    runs.write_jsonl(tests, rows)
    argv = ["eval-checkpoints", "--run", str(trained), "--tests", str(tests),
            "--max-new-tokens", "4", "--every", "8", "--json"]
    assert main(argv) == 0
    curve = json.loads(capsys.readouterr().out)
    assert [p["step"] for p in curve] == [8, 12]           # multiples of 8, plus the last
    assert curve == read_curve(trained) and (trained / CURVE_FILE).is_file()
    for point in curve:
        folder = trained / "checkpoints" / f"step_{point['step']}"
        manifest = runs.read_manifest(folder)
        assert manifest["inference"]["math"]["settings"]["adapter"].endswith(
            f"adapter/step_{point['step']}.ckpt")
        assert not os.path.isabs(manifest["inference"]["math"]["settings"]["adapter"])
        # the command as typed (point manifests ship with a run), not sys.argv[0]'s path
        assert manifest["inference"]["math"]["command"].startswith("python -m pipeline eval-checkpoints")
        _, summary = score_math(load_predictions(folder / "predictions_math.npy"), rows,
                                prompt=manifest["prompt_template"]["math"])
        assert point["rules"] == {r: e["accuracy"] for r, e in summary["rules"].items()}
        assert point["headline_rule"] == HEADLINE_RULE and point["rows"] == 3
        assert set(point["by_type"]) == {"add", "sub", "sqrt"}
    stamp = (trained / "checkpoints" / "step_8" / "infer_math.jsonl").stat().st_mtime_ns
    assert main(argv[:-1]) == 0                              # resumed: nothing to decode
    assert (trained / "checkpoints" / "step_8" / "infer_math.jsonl").stat().st_mtime_ns == stamp
    assert "<- best" in capsys.readouterr().out
    assert main(argv[:-3] + ["--json"]) == 0                 # every adapter: step 4 joins
    assert [p["step"] for p in json.loads(capsys.readouterr().out)] == [4, 8, 12]
    # A run without adapters is a clear error naming the run.
    empty = runs.run_dir("empty", trained.parent, create=True)
    runs.update_manifest(empty, kind="baseline")
    assert main(["eval-checkpoints", "--run", str(empty), "--tests", str(tests)]) == 2
    assert "no adapter/step_<N>.ckpt" in capsys.readouterr().err


def test_eval_checkpoints_chooses_on_heldout_squad_and_infer_follows(trained, tmp_path, capsys):
    """--squad scores each checkpoint and the base model on held-out SQuAD items (each
    point agreeing with re-scoring its own predictions), --choose points the run's adapter
    at the choice, infer then decodes with it; a second call decodes nothing, and another
    run's curve copies the base decode instead of decoding it again."""
    import shutil
    from pipeline import runs
    from pipeline.checkpoint_choice import CHOICE_FILE
    from pipeline.npy import load_predictions
    from pipeline.scoring.squad import continuation_after_prompt, score_squad
    results = tmp_path / "results"
    run = results / "tiny-choose"
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns("checkpoints", "checkpoints_math.json"))
    val, heldout = tmp_path / "val.jsonl", tmp_path / "heldout.jsonl"
    runs.write_jsonl(val, [{"problem": "计算 1.00 + 2.00 等于多少？", "solution": "1.00 + 2.00 = 3.00"},
                           {"problem": "计算 5.00 - 7.25 等于多少？", "solution": "5.00 - 7.25 = -2.25"}])
    assert main(["data", "squad", "--out", str(heldout), "--subset", "3", "--after", "3"]) == 0
    capsys.readouterr()
    argv = ["eval-checkpoints", "--run", str(run), "--tests", str(val), "--max-new-tokens", "4",
            "--every", "4", "--from-step", "8", "--squad", str(heldout), "--keep", "0.5"]
    assert main(argv + ["--choose", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    curve, choice = out["curve"], out["choice"]
    assert [p["step"] for p in curve] == [8, 12] and out["applied"]
    items = runs.read_jsonl(heldout)

    def rescored(folder):
        texts = load_predictions(folder / "predictions_squad.npy")
        conts = [continuation_after_prompt(t, i["prompt"]) for t, i in zip(texts, items)]
        return {k: v for k, v in score_squad(conts, items, "mindformers").items() if k in ("f1", "em")}

    for point in curve:
        folder = run / "checkpoints" / f"step_{point['step']}"
        assert point["squad"]["items"] == 3 and point["squad"]["mindformers"] == rescored(folder)
        assert runs.read_manifest(folder)["inference"]["squad"]["settings"]["adapter"].endswith(
            f"adapter/step_{point['step']}.ckpt")
    base = run / "checkpoints" / "base"
    base_manifest = runs.read_manifest(base)
    assert base_manifest["kind"] == "baseline"
    assert base_manifest["inference"]["squad"]["settings"]["adapter"] is None
    assert choice["base_squad"]["mindformers"] == rescored(base)
    # the rule, recomputed here: the most math among checkpoints keeping half the base's F1/EM
    b = choice["base_squad"]["mindformers"]
    keeps = lambda p: all(b[m] <= 0 or p["squad"]["mindformers"][m] / b[m] >= 0.5 for m in ("f1", "em"))
    passing = [p for p in curve if keeps(p)]
    if passing:
        want = max(passing, key=lambda p: (p["rules"][p["headline_rule"]], -p["step"]))["step"]
    else:
        want = max(curve, key=lambda p: (p["squad"]["mindformers"]["f1"], -p["step"]))["step"]
    assert choice["step"] == want and choice["passes"] == bool(passing)
    adapter = runs.read_manifest(run)["adapter"]
    assert adapter["path"] == f"adapter/step_{choice['step']}.ckpt" == choice["adapter"]
    assert adapter["final"] == "adapter/step_12.ckpt" and (run / CHOICE_FILE).is_file()
    from pipeline.infer import infer
    infer(run, "squad", heldout, max_new_tokens=3, quiet=True)   # no --adapter: the run's own
    assert runs.read_manifest(run)["inference"]["squad"]["settings"]["adapter"] == choice["adapter"]
    # resumed: nothing decoded again
    stamps = {p: p.stat().st_mtime_ns for p in (run / "checkpoints").glob("*/infer_*.jsonl")}
    assert main(argv) == 0
    assert "<- chosen" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (run / "checkpoints").glob("*/infer_*.jsonl")} == stamps
    # another run's curve on the same items copies the base model's rows
    other = results / "tiny-other"
    shutil.copytree(trained, other, ignore=shutil.ignore_patterns("checkpoints", "checkpoints_math.json"))
    assert main([*argv[:2], str(other), *argv[3:]]) == 0
    entry = runs.read_manifest(other / "checkpoints" / "base")["inference"]["squad"]
    assert entry["reused_from"] == "tiny-choose/checkpoints/base"
    assert runs.read_manifest(other)["adapter"]["path"] == "adapter/step_12.ckpt"  # no --choose
    # --choose without held-out items is refused with a sentence
    assert main(argv[:-4] + ["--choose"]) == 2
    assert "--choose and --keep need --squad" in capsys.readouterr().err


@pytest.mark.parametrize("alpha", [8.0, 6.0])
def test_lora_scale_on_b_gives_mindpets_loss_and_gradients(data, alpha):
    """pipeline.model.lora_dense scales B instead of the output: the same loss and LoRA
    gradients as mindpet's own LoRADense, bit for bit where alpha / rank is a power of two
    (8 / 4) and to float rounding otherwise (6 / 4); same parameters, same names."""
    import dataclasses
    import mindspore as ms
    from mindspore import ops
    from mindpet.delta.lora import LoRADense
    from pipeline.model.build import build_model, setup_context
    from pipeline.model.lora_dense import ScaleOnBLoRADense
    from pipeline.data.mindrecord import read_mindrecord_arrays
    from pipeline.train_step import HeadTrimLoss, head_budget, label_positions
    preset = load_preset(TINY)
    preset = dataclasses.replace(preset, lora=dataclasses.replace(preset.lora, alpha=alpha))
    ids, labels = read_mindrecord_arrays(data)
    x, y = ids[:4], labels[:4]
    k = head_budget(labels, 4)
    inputs = [ms.Tensor(x), ms.Tensor(y), *map(ms.Tensor, label_positions(y, k))]
    setup_context()
    out = {}
    for on_b in (True, False):
        net = build_model(preset, for_training=True, seq_length=ids.shape[1] - 1, batch_size=4,
                          lora_scale_on_b=on_b)
        kinds = {type(c) for _, c in net.cells_and_names() if isinstance(c, LoRADense)}
        assert kinds == ({ScaleOnBLoRADense} if on_b else {LoRADense})
        rng = np.random.default_rng(0)
        for p in net.trainable_params():  # a non-zero adapter, so B's scale matters
            p.set_data(ms.Tensor(rng.normal(0, 0.1, p.shape).astype(np.float32)))
        loss = HeadTrimLoss(net, k)
        loss.set_train(True)
        weights = ms.ParameterTuple(loss.trainable_params())
        grads = ops.GradOperation(get_by_list=True)(loss, weights)(*inputs)
        out[on_b] = (float(loss(*inputs).asnumpy()), {p.name: g.asnumpy() for p, g in zip(weights, grads)})
    (loss_b, grads_b), (loss_out, grads_out) = out[True], out[False]
    assert grads_b.keys() == grads_out.keys() and len(grads_b) > 0
    if alpha == 8.0:
        assert loss_b == loss_out
        for name in grads_b:
            np.testing.assert_array_equal(grads_b[name], grads_out[name], err_msg=name)
    else:
        assert loss_b == pytest.approx(loss_out, rel=1e-6)
        for name in grads_b:
            np.testing.assert_allclose(grads_b[name], grads_out[name], rtol=1e-4, atol=1e-7, err_msg=name)


def test_fused_layers_train_like_mindformers_layers(data, monkeypatch):
    """pipeline.model.fused_layers (the default for training): every norm, attention and
    feed-forward of the tiny model swapped, the same parameters and names, and the loss
    and every LoRA gradient equal to MindFormers' own layers' up to float rounding.
    PIPELINE_TRAIN_KERNELS=mindspore keeps MindFormers' layers."""
    import mindspore as ms
    from mindspore import ops
    from pipeline.model.build import build_model, setup_context
    from pipeline.model.fused_layers import FusedAttention, FusedFeedForward, FusedRMSNorm
    from pipeline.data.mindrecord import read_mindrecord_arrays
    from pipeline.train_step import HeadTrimLoss, head_budget, label_positions
    preset = load_preset(TINY)
    ids, labels = read_mindrecord_arrays(data)
    x, y = ids[:4], labels[:4]
    k = head_budget(labels, 4)
    inputs = [ms.Tensor(x), ms.Tensor(y), *map(ms.Tensor, label_positions(y, k))]
    setup_context()
    fused_kinds = (FusedRMSNorm, FusedAttention, FusedFeedForward)
    out = {}
    for fused in (True, False):
        net = build_model(preset, for_training=True, seq_length=ids.shape[1] - 1, batch_size=4,
                          fused_layers=fused)
        kinds = [type(c) for _, c in net.cells_and_names() if isinstance(c, fused_kinds)]
        layers = preset.dims.layers
        assert len(kinds) == (4 * layers + 1 if fused else 0)   # 2 norms + attention + ffn a layer, final norm
        rng = np.random.default_rng(0)
        for p in net.trainable_params():  # a non-zero adapter, so B's gradient path matters too
            p.set_data(ms.Tensor(rng.normal(0, 0.1, p.shape).astype(np.float32)))
        loss = HeadTrimLoss(net, k)
        loss.set_train(True)
        weights = ms.ParameterTuple(loss.trainable_params())
        grads = ops.GradOperation(get_by_list=True)(loss, weights)(*inputs)
        out[fused] = (float(loss(*inputs).asnumpy()), {p.name: g.asnumpy() for p, g in zip(weights, grads)},
                      sorted(p.name for p in net.get_parameters()))
    (loss_f, grads_f, names_f), (loss_m, grads_m, names_m) = out[True], out[False]
    assert names_f == names_m and grads_f.keys() == grads_m.keys() and len(grads_f) > 0
    assert loss_f == pytest.approx(loss_m, rel=1e-6)
    for name in grads_f:
        scale = np.abs(grads_m[name]).max()
        assert scale > 0, name
        np.testing.assert_allclose(grads_f[name], grads_m[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)
    monkeypatch.setenv("PIPELINE_TRAIN_KERNELS", "mindspore")
    net = build_model(preset, for_training=True, seq_length=ids.shape[1] - 1, batch_size=4)
    assert not any(isinstance(c, fused_kinds) for _, c in net.cells_and_names())
