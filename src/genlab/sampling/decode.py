"""Inference copies of a model, tuned for token-by-token decoding on the machine at hand.

Batch-1 decoding multiplies one row by every weight matrix: it is bound by reading the weights.
On CPU, PyTorch's matrix-vector product runs on one thread and read them at ~18 GB/s here (2
cores); oneDNN with weights prepacked for the batch size read ~26-39 GB/s; cutting each matrix into
slices of its outputs and multiplying them in one batched matmul, which PyTorch spreads over the
threads, read ~55-60 GB/s (a 43 MB model; the 32 MB L3 cache holds part of it). bf16 weights halve
the bytes, int8 weights (`--precision int8`, a scale per row) quarter them. Which wins depends on
the sizes and the batch, so `decoding_model` times the candidates for a few steps and keeps the
fastest (like cuDNN's benchmark mode), remembering its choice in the cache; the fp32 variants agree
with the plain model to float rounding.
"""

from __future__ import annotations

import copy
import json
import time

import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, cache_root, read_json
from genlab.runtime import cpu_name


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


class Int8Linear(nn.Module):
    """nn.Linear with int8 weights and one scale per output feature (symmetric, the row's largest
    magnitude maps to 127), multiplied by PyTorch's weight-only int8 kernel with bf16 activations.

    Batch-1 decoding is bound by reading the weights; int8 reads a quarter of fp32's bytes. The
    rounding error is at most half a step of each row's scale; its cost in validation loss is
    measured by `genlab eval --precision int8` (and bench/text_train.py), its speed by
    bench/text_sample.py.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127
        self.out_features = linear.out_features
        self.weight = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
        self.scale = scale.to(torch.bfloat16)
        self.bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.aten._weight_int8pack_mm(x.reshape(-1, x.shape[-1]).contiguous(), self.weight, self.scale)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features)


def int8_available(in_features: int) -> bool:
    """Whether the int8 kernel gives right answers for this input width, checked once per width on a
    random product: the CPU kernel needs a multiple of 16 (other widths read out of bounds)."""
    if in_features % 16 or not hasattr(torch.ops.aten, "_weight_int8pack_mm"):
        return False
    if in_features not in _INT8_CHECKED:
        g = torch.Generator().manual_seed(0)
        lin = nn.Linear(in_features, 24, bias=False)
        nn.init.normal_(lin.weight, generator=g)
        x = torch.randn(3, in_features, generator=g).bfloat16()
        q = Int8Linear(lin)
        want = x.float() @ (q.weight.float() * q.scale.float()[:, None]).t()
        got = q(x).float()
        _INT8_CHECKED[in_features] = bool(((got - want).norm() <= 0.02 * want.norm()).item())
    return _INT8_CHECKED[in_features]


_INT8_CHECKED: dict[int, bool] = {}


def inference_copy(model: nn.Module, precision: str) -> nn.Module:
    """`model` at an inference precision: fp32 (itself), bf16 (a bf16 copy) or int8 (a bf16 copy whose
    Linear layers hold int8 weights where the kernel serves their width; CPU only)."""
    if precision == "fp32":
        return model
    if precision == "bf16":
        return copy.deepcopy(model).to(torch.bfloat16)
    if next(model.parameters()).device.type != "cpu":
        raise GenlabError("--precision int8 runs on CPU only; use --device cpu, or bf16 on a GPU")
    # quantized from the fp32 weights; .to() then casts what is left (embeddings, norms, other Linears)
    int8 = _replace_linears(model, lambda lin: Int8Linear(lin) if int8_available(lin.in_features) else lin)
    return int8.to(torch.bfloat16)


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
    extra = {"features": token} if getattr(model.config, "feature_vocab_size", 0) else {}
    best = float("inf")
    for i in range(steps + 2):
        cache.pos = min(cache.pos, 8)
        t0 = time.perf_counter()
        decode(token, cache, **extra)
        if i >= 2:  # the first calls warm up allocator and kernels
            best = min(best, time.perf_counter() - t0)
    return best


class Decoders:
    """`decoding_model` of one model at one precision per batch size, built and measured once each:
    `decoders(batch_size)`. Text and music models sample through it, so repeated calls reuse the copy."""

    def __init__(self, model: nn.Module, precision: str = "fp32"):
        self.model, self.precision = model, precision
        self._built: dict[int, nn.Module] = {}

    def __call__(self, batch_size: int) -> nn.Module:
        if batch_size not in self._built:
            self._built[batch_size] = decoding_model(self.model, batch_size, self.precision)
        return self._built[batch_size]


def decoding_model(model: nn.Module, batch_size: int, precision: str = "fp32") -> nn.Module:
    """The fastest inference variant of `model` for decoding `batch_size` sequences, measured. int8
    is taken as it is: its layers are a kernel of their own.

    The choice is kept in the cache per machine, model shape, batch size and thread count: measuring
    the candidates costs several times a short generation, so only the first process ever pays it,
    and later ones build the chosen variant alone."""
    base = inference_copy(model, precision)
    if next(model.parameters()).device.type != "cpu" or precision == "int8":
        return base
    key = _choice_key(base, batch_size, precision)
    cache_file = cache_root() / "decoding.json"
    choices = read_json(cache_file) if cache_file.is_file() else {}
    chosen = choices.get(key)
    if chosen in VARIANTS:
        try:
            return VARIANTS[chosen](base, batch_size)
        except RuntimeError:
            pass  # the kernel went away (another PyTorch build): measure again
    best, best_name, best_time = base, "plain", _seconds_per_step(base, batch_size)
    names = [n for n in VARIANTS if n != "plain" and (n != "packed" or packing_available())]
    for name in names:  # one at a time: only the best so far and the one being timed are kept
        try:
            candidate = VARIANTS[name](base, batch_size)
        except RuntimeError:  # e.g. a oneDNN build without this path
            continue
        seconds = _seconds_per_step(candidate, batch_size)
        if seconds < best_time:
            best, best_name, best_time = candidate, name, seconds
    choices[key] = best_name
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache_file, choices)
    except OSError:
        pass  # a read-only cache only costs the next process the measurement
    return best


# the decoding variants, by the name the cache keeps
VARIANTS = {
    "plain": lambda base, rows: base,
    "split2": lambda base, rows: split_copy(base, 2),
    "split4": lambda base, rows: split_copy(base, 4),
    "split8": lambda base, rows: split_copy(base, 8),
    "packed": packed_copy,
}


def _choice_key(model: nn.Module, batch_size: int, precision: str) -> str:
    """What the fastest variant depends on: the machine, PyTorch, the threads, the model's Linear shapes."""
    shapes = [list(m.weight.shape) for m in model.modules() if isinstance(m, nn.Linear)]
    return json.dumps({"cpu": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "model": type(model).__name__, "linears": shapes, "batch": batch_size,
                       "precision": precision}, sort_keys=True)
