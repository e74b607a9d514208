"""LoRA fine-tuning with MindFormers on CPU: preset + MindRecord -> results/<run>/.

Reads top to bottom: load rows (pipeline.data.training_rows) -> build the MindFormers Llama
with pet LoRA (base frozen) -> AdamW over the LoRA parameters with a per-step LR table ->
loop of gradient passes over micro-batches, summed, then one update (pipeline.train_step).
Writes, per docs/run_format.md:

    train.log            MindFormers' own line format ("Network Parameters: N." and
                         "{ Epoch:[  1/  1], step:[    2/  300], loss: 1.392, ...", pipeline.logs)
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

from pipeline import logs, runs
from pipeline.errors import PipelineError
from pipeline.model.params import MODEL_NAMES, lora_trainable_for, exact_total_for, total_params
from pipeline.progress import Progress


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


def _ends_mid_line(path: Path) -> bool:
    """True when a killed writer left the file's last line without its newline."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:  # missing or empty
        return False


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


# ---------------------------------------------------------------- training
@dataclasses.dataclass
class TrainResult:
    run: Path
    last_step: int
    total_steps: int
    losses: list
    adapter: str | None
    trainable: int


@dataclasses.dataclass
class TrainData:
    """The rows a run steps over, at the preset's width, and where they came from."""
    src: Path
    sha256: str
    ids: np.ndarray
    labels: np.ndarray
    dropped: int          # rows too long for the width or without a label
    longest_answer: int   # tokens of the longest answer in one row (infer sizes its decode
                          # by it; a packed sequence holds several answers)
    segments: np.ndarray | None = None   # packed: each column's row in its sequence

    @property
    def packing(self) -> dict | None:
        """Packed: sequences, rows, rows_per_sequence, fill (pipeline.data.packing)."""
        from pipeline.data.packing import packing_stats
        return None if self.segments is None else packing_stats(self.segments)

    @property
    def rows(self) -> int:
        """Records a step draws from: rows, or packed sequences."""
        return int(self.ids.shape[0])

    @property
    def width(self) -> int:
        return int(self.ids.shape[1])


@dataclasses.dataclass
class Schedule:
    """Steps of a run: where it starts (0, or a resume's last step) and where it ends."""
    start: int
    total: int
    steps_per_epoch: int

    @property
    def epochs(self) -> int:
        return math.ceil(self.total / self.steps_per_epoch)


@dataclasses.dataclass
class Trainer:
    """The built network and its step cells, with what the loop needs beside them."""
    net: object
    optimizer: object
    grad_step: object
    apply_step: object
    lrs: np.ndarray
    micro: int
    head_k: int | None    # label budget of the trimmed head; None: the full head
    trainable: int
    layers: str           # "fused" (pipeline.model.fused_layers) or "mindformers"


def train(preset, run: Path, resume: bool = False, command: str | None = None,
          quiet: bool = False) -> TrainResult:
    """Fine-tune preset's LoRA on its data into run folder `run`; see module docstring.

    Raises PipelineError on bad data, a resume whose data or config changed, or a
    finished run asked to resume.
    """
    check_trainable(preset)
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    state = _resume_state(run, resume)
    data = load_data(preset, run)
    schedule = _schedule(preset, data, state, run)
    trainer = _build_trainer(preset, data, schedule, run, state)
    adapter_info = {"rank": preset.lora.rank, "alpha": preset.lora.alpha,
                    "dropout": preset.lora.dropout, "targets": list(preset.lora.targets),
                    **({"first_layer": preset.lora.first_layer} if preset.lora.first_layer else {}),
                    "trainable_params": trainer.trainable}
    _record_manifest(run, preset, data, adapter_info, state.get("adapter") if state else None,
                     command, trainer.layers)
    with _open_log(run) as log:
        if state:
            log.write("\n".join(logs.resume_lines(schedule.start, schedule.total,
                                                  schedule.steps_per_epoch)) + "\n")
        else:
            log.write(logs.info_line(
                f"preset {preset.name}: {_rows_text(data)} x {data.width} tokens ({data.dropped} rows "
                f"too long or without labels dropped), {schedule.total} steps, "
                f"seed {preset.train.seed}") + "\n")
            log.write(logs.params_line(trainer.trainable) + "\n")
        log.flush()
        return _loop(preset, run, data, schedule, trainer, log, adapter_info,
                     state.get("adapter") if state else None, quiet)


def _rows_text(data: TrainData) -> str:
    p = data.packing
    if p is None:
        return f"{data.rows} rows"
    return (f"{p['rows']} rows packed into {p['sequences']} sequences ({p['rows_per_sequence']} "
            f"rows each, {p['fill']:.0%} of columns used)")


def _resume_state(run: Path, resume: bool) -> dict | None:
    """train_state.json when resuming one; refuses to start over an existing run."""
    state_path = run / "train_state.json"
    if not resume and state_path.is_file():
        raise PipelineError("run folder already holds a training run: pass --resume to continue "
                            "it or choose another --run", run)
    return runs.read_json(state_path) if resume and state_path.is_file() else None


def load_data(preset, run: Path) -> TrainData:
    """The preset's rows at its width, without rows that could teach nothing."""
    from pipeline.data.training_rows import (drop_unsupervised, fit_width, load_training_arrays,
                                             longest_target)
    src, ids, labels = load_training_arrays(preset, run)
    data_hash = runs.file_sha256(src)
    ids, labels, too_long = fit_width(ids, labels, preset.train.seq_length)
    ids, labels, dropped = drop_unsupervised(ids, labels, src)
    answer = longest_target(labels)
    if not preset.train.pack:
        return TrainData(src, data_hash, ids, labels, dropped + too_long, answer)
    from pipeline.data.packing import pack_rows
    # Rows in a seeded order before packing: each sequence holds a random set of rows.
    ids, labels, segments = pack_rows(ids, labels, preset.train.seq_length + 1,
                                      epoch_order(len(ids), 0, preset.train.seed))
    return TrainData(src, data_hash, ids, labels, dropped + too_long, answer, segments)


def _schedule(preset, data: TrainData, state: dict | None, run: Path) -> Schedule:
    """Steps to run; a resume must see the same data and settings and have steps left."""
    t = preset.train
    steps_per_epoch = data.rows // t.batch_size
    if steps_per_epoch < 1:
        what = "packed sequences" if data.segments is not None else "rows"
        raise PipelineError(f"{data.rows} {what} is less than one batch of {t.batch_size}", data.src)
    total = t.max_steps or t.epochs * steps_per_epoch
    if state:
        if state["data_sha256"] != data.sha256:
            raise PipelineError("cannot resume: the training data changed since the run started",
                                data.src)
        if state["config"] != json.loads(json.dumps(_resume_key(preset.as_dict()))):  # as stored
            raise PipelineError("cannot resume: the preset's model/LoRA/optimiser settings changed",
                                preset.path)
    start = state["last_step"] if state else 0
    if start >= total:
        raise PipelineError(f"run already finished {start}/{total} steps; raise --max-steps to go on", run)
    return Schedule(start, total, steps_per_epoch)


def _build_trainer(preset, data: TrainData, schedule: Schedule, run: Path,
                   state: dict | None) -> Trainer:
    """Network (LoRA, optionally the trimmed head), AdamW and the step cells; a resume's
    adapter and optimiser state loaded into them."""
    import mindspore as ms
    from mindspore import nn
    from pipeline.model.build import build_model, setup_context, trainable_count
    from pipeline.train_step import HeadTrimLoss, PackedHeadTrimLoss, head_budget, step_cells

    t = preset.train
    micro = t.micro_batch or t.batch_size
    k = head_budget(data.labels, micro) if t.head_trim else 0
    setup_context({"graph": "train", "config": _resume_key(preset.as_dict()), "width": data.width,
                   "steps": schedule.total, "head_budget": k, "micro_batch": micro})
    ms.set_context(memory_optimize_level=t.memory_level)
    # The model sees width-1 tokens: MindFormers drops the last input and the first label.
    net = build_model(preset, for_training=True, seq_length=data.width - 1, batch_size=micro,
                      recompute=t.recompute)
    if t.head_trim:
        net = (PackedHeadTrimLoss if data.segments is not None else HeadTrimLoss)(net, k)
    trainable = trainable_count(net)
    expected = lora_trainable_for(preset.dims, preset.lora.rank, preset.lora.targets,
                                  preset.lora.first_layer)
    if trainable != expected:  # the model must agree with the analytic count
        raise PipelineError(f"model has {trainable} trainable parameters, analytic count {expected}")
    lrs = lr_schedule(t.lr, t.schedule, t.warmup_ratio, schedule.total)
    optimizer = nn.AdamWeightDecay(net.trainable_params(), learning_rate=ms.Tensor(lrs),
                                   beta1=t.betas[0], beta2=t.betas[1], weight_decay=t.weight_decay)
    if state:
        _restore(net, optimizer, run, state)
    grad_step, apply_step = step_cells(net, optimizer)
    from pipeline.model.fused_layers import layers_in
    return Trainer(net, optimizer, grad_step, apply_step, lrs, micro,
                   k if t.head_trim else None, trainable, layers_in(net))


def _record_manifest(run: Path, preset, data: TrainData, adapter_info: dict,
                     adapter_path: str | None, command: str | None, layers: str) -> None:
    total_model = exact_total_for(preset.dims) if preset.model_kind == "tiny" else total_params(preset.model_kind)
    packing = data.packing
    runs.update_manifest(
        run, kind="finetuned",
        model={"preset": preset.model_kind, "name": MODEL_NAMES[preset.model_kind],
               "total_params": total_model},
        adapter={"path": adapter_path, **adapter_info},
        data={"train": {"path": str(data.src), "sha256": data.sha256,
                        "rows": packing["rows"] if packing else data.rows,
                        "width": data.width,
                        **({"packed": packing} if packing else {}),
                        # infer sizes its math answers by this (working can be ~100 tokens)
                        "longest_target_tokens": data.longest_answer}},
        prompt_template={"math": preset.data.template}, config=preset.as_dict(),
        seed=preset.train.seed, command=command or " ".join(sys.argv),
        # the fused layers train the same maths up to float rounding: a rerun on the other
        # kind will not repeat this run's losses digit for digit
        training_layers=layers)


def _open_log(run: Path):
    """train.log for appending; a line a kill cut short is ended first."""
    cut_short = _ends_mid_line(run / "train.log")
    log = open(run / "train.log", "a", encoding="utf-8")
    if cut_short:
        log.write("\n")
    return log


def _loop(preset, run: Path, data: TrainData, schedule: Schedule, trainer: Trainer, log,
          adapter_info: dict, adapter_rel: str | None, quiet: bool) -> TrainResult:
    """Steps schedule.start+1 .. schedule.total: log lines, progress, checkpoints."""
    from pipeline.train_step import run_batch
    t, total, per_epoch = preset.train, schedule.total, schedule.steps_per_epoch
    config = preset.as_dict()
    losses = []
    step = schedule.start
    with Progress(total, "train", unit="step", initial=step,
                  disable=True if quiet else None) as bar:
        while step < total:
            epoch, in_epoch = divmod(step, per_epoch)
            order = epoch_order(data.rows, epoch, t.seed)
            pick = order[in_epoch * t.batch_size:(in_epoch + 1) * t.batch_size]
            began = time.perf_counter()
            loss = run_batch(trainer.grad_step, trainer.apply_step, data.ids[pick],
                             data.labels[pick], trainer.micro, trainer.head_k,
                             None if data.segments is None else data.segments[pick])
            step_ms = (time.perf_counter() - began) * 1000
            if not np.isfinite(loss):
                raise PipelineError(f"loss became {loss} at step {step + 1}; lower train.lr", preset.path)
            step += 1
            losses.append(loss)
            if step % t.log_interval == 0 or step == total:
                log.write(logs.step_line(epoch + 1, schedule.epochs, in_epoch + 1, per_epoch, loss,
                                         step_ms, trainer.lrs[step - 1]) + "\n")
                log.flush()
            bar.update(1, loss=f"{loss:.3f}")
            if step % t.save_interval == 0 or step == total:
                adapter_rel = _checkpoint(trainer.net, trainer.optimizer, run, preset, step, total,
                                          data.sha256, config)
                runs.update_manifest(run, adapter={"path": adapter_rel, **adapter_info})
    return TrainResult(run, step, total, losses, adapter_rel, trainer.trainable)


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


KEEP_ADAPTERS = 3  # bounds disk use: 400 steps saved every 10 would be 40 adapters (188 MB)


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
