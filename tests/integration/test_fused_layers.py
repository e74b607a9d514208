"""pipeline.kernels.train_ops and pipeline.model.fused_layers: the fused training kernels,
really compiled with g++ and differentiated by MindSpore in GRAPH_MODE, against the same
maths written with MindSpore's own ops; and the tiny model trained with the fused layers
against MindFormers' layers (loss and every LoRA gradient)."""
from __future__ import annotations

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")

from pipeline import kernels  # noqa: E402
from pipeline.kernels.train_ops import TrainOps, fused_train_library  # noqa: E402

LIBRARY = fused_train_library()
pytestmark = pytest.mark.skipif(LIBRARY is None, reason=f"train kernels unavailable: {kernels.last_error}")


def _value_and_grads(fn, *inputs):
    """fn(*inputs) and the gradient of sum(fn(...) * fixed random weights) for every input."""
    from mindspore import nn, ops

    class Run(nn.Cell):
        def construct(self, *args):
            return fn(*args)
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    net = Run()
    tensors = [ms.Tensor(x) for x in inputs]
    out = net(*tensors)
    sens = ms.Tensor(np.random.default_rng(7).standard_normal(out.shape).astype(np.float32))
    grads = ops.GradOperation(get_all=True, sens_param=True)(net)(*tensors, sens)
    return out.asnumpy(), [g.asnumpy() for g in grads]


def _close(got, want, rtol=2e-5, atol=2e-6):
    out_got, grads_got = got
    out_want, grads_want = want
    np.testing.assert_allclose(out_got, out_want, rtol=rtol, atol=atol)
    assert len(grads_got) == len(grads_want)
    for g, w in zip(grads_got, grads_want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def train_ops():
    return TrainOps(LIBRARY)


def rng_array(*shape, scale=1.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def test_rms_norm_and_its_gradients_match_mindspores_ops(train_ops):
    from mindspore import ops
    eps = ms.Tensor(np.array([1e-5], np.float32))
    x, w = rng_array(2, 7, 48), rng_array(48, seed=1)
    def fused_norm(a, b):
        return train_ops.rms_norm(a, b, eps)

    def plain_norm(a, b):
        return a * ops.rsqrt((a * a).mean(-1, keep_dims=True) + 1e-5) * b

    fused = _value_and_grads(fused_norm, x, w)
    _close(fused, _value_and_grads(plain_norm, x, w))
    assert np.abs(fused[1][1]).max() > 0.1        # the weight's gradient is real, not zeros


def test_silu_gate_and_its_gradients_match_mindspores_ops(train_ops):
    from mindspore import ops
    a, b = rng_array(2, 5, 96, scale=4.0), rng_array(2, 5, 96, seed=1)
    a[0, 0, :4] = [-90.0, 90.0, 0.0, -20.0]       # exp's clamps and sigmoid's tails
    def plain(p, q):
        return ops.silu(p) * q

    _close(_value_and_grads(train_ops.silu_mul, a, b), _value_and_grads(plain, a, b))


@pytest.mark.parametrize("mask_shape", [(1, 1, 6, 6), (2, 1, 6, 6), (2, 3, 6, 6)])
def test_scaled_masked_softmax_broadcasts_the_mask_like_add(train_ops, mask_shape):
    from mindspore import ops
    score = rng_array(2, 3, 6, 6, scale=3.0)
    mask = np.where(np.random.default_rng(2).random(mask_shape) < 0.3, -10000.0, 0.0).astype(np.float32)
    mask[..., 0] = 0.0                            # every row keeps one position
    scale = ms.Tensor(np.array([0.125], np.float32))
    def fused_softmax(s, m):
        return train_ops.softmax(s, m, scale)

    def plain_softmax(s, m):
        return ops.softmax(s * 0.125 + m, -1)

    fused = _value_and_grads(fused_softmax, score, mask)
    plain = _value_and_grads(plain_softmax, score, mask)
    np.testing.assert_allclose(fused[0], plain[0], rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(fused[1][0], plain[1][0], rtol=2e-5, atol=1e-6)
    assert not np.any(fused[1][1])                # the mask is not trained


def test_softmax_with_a_mask_of_the_wrong_size_fails_loudly(train_ops):
    scale = ms.Tensor(np.array([1.0], np.float32))
    def fused_softmax(s, m):
        return train_ops.softmax(s, m, scale)

    with pytest.raises(RuntimeError):
        _value_and_grads(fused_softmax, rng_array(2, 3, 6, 6), rng_array(5, 6))


@pytest.mark.parametrize("heads_in,heads_out", [(3, 9), (4, 4)])
def test_rope_and_repeat_heads_match_mindformers_rope_slice_transpose_and_tile(train_ops, heads_in, heads_out):
    """MindFormers' path: reshape [B, S, H, D] -> transpose to [B, H, S, D] -> rotate
    (x * cos + concat(-x2, x1) * sin) -> repeat_kv by Tile; and the values without rotating."""
    from mindspore import ops
    b, s, d = 2, 5, 8
    rope = train_ops.heads_op(heads_in, heads_out, rotary=True)
    repeat = train_ops.heads_op(heads_in, heads_out, rotary=False)
    cos, sin = ms.Tensor(rng_array(1, 1, s, d, seed=3)), ms.Tensor(rng_array(1, 1, s, d, seed=4))
    rep = heads_out // heads_in

    def repeat_kv(t):
        t = t.reshape((b, heads_in, 1, s * d))
        return ops.tile(t, (1, 1, rep, 1)).reshape((b, heads_out, s, d))

    def plain(xq, xv):
        q = ops.transpose(xq, (0, 2, 1, 3))
        q = q * cos + ops.concat((-q[..., d // 2:], q[..., :d // 2]), -1) * sin
        return repeat_kv(q) + 2.0 * repeat_kv(ops.transpose(xv, (0, 2, 1, 3)))

    x, v = rng_array(b, s, heads_in, d, seed=5), rng_array(b, s, heads_in, d, seed=6)
    def fused_heads(xq, xv):
        return rope(xq, cos, sin) + 2.0 * repeat(xv)

    fused = _value_and_grads(fused_heads, x, v)
    assert fused[0].shape == (b, heads_out, s, d)
    _close(fused, _value_and_grads(plain, x, v))


def test_heads_op_refuses_heads_that_do_not_repeat_evenly(train_ops):
    with pytest.raises(ValueError, match="do not repeat 2 evenly"):
        train_ops.heads_op(2, 5, rotary=False)
