"""Presets -> MindFormers LlamaForCausalLM (+ LoRA via mindformers.pet), and plain weights.

    build_model(preset, adapter_path=None, for_training=False, seq_length=None, batch_size=None)
        -> LlamaForCausalLM, or PetModel wrapping it when LoRA is applied
    model_weights(preset, adapter_path=None) -> (dict[str, np.ndarray], ModelDims)
        base weights with the LoRA delta merged (W + B @ A * alpha / rank), MindFormers
        names, no MindSpore graph
    save_adapter / load_adapter: adapter-only checkpoints (LoRA A/B only) + a JSON sidecar

Everything is float32 with the only flags MindFormers' Llama runs with on CPU
(GRAPH_MODE, fused_rms_norm=False, use_flash_attention=False, use_rope_slice=True).
Weights: smollm2-135m from the cached GGUF conversion (pipeline.model.gguf); tiny is
random with a fixed seed, so the same base comes back in every process.
llama3-8b is built only on an NPU through MindFormers' own launcher (pipeline.npu).
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.fileio import atomic_write
from pipeline.model.params import ModelDims, excluded_layers, target_regex

log = logging.getLogger(__name__)
from pipeline.model.tokenizer import BOS_ID, EOS_ID, PAD_ID, TokenIds, cache_dir

TINY_BASE_SEED = 1234  # tiny's base weights never depend on the training seed
_LORA_KEY = re.compile(r"^(?P<base>.+)\.mindpet_delta_lora_(?P<ab>[ab])$")


# ---------------------------------------------------------------- context
def setup_context(cache_key: dict | str | None = None) -> None:
    """GRAPH_MODE on CPU, with MindSpore's compile cache when `cache_key` is given.

    The cache makes a rerun of the same graph skip most of its 20-90 s compile. It must
    be keyed on everything that shapes the graph (model, LoRA, batch, width, LR table
    length): MindSpore reuses a cached graph for different parameter shapes and then
    fails (measured: an LR table of 8 steps ran a graph compiled for 6). So each key
    gets its own folder. $PIPELINE_NO_COMPILE_CACHE=1 turns it off.
    """
    import hashlib
    import logging
    import mindspore as ms
    # MindFormers logs every layer it builds at INFO on stdout; keep the console for the
    # progress bar (warnings still show).
    logging.getLogger("mindformers").setLevel(logging.WARNING)
    # Off unless asked for: a cached train graph was handed back for an eval graph of the
    # same model (measured), so only keyed training graphs use it.
    kwargs = {"mode": ms.GRAPH_MODE, "device_target": "CPU", "enable_compile_cache": False}
    if cache_key is not None and os.environ.get("PIPELINE_NO_COMPILE_CACHE") != "1":
        # Our cells' source is part of the key: MindSpore hands back a graph compiled from
        # an earlier version of a cell whose source has changed (measured).
        here = Path(__file__).resolve().parent.parent
        sources = [(here / f).read_bytes()
                   for f in ("train.py", "train_step.py", "model/build.py", "model/lora_dense.py",
                             "model/fused_layers.py", "kernels/train_ops.py", "kernels/train_fused.cc")]
        key = json.dumps([cache_key, ms.__version__, [hashlib.sha256(b).hexdigest() for b in sources]],
                         sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        path = cache_dir() / "ms_compile_cache" / digest
        path.mkdir(parents=True, exist_ok=True)
        kwargs.update(enable_compile_cache=True, compile_cache_path=str(path))
    ms.set_context(**kwargs)


# ---------------------------------------------------------------- configs
def llama_config(preset, seq_length: int | None = None, batch_size: int | None = None):
    """MindFormers LlamaConfig for a preset, float32 with the CPU-safe flags.

    pad_token_id is 0, not the GGUF's 2: MindFormers masks keys equal to the pad id,
    and 2 is <|im_end|>, present in every chat-formatted row.
    """
    from mindformers import LlamaConfig
    d = preset.dims
    f32 = "float32"
    return LlamaConfig(
        batch_size=batch_size or preset.train.batch_size,
        seq_length=seq_length or preset.train.seq_length,
        hidden_size=d.hidden, num_layers=d.layers, num_heads=d.heads, n_kv_heads=d.kv_heads,
        intermediate_size=d.ffn, vocab_size=d.vocab, rms_norm_eps=d.eps, theta=d.rope_theta,
        tie_word_embeddings=d.tie_embeddings,
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, ignore_token_id=-100,
        compute_dtype=f32, param_init_type=f32, layernorm_compute_type=f32,
        softmax_compute_type=f32, rotary_dtype=f32, embedding_init_type=f32,
        fused_rms_norm=False, use_flash_attention=False, use_rope_slice=True, use_past=False,
        do_sample=False, checkpoint_name_or_path="")


def dims_from_llama_config(config) -> tuple[ModelDims, TokenIds]:
    """The shape and special ids of a MindFormers LlamaConfig (llama_config's inverse), to
    mirror a built model in pipeline.decode."""
    dims = ModelDims(
        hidden=config.hidden_size, layers=config.num_layers, heads=config.num_heads,
        kv_heads=config.n_kv_heads or config.num_heads, ffn=config.intermediate_size,
        vocab=config.vocab_size, eps=config.rms_norm_eps, rope_theta=config.theta,
        tie_embeddings=bool(getattr(config, "tie_word_embeddings", False)))
    return dims, TokenIds(pad=config.pad_token_id, bos=config.bos_token_id,
                          eos=config.eos_token_id)


def lora_config(preset):
    """mindformers.pet LoraConfig from the preset's LoRA block (targets -> '.*wq|.*wv')."""
    from mindformers.pet import LoraConfig
    lora = preset.lora
    return LoraConfig(lora_rank=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=target_regex(lora.targets),
                      exclude_layers=excluded_layers(lora.first_layer))


# ---------------------------------------------------------------- weights
def tiny_weights(dims: ModelDims, seed: int = TINY_BASE_SEED) -> dict[str, np.ndarray]:
    """Seeded random base weights for the tiny model (N(0, 0.02), norms 1)."""
    rng = np.random.default_rng(seed)
    kv = dims.kv_heads * dims.head_dim

    def normal(*shape):
        return rng.normal(0.0, 0.02, size=shape).astype(np.float32)
    w = {"model.tok_embeddings.embedding_weight": normal(dims.vocab, dims.hidden),
         "model.norm_out.weight": np.ones(dims.hidden, np.float32)}
    for i in range(dims.layers):
        p = f"model.layers.{i}."
        w.update({p + "attention.wq.weight": normal(dims.hidden, dims.hidden),
                  p + "attention.wk.weight": normal(kv, dims.hidden),
                  p + "attention.wv.weight": normal(kv, dims.hidden),
                  p + "attention.wo.weight": normal(dims.hidden, dims.hidden),
                  p + "feed_forward.w1.weight": normal(dims.ffn, dims.hidden),
                  p + "feed_forward.w2.weight": normal(dims.hidden, dims.ffn),
                  p + "feed_forward.w3.weight": normal(dims.ffn, dims.hidden),
                  p + "attention_norm.weight": np.ones(dims.hidden, np.float32),
                  p + "ffn_norm.weight": np.ones(dims.hidden, np.float32)})
    if not dims.tie_embeddings:
        w["lm_head.weight"] = normal(dims.vocab, dims.hidden)
    return w


def base_weights(preset) -> dict[str, np.ndarray]:
    """Float32 base weights keyed by MindFormers names (tied models carry no lm_head)."""
    if preset.model_kind == "smollm2-135m":
        from pipeline.model.gguf import load_converted
        weights, dims = load_converted()
        for key in ("hidden", "layers", "heads", "kv_heads", "ffn", "vocab"):
            if getattr(dims, key) != getattr(preset.dims, key):
                raise PipelineError(f"converted SmolLM2 has {key}={getattr(dims, key)}, preset says "
                                    f"{getattr(preset.dims, key)}; rerun `python -m pipeline convert --force`")
        return weights
    if preset.model_kind == "tiny":
        return tiny_weights(preset.dims)
    raise PipelineError(f"{preset.model_kind} weights are not available on CPU; "
                        "use `python -m pipeline npu-commands` on an Ascend machine")


# ---------------------------------------------------------------- adapters
def is_lora_name(name: str) -> bool:
    return "mindpet_delta_lora_" in name


def save_adapter(model, path: Path, lora, step: int) -> Path:
    """Write only the LoRA A/B parameters to `path` (.ckpt) plus `path`.json with the LoRA spec.

    Written via a temp file and rename so a kill never leaves a torn checkpoint.
    """
    import mindspore as ms
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [{"name": p.name, "data": p} for p in model.get_parameters() if is_lora_name(p.name)]
    if not params:
        raise PipelineError("the model has no LoRA parameters to save")
    # a unique temp name: two writers of the same run (a job and a manual train) never share one
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.ckpt", dir=path.parent)
    os.close(fd)
    try:
        ms.save_checkpoint(params, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    side = {"rank": lora.rank, "alpha": lora.alpha, "dropout": lora.dropout,
            "targets": list(lora.targets), "first_layer": lora.first_layer, "step": step}
    atomic_write(path.with_suffix(".json"), json.dumps(side, indent=2))
    return path


def load_adapter(path) -> tuple[dict[str, np.ndarray], dict | None]:
    """(LoRA arrays by MindFormers name, sidecar spec or None). Fails on a non-adapter file."""
    import mindspore as ms
    path = Path(path)
    if not path.is_file():
        raise PipelineError("adapter checkpoint not found", path)
    try:
        raw = ms.load_checkpoint(str(path))
    except Exception as exc:  # MindSpore raises ValueError/RuntimeError on a bad file
        raise PipelineError(f"not a MindSpore checkpoint ({exc.__class__.__name__})", path) from None
    arrays = {k: v.asnumpy() for k, v in raw.items() if is_lora_name(k)}
    if not arrays:
        raise PipelineError("checkpoint holds no LoRA (mindpet_delta_lora_*) parameters", path)
    side_path = path.with_suffix(".json")
    side = json.loads(side_path.read_text()) if side_path.is_file() else None
    return arrays, side


def merge_lora(weights: dict[str, np.ndarray], adapter: dict[str, np.ndarray],
               scaling: float) -> dict[str, np.ndarray]:
    """W' = W + (B @ A) * scaling for every adapted layer; returns a new dict."""
    out = dict(weights)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, arr in adapter.items():
        m = _LORA_KEY.match(name)
        if not m:
            raise PipelineError(f"unexpected adapter parameter {name!r}")
        pairs.setdefault(m["base"] + ".weight", {})[m["ab"]] = arr
    for wname, ab in pairs.items():
        if wname not in out or set(ab) != {"a", "b"}:
            raise PipelineError(f"adapter does not fit the model at {wname}")
        delta = (ab["b"].astype(np.float32) @ ab["a"].astype(np.float32)) * np.float32(scaling)
        if delta.shape != out[wname].shape:
            raise PipelineError(f"adapter shape {delta.shape} != weight {out[wname].shape} at {wname}")
        out[wname] = out[wname] + delta
    return out


def model_weights(preset, adapter_path=None) -> tuple[dict[str, np.ndarray], ModelDims]:
    """Base weights with the adapter merged, plus the model's shape; cheap (no graph compile).

    The LoRA scale comes from the adapter's sidecar JSON when present, else the preset.
    """
    weights = base_weights(preset)
    if adapter_path:
        adapter, side = load_adapter(adapter_path)
        rank = (side or {}).get("rank", preset.lora.rank)
        alpha = (side or {}).get("alpha", preset.lora.alpha)
        weights = merge_lora(weights, adapter, alpha / rank)
    return weights, preset.dims


# ---------------------------------------------------------------- model
def build_model(preset, adapter_path=None, for_training: bool = False,
                seq_length: int | None = None, batch_size: int | None = None,
                recompute: bool = False, lora_scale_on_b: bool = True, fused_layers: bool = True):
    """MindFormers LlamaForCausalLM with real (smollm2) or seeded (tiny) weights.

    LoRA (mindformers.pet, base frozen) is applied when for_training or an adapter is
    given; the adapter's A/B are loaded into it. Returns the network in train or eval
    mode accordingly. Call after setup_context(); seeds MindSpore with preset.train.seed
    so LoRA's A init is reproducible. recompute=True recomputes each decoder layer in the
    backward pass (gradient checkpointing: less activation memory, more compute).
    lora_scale_on_b (default) scales LoRA's B instead of its output (pipeline.model.lora_dense:
    the same result, two multiplies over [tokens, out] fewer per layer); False keeps
    mindpet's own LoRADense forward. fused_layers (default) trains with the norms, rotary
    embedding and SiLU gate fused (pipeline.model.fused_layers: the same up to float
    rounding, ~1,600 fewer kernels a pass) where train_fused.cc compiles and
    $PIPELINE_TRAIN_KERNELS is not "mindspore"; False keeps MindFormers' layers.
    """
    import mindspore as ms
    from mindformers import LlamaForCausalLM

    ms.set_seed(preset.train.seed)
    model = LlamaForCausalLM(llama_config(preset, seq_length, batch_size))
    _load_into(model, base_weights(preset), "base weights")
    if for_training or adapter_path:
        from mindformers.pet import get_pet_model
        model = get_pet_model(model, lora_config(preset))
        if lora_scale_on_b:
            from pipeline.model.lora_dense import scale_on_b
            scale_on_b(model)
        if for_training and fused_layers:
            _fuse(model)
        if adapter_path:
            adapter, _ = load_adapter(adapter_path)
            _load_into(model, adapter, f"adapter {adapter_path}", subset=True)
    if recompute:
        for layer in llama_of(model).model.layers:
            layer.recompute()
    model.set_train(for_training)
    return model


def _fuse(model) -> None:
    from pipeline import kernels
    from pipeline.kernels.train_ops import fused_train_library
    library = fused_train_library()
    if library is None:
        log.warning("training with MindFormers' own layers: %s", kernels.last_error)
        return
    from pipeline.model.fused_layers import fuse_layers
    fuse_layers(model, library)


def llama_of(model):
    """The LlamaForCausalLM inside a PetModel (PetModel.network = LoraModel, whose .network
    is the base model with its layers swapped for LoRA ones), or the model itself."""
    while not hasattr(model, "lm_head") and hasattr(model, "network"):
        model = model.network
    return model


def _load_into(model, arrays: dict[str, np.ndarray], what: str, subset: bool = False) -> None:
    import mindspore as ms
    own = {p.name: p for p in model.get_parameters()}
    missing = [k for k in arrays if k not in own]
    if missing:
        raise PipelineError(f"{what}: {len(missing)} name(s) not in the model, e.g. {missing[0]}")
    for name, arr in arrays.items():
        if tuple(own[name].shape) != arr.shape:
            raise PipelineError(f"{what}: {name} has shape {arr.shape}, model wants {tuple(own[name].shape)}")
    if not subset:
        unset = [k for k in own if k not in arrays and not is_lora_name(k)]
        if unset:
            raise PipelineError(f"{what}: {len(unset)} model weight(s) not provided, e.g. {unset[0]}")
    for name, arr in arrays.items():
        own[name].set_data(ms.Tensor(arr, ms.float32))


def trainable_count(model) -> int:
    """Measured trainable parameters of a built model."""
    return int(sum(int(np.prod(p.shape)) for p in model.trainable_params()))
