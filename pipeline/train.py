"""LoRA fine-tuning with MindFormers on CPU: preset + MindRecord -> results/<run>/.

Reads top to bottom: load rows (MindRecord through mindspore.dataset) -> build the
MindFormers Llama with pet LoRA (base frozen) -> AdamW over the LoRA parameters with a
per-step LR table -> loop of gradient passes over micro-batches, summed, then one update. Writes, per docs/run_format.md:

    train.log            MindFormers' own line format ("Network Parameters: N." and
                         "{ Epoch:[  1/  1], step:[    2/  300], loss: 1.392, ...")
    adapter/step_<N>.ckpt  LoRA A/B only (+ .json sidecar), every save_interval steps; the newest 3 kept,
                           and every curve_interval-th for eval-checkpoints
    optimizer.ckpt       AdamW moments + step of the latest checkpoint (for --resume)
    train_state.json     last step, checkpoint paths, data sha256
    manifest.json        kind "finetuned", model, adapter, data, config, seed, versions

A run killed at any point (kill -9 included) resumes with --resume from its last
checkpoint: the data order is a seeded permutation per epoch, so step N+1 sees the
same batch it would have seen without the kill.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline import runs
from pipeline.errors import PipelineError
from pipeline.model.params import MODEL_NAMES, lora_trainable_for, exact_total_for, total_params
from pipeline.progress import Progress

LOG_SOURCE = "mindformers[mindformers/core/callback/callback.py:316]"
PARAMS_SOURCE = "mindformers[mindformers/trainer/base_trainer.py:543]"


# ---------------------------------------------------------------- pure helpers
def lr_schedule(lr: float, schedule: str, warmup_ratio: float, total_steps: int) -> np.ndarray:
    """Per-step learning rates (float32, len total_steps): linear warm-up, then
    cosine / linear decay to 0, or constant."""
    warmup = int(round(warmup_ratio * total_steps))
    steps = np.arange(total_steps, dtype=np.float64)
    out = np.full(total_steps, lr, dtype=np.float64)
    if warmup:
        out[:warmup] = lr * (steps[:warmup] + 1) / warmup
    decay = total_steps - warmup
    if decay > 0 and schedule != "constant":
        frac = (steps[warmup:] - warmup) / decay
        out[warmup:] = lr * (0.5 * (1 + np.cos(np.pi * frac)) if schedule == "cosine" else 1 - frac)
    return out.astype(np.float32)


def epoch_order(rows: int, epoch: int, seed: int) -> np.ndarray:
    """The row order of one epoch: a permutation fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(rows)


def step_line(epoch: int, epochs: int, step: int, steps: int, loss: float,
              step_ms: float, lr: float, when: str | None = None) -> str:
    """One MindFormers-format step line (as MindFormers' MFLossMonitor prints it in sink mode)."""
    when = when or _timestamp()
    return (f"{when} - {LOG_SOURCE} - INFO - {{ Epoch:[{epoch:3d}/{epochs:3d}], "
            f"step:[{step:5d}/{steps:5d}], loss: {loss:.3f}, per_step_time: {int(round(step_ms))}ms, "
            f"lr: {str(np.float32(lr))}, overflow cond: False, loss_scale: 1.0")


def params_line(trainable: int, when: str | None = None) -> str:
    return f"{when or _timestamp()} - {PARAMS_SOURCE} - INFO - Network Parameters: {trainable}."


RESUME_SOURCE = "mindformers[mindformers/trainer/base_trainer.py:1178]"
INITIAL_STEP_SOURCE = "mindformers[mindformers/trainer/utils.py:436]"


def resume_lines(step: int, total: int, steps_per_epoch: int, when: str | None = None) -> list[str]:
    """The resume marker, as MindFormers' own resume_training prints it ("initial step: N"):
    the log's steps after N written before the kill are superseded by those that follow."""
    when = when or _timestamp()
    return [f"{when} - {RESUME_SOURCE} - INFO - .............Start load resume context from "
            "checkpoint..................",
            f"{when} - {INITIAL_STEP_SOURCE} - INFO - initial epoch: {step // steps_per_epoch}",
            f"{when} - {INITIAL_STEP_SOURCE} - INFO - initial step: {step}",
            f"{when} - {PARAMS_SOURCE} - INFO - resumed at step {step}/{total}"]


def _ends_mid_line(path: Path) -> bool:
    """True when a killed writer left the file's last line without its newline."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:  # missing or empty
        return False


def _timestamp() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f",{int(t % 1 * 1000):03d}"


# ---------------------------------------------------------------- data
def write_training_mindrecord(rows: list[dict], out: Path, template: str, seq_length: int,
                              src: Path | None = None) -> Path:
    """problem/solution rows -> MindRecord (input_ids, labels) of width seq_length + 1.

    Prompt tokens (template with {problem}) are masked with -100; the answer is the
    solution followed by EOS; padding is id 0 with label -100; too-long rows are cut.
    """
    from mindspore.mindrecord import FileWriter
    from pipeline.model.tokenizer import EOS_ID, PAD_ID, load_tokenizer

    tok = load_tokenizer()
    width = seq_length + 1
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in (out, out.with_name(out.name + ".db")):
        stale.unlink(missing_ok=True)
    writer = FileWriter(str(out), shard_num=1, overwrite=True)
    writer.add_schema({"input_ids": {"type": "int32", "shape": [-1]},
                       "labels": {"type": "int32", "shape": [-1]}}, "lora_train")
    samples = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or "problem" not in row or "solution" not in row:
            raise PipelineError(f"line {i}: expected an object with 'problem' and 'solution'", src)
        prompt = tok.encode(template.format(problem=row["problem"]), add_special_tokens=False).ids
        answer = tok.encode(" " + str(row["solution"]), add_special_tokens=False).ids + [EOS_ID]
        ids = (prompt + answer)[:width]
        labels = ([-100] * len(prompt) + answer)[:width]
        pad = width - len(ids)
        samples.append({"input_ids": np.array(ids + [PAD_ID] * pad, np.int32),
                        "labels": np.array(labels + [-100] * pad, np.int32)})
    if not samples:
        raise PipelineError("no training rows", src)
    writer.write_raw_data(samples)
    writer.commit()
    return out


def read_mindrecord(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, labels) as int32 [rows, width] via mindspore.dataset.MindDataset."""
    import mindspore.dataset as ds
    try:
        data = ds.MindDataset(str(path), columns_list=["input_ids", "labels"], shuffle=False)
        ids, labels = [], []
        for a, b in data.create_tuple_iterator(output_numpy=True, num_epochs=1):
            ids.append(a.astype(np.int32))
            labels.append(b.astype(np.int32))
    except RuntimeError as exc:
        raise PipelineError(f"cannot read as MindRecord with input_ids/labels columns "
                            f"({str(exc).splitlines()[0][:200]})", path) from None
    if not ids:
        raise PipelineError("MindRecord holds no rows", path)
    widths = {len(a) for a in ids} | {len(b) for b in labels}
    if len(widths) != 1:
        raise PipelineError(f"rows have different lengths {sorted(widths)[:5]}; "
                            "training needs a fixed seq_length", path)
    return np.stack(ids), np.stack(labels)


def check_trainable(preset) -> None:
    """Refuse, before any folder is made, a preset this CPU cannot train or one without data."""
    if preset.device != "cpu":
        raise PipelineError(f"{preset.model_kind} trains on NPU: use `python -m pipeline npu-commands`",
                            preset.path)
    if not preset.data.train:
        raise PipelineError("no training data: set data.train in the preset or pass --data", preset.path)
    if not Path(preset.data.train).exists():
        raise PipelineError("training data not found (run `python -m pipeline data prepare` first "
                            "or pass --data)", preset.data.train)


def prepare_data(preset, run: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Find the preset's training MindRecord (converting a JSONL if that is what it names)."""
    check_trainable(preset)
    src = Path(preset.data.train)
    if src.suffix in (".jsonl", ".json"):
        rows = runs.read_jsonl(src)
        mr = write_training_mindrecord(rows, run / "data" / "train.mindrecord",
                                       preset.data.template, preset.train.seq_length, src)
        ids, labels = read_mindrecord(mr)
        return src, ids, labels
    if src.suffix in (".yaml", ".yml"):
        raise PipelineError("a data recipe must be prepared first: run `python -m pipeline data "
                            "prepare` and point data.train (or --data) at the MindRecord it writes", src)
    ids, labels = read_mindrecord(src)
    return src, ids, labels


def fit_width(ids: np.ndarray, labels: np.ndarray, seq_length: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Cut records to seq_length + 1 columns (the preset's graph width), dropping rows whose
    tokens reach past it, so one graph serves a MindRecord written wider (e.g. 257).
    Narrower data is used as it is. Returns (ids, labels, rows dropped)."""
    width = seq_length + 1
    if ids.shape[1] <= width:
        return ids, labels, 0
    fits = ((ids[:, width:] == 0) & (labels[:, width:] == -100)).all(axis=1)
    return ids[fits, :width], labels[fits, :width], int((~fits).sum())


def drop_unsupervised(ids: np.ndarray, labels: np.ndarray, src) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows whose labels are all masked (prompt longer than seq_length) teach nothing and
    make MindFormers report a loss of 0; drop them. Fails when no row is left."""
    keep = (labels[:, 1:] != -100).any(axis=1)
    if not keep.any():
        raise PipelineError("no row has an unmasked label within seq_length: every prompt is too "
                            "long, raise train.seq_length", src)
    return ids[keep], labels[keep], int((~keep).sum())


# ---------------------------------------------------------------- LM head on labels only
def label_positions(labels: np.ndarray, k: int, batch_labels: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat positions (into batch x seq predictions) that carry a label, padded to k.

    Returns (positions int32 [k], targets int32 [k], weights float32 [k]); padding slots
    point at position 0 with weight 0. Each label weighs 1 / batch_labels (default: the
    labels in `labels`), so a micro-batch's weighted NLL sum is its share of the whole
    batch's mean loss. Fails if a batch has more than k labelled positions.
    """
    flat = labels[:, 1:].reshape(-1)
    idx = np.nonzero(flat != -100)[0]
    if len(idx) > k:
        raise PipelineError(f"batch has {len(idx)} labelled positions, more than the head budget {k}")
    positions, targets, weights = (np.zeros(k, np.int32), np.zeros(k, np.int32),
                                   np.zeros(k, np.float32))
    positions[:len(idx)], targets[:len(idx)] = idx, flat[idx]
    weights[:len(idx)] = 1.0 / max(batch_labels or len(idx), 1)
    return positions, targets, weights


def longest_target(labels: np.ndarray) -> int:
    """Labelled positions in the longest row (its answer's tokens)."""
    return int((labels[:, 1:] != -100).sum(axis=1).max())


def head_budget(labels: np.ndarray, batch_size: int) -> int:
    """k for label_positions: the most labels a batch of batch_size rows can hold
    (batch_size x the longest answer)."""
    return longest_target(labels) * batch_size


def _head_trim_cell():
    import mindspore as ms
    from mindspore import nn, ops

    class HeadTrimLoss(nn.Cell):
        """Loss of a MindFormers Llama with the LM head (576 x 49152) and cross-entropy run
        only on labelled positions: prompt and padding positions (about 3/4 of a
        128-token arithmetic row) never reach the vocabulary projection.

        With label_positions' default weights this is LlamaForCausalLM's own loss (mean NLL
        over labelled positions); with weights of 1 / (labels in the whole batch) it is a
        micro-batch's share of it, so micro-batch losses and gradients add up exactly.
        Inputs: input_ids, labels [B, S+1]; positions, targets, weights [k] (label_positions).
        """

        def __init__(self, model, k: int):
            super().__init__(auto_prefix=False)   # keep MindFormers' parameter names
            from pipeline.model.build import llama_of
            self.llama = llama_of(model)
            self.k = k

        def construct(self, input_ids, labels, positions, targets, weights):
            tokens = input_ids[:, :-1]
            hidden = self.llama.model(tokens)
            hidden = hidden.reshape((-1, hidden.shape[-1]))
            logits = self.llama.lm_head(ops.gather(hidden, positions, 0)).astype(ms.float32)
            logp = ops.log_softmax(logits, -1)
            nll = -ops.gather_elements(logp, 1, targets.reshape((-1, 1))).reshape((-1,))
            return (nll * weights).sum()

    return HeadTrimLoss


def _step_cells(net, optimizer):
    """(grad_step, apply_step): TrainOneStepCell cut in two, so that the gradients of
    several micro-batches are summed before one optimiser update.

    grad_step(*inputs) adds its micro-batch's gradients into a zeroed copy of the LoRA
    parameters and returns the loss; apply_step() runs the optimiser on the sum and zeroes
    it. The sum stays inside MindSpore as parameters: handing 420 gradient tensors to a
    separate optimiser graph as arguments cost 2.4 s a step (measured), this costs nothing.
    """
    from mindspore import nn, ops

    accum = optimizer.parameters.clone(prefix="grad_accum", init="zeros")

    class GradStep(nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)
            self.net, self.weights, self.accum = net, optimizer.parameters, accum
            self.grad = ops.GradOperation(get_by_list=True)
            self.hyper_map = ops.HyperMap()

        def construct(self, *inputs):
            loss = self.net(*inputs)
            grads = self.grad(self.net, self.weights)(*inputs)
            return ops.depend(loss, self.hyper_map(ops.assign_add, self.accum, grads))

    class ApplyStep(nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)
            self.optimizer, self.accum = optimizer, accum
            self.hyper_map = ops.HyperMap()

        def construct(self):
            done = self.optimizer(self.accum)
            return ops.depend(self.hyper_map(_zero_out, self.accum), done)

    def _zero_out(param):
        return ops.assign(param, ops.zeros_like(param))

    grad_step, apply_step = GradStep(), ApplyStep()
    grad_step.set_train(True)
    return grad_step, apply_step


def run_batch(grad_step, apply_step, ids: np.ndarray, labels: np.ndarray, micro: int,
              k: int | None) -> float:
    """One optimiser step over a batch as len(ids) / micro forward/backward passes; returns
    the batch's loss. Peak memory follows the micro-batch (activations are ~11 MB a token
    on MindSpore CPU), the update is the whole batch's: with head trim (k given) every
    label weighs 1 / the batch's labels, so the summed gradients are exactly the batch's."""
    import mindspore as ms
    batch_labels = int((labels[:, 1:] != -100).sum())
    loss = 0.0
    for lo in range(0, len(ids), micro):
        inputs = [ids[lo:lo + micro], labels[lo:lo + micro]]
        if k is not None:
            inputs += label_positions(labels[lo:lo + micro], k, batch_labels)
        loss += float(grad_step(*map(ms.Tensor, inputs)).asnumpy())
    apply_step()
    return loss


def __getattr__(name):  # HeadTrimLoss is built lazily so importing train.py needs no MindSpore
    if name == "HeadTrimLoss":
        return _head_trim_cell()
    raise AttributeError(name)


# ---------------------------------------------------------------- training
@dataclasses.dataclass
class TrainResult:
    run: Path
    last_step: int
    total_steps: int
    losses: list
    adapter: str | None
    trainable: int


def train(preset, run: Path, resume: bool = False, command: str | None = None,
          quiet: bool = False) -> TrainResult:
    """Fine-tune preset's LoRA on its data into run folder `run`; see module docstring.

    Raises PipelineError on bad data, a resume whose data or config changed, or a
    finished run asked to resume.
    """
    check_trainable(preset)
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    state_path = run / "train_state.json"
    state = runs.read_json(state_path) if resume and state_path.is_file() else None
    if not resume and state_path.is_file():
        raise PipelineError("run folder already holds a training run: pass --resume to continue "
                            "it or choose another --run", run)

    src, ids, labels = prepare_data(preset, run)
    data_hash = runs.file_sha256(src)
    ids, labels, too_long = fit_width(ids, labels, preset.train.seq_length)
    ids, labels, dropped = drop_unsupervised(ids, labels, src)
    dropped += too_long
    rows, width = ids.shape
    t = preset.train
    steps_per_epoch = rows // t.batch_size
    if steps_per_epoch < 1:
        raise PipelineError(f"{rows} rows is less than one batch of {t.batch_size}", src)
    total = t.max_steps or t.epochs * steps_per_epoch
    epochs = math.ceil(total / steps_per_epoch)
    config = preset.as_dict()
    if state:
        if state["data_sha256"] != data_hash:
            raise PipelineError("cannot resume: the training data changed since the run started", src)
        if state["config"] != json.loads(json.dumps(_resume_key(config))):  # as stored
            raise PipelineError("cannot resume: the preset's model/LoRA/optimiser settings changed", preset.path)
    start = state["last_step"] if state else 0
    if start >= total:
        raise PipelineError(f"run already finished {start}/{total} steps; raise --max-steps to go on", run)

    import mindspore as ms
    from mindspore import nn
    from pipeline.model.build import build_model, setup_context, trainable_count

    micro = t.micro_batch or t.batch_size
    k = head_budget(labels, micro) if t.head_trim else 0
    setup_context({"graph": "train", "config": _resume_key(config), "width": width, "steps": total,
                   "head_budget": k, "micro_batch": micro})
    ms.set_context(memory_optimize_level=t.memory_level)
    # The model sees width-1 tokens: MindFormers drops the last input and the first label.
    net = build_model(preset, for_training=True, seq_length=width - 1, batch_size=micro,
                      recompute=t.recompute)
    if t.head_trim:
        net = _head_trim_cell()(net, k)
    trainable = trainable_count(net)
    expected = lora_trainable_for(preset.dims, preset.lora.rank, preset.lora.targets)
    if trainable != expected:  # the model must agree with the analytic count
        raise PipelineError(f"model has {trainable} trainable parameters, analytic count {expected}")
    lrs = lr_schedule(t.lr, t.schedule, t.warmup_ratio, total)
    optimizer = nn.AdamWeightDecay(net.trainable_params(), learning_rate=ms.Tensor(lrs),
                                   beta1=t.betas[0], beta2=t.betas[1], weight_decay=t.weight_decay)
    if state:
        _restore(net, optimizer, run, state)
    grad_step, apply_step = _step_cells(net, optimizer)

    total_model = exact_total_for(preset.dims) if preset.model_kind == "tiny" else total_params(preset.model_kind)
    adapter_info = {"rank": preset.lora.rank, "alpha": preset.lora.alpha,
                    "dropout": preset.lora.dropout, "targets": list(preset.lora.targets),
                    "trainable_params": trainable}
    runs.update_manifest(
        run, kind="finetuned",
        model={"preset": preset.model_kind, "name": MODEL_NAMES[preset.model_kind],
               "total_params": total_model},
        adapter={"path": state.get("adapter") if state else None, **adapter_info},
        data={"train": {"path": str(src), "sha256": data_hash, "rows": int(rows), "width": int(width),
                        # infer sizes its math answers by this (working can be ~100 tokens)
                        "longest_target_tokens": longest_target(labels)}},
        prompt_template={"math": preset.data.template}, config=config, seed=t.seed,
        command=command or " ".join(sys.argv))

    cut_short = _ends_mid_line(run / "train.log")
    log = open(run / "train.log", "a", encoding="utf-8")
    if cut_short:
        log.write("\n")
    if not state:
        log.write(f"{_timestamp()} - {PARAMS_SOURCE} - INFO - preset {preset.name}: "
                  f"{rows} rows x {width} tokens ({dropped} rows too long or without labels dropped), "
                  f"{total} steps, seed {t.seed}\n")
        log.write(params_line(trainable) + "\n")
    else:
        log.write("\n".join(resume_lines(start, total, steps_per_epoch)) + "\n")
    log.flush()

    losses, adapter_rel = [], state.get("adapter") if state else None
    bar = Progress(total, "train", unit="step", initial=start, disable=True if quiet else None)
    try:
        step = start
        while step < total:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            order = epoch_order(rows, epoch, t.seed)
            pick = order[in_epoch * t.batch_size:(in_epoch + 1) * t.batch_size]
            began = time.perf_counter()
            loss = run_batch(grad_step, apply_step, ids[pick], labels[pick], micro,
                             k if t.head_trim else None)
            step_ms = (time.perf_counter() - began) * 1000
            if not np.isfinite(loss):
                raise PipelineError(f"loss became {loss} at step {step + 1}; lower train.lr", preset.path)
            step += 1
            losses.append(loss)
            if step % t.log_interval == 0 or step == total:
                log.write(step_line(epoch + 1, epochs, in_epoch + 1, steps_per_epoch, loss,
                                    step_ms, lrs[step - 1]) + "\n")
                log.flush()
            bar.update(1, loss=f"{loss:.3f}")
            if step % t.save_interval == 0 or step == total:
                adapter_rel = _checkpoint(net, optimizer, run, preset, step, total, data_hash, config)
                runs.update_manifest(run, adapter={"path": adapter_rel, **adapter_info})
    finally:
        bar.close()
        log.close()
    return TrainResult(run, step, total, losses, adapter_rel, trainable)


def _resume_key(config: dict) -> dict:
    """What must not change between a run and its resume (steps may grow)."""
    train = {k: v for k, v in config["train"].items() if k not in ("max_steps", "save_interval", "log_interval",
                                                           "curve_interval")}
    return {"model": config["model"], "lora": config["lora"], "train": train}


def _checkpoint(net, optimizer, run: Path, preset, step: int, total: int, data_hash: str,
                config: dict) -> str:
    """Adapter + optimiser state, then train_state.json last (so it never points at a torn file)."""
    import mindspore as ms
    from pipeline.model.build import save_adapter
    rel = f"adapter/step_{step}.ckpt"
    save_adapter(net, run / rel, preset.lora, step)
    fd, opt_tmp = tempfile.mkstemp(prefix=".optimizer.", suffix=".tmp.ckpt", dir=run)  # unique,
    os.close(fd)                                                                      # never a link
    ms.save_checkpoint([{"name": p.name, "data": p} for p in optimizer.get_parameters()
                        if p.name.startswith(("adam_m", "adam_v", "global_step"))], str(opt_tmp))
    os.replace(opt_tmp, run / "optimizer.ckpt")
    runs.write_json_atomic(run / "train_state.json", {
        "last_step": step, "total_steps": total, "adapter": rel, "optimizer": "optimizer.ckpt",
        "data_sha256": data_hash, "config": _resume_key(config), "updated": runs.now_iso()})
    prune_adapters(run / "adapter", KEEP_ADAPTERS, keep_every=preset.train.curve_interval)
    return rel


KEEP_ADAPTERS = 3  # a 400-step run saving every 10 steps kept 40 adapters (188 MB) before this


def prune_adapters(folder: Path, keep: int, keep_every: int = 0) -> list[Path]:
    """Delete all but the newest `keep` adapter/step_<N>.ckpt (+ .json) and those whose step
    is a multiple of `keep_every` (the points of the accuracy-vs-step curve); returns what went.

    Called only after train_state.json points at the newest, so a crash mid-prune never
    leaves the run without the checkpoint it would resume from.
    """
    def step_of(path: Path) -> int:
        return int(path.stem.split("_", 1)[1])
    ckpts = sorted((p for p in folder.glob("step_*.ckpt") if p.stem.split("_", 1)[1].isdigit()),
                   key=step_of)
    removed = []
    for old in ckpts[:-keep] if keep > 0 else []:
        if keep_every and step_of(old) % keep_every == 0:
            continue
        for path in (old, old.with_suffix(".json")):
            if path.exists():
                path.unlink()
                removed.append(path)
    return removed


def _restore(net, optimizer, run: Path, state: dict) -> None:
    import mindspore as ms
    from pipeline.model.build import _load_into, load_adapter
    adapter, _ = load_adapter(run / state["adapter"])
    _load_into(net, adapter, f"adapter {state['adapter']}", subset=True)
    saved = ms.load_checkpoint(str(run / state["optimizer"]))
    # Set by exact name: ms.load_param_into_net(strict_load=False) would fill the LoRA
    # weights themselves from "adam_m.<name>" by suffix match (measured: it did).
    own = {p.name: p for p in optimizer.get_parameters() if p.name.startswith(("adam_m.", "adam_v.", "global_step"))}
    if set(own) != set(saved):
        raise PipelineError("optimizer state does not fit this model", run / state["optimizer"])
    for name, value in saved.items():
        if tuple(own[name].shape) != tuple(value.shape):
            raise PipelineError(f"optimizer state {name} has the wrong shape", run / state["optimizer"])
        own[name].set_data(value.value() if hasattr(value, "value") else value)
