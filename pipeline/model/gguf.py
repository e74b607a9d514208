"""SmolLM2 GGUF -> MindFormers Llama weights (float32 numpy, MindFormers names).

llama.cpp stores the model quantised (Q4_1 / Q8_0) and with the Q and K rows of
every layer permuted for its interleaved RoPE; MindFormers (like HF) rotates
halves, so we dequantise with `gguf` and undo that permutation. The result is
cached as an uncompressed .npz (538 MB, outside git) so later loads take a
second and need no MindSpore.

    convert_gguf(gguf_path) -> (weights, meta)   pure conversion; meta is model.json's content
    ensure_converted() -> Path                   cached smollm2-135m/model.npz
    load_converted() -> (weights, ModelDims)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.fileio import atomic_write
from pipeline.model.params import ModelDims
from pipeline.model.tokenizer import cache_dir, smollm2_gguf_path

CONVERTED_NAME = "model.npz"
META_NAME = "model.json"
FORMAT_VERSION = 1

# GGUF per-layer tensor -> MindFormers per-layer parameter.
_LAYER_NAMES = {
    "attn_q": "attention.wq.weight", "attn_k": "attention.wk.weight",
    "attn_v": "attention.wv.weight", "attn_output": "attention.wo.weight",
    "ffn_gate": "feed_forward.w1.weight", "ffn_down": "feed_forward.w2.weight",
    "ffn_up": "feed_forward.w3.weight",
    "attn_norm": "attention_norm.weight", "ffn_norm": "ffn_norm.weight",
}
_GLOBAL_NAMES = {"token_embd.weight": "model.tok_embeddings.embedding_weight",
                 "output_norm.weight": "model.norm_out.weight",
                 "output.weight": "lm_head.weight"}


def mindformers_name(gguf_name: str) -> str:
    """'blk.3.attn_q.weight' -> 'model.layers.3.attention.wq.weight'."""
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in _LAYER_NAMES and parts[3] == "weight":
        return f"model.layers.{int(parts[1])}.{_LAYER_NAMES[parts[2]]}"
    raise PipelineError(f"unexpected GGUF tensor {gguf_name!r}")


def unpermute_rope_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's convert permutation of Q/K rows.

    llama.cpp: w.reshape(h, 2, d/2, in).swapaxes(1, 2) (halves -> interleaved pairs);
    here:      w.reshape(h, d/2, 2, in).swapaxes(1, 2) (pairs -> halves).
    """
    rows = w.shape[0]
    head_dim = rows // n_heads
    return (w.reshape(n_heads, head_dim // 2, 2, *w.shape[1:])
             .swapaxes(1, 2).reshape(w.shape))


def read_meta(reader) -> ModelDims:
    """Model shape from the GGUF metadata (llama.* keys)."""
    f = reader.fields

    def val(key):
        if key not in f:
            raise PipelineError(f"GGUF metadata lacks {key}")
        return f[key].contents()
    has_output = any(t.name == "output.weight" for t in reader.tensors)
    return ModelDims(
        hidden=int(val("llama.embedding_length")), layers=int(val("llama.block_count")),
        heads=int(val("llama.attention.head_count")),
        kv_heads=int(val("llama.attention.head_count_kv")),
        ffn=int(val("llama.feed_forward_length")),
        vocab=int(val("llama.vocab_size")) if "llama.vocab_size" in f
        else len(val("tokenizer.ggml.tokens")),
        eps=float(val("llama.attention.layer_norm_rms_epsilon")),
        rope_theta=float(val("llama.rope.freq_base")),
        tie_embeddings=not has_output)


def convert_gguf(gguf_path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Dequantise every tensor to float32, undo the Q/K permutation, rename.

    Returns (weights keyed by MindFormers names, meta: the shape's fields plus format,
    source and tensor count, as model.json stores them). Fails on an unknown tensor.
    """
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(gguf_path))
    dims = read_meta(reader)
    weights = {}
    for tensor in reader.tensors:
        arr = np.ascontiguousarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        kind = tensor.name.split(".")[2] if tensor.name.startswith("blk.") else None
        if kind == "attn_q":
            arr = unpermute_rope_rows(arr, dims.heads)
        elif kind == "attn_k":
            arr = unpermute_rope_rows(arr, dims.kv_heads)
        weights[mindformers_name(tensor.name)] = arr
    meta = {**dims.as_dict(), "format": FORMAT_VERSION, "source": gguf_path.name,
            "tensors": len(weights)}
    return weights, meta


def converted_dir() -> Path:
    return cache_dir() / "smollm2-135m"


def ensure_converted(force: bool = False) -> Path:
    """Convert the packaged GGUF once into the cache; return the .npz path."""
    out = converted_dir() / CONVERTED_NAME
    meta_path = converted_dir() / META_NAME
    if out.is_file() and meta_path.is_file() and not force:
        if json.loads(meta_path.read_text()).get("format") == FORMAT_VERSION:
            return out
    weights, meta = convert_gguf(smollm2_gguf_path())
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda fh: np.savez(fh, **weights))   # unique temp name, then rename
    atomic_write(meta_path, json.dumps(meta, indent=2))
    return out


def load_converted() -> tuple[dict[str, np.ndarray], ModelDims]:
    """(weights, shape) of SmolLM2-135M, converting on first use (~20 s)."""
    path = ensure_converted()
    dims = ModelDims.from_dict(json.loads((path.parent / META_NAME).read_text()),
                               path.parent / META_NAME)
    with np.load(path) as npz:
        weights = {k: npz[k] for k in npz.files}
    return weights, dims
