"""Device, precision and thread choices, made on purpose and in one place."""

from __future__ import annotations

import contextlib
import os

import torch

from genlab.errors import GenlabError

# Measured on a 2-core CPU with AVX-512 bf16: autocast to bf16 pays for matmuls of roughly
# 10M-parameter models (n_embd 384: 770 -> 331 ms/step) and loses on small ones (n_embd 128:
# 24 -> 30 ms/step), where the casts cost more than the tiny matmuls save.
BF16_MIN_PARAMS = 5_000_000


def setup_threads() -> None:
    """Use as many threads as cores torch sees, unless the user pinned a number."""
    if "GENLAB_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["GENLAB_THREADS"]))


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GenlabError(f"--device {name} was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_precision(precision: str, device: torch.device, model: torch.nn.Module) -> str:
    """auto: bf16 where it was measured to pay (CUDA with bf16; CPU with bf16 units and a big enough model)."""
    if precision != "auto":
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise GenlabError("--precision bf16 is not supported by this GPU; use --precision fp32")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    n_params = sum(p.numel() for p in model.parameters())
    return "bf16" if cpu_has_fast_bf16() and n_params >= BF16_MIN_PARAMS else "fp32"


def autocast_context(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
