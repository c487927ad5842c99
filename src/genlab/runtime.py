"""Device, precision and thread choices, made on purpose and in one place."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable

import torch

from genlab.errors import GenlabError

# Autocast to bf16 paid for 10M-parameter models on every 2-core CPU with bf16 units we measured
# (n_embd 384: 770 -> 331 ms/step on one, 1202 -> 404 on another). Below that it depends on the
# machine: at n_embd 128 it lost on one (24 -> 30 ms/step, the casts cost more than the tiny matmuls
# save) and won on others (25.6 -> 14.4; 67 -> 55), so there the trainer measures (`pick_precision`).
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


def pick_precision(precision: str, device: torch.device, model: torch.nn.Module,
                   measure: Callable[[], str] | None = None) -> str:
    """auto: bf16 on CUDA with bf16; on CPU fp32 without bf16 units, bf16 from BF16_MIN_PARAMS
    parameters, and below that whichever `measure()` finds faster (fp32 when there is no `measure`)."""
    if precision != "auto":
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise GenlabError("--precision bf16 is not supported by this GPU; use --precision fp32")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if not cpu_has_fast_bf16():
        return "fp32"
    if sum(p.numel() for p in model.parameters()) >= BF16_MIN_PARAMS:
        return "bf16"
    return measure() if measure is not None else "fp32"


def cpu_name() -> str:
    """The processor's model name, as Linux reports it (platform.processor() elsewhere)."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def autocast_context(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
