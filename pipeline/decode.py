"""Batched greedy decoding for a MindFormers Llama on CPU, with our own key/value cache.

Why our own: MindFormers' ``generate()`` needs the ArgMaxExt kernel and its ``use_past`` cache
needs ApplyRotaryPosEmb / ReshapeAndCache / PagedAttention, none of which exist on CPU
(docs/mindformers_cpu.md). Without a cache every new token re-reads the whole prefix.

The network here is the MindFormers legacy Llama forward (models/llama/) rebuilt from its own
weights with plain MindSpore ops: RMSNorm, rotate-half RoPE, grouped-query attention with an
additive -10000 mask, SiLU-gated MLP, tied or separate output head (RMSNorm weights and the
attention scale folded into the next matmul: same values up to float rounding, fewer kernels).
Greedy tokens match MindFormers' full-recompute forward and transformers' generate() on the
same GGUF (tests/integration/test_decode.py, bench/bench_decode.py). Two small graph-mode
cells (pipeline.decode_cell) serve prefill and decode: a group of LAYERS_PER_GRAPH layers run
once per group with that group's weights as arguments, and the head; their shapes are
static. The token embedding is a NumPy row lookup. The weight matmuls run on
pipeline.kernels' packed kernel where it can be built (weights stored in its column blocks,
read up to twice as fast as MindSpore's CPU MatMul reads them), else on MindSpore's MatMul:
``GreedyDecoder.kernel`` says which. The prompt is prefilled in fixed chunks of ``bucket``
tokens, and the attention span is rounded to SPAN_STEP slots, so a span needs two shapes (a chunk and
a one-token step). Why: MindSpore on CPU keeps every compiled graph's buffers alive while its
cell lives. One prefill graph per prompt length took a 100-item SQuAD run past 23 GB; one
30-layer graph per span still peaked at 9.5 GB and compiled for ~36 s. Ten-layer groups,
kept for one span at a time, peak at 1.76 GB and compile in ~4 s (bench/bench_decode.py); five
peaked at 1.55 GB but launched twice the graphs a token (10-20% slower at batch 1), fifteen
peaked at 1.97 GB, against the 2 GB a SQuAD batch may take.

Layout. Prompts are left-padded to a bucket length P, so every row writes its next key/value
into the same cache slot; each row's RoPE positions start at 0 on its first real token, so a
row decodes exactly as it would alone. The cache is a Tensor per layer of shape
[batch, kv_heads, max_len, head_dim], updated in place with ScatterNdUpdate; attention reads
only the first `span` slots a batch can fill (its padded prompt + max_new_tokens, rounded
up to SPAN_STEP).

Entry point: ``GreedyDecoder(weights, dims).generate(prompt_ids, max_new_tokens=...)``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from pipeline.errors import PipelineError
from pipeline.kernels import BLOCK, pack
from pipeline.model.params import ModelDims
from pipeline.model.tokenizer import TokenIds

MASK_VALUE = -10000.0   # what MindFormers' LowerTriangularMaskWithDynamic adds to masked scores
DEFAULT_BUCKET = 32     # prefill chunk: prompt lengths are rounded up to a multiple of this
SPAN_STEP = 256         # attention spans are rounded up to this, so few graphs are needed
LAYERS_PER_GRAPH = 10   # layers one compiled group graph runs (pipeline.decode_cell)
_RUNNING = -1.0         # Generation.seconds of a row still decoding


@dataclass
class Generation:
    """One finished row: the new token ids (stop token excluded), why it stopped, and the
    wall seconds from its batch's start until it stopped (graph compile time excluded)."""
    tokens: list[int]
    stop_reason: str   # "eos" (a stop id was produced) or "length" (max_new_tokens reached)
    seconds: float


def weights_from_model(model) -> dict[str, np.ndarray]:
    """{MindFormers parameter name: float32 array} of a built LlamaForCausalLM (no LoRA)."""
    return {name: p.asnumpy().astype(np.float32) for name, p in model.parameters_and_names()}


def _weight(weights, name: str, consume: bool = False) -> np.ndarray:
    try:
        array = weights.pop(name) if consume else weights[name]
        return np.ascontiguousarray(np.asarray(array, dtype=np.float32))
    except KeyError:
        raise PipelineError(f"weights have no tensor {name!r} (expected MindFormers names, "
                            "LoRA merged)") from None


def rope_tables(cfg: ModelDims, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin [max_len, head_dim] exactly as MindFormers' FreqsMgr builds them (float32)."""
    hd = cfg.head_dim
    base = np.arange(0, hd, 2)[: hd // 2].astype(np.float32)
    freqs = 1.0 / (cfg.rope_theta ** (base / hd))
    t = np.arange(0, max_len, 1).astype(np.float32)
    emb = np.concatenate([np.outer(t, freqs)] * 2, axis=-1)
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)


@dataclass
class FoldedWeights:
    """The decoder's weights, laid out for few kernels per layer (float32, [in, out]).

    Kernel count matters more than FLOPs at small batch on CPU, so the RMSNorm weights and
    the 1/sqrt(head_dim) attention scale are folded into the following matmul weights (same
    values up to float rounding), q/k/v are one matrix, w1/w3 one, and RoPE's rotate_half is
    one exact matmul (``rotate`` holds 0/+-1). ``head`` is None for tied embeddings: the head
    reads the embedding table itself (no second copy). ``packed``: the matmul weights (and the
    head's table, the tied embedding included) are in pipeline.kernels' column blocks
    ([out/BLOCK, in, BLOCK]) instead of [in, out].
    """
    embedding: np.ndarray
    head: np.ndarray | None
    norm_out: np.ndarray
    rotate: np.ndarray
    wqkv: list[np.ndarray]
    wo: list[np.ndarray]
    w13: list[np.ndarray]
    w2: list[np.ndarray]
    packed: bool = False

    @property
    def embedding_packed(self) -> bool:
        """The embedding is stored in blocks: it is the packed head's table (tied)."""
        return self.packed and self.head is None


def fold_weights(weights: Mapping[str, np.ndarray], dims: ModelDims,
                 consume: bool = False, packed: bool = False) -> FoldedWeights:
    """MindFormers-named weights (LoRA merged) -> FoldedWeights; PipelineError for a missing
    tensor or a shape whose heads do not divide evenly. consume=True pops each tensor from
    `weights` as it is folded, so memory never holds both whole copies (0.54 GB each for
    SmolLM2). packed: lay the matmul weights out for pipeline.kernels (see can_pack)."""
    nh, nkv, hd, H = dims.heads, dims.kv_heads, dims.head_dim, dims.hidden
    if H % nh or nh % nkv:
        raise PipelineError(f"hidden {H}, heads {nh}, kv_heads {nkv} do not divide evenly")
    half = hd // 2
    rotate = np.zeros((hd, hd), np.float32)   # x @ rotate == concat(-x[hd/2:], x[:hd/2])
    rotate[np.arange(half) + half, np.arange(half)] = -1.0
    rotate[np.arange(half), np.arange(half) + half] = 1.0
    scale = np.concatenate([np.full(nh * hd, 1.0 / math.sqrt(hd), np.float32),
                            np.ones(2 * nkv * hd, np.float32)])

    def t(array):   # [out, in] -> what the matmul reads
        return pack(array.T) if packed else np.ascontiguousarray(array.T)
    embedding = _weight(weights, "model.tok_embeddings.embedding_weight", consume)
    head = None if dims.tie_embeddings else _weight(weights, "lm_head.weight", consume)
    if packed:   # the head's table in blocks; a tied embedding is then looked up from it
        embedding, head = (t(embedding), None) if head is None else (embedding, t(head))
    folded = FoldedWeights(
        embedding=embedding, head=head,
        norm_out=_weight(weights, "model.norm_out.weight", consume), rotate=rotate,
        wqkv=[], wo=[], w13=[], w2=[], packed=packed)
    for i in range(dims.layers):
        p = f"model.layers.{i}."
        qkv = np.concatenate([_weight(weights, p + f"attention.{n}.weight", consume)
                              for n in ("wq", "wk", "wv")], axis=0)      # [out, in]
        folded.wqkv.append(t(qkv * scale[:, None]
                             * _weight(weights, p + "attention_norm.weight", consume)[None, :]))
        folded.wo.append(t(_weight(weights, p + "attention.wo.weight", consume)))
        gate_up = np.concatenate([_weight(weights, p + f"feed_forward.{n}.weight", consume)
                                  for n in ("w1", "w3")], axis=0)
        folded.w13.append(t(gate_up * _weight(weights, p + "ffn_norm.weight", consume)[None, :]))
        folded.w2.append(t(_weight(weights, p + "feed_forward.w2.weight", consume)))
    return folded


def can_pack(dims: ModelDims) -> bool:
    """Every matmul's output width divides into pipeline.kernels' blocks (SmolLM2's and
    Llama3-8B's do)."""
    widths = ((dims.heads + 2 * dims.kv_heads) * dims.head_dim, dims.hidden, dims.ffn,
              dims.vocab)
    return all(w % BLOCK == 0 for w in widths)


def kernel_for(dims: ModelDims) -> str:
    """The matmul a GreedyDecoder for `dims` runs by default: 'packed' or 'mindspore'."""
    return "mindspore" if GreedyDecoder._kernel_library(dims, None) is None else "packed"


def _round_up(n: int, step: int) -> int:
    return ((n + step - 1) // step) * step


class GreedyDecoder:
    """Greedy decoding over fixed weights, batched, with a preallocated key/value cache.

    Inputs: weights {MindFormers parameter name: array} (LoRA already merged), the model's
    shape and its special token ids (pad fills rows, eos and pad stop them by default).
    ``batch_size`` is the static batch every call is padded to; ``max_len`` the cache length
    (grown on demand, which recompiles); ``bucket`` the prompt-length rounding and prefill
    chunk; ``layers_per_graph`` how many layers one compiled group graph runs (fewer: faster
    compile and less memory, more launches per token). MindSpore must be in GRAPH_MODE on CPU
    for speed (``pipeline.model.build.setup_context()``); PyNative works too, ~10x slower.
    """

    def __init__(self, weights: Mapping[str, np.ndarray], dims: ModelDims,
                 token_ids: TokenIds = TokenIds(), batch_size: int = 8, max_len: int = 256,
                 bucket: int = DEFAULT_BUCKET, layers_per_graph: int = LAYERS_PER_GRAPH,
                 consume_weights: bool = False, kernel: bool | None = None):
        from pipeline.decode_cell import DecoderParams, group_sizes
        if batch_size < 1:
            raise PipelineError(f"batch size must be at least 1, got {batch_size}")
        self._library = self._kernel_library(dims, kernel)
        self.cfg = dims
        self.ids = token_ids
        self.batch_size = batch_size
        self.bucket = max(1, bucket)
        self.max_len = _round_up(max(1, max_len), 64)
        self._params = DecoderParams(fold_weights(weights, dims, consume_weights,
                                                  packed=self._library is not None),
                                     dims, batch_size, self.max_len)
        self._cos, self._sin = rope_tables(dims, self.max_len)
        self._sizes = group_sizes(dims.layers, layers_per_graph)
        self._span = None   # the attention span the current cells were compiled for
        self._compiled: set[tuple[int, int, int]] = set()   # (tokens per call, span, cache length)
        self.compile_seconds = 0.0   # spent compiling graphs (first call of each shape)

    @staticmethod
    def _kernel_library(dims: ModelDims, kernel: bool | None):
        """pipeline.kernels' library, or None for MindSpore's MatMul. kernel: None uses the
        packed kernel where it can be built, True insists on it, False never uses it."""
        from pipeline import kernels
        if kernel is False:
            return None
        library = kernels.packed_matmul_library() if can_pack(dims) else None
        if library is None and kernel:
            raise PipelineError("the packed matmul kernel cannot be used: "
                                + (kernels.last_error or "a matmul width does not divide into "
                                   f"blocks of {BLOCK}"))
        return library

    @property
    def kernel(self) -> str:
        """Which matmul the decoder runs: 'packed' (pipeline.kernels) or 'mindspore'."""
        return "packed" if self._library is not None else "mindspore"

    def _cells_for(self, span: int) -> None:
        """Fresh cells when the span changes. MindSpore keeps a compiled graph's buffers
        while its cell lives, so cells are kept for one span at a time: infer decodes rows
        in length order, so spans only grow and each compiles once."""
        if span == self._span:
            return
        from pipeline.decode_cell import Head, LayerGroup
        from pipeline.kernels import PackedOps
        self._head = self._groups = None   # free the old graphs first

        def packed():
            return None if self._library is None else PackedOps(self._library)
        self._groups = {size: LayerGroup(self.cfg, self.batch_size, size, packed())
                        for size in set(self._sizes)}
        self._head = Head(self.batch_size, self.cfg.eps, packed())
        self._compiled = set()
        self._span = span

    def set_weights(self, weights: Mapping[str, np.ndarray], consume: bool = False) -> None:
        """Swap in other weights of the same shape (another adapter merged) without
        recompiling: the compiled graphs take them as arguments. eval-checkpoints decodes
        every saved adapter this way, one compile for the whole curve. consume: as in
        fold_weights."""
        folded = fold_weights(weights, self.cfg, consume, packed=self._library is not None)
        for tensor, array in self._params.weight_pairs(folded):   # every shape first
            if tuple(tensor.shape) != array.shape:
                raise PipelineError(f"weights of shape {array.shape} where the decoder was "
                                    f"built for {tuple(tensor.shape)}")
        self._params.set_weights(folded)

    def ensure_capacity(self, length: int) -> None:
        """Grow the cache to hold `length` slots (a new cache shape compiles new graphs)."""
        if length <= self.max_len:
            return
        self.max_len = _round_up(length, 64)
        self._params.grow_cache(self.max_len)
        self._cos, self._sin = rope_tables(self.cfg, self.max_len)

    def _compile(self, tokens, positions, visible) -> None:
        """Compile the graphs a batch needs (its prefill chunk and its one-token step) without
        running them: compilation otherwise happens inside a shape's first call, and doing it
        here keeps it out of the per-row seconds."""
        width, span = tokens.shape[1], visible.shape[1]   # width: the prefill chunk
        began = time.monotonic()
        self._cells_for(span)
        for seq, start in ((width, 0), (1, width)):
            key = (seq, span, self.max_len)
            if key in self._compiled:
                continue
            inputs = self._inputs(tokens[:, :seq], positions[:, :seq], start, visible)
            hidden = self._params.embed(tokens[:, :seq])
            for size, group in self._groups.items():   # each distinct group size once
                group.compile(hidden, *inputs, self._params.rotate,
                              *self._params.layer_args(0, size))
            self._head.compile(hidden, self._params.norm_out, self._params.table)
            self._compiled.add(key)
        self.compile_seconds += time.monotonic() - began

    def _inputs(self, tokens: np.ndarray, positions: np.ndarray, start: int,
                visible: np.ndarray):
        """Tensors (cos, sin, cache index, mask) for one call: tokens [B,S] at cache slots
        start..start+S-1.

        positions [B,S] are RoPE positions; visible [B,span] bool says which of the first
        span cache slots hold real (non-pad) tokens once this call has written its own.
        """
        from mindspore import Tensor
        import mindspore as ms
        bsz, seq = tokens.shape
        cfg, L = self.cfg, visible.shape[1]
        cos = self._cos[positions].reshape(bsz * seq, 1, -1)          # [B*S,1,hd]
        sin = self._sin[positions].reshape(bsz * seq, 1, -1)
        slots = start + np.arange(seq)
        index = np.empty((bsz, seq, cfg.kv_heads, 3), np.int32)        # (b, kv head, slot)
        index[..., 0] = np.arange(bsz)[:, None, None]
        index[..., 1] = np.arange(cfg.kv_heads)[None, None, :]
        index[..., 2] = slots[None, :, None]
        causal = np.arange(L)[None, :] <= slots[:, None]                  # [S,L]
        allowed = causal[None] & visible[:, None, :]                      # [B,S,L]
        mask = np.where(allowed, 0.0, MASK_VALUE).astype(np.float32)[:, None, None]
        return (Tensor(cos, ms.float32), Tensor(sin, ms.float32),
                Tensor(index), Tensor(mask))

    def logits_step(self, tokens, positions, start, visible) -> np.ndarray:
        """Run the model once; returns float32 logits [B, vocab] of the last position."""
        self._cells_for(visible.shape[1])
        cos, sin, index, mask = self._inputs(tokens, positions, start, visible)
        p = self._params
        hidden = p.embed(tokens)
        first = 0
        for size in self._sizes:
            hidden = self._groups[size](hidden, cos, sin, index, mask, p.rotate,
                                        *p.layer_args(first, size))
            first += size
        return self._head(hidden, p.norm_out, p.table).asnumpy()

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                 min_new_tokens: int = 0, stop_ids: Iterable[int] | None = None,
                 on_token=None) -> list[Generation]:
        """Greedy continuations of up to batch_size prompts (token id lists), in input order.

        A row stops at the first id in ``stop_ids`` (default: eos and pad) once it has at
        least ``min_new_tokens`` tokens (stop ids are suppressed before that), or after
        ``max_new_tokens``. The stop token is not part of ``tokens``.
        Raises PipelineError for an empty prompt, too many prompts or bad token counts.
        """
        n = len(prompts)
        if n == 0:
            return []
        self._check_request(prompts, max_new_tokens, min_new_tokens)
        stops = np.array(sorted({self.ids.eos, self.ids.pad} if stop_ids is None
                                else set(stop_ids)), dtype=np.int64)
        width = _round_up(max(len(p) for p in prompts), self.bucket)
        self.ensure_capacity(width + max_new_tokens)
        tokens, positions, visible = self._left_pad(prompts, width, max_new_tokens)
        self._compile(tokens[:, :self.bucket], positions[:, :self.bucket], visible)
        start_time = time.monotonic()
        logits = self._prefill(tokens, positions, visible)
        rows = [Generation(tokens=[], stop_reason="length", seconds=_RUNNING) for _ in range(n)]
        next_pos = np.array([len(p) for p in prompts] + [0] * (self.batch_size - n), np.int64)
        for step in range(max_new_tokens):
            if step < min_new_tokens and stops.size:
                logits[:, stops] = -np.inf
            next_ids = logits.argmax(axis=-1)
            _take(rows, next_ids, stops, max_new_tokens, time.monotonic() - start_time)
            if on_token is not None:
                on_token(step)
            if all(r.seconds != _RUNNING for r in rows) or step == max_new_tokens - 1:
                break
            slot = width + step
            feed = np.where(np.arange(self.batch_size) < n, next_ids, self.ids.pad).astype(np.int64)
            visible[:n, slot] = True
            logits = self.logits_step(feed[:, None], (next_pos + step)[:, None], slot, visible)
        end = time.monotonic() - start_time
        for row in rows:
            if row.seconds == _RUNNING:
                row.seconds = end
        return rows

    def _check_request(self, prompts, max_new_tokens: int, min_new_tokens: int) -> None:
        if len(prompts) > self.batch_size:
            raise PipelineError(f"{len(prompts)} prompts exceed the decoder's batch size {self.batch_size}")
        if max_new_tokens < 1 or min_new_tokens < 0 or min_new_tokens > max_new_tokens:
            raise PipelineError(f"need 1 <= max_new_tokens and 0 <= min_new_tokens <= max_new_tokens "
                                f"(got {max_new_tokens}, {min_new_tokens})")
        if min(len(p) for p in prompts) == 0:
            raise PipelineError("cannot decode from an empty prompt")

    def _left_pad(self, prompts, width: int, max_new_tokens: int):
        """(tokens [B,width], RoPE positions [B,width], visible [B,span]) for a batch.

        Rows past the prompts are all-pad fillers that keep the batch shape static. Attention
        reads only the slots this batch can fill, rounded so few graphs are needed.
        """
        B = self.batch_size
        tokens = np.full((B, width), self.ids.pad, np.int64)
        pads = np.full(B, width, np.int64)
        for row, ids in enumerate(prompts):
            tokens[row, width - len(ids):] = ids
            pads[row] = width - len(ids)
        span = min(self.max_len, _round_up(width + max_new_tokens, SPAN_STEP))
        visible = np.zeros((B, span), bool)
        visible[:, :width] = np.arange(width)[None, :] >= pads[:, None]
        positions = np.maximum(np.arange(width)[None, :] - pads[:, None], 0)
        return tokens, positions, visible

    def _prefill(self, tokens, positions, visible) -> np.ndarray:
        """Feed the padded prompts in chunks of ``bucket``; logits after the last chunk.

        Causal masking keeps each chunk from seeing slots not yet written, and ``visible``
        hides the left padding; the last chunk ends on every row's last token."""
        chunk = self.bucket
        for at in range(0, tokens.shape[1], chunk):
            logits = self.logits_step(tokens[:, at:at + chunk], positions[:, at:at + chunk],
                                      at, visible)
        return logits


def _take(rows: list[Generation], next_ids: np.ndarray, stops: np.ndarray,
          max_new_tokens: int, now: float) -> None:
    """Append each unfinished row's next token, or finish it (a stop id, or full length);
    a row's ``seconds`` is _RUNNING until it finishes."""
    for row, gen in enumerate(rows):
        if gen.seconds != _RUNNING:
            continue
        tok = int(next_ids[row])
        if tok in stops:
            gen.seconds, gen.stop_reason = now, "eos"
            continue
        gen.tokens.append(tok)
        if len(gen.tokens) >= max_new_tokens:
            gen.seconds = now
