"""Inference copies of a model, tuned for token-by-token decoding on the machine at hand.

Batch-1 decoding multiplies one row by every weight matrix: it is bound by reading the weights.
On CPU, PyTorch's matrix-vector product runs on one thread and read them at ~18 GB/s here (2
cores); oneDNN with weights prepacked for the batch size read ~26-39 GB/s; cutting each matrix into
slices of its outputs and multiplying them in one batched matmul, which PyTorch spreads over the
threads, read ~55-60 GB/s (a 43 MB model; the 32 MB L3 cache holds part of it). bf16 weights halve
the bytes. Which wins depends on the sizes and the batch, so `decoding_model` times the candidates
for a few steps and keeps the fastest (like cuDNN's benchmark mode); results agree with the plain
model to float rounding.
"""

from __future__ import annotations

import copy
import time
from functools import partial

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


class SplitLinear(nn.Module):
    """nn.Linear as `splits` slices of its output features, multiplied in one batched matmul.

    A batched matmul runs its slices on all threads at once, where one matrix-vector product runs
    on one. The slices are a view of the weight: no copy.
    """

    def __init__(self, linear: nn.Linear, splits: int):
        super().__init__()
        n, k = linear.weight.shape
        self.out_features, self.splits = n, splits
        self.weight = linear.weight.detach().view(splits, n // splits, k)
        bias = linear.bias.detach() if linear.bias is not None else torch.zeros(n, dtype=linear.weight.dtype)
        self.bias = bias.view(splits, n // splits, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        y = torch.baddbmm(self.bias, self.weight, flat.t().expand(self.splits, -1, -1))  # (splits, n/splits, rows)
        return y.permute(2, 0, 1).reshape(*x.shape[:-1], self.out_features)


def split_copy(model: nn.Module, splits: int) -> nn.Module:
    """A copy whose Linear layers with a multiple of `splits` outputs are SplitLinear."""
    return _replace_linears(model, lambda lin: SplitLinear(lin, splits) if lin.out_features % splits == 0 else lin)


def packing_available() -> bool:
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def packed_copy(model: nn.Module, rows: int) -> nn.Module:
    return _replace_linears(model, lambda lin: PackedLinear(lin, rows))


def _replace_linears(model: nn.Module, make) -> nn.Module:
    """An inference copy: Linear layers made by `make`, dropout layers (a no-op at inference, but a
    call each) taken out."""
    out = copy.deepcopy(model)
    for module in list(out.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, make(child))
            elif isinstance(child, nn.Dropout):
                setattr(module, name, nn.Identity())
    return out


@torch.inference_mode()
def _seconds_per_step(model: nn.Module, batch_size: int, steps: int = 8) -> float:
    cache = model.new_cache(batch_size, 16)
    token = torch.zeros(batch_size, 1, dtype=torch.long, device=next(model.parameters()).device)
    decode = getattr(model, "decode_step", model)  # what sample_tokens calls
    best = float("inf")
    for i in range(steps + 2):
        cache.pos = min(cache.pos, 8)
        t0 = time.perf_counter()
        decode(token, cache)
        if i >= 2:  # the first calls warm up allocator and kernels
            best = min(best, time.perf_counter() - t0)
    return best


def decoding_model(model: nn.Module, batch_size: int, precision: str = "fp32") -> nn.Module:
    """The fastest inference variant of `model` for decoding `batch_size` sequences, measured."""
    base = model
    if precision == "bf16":
        base = copy.deepcopy(model).to(torch.bfloat16)
    if next(model.parameters()).device.type != "cpu":
        return base
    best, best_time = base, _seconds_per_step(base, batch_size)
    makers = [partial(split_copy, base, splits) for splits in (2, 4, 8)]
    if packing_available():
        makers.append(partial(packed_copy, base, batch_size))
    for make in makers:  # one at a time: only the best so far and the one being timed are kept
        try:
            candidate = make()
        except RuntimeError:  # e.g. a oneDNN build without this path
            continue
        seconds = _seconds_per_step(candidate, batch_size)
        if seconds < best_time:
            best, best_time = candidate, seconds
    return best
