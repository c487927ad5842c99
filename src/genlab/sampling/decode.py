"""Inference copies of a model, tuned for token-by-token decoding on the machine at hand.

Batch-1 decoding multiplies one row by every weight matrix: it is bound by reading the weights.
On CPU, PyTorch's default GEMV read them at ~15-18 GB/s here, while oneDNN with weights
prepacked for the batch size read them at ~25 GB/s, and bf16 weights halve the bytes. For models
whose weights sit in cache the prepacking costs more than it saves. So `decoding_model` times the
candidates for a few steps and keeps the fastest (like cuDNN's benchmark mode); results agree
with the plain model to float rounding.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn


class PackedLinear(nn.Module):
    """nn.Linear with its weight reordered once into oneDNN's blocked layout for `rows` input rows."""

    def __init__(self, linear: nn.Linear, rows: int):
        super().__init__()
        self.out_features = linear.out_features
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), rows)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        y = torch.ops.mkldnn._linear_pointwise(flat, self.packed, self.bias, "none", [], "")
        return y.view(*x.shape[:-1], self.out_features)


def packing_available() -> bool:
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def packed_copy(model: nn.Module, rows: int) -> nn.Module:
    packed = copy.deepcopy(model)
    for module in list(packed.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, PackedLinear(child, rows))
    return packed


@torch.inference_mode()
def _seconds_per_step(model: nn.Module, batch_size: int, steps: int = 8) -> float:
    cache = model.new_cache(batch_size, 16)
    token = torch.zeros(batch_size, 1, dtype=torch.long, device=next(model.parameters()).device)
    best = float("inf")
    for i in range(steps + 2):
        cache.pos = min(cache.pos, 8)
        t0 = time.perf_counter()
        model(token, cache)
        if i >= 2:  # the first calls warm up allocator and kernels
            best = min(best, time.perf_counter() - t0)
    return best


def decoding_model(model: nn.Module, batch_size: int, precision: str = "fp32") -> nn.Module:
    """The fastest inference variant of `model` for decoding `batch_size` sequences, measured."""
    base = model
    if precision == "bf16":
        base = copy.deepcopy(model).to(torch.bfloat16)
    device = next(model.parameters()).device
    if device.type != "cpu" or not packing_available():
        return base
    try:
        candidates = [base, packed_copy(base, batch_size)]
    except RuntimeError:  # a oneDNN build without this path
        return base
    return min(candidates, key=lambda m: _seconds_per_step(m, batch_size))
