"""The graph-mode Llama step pipeline.decode runs: prefill chunks and one-token steps over a
key/value cache held as Parameters (layout in pipeline.decode's docstring).

Imports MindSpore; pipeline.decode imports it only when it builds a decoder.
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from pipeline.model.params import ModelDims


def _param(array, name):
    return Parameter(Tensor(array, ms.float32), name=name, requires_grad=False)


class LlamaKVStep(nn.Cell):
    """construct(tokens, cos, sin, cache_index, mask) -> logits [B, vocab] of the last position.

    Built from pipeline.decode.FoldedWeights (norm weights and the attention scale already
    folded into the matmuls), with a zeroed cache of [batch, kv_heads, max_len, head_dim]
    per layer.
    """

    def __init__(self, folded, dims: ModelDims, batch: int, max_len: int):
        super().__init__()
        # plain ints and floats: graph mode folds them into the graph as constants
        self.nh, self.nkv, self.hd, self.hidden = dims.heads, dims.kv_heads, dims.head_dim, dims.hidden
        self.ffn, self.layers, self.eps, self.max_len = dims.ffn, dims.layers, dims.eps, max_len
        self.embedding = _param(folded.embedding, "embedding")
        self.head = None if folded.head is None else _param(folded.head, "head")
        self.norm_out = _param(folded.norm_out, "norm_out")
        self.rotate = Tensor(folded.rotate, ms.float32)
        zeros = np.zeros((batch, dims.kv_heads, max_len, dims.head_dim), np.float32)
        layers = range(dims.layers)
        self.wqkv = ParameterTuple([_param(folded.wqkv[i], f"wqkv{i}") for i in layers])
        self.wo = ParameterTuple([_param(folded.wo[i], f"wo{i}") for i in layers])
        self.w13 = ParameterTuple([_param(folded.w13[i], f"w13_{i}") for i in layers])
        self.w2 = ParameterTuple([_param(folded.w2[i], f"w2_{i}") for i in layers])
        self.k_cache = ParameterTuple([_param(zeros, f"kcache{i}") for i in layers])
        self.v_cache = ParameterTuple([_param(zeros.copy(), f"vcache{i}") for i in layers])
        self.scatter = ops.ScatterNdUpdate()
        self.bmm_t = ops.BatchMatMul(transpose_b=True)
        self.bmm = ops.BatchMatMul()
        self.head_mm = ops.MatMul(transpose_b=True)

    def weight_pairs(self, folded) -> list:
        """(parameter, array) for every weight of `folded`, as __init__ laid them out (the
        key/value cache is state, not a weight)."""
        pairs = [(self.embedding, folded.embedding), (self.norm_out, folded.norm_out)]
        if self.head is not None:
            pairs.append((self.head, folded.head))
        for params, arrays in ((self.wqkv, folded.wqkv), (self.wo, folded.wo),
                               (self.w13, folded.w13), (self.w2, folded.w2)):
            pairs.extend(zip(params, arrays))
        return pairs

    def normed(self, x):
        # RMSNorm without its weight (folded into the next matmul)
        return x * ops.rsqrt(ops.mean(ops.square(x), -1, keep_dims=True) + self.eps)

    def construct(self, tokens, cos, sin, cache_index, mask):
        # tokens [B,S] int32; cos,sin [B*S,1,hd]; cache_index [B,S,nkv,3] int32 holding
        # (b, kv head, slot); mask [B,1,1,S,span] additive, span <= max_len the cache slots
        # attended over. Returns logits [B, vocab] of the last position.
        nh, nkv, hd, H, ffn = self.nh, self.nkv, self.hd, self.hidden, self.ffn
        rep = nh // nkv
        bsz, seq = tokens.shape
        span = mask.shape[-1]
        h = ops.reshape(ops.gather(self.embedding, tokens, 0), (bsz * seq, H))
        for i in range(self.layers):
            qkv = ops.matmul(self.normed(h), self.wqkv[i])
            qk, v = ops.split(qkv, [(nh + nkv) * hd, nkv * hd], 1)
            rot = ops.matmul(ops.reshape(qk, (-1, hd)), self.rotate)
            qk = (ops.reshape(qk, (bsz * seq, nh + nkv, hd)) * cos
                  + ops.reshape(rot, (bsz * seq, nh + nkv, hd)) * sin)
            q, k = ops.split(qk, [nh, nkv], 1)
            k_all = ops.depend(self.k_cache[i], self.scatter(
                self.k_cache[i], cache_index, ops.reshape(k, (bsz, seq, nkv, hd))))
            v_all = ops.depend(self.v_cache[i], self.scatter(
                self.v_cache[i], cache_index, ops.reshape(v, (bsz, seq, nkv, hd))))
            if span < self.max_len:  # attend over the slots this batch can use, not the whole cache
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
            h = h + ops.matmul(ops.reshape(ctx, (bsz * seq, H)), self.wo[i])
            gate, up = ops.split(ops.matmul(self.normed(h), self.w13[i]), [ffn, ffn], 1)
            h = h + ops.matmul(ops.silu(gate) * up, self.w2[i])
        last = ops.reshape(h, (bsz, seq, H))[:, seq - 1, :]
        head = self.embedding if self.head is None else self.head
        return self.head_mm(self.normed(last) * self.norm_out, head)
