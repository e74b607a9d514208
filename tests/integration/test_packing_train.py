"""Packed training (train.pack) on a real MindFormers Llama: a packed batch gives the loss
and gradients of the same rows unpacked, and a packed run trains, resumes its data order
and records its packing."""
import dataclasses
import json

import numpy as np
import pytest

from pipeline.data.mindrecord import IGNORE_ID
from pipeline.model.presets import load_preset, with_data

from tests.integration.test_train_tiny import TINY

pytestmark = pytest.mark.integration


def variable_rows(n=6, width=33, seed=1):
    """Rows of 8-30 tokens (ids 150-153 cycling), the first 4 unlabelled, right-padded."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, width), np.int32)
    labels = np.full((n, width), IGNORE_ID, np.int32)
    for r in range(n):
        length = int(rng.integers(8, 31))
        ids[r, :length] = 150 + (int(rng.integers(0, 4)) + np.arange(length)) % 4
        labels[r, 4:length] = ids[r, 4:length]
    return ids, labels


def _loss_and_grads(cell, inputs):
    import mindspore as ms
    from mindspore import ops
    cell.set_train(True)
    params = cell.trainable_params()
    tensors = [ms.Tensor(x) for x in inputs]
    loss = float(cell(*tensors).asnumpy())
    grads = ops.GradOperation(get_by_list=True)(cell, ms.ParameterTuple(params))(*tensors)
    return loss, {p.name: g.asnumpy() for p, g in zip(params, grads)}


def test_a_packed_batch_is_the_same_rows_unpacked():
    import mindspore as ms
    from pipeline.data.packing import attention_mask, pack_rows
    from pipeline.model.build import build_model, setup_context
    from pipeline.train_step import HeadTrimLoss, PackedHeadTrimLoss, head_budget, label_positions
    preset = load_preset(TINY)
    ids, labels = variable_rows()
    setup_context()
    rng = np.random.default_rng(0)
    plain = build_model(preset, for_training=True, seq_length=32, batch_size=6)
    for p in plain.trainable_params():   # a non-zero adapter, so LoRA is in the path
        p.set_data(ms.Tensor(rng.normal(0, 0.1, p.shape).astype(np.float32)))
    k = head_budget(labels, 6)
    want, want_grads = _loss_and_grads(HeadTrimLoss(plain, k),
                                       [ids, labels, *label_positions(labels, k)])

    p_ids, p_labels, seg = pack_rows(ids, labels, 65, np.arange(6))
    assert len(p_ids) < 6                       # rows really share sequences
    packed = build_model(preset, for_training=True, seq_length=64, batch_size=len(p_ids))
    weights = {p.name: p.asnumpy() for p in plain.get_parameters()}
    for p in packed.get_parameters():           # the very same weights
        p.set_data(ms.Tensor(weights[p.name]))
    pk = head_budget(p_labels, len(p_ids))
    cell = PackedHeadTrimLoss(packed, pk)
    got, got_grads = _loss_and_grads(
        cell, [p_ids, p_labels, attention_mask(seg[:, :-1]), *label_positions(p_labels, pk)])
    assert got == pytest.approx(want, rel=1e-5)
    assert got_grads.keys() == want_grads.keys()
    for name, grad in want_grads.items():
        assert np.abs(got_grads[name] - grad).max() <= 1e-4 * max(np.abs(grad).max(), 1e-6), name

    # The mask is what makes it so: one causal mask over the whole sequence lets rows see
    # each other, and the loss moves.
    leaky = attention_mask(np.where(seg[:, :-1] > 0, 1, 0))
    crossed, crossed_grads = _loss_and_grads(cell, [p_ids, p_labels, leaky,
                                                    *label_positions(p_labels, pk)])
    assert abs(crossed - want) > 10 * 1e-5 * abs(want)          # 10x the tolerance above
    worst = max(np.abs(crossed_grads[n] - g).max() / max(np.abs(g).max(), 1e-6)
                for n, g in want_grads.items())
    assert worst > 100 * 1e-4, worst


def test_a_packed_run_trains_and_records_its_packing(tmp_path):
    from tests.integration.test_train_tiny import write_mindrecord
    from pipeline.train import train
    from pipeline.data.mindrecord import write_mindrecord as _unused  # noqa: F401  (layout owner)
    data = write_mindrecord(tmp_path / "train.mindrecord", rows=48, width=33)
    base = with_data(load_preset(TINY), str(data))
    preset = dataclasses.replace(base, train=dataclasses.replace(
        base.train, pack=True, seq_length=128, batch_size=2, max_steps=6))
    result = train(preset, tmp_path / "packed", quiet=True)
    manifest = json.loads((tmp_path / "packed" / "manifest.json").read_text())
    packed = manifest["data"]["train"]["packed"]
    # 25-token rows (33 columns, 8 of them padding) fill 129 columns five at a time
    assert packed["rows"] == manifest["data"]["train"]["rows"] == 48
    assert packed["rows_per_sequence"] == pytest.approx(48 / packed["sequences"], abs=0.01)
    assert packed["sequences"] == 10 and manifest["data"]["train"]["width"] == 129
    assert manifest["data"]["train"]["longest_target_tokens"] == 24 - 10 + 1   # one row's answer
    assert result.losses[-1] < result.losses[0]
    log = (tmp_path / "packed" / "train.log").read_text()
    assert "48 rows packed into 10 sequences" in log
