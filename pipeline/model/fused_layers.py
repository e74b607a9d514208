"""MindFormers' decoder layers with their small ops fused, for training on CPU.

MindSpore's CPU wheel has no graph-kernel fusion, so a Llama layer's RMSNorm (6 kernels
forward, ~10 backward), rotary embedding with its transposes and key/value repeats (~20
and ~25) and SiLU gate (3 and ~7) run as separate kernels: ~1,900 of the ~6,100 in a 2-row
pass of the default preset, each with its launch and its own trip through memory.
`fuse_layers(model, library)` turns, in place, every

    LlamaRMSNorm       into FusedRMSNorm       one RmsNorm op (its backward one RmsNormGrad)
    LlamaFeedForward   into FusedFeedForward   silu(w1 x) * (w3 x) as one SiluMul op
    LLamaAttention     into FusedAttention     q and k rotated, transposed to heads-first and
                                               (k) repeated for grouped heads in one op each;
                                               v transposed and repeated in one; the scores'
                                               scale, mask and softmax in one

using pipeline/kernels/train_fused.cc. Parameters, names, LoRA layers (wq, w1, ... stay
mindpet's) and checkpoints are unchanged; the results are the same up to float rounding
(tests/integration/test_train_tiny.py compares losses and gradients with MindFormers'
layers). A layer whose configuration takes a path these classes do not implement (flash
attention, use_past, concatenated qkv, context parallel, fused SwiGLU) is left as it is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from mindformers.models.llama.llama_layer import LlamaFeedForward, LlamaRMSNorm, LlamaSiLU
from mindformers.models.llama.llama_transformer import LLamaAttention

from pipeline.kernels.train_ops import TrainOps


class FusedRMSNorm(LlamaRMSNorm):
    def construct(self, x):
        return self.fused_norm(x, self.weight, self.fused_eps)


class FusedFeedForward(LlamaFeedForward):
    """w1 without its own activation (fuse_layers turns it off): SiluMul applies it."""

    def construct(self, x):
        x = self.cast(x, self.dtype)
        return self.w2(self.fused_silu_mul(self.w1(x), self.w3(x)))


class FusedAttention(LLamaAttention):
    """The no-cache, no-flash-attention path of LLamaAttention.construct (training on CPU)."""

    def construct(self, x, freqs_cis, mask=None, batch_valid_length=None, block_tables=None,
                  slot_mapping=None, prefix_keys_values=None, q_seq_lens=None, kv_mask=None,
                  seq_chunk=None, actual_seq_len=None):
        ori_dtype = x.dtype
        bs, seq_len, _ = self.shape(x)
        query = self.cast(self.wq(x), self.dtype)
        key = self.cast(self.wk(x), self.dtype)
        value = self.cast(self.wv(x), self.dtype)
        freqs_cos, freqs_sin, _ = freqs_cis
        query = self.fused_rope_q(self.reshape(query, (bs, seq_len, self.n_head, self.head_dim)),
                                  freqs_cos, freqs_sin)
        key = self.fused_rope_k(self.reshape(key, (bs, seq_len, self.n_kv_head, self.head_dim)),
                                freqs_cos, freqs_sin)
        value = self.fused_repeat_v(self.reshape(value, (bs, seq_len, self.n_kv_head, self.head_dim)))
        context_layer = self._attn(query, key, value, mask)
        return self.cast(self.wo(context_layer), ori_dtype)

    def _attn(self, query, key, value, mask):
        score = self.batch_matmul_q_k(query, key)
        probs = self.fused_softmax(score, mask, self.fused_scale)
        return self._merge_heads(self.batch_matmul(probs, value))


def _float32(*dtypes) -> bool:
    import mindspore as ms
    return all(d == ms.float32 for d in dtypes)


def _norm_ok(cell) -> bool:
    return getattr(cell, "self_define", False) and _float32(cell.compute_type)


def _ffn_ok(cell) -> bool:
    """w1 applies SiLU itself (MindFormers' Linear or mindpet's LoRADense, activation_flag),
    w3 applies nothing."""
    w1, w3 = getattr(cell, "w1", None), getattr(cell, "w3", None)
    return (not cell.ffn_concat and not cell.use_fused_swiglu and _float32(cell.dtype)
            and getattr(w1, "activation_flag", False) and isinstance(w1.activation, LlamaSiLU)
            and getattr(w3, "activation_flag", True) is False)


def _attention_ok(cell) -> bool:
    rotary = getattr(cell, "apply_rotary_emb", None)
    return (not cell.qkv_concat and not cell.use_past and not cell.use_flash_attention
            and not cell.rmsnorm_compute_2d and cell.context_parallel <= 1 and not cell.seq_pipe
            and getattr(cell, "input_layout", None) != "TND" and rotary is not None and rotary.use_rope_slice
            and _float32(cell.dtype, rotary.dtype, cell.softmax_dtype) and cell.head_dim % 2 == 0)


def fuse_layers(model, library: Path) -> dict[str, int]:
    """Swap `model`'s norms, feed-forwards and attentions for the fused classes in place
    (the same objects, parameters and names); returns how many of each were swapped."""
    import mindspore as ms
    ops = TrainOps(library)
    swapped = {"norm": 0, "feed_forward": 0, "attention": 0}
    for _, cell in model.cells_and_names():
        kind = type(cell)
        if kind is LlamaRMSNorm and _norm_ok(cell):
            cell.fused_norm = ops.rms_norm
            cell.fused_eps = ms.Tensor(np.array([cell.eps], np.float32))
            object.__setattr__(cell, "__class__", FusedRMSNorm)
            swapped["norm"] += 1
        elif kind is LlamaFeedForward and _ffn_ok(cell):
            cell.fused_silu_mul = ops.silu_mul
            cell.w1.activation_flag = False
            object.__setattr__(cell, "__class__", FusedFeedForward)
            swapped["feed_forward"] += 1
        elif kind is LLamaAttention and _attention_ok(cell):
            cell.fused_rope_q = ops.heads_op(cell.n_head, cell.n_head, rotary=True)
            cell.fused_rope_k = ops.heads_op(cell.n_kv_head, cell.n_head, rotary=True)
            cell.fused_repeat_v = ops.heads_op(cell.n_kv_head, cell.n_head, rotary=False)
            cell.fused_softmax = ops.softmax
            cell.fused_scale = ms.Tensor(np.array([float(cell.inv_norm_factor.asnumpy())], np.float32))
            object.__setattr__(cell, "__class__", FusedAttention)
            swapped["attention"] += 1
    return swapped


def layers_in(model) -> str:
    """"fused" when fuse_layers swapped any of `model`'s layers, else "mindformers"."""
    fused = (FusedRMSNorm, FusedFeedForward, FusedAttention)
    return "fused" if any(isinstance(c, fused) for _, c in model.cells_and_names()) else "mindformers"
