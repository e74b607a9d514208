"""Typed training presets: configs/<model>_lora_<device>.yaml -> Preset.

A preset YAML has four sections, each mapping onto a frozen dataclass:

    model: {kind: smollm2-135m | tiny | llama3-8b, dims: {...}  # dims only for tiny}
    lora:  {rank, alpha, dropout, targets: [wq, wv, ...], first_layer}
    train: {lr, schedule, warmup_ratio, max_steps, epochs, batch_size, seq_length,
            seed, save_interval, log_interval, weight_decay, betas,
            micro_batch, head_trim, recompute, memory_level, pack}
    data:  {train: path (MindRecord, JSONL of problem/solution rows, or a data recipe
            YAML), prompt_template: name}
    device: cpu | npu

Unknown keys, wrong types and bad combinations (llama3-8b on cpu, a rank above the
hidden size, a tiny-only field on a real model) raise PipelineError naming the file
and the field.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from pipeline.data.prompts import PROMPTS
from pipeline.errors import PipelineError
from pipeline.model.params import MODEL_DIMS, ModelDims, check_targets

SCHEDULES = ("cosine", "linear", "constant")
DEVICES = ("cpu", "npu")
# The plain prompts a preset may name (texts in pipeline.data.prompts, their one home);
# the conversation forms (vicuna, chatml) are a data recipe's wrapper, applied when it tokenises.
PROMPT_TEMPLATES = {name: PROMPTS[name] for name in ("minimal", "alpaca", "bare")}


@dataclass(frozen=True)
class LoraSpec:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    targets: tuple = ("wq", "wv")
    # LoRA on decoder layers first_layer..last only: the backward pass then stops at
    # first_layer (nothing below it needs a gradient), so a step costs less.
    first_layer: int = 0

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


@dataclass(frozen=True)
class TrainSpec:
    lr: float = 1e-4
    schedule: str = "cosine"
    warmup_ratio: float = 0.03
    max_steps: int | None = None      # None: run `epochs` full passes
    epochs: int = 1
    batch_size: int = 8
    seq_length: int = 128             # tokens per row fed to the model (MindRecord width - 1)
    seed: int = 42
    save_interval: int = 50           # adapter checkpoint every N steps (and at the end)
    curve_interval: int = 50          # besides the newest 3, keep every N-th step's adapter for
                                      # the accuracy-vs-step curve (eval-checkpoints); 0: none
    log_interval: int = 1
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.95)
    # Speed/memory switches (bench/bench_train.py measures each):
    micro_batch: int | None = None    # rows per forward/backward; gradients of batch_size /
                                      # micro_batch passes are summed (None: the whole batch)
    head_trim: bool = True            # LM head + loss only on labelled positions
    recompute: bool = False           # recompute decoder layers in backward (less memory)
    memory_level: str = "O0"          # MindSpore memory_optimize_level: O0 or O1
    pack: bool = False                # several rows per sequence of seq_length tokens, each
                                      # attending only to itself (pipeline.data.packing);
                                      # batch_size then counts sequences, not rows


@dataclass(frozen=True)
class DataSpec:
    train: str | None = None
    prompt_template: str = "minimal"

    @property
    def template(self) -> str:
        return PROMPT_TEMPLATES[self.prompt_template]


@dataclass(frozen=True)
class Preset:
    name: str
    model_kind: str
    dims: ModelDims
    lora: LoraSpec
    train: TrainSpec
    data: DataSpec
    device: str = "cpu"
    path: str | None = None

    def as_dict(self) -> dict:
        """Plain config as recorded in a run manifest."""
        lora = dataclasses.asdict(self.lora)
        if not lora["first_layer"]:
            # absent means 0: manifests written before the field existed still resume
            del lora["first_layer"]
        train = dataclasses.asdict(self.train)
        if not train["pack"]:
            del train["pack"]     # the same: runs from before packing resume unchanged
        return {"name": self.name, "model": {"kind": self.model_kind, "dims": self.dims.as_dict()},
                "lora": lora, "train": train,
                "data": dataclasses.asdict(self.data), "device": self.device}


def _build(cls, raw, where: str, src):
    """Build dataclass `cls` from a mapping, refusing unknown keys and wrong types."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PipelineError(f"{where}: expected a mapping, got {type(raw).__name__}", src)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise PipelineError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(known)}", src)
    values = {}
    for key, value in raw.items():
        default = known[key].default
        kind = type(default) if default not in (None, dataclasses.MISSING) else None
        if kind is tuple:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise PipelineError(f"{where}.{key}: expected a list", src)
            value = tuple(value)
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif kind is not None and (not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)):
            raise PipelineError(f"{where}.{key}: expected {kind.__name__}, got {value!r}", src)
        values[key] = value
    return cls(**values)


def _check(preset: Preset, src) -> None:
    """Combinations no run could use; each message names the field."""
    lora, train, dims = preset.lora, preset.train, preset.dims
    try:
        check_targets(lora.targets)
    except PipelineError as exc:
        raise PipelineError(f"lora.targets: {exc}", src) from None
    if not 1 <= lora.rank <= dims.hidden:
        raise PipelineError(f"lora.rank: must be 1..{dims.hidden} (the hidden size), got {lora.rank}", src)
    if lora.alpha <= 0:
        raise PipelineError(f"lora.alpha: must be > 0, got {lora.alpha}", src)
    if not 0 <= lora.dropout < 1:
        raise PipelineError(f"lora.dropout: must be in [0, 1), got {lora.dropout}", src)
    if not 0 <= lora.first_layer < dims.layers:
        raise PipelineError(f"lora.first_layer: must be 0..{dims.layers - 1} (the model has "
                            f"{dims.layers} layers), got {lora.first_layer}", src)
    if train.lr <= 0:
        raise PipelineError(f"train.lr: must be > 0, got {train.lr}", src)
    if train.schedule not in SCHEDULES:
        raise PipelineError(f"train.schedule: {train.schedule!r} is not one of {', '.join(SCHEDULES)}", src)
    if not 0 <= train.warmup_ratio < 1:
        raise PipelineError(f"train.warmup_ratio: must be in [0, 1), got {train.warmup_ratio}", src)
    for key in ("epochs", "batch_size", "seq_length", "save_interval", "log_interval"):
        if getattr(train, key) < 1:
            raise PipelineError(f"train.{key}: must be >= 1, got {getattr(train, key)}", src)
    if not isinstance(train.curve_interval, int) or train.curve_interval < 0:
        raise PipelineError(f"train.curve_interval: must be an integer >= 0, got "
                            f"{train.curve_interval!r}", src)
    if train.max_steps is not None and (not isinstance(train.max_steps, int) or train.max_steps < 1):
        raise PipelineError(f"train.max_steps: must be a positive integer or null, got {train.max_steps!r}", src)
    if len(train.betas) != 2 or not all(0 <= b < 1 for b in train.betas):
        raise PipelineError(f"train.betas: need two values in [0, 1), got {list(train.betas)}", src)
    if train.micro_batch is not None:
        if not isinstance(train.micro_batch, int) or not 1 <= train.micro_batch <= train.batch_size \
                or train.batch_size % train.micro_batch:
            raise PipelineError(f"train.micro_batch: must divide batch_size {train.batch_size}, "
                                f"got {train.micro_batch!r}", src)
        if train.micro_batch < train.batch_size and not train.head_trim:
            raise PipelineError("train.micro_batch: summing micro-batch gradients needs "
                                "head_trim: true (its loss weights each label by the whole batch)", src)
    if train.pack and not train.head_trim:
        raise PipelineError("train.pack: packed rows need head_trim: true (its loss cell "
                            "carries the per-row attention mask)", src)
    if train.pack and preset.device != "cpu":
        raise PipelineError("train.pack: packing is the CPU trainer's; on an NPU MindFormers' "
                            "own dataset options pack rows", src)
    if train.memory_level not in ("O0", "O1"):
        raise PipelineError(f"train.memory_level: {train.memory_level!r} is not O0 or O1", src)
    if preset.data.prompt_template not in PROMPT_TEMPLATES:
        raise PipelineError(f"data.prompt_template: {preset.data.prompt_template!r} is not one of "
                            f"{', '.join(PROMPT_TEMPLATES)}", src)
    if preset.device not in DEVICES:
        raise PipelineError(f"device: {preset.device!r} is not one of {', '.join(DEVICES)}", src)
    if preset.model_kind == "llama3-8b" and preset.device != "npu":
        raise PipelineError("device: llama3-8b only runs on an Ascend NPU here (device: npu); "
                            "use `python -m pipeline npu-commands` to launch it", src)
    if preset.model_kind != "llama3-8b" and preset.device == "npu":
        raise PipelineError(f"device: npu is only wired for llama3-8b, not {preset.model_kind}", src)
    if dims.hidden % dims.heads or dims.heads % dims.kv_heads:
        raise PipelineError("model.dims: hidden must divide by heads and heads by kv_heads", src)


def preset_from_dict(raw: dict, name: str = "preset", src=None) -> Preset:
    """Validate a parsed preset mapping (see module docstring)."""
    if not isinstance(raw, dict):
        raise PipelineError("a preset must be a YAML mapping", src)
    allowed = {"model", "lora", "train", "data", "device", "name"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise PipelineError(f"unknown top-level key(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(sorted(allowed))}", src)
    model = raw.get("model") or {}
    if not isinstance(model, dict) or "kind" not in model:
        raise PipelineError("model.kind is required (smollm2-135m, tiny or llama3-8b)", src)
    kind = model["kind"]
    if kind not in MODEL_DIMS:
        raise PipelineError(f"model.kind: {kind!r} is not one of {', '.join(MODEL_DIMS)}", src)
    extra = sorted(set(model) - {"kind", "dims"})
    if extra:
        raise PipelineError(f"model: unknown key(s) {', '.join(extra)}; allowed: kind, dims", src)
    dims = MODEL_DIMS[kind]
    if model.get("dims"):
        if kind != "tiny":
            raise PipelineError(f"model.dims: only the tiny model's shape can be changed, "
                                f"{kind} is fixed by its weights", src)
        dims = dataclasses.replace(dims, **_build(ModelDims, {**dims.as_dict(), **model["dims"]},
                                                  "model.dims", src).as_dict())
    preset = Preset(name=str(raw.get("name", name)), model_kind=kind, dims=dims,
                    lora=_build(LoraSpec, raw.get("lora"), "lora", src),
                    train=_build(TrainSpec, raw.get("train"), "train", src),
                    data=_build(DataSpec, raw.get("data"), "data", src),
                    device=raw.get("device", "cpu"), path=None if src is None else str(src))
    _check(preset, src)
    return preset


def load_preset(path) -> Preset:
    """Load and validate a preset YAML; PipelineError names the file and field on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError("preset file not found", path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        raise PipelineError(f"{line}not valid YAML", path) from None
    return preset_from_dict(raw, name=path.stem, src=path)


def with_overrides(preset: Preset, **train_fields) -> Preset:
    """A copy with some train fields replaced (CLI flags such as --max-steps)."""
    changes = {k: v for k, v in train_fields.items() if v is not None}
    return dataclasses.replace(preset, train=dataclasses.replace(preset.train, **changes))


def with_data(preset: Preset, train_path: str | None) -> Preset:
    if not train_path:
        return preset
    return dataclasses.replace(preset, data=dataclasses.replace(preset.data, train=str(train_path)))
