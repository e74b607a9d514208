"""The graph-mode cells pipeline.decode runs: a group of Llama layers and the output head, with
the weights and the key/value cache passed in as plain Tensors (the token embedding is a row
lookup, done in NumPy).

Why weights come in as arguments instead of living in one cell: one compiled group graph
then serves every group of layers (layer 0-4, 5-9, ...), so a shape compiles a few layers'
graph instead of all thirty (seconds instead of ~18 s per graph for SmolLM2), and MindSpore's
CPU runtime, which keeps every compiled graph's intermediate buffers alive, keeps a few
layers' worth instead of the whole model's (a 100-row SQuAD run at batch 8 peaked at 9.5 GB
with one 30-layer graph per shape). The cost is a few more graph launches per token
(~0.6 ms each). Plain Tensors, not Parameters: MindSpore keys a compiled graph on the
identity of Parameter arguments (each group of layers recompiled, ~1.5 s each, measured) but
on the shape of Tensor arguments; the cache scatter updates a Tensor argument in place.

The weight matmuls are ``pipeline.kernels``' packed kernel where it could be built (weights
stored in column blocks, read at up to twice MindSpore's MatMul speed for a few rows), else
MindSpore's MatMul on [in, out] weights; the cells take the ops they are given.

Imports MindSpore; pipeline.decode imports it only when it builds a decoder.
"""
from __future__ import annotations

import mindspore as ms
from mindspore import Tensor, nn, ops

from pipeline.model.params import ModelDims


def as_tensor(array) -> Tensor:
    # shares the (contiguous float32) array's memory: no second copy of the weights
    return Tensor.from_numpy(array)


def zeros_tensor(shape) -> Tensor:
    return ops.zeros(shape, ms.float32)


def normed(x, eps):
    # RMSNorm without its weight (folded into the next matmul)
    return x * ops.rsqrt(ops.mean(ops.square(x), -1, keep_dims=True) + eps)


class LayerGroup(nn.Cell):
    """construct(h, cos, sin, cache_index, mask, rotate, *per_layer) -> h after `size` layers.

    h [B*S, H]; cos, sin [B*S,1,hd]; cache_index [B,S,nkv,3] int32 holding (b, kv head,
    slot); mask [B,1,1,S,span] additive, span <= the cache length: the slots attended over;
    rotate [hd,hd] (RoPE's rotate_half as a matmul). per_layer: for each layer of the group
    wqkv, wo, w13, w2 (folded: [in,out], or packed for `packed`) and its key and value
    caches [B,nkv,max_len,hd]. packed: a pipeline.kernels.PackedOps for packed weights (its
    fused norm/matmul/residual/gate ops), None for MindSpore's MatMul on [in,out] weights.
    """

    def __init__(self, dims: ModelDims, batch: int, size: int, packed=None):
        super().__init__()
        self.packed = packed is not None   # a constant: graph mode compiles one branch
        self.k = packed
        self.mm = ops.MatMul()
        self.eps_t = Tensor([dims.eps], ms.float32)
        # plain ints and floats: graph mode folds them into the graph as constants
        self.nh, self.nkv, self.hd, self.hidden = dims.heads, dims.kv_heads, dims.head_dim, dims.hidden
        self.ffn, self.eps, self.batch, self.size = dims.ffn, dims.eps, batch, size
        self.scatter = ops.ScatterNdUpdate()
        self.bmm_t = ops.BatchMatMul(transpose_b=True)
        self.bmm = ops.BatchMatMul()

    def construct(self, h, cos, sin, cache_index, mask, rotate, *per_layer):
        for j in range(self.size):
            h = self.layer(h, cos, sin, cache_index, mask, rotate, per_layer[6 * j],
                           per_layer[6 * j + 1], per_layer[6 * j + 2], per_layer[6 * j + 3],
                           per_layer[6 * j + 4], per_layer[6 * j + 5])
        return h

    def layer(self, h, cos, sin, cache_index, mask, rotate, wqkv, wo, w13, w2, k_cache, v_cache):
        nh, nkv, hd, H, ffn = self.nh, self.nkv, self.hd, self.hidden, self.ffn
        rep = nh // nkv
        bsz = self.batch
        seq = h.shape[0] // bsz
        span = mask.shape[-1]
        if self.packed:
            qkv = self.k.norm_mm(h, self.eps_t, wqkv)
        else:
            qkv = self.mm(normed(h, self.eps), wqkv)
        qk, v = ops.split(qkv, [(nh + nkv) * hd, nkv * hd], 1)
        rot = ops.matmul(ops.reshape(qk, (-1, hd)), rotate)
        qk = (ops.reshape(qk, (bsz * seq, nh + nkv, hd)) * cos
              + ops.reshape(rot, (bsz * seq, nh + nkv, hd)) * sin)
        q, k = ops.split(qk, [nh, nkv], 1)
        k_all = ops.depend(k_cache, self.scatter(k_cache, cache_index,
                                                 ops.reshape(k, (bsz, seq, nkv, hd))))
        v_all = ops.depend(v_cache, self.scatter(v_cache, cache_index,
                                                 ops.reshape(v, (bsz, seq, nkv, hd))))
        if span < k_cache.shape[2]:  # attend over the slots this batch can use, not the whole cache
            k_all = k_all[:, :, :span, :]
            v_all = v_all[:, :, :span, :]
        # GQA without copying keys: query head j uses kv head j // rep.
        if seq == 1:
            qg = ops.reshape(q, (bsz, nkv, rep, hd))
        else:
            qg = ops.reshape(ops.transpose(ops.reshape(q, (bsz, seq, nh, hd)), (0, 2, 1, 3)),
                             (bsz, nkv, rep * seq, hd))
        score = ops.reshape(self.bmm_t(qg, k_all), (bsz, nkv, rep, seq, span)) + mask
        probs = ops.reshape(ops.softmax(score, -1), (bsz, nkv, rep * seq, span))
        ctx = self.bmm(probs, v_all)                                # [B,nkv,rep*S,hd]
        if seq > 1:
            ctx = ops.transpose(ops.reshape(ctx, (bsz, nh, seq, hd)), (0, 2, 1, 3))
        ctx = ops.reshape(ctx, (bsz * seq, H))
        if self.packed:
            h = self.k.mm_add(ctx, wo, h)
            return self.k.mm_add(self.k.norm_gate(h, self.eps_t, w13), w2, h)
        h = h + self.mm(ctx, wo)
        gate, up = ops.split(self.mm(normed(h, self.eps), w13), [ffn, ffn], 1)
        return h + self.mm(ops.silu(gate) * up, w2)


class Head(nn.Cell):
    """construct(h [B*S,H], norm_out [H], table) -> logits [B, vocab] of each row's last
    position (the final RMSNorm applied). table: [vocab,H], or packed for `packed` (a
    pipeline.kernels.PackedOps)."""

    def __init__(self, batch: int, eps: float, packed=None):
        super().__init__()
        self.batch, self.eps = batch, eps
        self.head_mm = ops.MatMul(transpose_b=True) if packed is None else packed.mm

    def construct(self, h, norm_out, table):
        seq = h.shape[0] // self.batch
        last = ops.reshape(h, (self.batch, seq, h.shape[1]))[:, seq - 1, :]
        return self.head_mm(normed(last, self.eps) * norm_out, table)


class DecoderParams:
    """The decoder's weights (pipeline.decode.FoldedWeights) and key/value cache as
    Tensors: built once, swapped with set_weights, the cache regrown on demand."""

    def __init__(self, folded, dims: ModelDims, batch: int, max_len: int):
        self.dims, self.batch = dims, batch
        self.rotate = as_tensor(folded.rotate)
        self.caches: list[tuple[Tensor, Tensor]] = []
        self.set_weights(folded)
        self.grow_cache(max_len)

    def set_weights(self, folded) -> None:
        self.embedding_array = folded.embedding   # the lookup reads it; the tied head the Tensor
        self.embedding_packed = folded.embedding_packed
        self.embedding = as_tensor(folded.embedding)
        self.head = None if folded.head is None else as_tensor(folded.head)
        self.norm_out = as_tensor(folded.norm_out)
        self.layers = [tuple(as_tensor(getattr(folded, kind)[i])
                             for kind in ("wqkv", "wo", "w13", "w2")) for i in range(self.dims.layers)]

    def grow_cache(self, max_len: int) -> None:
        """Fresh zeroed caches of [batch, kv_heads, max_len, head_dim] per layer."""
        d = self.dims
        shape = (self.batch, d.kv_heads, max_len, d.head_dim)
        self.caches = []   # drop the old ones first: memory holds one cache
        self.caches = [(zeros_tensor(shape), zeros_tensor(shape)) for _ in range(d.layers)]

    def weight_pairs(self, folded) -> list:
        """(tensor, array) for every weight of `folded`, laid out as set_weights lays them
        (the key/value cache is state, not a weight)."""
        pairs = [(self.embedding, folded.embedding), (self.norm_out, folded.norm_out)]
        if self.head is not None:
            pairs.append((self.head, folded.head))
        for i, params in enumerate(self.layers):
            arrays = (folded.wqkv[i], folded.wo[i], folded.w13[i], folded.w2[i])
            pairs.extend(zip(params, arrays))
        return pairs

    def layer_args(self, first: int, size: int) -> list:
        """The per-layer arguments of LayerGroup for layers first..first+size-1."""
        out = []
        for i in range(first, first + size):
            out.extend(self.layers[i])
            out.extend(self.caches[i])
        return out

    def embed(self, tokens) -> Tensor:
        """hidden [B*S, H] of tokens [B,S]: rows of the embedding table (stored packed when it
        is also the packed head)."""
        from pipeline.kernels import packed_rows
        ids = tokens.reshape(-1)
        rows = (packed_rows(self.embedding_array, ids) if self.embedding_packed
                else self.embedding_array[ids])
        return Tensor(rows, ms.float32)

    @property
    def table(self):
        """The output head's matrix: the embedding itself when tied."""
        return self.embedding if self.head is None else self.head


def group_sizes(layers: int, per_graph: int) -> list[int]:
    """Layers per group call: equal groups of `per_graph` and one smaller remainder."""
    per_graph = max(1, min(per_graph, layers))
    sizes = [per_graph] * (layers // per_graph)
    return sizes + ([layers % per_graph] if layers % per_graph else [])

