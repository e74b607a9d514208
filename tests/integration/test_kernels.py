"""pipeline.kernels: the packed matmul and its fused forms, really compiled with g++ and run
as MindSpore ops, against NumPy in float64. Shapes cover a single row, a full row group of 8,
a remainder (13 rows) and the 256-row prefill chunk; widths of one and several blocks."""
from __future__ import annotations

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")

from pipeline import kernels  # noqa: E402
from pipeline.baseline_reuse import DECODER, decoder_name  # noqa: E402

pytestmark = pytest.mark.skipif(kernels.packed_matmul_library() is None,
                                reason=f"packed kernel unavailable: {kernels.last_error}")
EPS = 1e-5


def _cell(fn):
    from mindspore import nn

    class Run(nn.Cell):
        def construct(self, *args):
            return fn(*args)
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    return Run()


def _rms(x):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS)


def test_pack_and_packed_rows_are_the_matrix_in_blocks():
    w = np.arange(6 * 64, dtype=np.float32).reshape(6, 64)
    p = kernels.pack(w)
    assert p.shape == (2, 6, 32) and p.flags.c_contiguous
    assert np.array_equal(p[1, :, 3], w[:, 35])
    assert np.array_equal(kernels.packed_rows(p, np.array([[0, 35], [63, 1]])), w.T[[0, 35, 63, 1]])
    with pytest.raises(ValueError, match="40 columns"):
        kernels.pack(np.zeros((3, 40), np.float32))


@pytest.mark.parametrize("rows", [1, 8, 13, 256])
@pytest.mark.parametrize("k,n", [(32, 32), (64, 96)])
def test_each_op_matches_numpy(rows, k, n):
    from mindspore import Tensor
    rng = np.random.default_rng(rows * 7 + n)
    x = rng.normal(0, 1, (rows, k)).astype(np.float32)
    w = rng.normal(0, 0.2, (k, n)).astype(np.float32)
    w2 = rng.normal(0, 0.2, (k, 2 * n)).astype(np.float32)
    r = rng.normal(0, 1, (rows, n)).astype(np.float32)
    ops = kernels.PackedOps(kernels.packed_matmul_library())
    eps = Tensor([EPS], ms.float32)
    X, W, W2, R = (Tensor(a) for a in (x, kernels.pack(w), kernels.pack(w2), r))
    x64, w64, w264 = x.astype(np.float64), w.astype(np.float64), w2.astype(np.float64)
    xn = _rms(x64)
    gate, up = xn @ w264[:, :n], xn @ w264[:, n:]
    expected = {"mm": x64 @ w64, "norm_mm": xn @ w64, "mm_add": r + x64 @ w64,
                "norm_gate": gate / (1 + np.exp(-gate)) * up}
    got = {"mm": _cell(ops.mm)(X, W), "norm_mm": _cell(ops.norm_mm)(X, eps, W),
           "mm_add": _cell(ops.mm_add)(X, W, R), "norm_gate": _cell(ops.norm_gate)(X, eps, W2)}
    for name, want in expected.items():
        out = got[name].asnumpy()
        assert out.shape == want.shape, name
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4, err_msg=name)


def test_the_kernel_can_be_switched_off_and_is_then_not_the_recorded_decoder(monkeypatch):
    from pipeline.decode import kernel_for
    from pipeline.model.params import MODEL_DIMS
    assert kernel_for(MODEL_DIMS["smollm2-135m"]) == "packed"
    assert decoder_name("packed") != DECODER == decoder_name("mindspore")
    monkeypatch.setenv(kernels.ENV, "mindspore")
    assert kernels.packed_matmul_library() is None and "MindSpore" in kernels.last_error
    assert kernel_for(MODEL_DIMS["smollm2-135m"]) == "mindspore"


def test_an_unbuildable_kernel_falls_back_with_a_reason(tmp_path, monkeypatch):
    """No writable cache or a compiler that fails: no library, a sentence saying why, and a
    decoder on MindSpore's MatMul rather than a crash."""
    from pipeline.decode import kernel_for
    from pipeline.model.params import MODEL_DIMS
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("PIPELINE_CACHE", str(blocked))
    monkeypatch.setattr(kernels, "_built", {})
    assert kernels.packed_matmul_library() is None
    assert "could not build packed_matmul.cc" in kernels.last_error
    assert kernel_for(MODEL_DIMS["smollm2-135m"]) == "mindspore"
    monkeypatch.setenv("PIPELINE_CACHE", str(tmp_path / "ok"))
    monkeypatch.setattr(kernels, "SOURCE", tmp_path / "broken.cc")
    (tmp_path / "broken.cc").write_text("this is not C++")
    monkeypatch.setattr(kernels, "_built", {})
    assert kernels.packed_matmul_library() is None
    assert kernels.last_error.startswith("g++ failed on")
