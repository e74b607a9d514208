"""mindpet's LoRADense with the LoRA scale applied to B instead of to the layer's output.

mindpet computes  y = x W^T + ((x A^T) B^T) * s  : one multiply over the whole output
[tokens, out] forward and another backward, in every LoRA layer (210 a pass for the
default preset). (x A^T)(s B)^T is the same product with the multiply on B [out, rank]:
for the default preset's s = alpha / rank = 2 it is bit for bit the same (a power of two
scales every rounding exactly), for other scales equal up to float rounding. Parameters,
names, initialisation and checkpoints are mindpet's; only the order of two operations
changes.
"""
from __future__ import annotations

from mindpet.delta.lora import LoRADense


class ScaleOnBLoRADense(LoRADense):
    """LoRADense whose forward scales B (rank x out numbers), not the output."""

    def construct(self, input_tensor):
        ori_dtype = input_tensor.dtype
        x = self.cast(input_tensor, self.dtype)
        weight = self.cast(self.weight, self.dtype)
        lora_a = self.cast(self.mindpet_delta_lora_a, self.dtype)
        lora_b = self.mul(self.cast(self.mindpet_delta_lora_b, self.dtype),
                          self.cast(self.scaling, self.dtype))
        x_shape = self.shape_op(x)
        x = self.reshape(x, (-1, x_shape[-1]))
        out = self.matmul(x, weight)
        if self.has_bias:
            out = self.bias_add(out, self.cast(self.bias, self.dtype))
        lora = self.lora_b_matmul(self.lora_a_matmul(self.lora_dropout(x), lora_a), lora_b)
        out = self.add(out, lora)
        if self.activation_flag:
            out = self.activation(out)
        if len(x_shape) != 2:
            out = self.reshape(out, x_shape[:-1] + (-1,))
        return self.cast(out, ori_dtype)


def scale_on_b(model) -> int:
    """Turn every mindpet LoRADense in `model` into a ScaleOnBLoRADense in place (same
    object, parameters and names); returns how many."""
    swapped = 0
    for _, cell in model.cells_and_names():
        if type(cell) is LoRADense:
            object.__setattr__(cell, "__class__", ScaleOnBLoRADense)
            swapped += 1
    return swapped
