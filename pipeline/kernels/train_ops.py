"""train_fused.cc's kernels as MindSpore Custom ops with their backward passes.

``fused_train_library()`` compiles train_fused.cc once per machine (g++ -O3 -march=native,
vector lanes but no OpenMP threads: see the file's header), or returns None with ``kernels.last_error`` set, when
there is no g++ or ``PIPELINE_TRAIN_KERNELS=mindspore`` asks for MindFormers' own layers.
``TrainOps(library)`` holds one cell's ops; each Custom op's bprop is the matching *Grad
kernel, so GRAPH_MODE differentiates through them like any primitive.
"""
from __future__ import annotations

import os
from pathlib import Path

from pipeline import kernels

SOURCE = Path(__file__).with_name("train_fused.cc")
# -fno-trapping-math lets GCC turn the clamps and compares in exp into vector selects: without
# it SiLU and softmax ran scalar, 10x and 5x slower (measured); it changes no result.
FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-fno-trapping-math", "-shared", "-fPIC", "-std=c++17"]
ENV = "PIPELINE_TRAIN_KERNELS"      # "mindspore": train with MindFormers' own layers


def fused_train_library() -> Path | None:
    if os.environ.get(ENV, "").strip().lower() in ("mindspore", "off", "0"):
        kernels.last_error = f"{ENV} chooses MindFormers' own layers"
        return None
    return kernels.compiled_library(SOURCE, FLAGS)


def _same(x, *rest):
    return x


class TrainOps:
    """rms_norm(x, w, eps), silu_mul(a, b) and softmax(score, mask, scale) (see
    train_fused.cc); eps and scale are [1] float32 Tensors. heads_op(heads_in, heads_out,
    rotary) makes the op that turns [B, S, heads_in, D] into [B, heads_out, S, D] (rotated
    when `rotary`: op(x, cos, sin), else op(x)): one op per shape pair, because shape
    inference sees only input shapes. Make them outside the graph (in a cell's __init__ or
    before compiling); the graph calls them."""

    def __init__(self, library: Path):
        from mindspore import ops
        self._ops, self._library = ops, library
        norm_grad = self._op("RmsNormGrad", lambda x, w, eps, dy: (x, w), lambda x, *r: (x, x))

        def norm_bprop(x, w, eps, out, dout):
            dx, dw = norm_grad(x, w, eps, dout)
            return dx, dw, ops.zeros_like(eps)

        self.rms_norm = self._op("RmsNorm", lambda x, w, eps: x, bprop=norm_bprop)
        silu_grad = self._op("SiluMulGrad", lambda a, b, dy: (a, a), lambda a, *r: (a, a))

        def silu_bprop(a, b, out, dout):
            return silu_grad(a, b, dout)

        self.silu_mul = self._op("SiluMul", lambda a, b: a, bprop=silu_bprop)
        softmax_grad = self._op("ScaledMaskedSoftmaxGrad", lambda y, dy, scale: y)

        def softmax_bprop(score, mask, scale, out, dout):
            return softmax_grad(out, dout, scale), ops.zeros_like(mask), ops.zeros_like(scale)

        self.softmax = self._op("ScaledMaskedSoftmax", lambda score, mask, scale: score,
                                bprop=softmax_bprop)

    def _op(self, name, out_shape, out_dtype=_same, bprop=None):
        return self._ops.Custom(f"{self._library}:{name}", out_shape=out_shape,
                                out_dtype=out_dtype, func_type="aot", bprop=bprop)

    def heads_op(self, heads_in: int, heads_out: int, rotary: bool):
        ops = self._ops
        if heads_out % heads_in:
            raise ValueError(f"{heads_out} heads do not repeat {heads_in} evenly")

        def heads_first(x, *tables):        # [B, S, Hin, D] -> [B, Hout, S, D]
            return [x[0], heads_out, x[1], x[3]]

        def heads_back(dy, *tables):        # [B, Hout, S, D] -> [B, S, Hin, D]
            return [dy[0], dy[2], heads_in, dy[3]]

        name = "RopeHeads" if rotary else "RepeatHeads"
        grad = self._op(name + "Grad", heads_back)
        # MindSpore reuses the shape inference of an equal primitive (same name and attributes)
        # for another: without this attribute every RopeHeads op got the first one's shapes.
        grad.add_prim_attr("heads", f"{heads_in}->{heads_out}")
        if rotary:
            def bprop(x, cos, sin, out, dout):
                return grad(dout, cos, sin), ops.zeros_like(cos), ops.zeros_like(sin)
        else:
            def bprop(x, out, dout):
                return (grad(dout),)
        op = self._op(name, heads_first, bprop=bprop)
        op.add_prim_attr("heads", f"{heads_in}->{heads_out}")
        return op
