"""npu-check: MindFormers itself loads and builds the NPU run YAML, on CPU, before NPU hours.

    check_npu_yaml(preset_path) -> {"yaml", "model", "pet_type", "target_modules",
        "trainable_tiny", "trainable", "ratio", "step_loss", "ignored_keys", ...}

The preset is rendered exactly as `npu-commands` renders it (pipeline.npu.write_run_yamls).
Every rendered YAML is loaded with MindFormers' own loader (`MindFormerConfig`, which checks
each section against MindFormers' config templates and raises on a key it does not know).
The 1-card fine-tuning YAML is then built through MindFormers' own builders
(build_parallel_config, build_network with its pet LoRA wrapper, build_lr, build_optim,
build_wrapper) with only the sizes and the device changed (CHANGED lists every such key),
and one training step runs.

Honest limits, stated in the result too:
- the step runs in MindSpore's plain TrainOneStepCell: MindFormers' MFTrainOneStepCell is
  built from the YAML (so its keys are checked) but its loss-scale overflow check uses an
  Ascend-only kernel (NPUGetFloatStatusV2);
- the dataset, callbacks, context and parallel sections are loaded and checked against
  MindFormers' templates but not built (no MindRecord file, no NPU, one device);
- "ignored_keys" are (a) top-level sections MindFormers' template for the run mode does not
  use (MindFormers itself warns "useless for finetune"), and (b) model_config keys whose name
  was never read from the model config while the network was built and stepped (attribute
  reads are recorded by name, so a key counts as read if any config read that name).
"""
from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError

TINY = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "n_kv_heads": 2,
        "intermediate_size": 128, "vocab_size": 256, "seq_length": 16, "batch_size": 2}
# What MindFormers' Llama needs to run on CPU (docs/mindformers_cpu.md) and no base checkpoint.
CPU = {"compute_dtype": "float32", "use_flash_attention": False, "fused_rms_norm": False,
       "use_rope_slice": True, "checkpoint_name_or_path": ""}
CHECKED_YAML = "finetune_1card"
# model_config keys read by the registry ("type") and by build_network itself
# (mindformers/models/build_model.py), not through the model's config object.
BUILDER_READS = ("type", "checkpoint_name_or_path", "pet_config", "quantization_config")
_DIMS = {"hidden_size": "hidden", "num_layers": "layers", "num_heads": "heads",
         "n_kv_heads": "kv_heads", "intermediate_size": "ffn", "vocab_size": "vocab"}


@contextlib.contextmanager
def _record_reads(cls, method: str, names: set):
    """Record every attribute name read through cls.<method> while the block runs."""
    original = getattr(cls, method)

    def recording(self, key, *rest):
        names.add(key)
        return original(self, key, *rest)
    setattr(cls, method, recording)
    try:
        yield
    finally:
        setattr(cls, method, original)


def load_with_mindformers(path: Path):
    """MindFormerConfig(path); PipelineError naming the file and the key MindFormers rejects."""
    from mindformers.tools.register import MindFormerConfig
    try:
        return MindFormerConfig(str(path))
    except (KeyError, TypeError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise PipelineError(f"MindFormers rejects this YAML: {message}", path) from None


def _unused_sections(raw: dict) -> list[str]:
    """Top-level keys MindFormers' config template for the run mode has no place for."""
    from mindformers.tools.register.template import CONFIG_NAME_TO_CLASS, ConfigTemplate
    mode = raw.get("run_mode")
    if mode in ("train", "finetune", "predict_with_train_model"):
        template = ConfigTemplate._train_template(raw.get("do_eval", False))
    elif mode == "predict":
        template = ConfigTemplate._predict_template()
    else:
        template = ConfigTemplate._eval_template()
    general = set(CONFIG_NAME_TO_CLASS["general_config"].keys())
    return [k for k in raw if k not in template and k not in general]


def _targets_of(network) -> list[str]:
    """Dense layers MindFormers' pet wrapper put LoRA on (its own regex matching)."""
    found = []
    for param in network.trainable_params():
        if "mindpet_delta_lora_a" in param.name:
            name = param.name.split(".mindpet_delta_lora_a")[0].rsplit(".", 1)[-1]
            if name not in found:
                found.append(name)
    return found


def _build_and_step(cfg, path: Path) -> dict:
    """Build network, LR, optimizer and wrapper from cfg with MindFormers' builders; one step."""
    import mindspore as ms
    from mindspore import nn
    from mindformers.core import build_lr, build_optim
    from mindformers.core.parallel_config import build_parallel_config
    from mindformers.models import build_network
    from mindformers.wrapper import build_wrapper

    def stage(what, build):
        try:
            return build()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PipelineError(f"MindFormers cannot build {what} from this YAML "
                                f"({type(exc).__name__}: {exc})", path) from None

    ms.set_seed(int(cfg.seed or 0))  # as MindFormers' trainer seeds from the YAML
    build_parallel_config(cfg)
    network = stage("model (with its pet_config)", lambda: build_network(
        cfg.model, default_args={"parallel_config": cfg.parallel_config,
                                 "moe_config": cfg.moe_config,
                                 "dataset_config": cfg.train_dataset}))
    # As MindFormers' trainer does: total_steps -1 means epochs x sink_size in sink mode.
    runner = cfg.runner_config
    if cfg.lr_schedule.total_steps in (None, -1):
        cfg.lr_schedule.total_steps = int(runner.epochs * (runner.sink_size if runner.sink_mode else 1))
    lr = stage("lr_schedule", lambda: build_lr(cfg.lr_schedule))
    params = network.trainable_params()
    optimizer = stage("optimizer", lambda: build_optim(
        cfg.optimizer, default_args={"params": params, "learning_rate": lr}))
    wrapper = stage("runner_wrapper", lambda: build_wrapper(
        cfg.runner_wrapper, default_args={"network": network, "optimizer": optimizer,
                                          "parallel_config": cfg.parallel_config}))
    mc = cfg.model.model_config
    rng = np.random.default_rng(0)
    shape = (mc.batch_size, mc.seq_length + 1)
    ids = ms.Tensor(rng.integers(3, mc.vocab_size, size=shape).astype(np.int32))
    step = nn.TrainOneStepCell(network, optimizer)
    step.set_train(True)
    loss = float(np.asarray(step(ids, ids).asnumpy()).reshape(-1)[0])
    if not np.isfinite(loss):
        raise PipelineError(f"the training step gave a non-finite loss ({loss})", path)
    return {"network": network, "optimizer": type(optimizer).__name__,
            "wrapper": type(wrapper).__name__, "loss": loss}


def _first_adapted_layer(patterns, layers: int, path: Path) -> int:
    """The first layer pet's exclude_layers leaves LoRA on, matched as MindFormers matches it
    (re_match_list on each layer's index), refusing a list that is not a prefix 0..k-1: the
    trainable count below assumes one."""
    if not patterns:
        return 0
    from mindformers.pet.utils import re_match_list
    try:
        excluded = [i for i in range(layers) if re_match_list(str(i), patterns)]
    except (TypeError, re.error) as exc:
        raise PipelineError(f"pet_config.exclude_layers {patterns!r}: {exc}", path) from None
    if excluded != list(range(len(excluded))) or len(excluded) == layers:
        raise PipelineError(f"pet_config.exclude_layers {patterns!r} excludes layers {excluded} "
                            f"of {layers}: expected the first k layers, k < {layers}", path)
    return len(excluded)


def check_npu_yaml(preset_path) -> dict:
    """Render, load with MindFormerConfig, build tiny on CPU, step once; see the module doc.

    Raises PipelineError naming the rendered YAML and the key for a key MindFormers rejects,
    a builder failure, a LoRA whose tiny trainable count disagrees with the analytic one,
    or a non-finite loss.
    """
    import yaml
    from pipeline import contest
    from pipeline.model.build import setup_context
    from pipeline.model.params import ModelDims, excluded_layers, lora_trainable_for
    from pipeline.model.presets import load_preset
    from pipeline.npu import YAML_NAMES, write_run_yamls

    preset = load_preset(preset_path)
    setup_context()  # GRAPH_MODE on CPU; also quiets MindFormers' per-layer INFO lines
    with tempfile.TemporaryDirectory(prefix="npu-check-") as tmp:
        paths = write_run_yamls(preset, tmp)
        configs = {kind: load_with_mindformers(path) for kind, path in paths.items()}
        path = paths[CHECKED_YAML]
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg = configs[CHECKED_YAML]
    mc = cfg.model.model_config
    real = {k: mc[k] for k in _DIMS}
    pet = {k: raw["model"]["model_config"]["pet_config"].get(k)
           for k in ("pet_type", "lora_rank", "target_modules", "exclude_layers")}
    first_layer = _first_adapted_layer(pet["exclude_layers"], int(real["num_layers"]), path)
    changed = {}
    if first_layer:
        # the tiny model has 2 layers: pet's exclusion is checked there as "LoRA on layer 1 only"
        tiny_exclude = excluded_layers(1)
        changed["model.model_config.pet_config.exclude_layers"] = [pet["exclude_layers"], tiny_exclude]
        mc.pet_config.exclude_layers = tiny_exclude
    for key, value in {**TINY, **CPU}.items():
        changed[f"model.model_config.{key}"] = [mc.get(key), value]
        mc[key] = value
    changed["context.device_target"] = [cfg.context.device_target, "CPU"]
    cfg.context.device_target = "CPU"
    changed["runner_config.batch_size"] = [cfg.runner_config.batch_size, TINY["batch_size"]]
    cfg.runner_config.batch_size = TINY["batch_size"]

    from mindformers.models.configuration_utils import PretrainedConfig
    read: set[str] = set(BUILDER_READS)
    with _record_reads(PretrainedConfig, "__getattribute__", read):
        built = _build_and_step(cfg, path)
    network = built["network"]
    targets = _targets_of(network)
    trainable_tiny = int(sum(int(np.prod(p.shape)) for p in network.trainable_params()))

    def dims(d):
        return ModelDims(**{ours: int(d[key]) for key, ours in _DIMS.items()})
    if not targets:
        raise PipelineError(f"pet_config.target_modules {pet['target_modules']!r} matches no layer", path)
    expected_tiny = lora_trainable_for(dims(TINY), int(pet["lora_rank"]), targets, 1 if first_layer else 0)
    if trainable_tiny != expected_tiny:
        raise PipelineError(f"MindFormers' LoRA has {trainable_tiny} trainable parameters at tiny "
                            f"dims, the formula says {expected_tiny}", path)
    trainable = lora_trainable_for(dims(real), int(pet["lora_rank"]), targets, first_layer)
    ignored = _unused_sections(raw)
    ignored += [f"model.model_config.{k}" for k in raw["model"]["model_config"] if k not in read]
    return {"yaml": YAML_NAMES[CHECKED_YAML], "checked_yaml": sorted(YAML_NAMES.values()),
            "model": raw["model"]["arch"]["type"], "pet_type": pet["pet_type"],
            "target_modules": pet["target_modules"], "lora_on": targets, "rank": int(pet["lora_rank"]),
            "first_layer": first_layer,
            "trainable_tiny": trainable_tiny, "trainable": trainable,
            "ratio": contest.trainable_ratio(trainable, contest.LLAMA3_8B_TOTAL_PARAMS),
            "step_loss": built["loss"], "optimizer": built["optimizer"],
            "runner_wrapper": built["wrapper"], "step_cell": "TrainOneStepCell",
            "tiny_dims": TINY, "changed_keys": changed, "ignored_keys": ignored}
