"""One optimiser step of LoRA training as MindSpore cells: the loss (LM head on labelled
positions only) and TrainOneStepCell cut in two so micro-batch gradients add up.

    loss = HeadTrimLoss(model, k)            k from head_budget(labels, micro_batch)
           (PackedHeadTrimLoss for packed rows: the same loss with a per-row attention mask)
    grad_step, apply_step = step_cells(loss, optimizer)
    run_batch(grad_step, apply_step, ids, labels, micro, k) -> the batch's loss

Imports MindSpore; pipeline.train imports it only when a run starts. Its source is part of
the compile-cache key (pipeline.model.build.setup_context).
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from pipeline.data.mindrecord import IGNORE_ID
from pipeline.data.packing import attention_mask
from pipeline.data.training_rows import longest_target
from pipeline.errors import PipelineError


def label_positions(labels: np.ndarray, k: int, batch_labels: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat positions (into batch x seq predictions) that carry a label, padded to k.

    Returns (positions int32 [k], targets int32 [k], weights float32 [k]); padding slots
    point at position 0 with weight 0. Each label weighs 1 / batch_labels (default: the
    labels in `labels`), so a micro-batch's weighted NLL sum is its share of the whole
    batch's mean loss. Fails if a batch has more than k labelled positions.
    """
    flat = labels[:, 1:].reshape(-1)
    idx = np.nonzero(flat != IGNORE_ID)[0]
    if len(idx) > k:
        raise PipelineError(f"batch has {len(idx)} labelled positions, more than the head budget {k}")
    positions, targets, weights = (np.zeros(k, np.int32), np.zeros(k, np.int32),
                                   np.zeros(k, np.float32))
    positions[:len(idx)], targets[:len(idx)] = idx, flat[idx]
    weights[:len(idx)] = 1.0 / max(batch_labels or len(idx), 1)
    return positions, targets, weights


def head_budget(labels: np.ndarray, batch_size: int) -> int:
    """k for label_positions: the most labels a batch of batch_size rows can hold
    (batch_size x the longest answer)."""
    return longest_target(labels) * batch_size


class HeadTrimLoss(nn.Cell):
    """Loss of a MindFormers Llama with the LM head (576 x 49152) and cross-entropy run
    only on labelled positions: prompt and padding positions (about 3/4 of a
    128-token arithmetic row) never reach the vocabulary projection.

    With label_positions' default weights this is LlamaForCausalLM's own loss (mean NLL
    over labelled positions); with weights of 1 / (labels in the whole batch) it is a
    micro-batch's share of it, so micro-batch losses and gradients add up exactly.
    Inputs: input_ids, labels [B, S+1]; positions, targets, weights [k] (label_positions).
    """

    def __init__(self, model, k: int):
        super().__init__(auto_prefix=False)   # keep MindFormers' parameter names
        from pipeline.model.build import llama_of
        self.llama = llama_of(model)
        self.k = k

    def construct(self, input_ids, labels, positions, targets, weights):
        return self.head_loss(self.llama.model(input_ids[:, :-1]), positions, targets, weights)

    def head_loss(self, hidden, positions, targets, weights):
        """Weighted NLL of the LM head on the labelled positions of hidden [B, S, H]."""
        hidden = hidden.reshape((-1, hidden.shape[-1]))
        logits = self.llama.lm_head(ops.gather(hidden, positions, 0)).astype(ms.float32)
        logp = ops.log_softmax(logits, -1)
        nll = -ops.gather_elements(logp, 1, targets.reshape((-1, 1))).reshape((-1,))
        return (nll * weights).sum()


class PackedHeadTrimLoss(HeadTrimLoss):
    """HeadTrimLoss over packed sequences (pipeline.data.packing): the same loss, with an
    additive attention mask [B, 1, S, S] that keeps each row to itself.

    LlamaModel casts a given attention_mask to uint8 for flash attention, which the CPU
    attention would add to its scores as 0/1; so this runs the model's own pieces
    (embedding, rotary table, layers, final norm) as LlamaModel does without a cache,
    with the float mask its CPU path builds. Inputs: input_ids, labels [B, S+1],
    mask [B, 1, S, S], positions, targets, weights [k].
    """

    def __init__(self, model, k: int):
        super().__init__(model, k)
        self.num_layers = self.llama.model.num_layers

    def construct(self, input_ids, labels, mask, positions, targets, weights):
        body = self.llama.model
        tokens = input_ids[:, :-1]
        bs, seq_len = tokens.shape
        freqs_cis = body.freqs_mgr(seq_len)
        h = body.tok_embeddings(tokens).astype(body.dtype).reshape((bs, seq_len, body.hidden_size))
        for i in range(self.num_layers):
            h = body.layers[i](h, freqs_cis, mask)
        return self.head_loss(body.norm_out(h), positions, targets, weights)


class GradStep(nn.Cell):
    """Adds its micro-batch's gradients into `accum` and returns the loss."""

    def __init__(self, net, weights, accum):
        super().__init__(auto_prefix=False)
        self.net, self.weights, self.accum = net, weights, accum
        self.grad = ops.GradOperation(get_by_list=True)
        self.hyper_map = ops.HyperMap()

    def construct(self, *inputs):
        loss = self.net(*inputs)
        grads = self.grad(self.net, self.weights)(*inputs)
        return ops.depend(loss, self.hyper_map(ops.assign_add, self.accum, grads))


def _zero_out(param):
    return ops.assign(param, ops.zeros_like(param))


class ApplyStep(nn.Cell):
    """Runs the optimiser on the summed gradients, then zeroes them."""

    def __init__(self, optimizer, accum):
        super().__init__(auto_prefix=False)
        self.optimizer, self.accum = optimizer, accum
        self.hyper_map = ops.HyperMap()

    def construct(self):
        done = self.optimizer(self.accum)
        return ops.depend(self.hyper_map(_zero_out, self.accum), done)


def step_cells(net, optimizer) -> tuple[GradStep, ApplyStep]:
    """(grad_step, apply_step): TrainOneStepCell cut in two, so that the gradients of
    several micro-batches are summed before one optimiser update.

    The sum stays inside MindSpore as parameters (a zeroed copy of the LoRA parameters):
    handing 420 gradient tensors to a separate optimiser graph as arguments cost 2.4 s a
    step (measured), this costs nothing.
    """
    accum = optimizer.parameters.clone(prefix="grad_accum", init="zeros")
    grad_step = GradStep(net, optimizer.parameters, accum)
    grad_step.set_train(True)
    return grad_step, ApplyStep(optimizer, accum)


def run_batch(grad_step, apply_step, ids: np.ndarray, labels: np.ndarray, micro: int,
              k: int | None, segments: np.ndarray | None = None) -> float:
    """One optimiser step over a batch as len(ids) / micro forward/backward passes; returns
    the batch's loss. Peak memory follows the micro-batch (activations are ~11 MB a token
    on MindSpore CPU), the update is the whole batch's: with head trim (k given) every
    label weighs 1 / the batch's labels, so the summed gradients are exactly the batch's.
    `segments` (packed sequences, pipeline.data.packing) adds each pass's attention mask."""
    batch_labels = int((labels[:, 1:] != IGNORE_ID).sum())
    loss = 0.0
    for lo in range(0, len(ids), micro):
        inputs = [ids[lo:lo + micro], labels[lo:lo + micro]]
        if segments is not None:
            inputs.append(attention_mask(segments[lo:lo + micro, :-1]))
        if k is not None:
            inputs += label_positions(labels[lo:lo + micro], k, batch_labels)
        loss += float(grad_step(*map(ms.Tensor, inputs)).asnumpy())
    apply_step()
    return loss
