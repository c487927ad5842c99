"""Checks before work: a model that a config.json describes is measured on PyTorch's meta device (shapes,
no memory) before anything is allocated, so that a wrong or oversized config is one line in a moment
instead of a 40-second allocation, a traceback or the OOM killer.

- memory: the model's weights (and, for training, its gradients and AdamW moments) against the memory
  the device has available;
- weights: every tensor in the safetensors header against the shape the config implies;
- vocabulary: the tokenizer saved with the run against the model's vocabulary size.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

from genlab.errors import GenlabError

LOAD_COPIES = 2  # loading holds the file's tensors and the model's at once
TRAIN_COPIES = 4  # weights, gradients and AdamW's two moments (activations come on top)


class _SkipValueOps(TorchFunctionMode):
    """Random initialisation and spectral norm's power iteration have no meta kernels: PyTorch runs their
    Python references, whose first call imports the compiler stack (seconds). Shapes need no values, so
    these ops are skipped, giving their results' shapes only (in this thread only)."""

    SKIPPED = frozenset({"normal_", "uniform_", "bernoulli_", "exponential_", "random_", "cauchy_", "log_normal_",
                         "geometric_", "normalize"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", None)
        if name in self.SKIPPED:  # e.g. torch.nn.init.normal_(tensor=...), t.normal_()
            return args[0] if args else next(iter(kwargs.values()))
        if name in ("mv", "dot", "vdot"):  # spectral norm's power iteration: only the result's shape matters
            shape = args[0].shape[:1] if name == "mv" else ()
            return torch.empty(shape, dtype=args[0].dtype, device="meta")
        if name in ("div", "__truediv__") and len(args) == 2 and getattr(args[1], "ndim", 0) == 0:
            return args[0]  # spectral norm's weight / sigma
        return func(*args, **kwargs)


def meta_model(family, model_config) -> torch.nn.Module:
    """The family's model with shapes only: building it allocates nothing."""
    with torch.device("meta"), _SkipValueOps():
        return family.build(model_config)


def state_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's parameters and buffers, each shared tensor counted once."""
    seen, total = set(), 0
    for t in model.state_dict(keep_vars=True).values():
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a new allocation on the device (None where it cannot be read)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(model: torch.nn.Module, device: torch.device, copies: int, doing: str) -> None:
    """Refuse, with the figures, a model whose `copies` of its state would not fit in available memory."""
    need = state_bytes(model) * copies
    free = available_bytes(device)
    if free is not None and need > free:
        n_params = sum(p.numel() for p in model.parameters())
        raise GenlabError(
            f"{doing} this model ({n_params / 1e6:,.1f}M parameters) needs about {_gb(need)} of memory on "
            f"{device.type} and {_gb(free)} is available; choose a smaller --n-embd / --n-layer (or free memory)"
        )


def saved_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors file's header, without reading the tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GenlabError(
            f"{path} is corrupt or truncated ({str(e).splitlines()[0][:120]}); "
            "restore it or retrain / resume from an earlier checkpoint"
        ) from None


def check_weights(model: torch.nn.Module, path: Path) -> None:
    """Every saved tensor exists in the model with the same shape, and every model tensor is saved
    (a tied weight, saved once under one of its names, counts as saved)."""
    saved = saved_shapes(path)
    state = model.state_dict(keep_vars=True)
    for name, shape in saved.items():
        if name not in state:
            raise GenlabError(f"{path} holds a tensor {name} that the model in config.json does not have; the run "
                              "directory is mixed up or from another genlab version")
        if tuple(state[name].shape) != shape:
            raise GenlabError(f"{path}: tensor {name} has shape {list(shape)} but config.json implies "
                              f"{list(state[name].shape)}; config.json and the weights come from different runs")
    saved_ids = {id(state[name]) for name in saved}
    for name, t in state.items():
        if name not in saved and id(t) not in saved_ids:
            raise GenlabError(f"{path} lacks the tensor {name} of the model in config.json; the run directory is "
                              "mixed up or from another genlab version")


def check_vocabulary(preprocessing, model_config, run_dir: Path) -> None:
    """A tokenizer whose vocabulary differs from the model's would decode ids it does not have."""
    tokens = getattr(preprocessing, "vocab_size", None)
    model_tokens = getattr(model_config, "vocab_size", None)
    if tokens is not None and model_tokens is not None and tokens != model_tokens:
        raise GenlabError(f"{Path(run_dir) / 'tokenizer.json'} has {tokens} tokens but the model in config.json has "
                          f"{model_tokens}; the tokenizer and the model come from different runs")


def _gb(n: int) -> str:
    return f"{n / 2**30:,.1f} GB" if n >= 2**30 else f"{n / 2**20:,.0f} MB"
