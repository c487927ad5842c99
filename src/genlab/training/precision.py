"""Training precision: fp32 or bf16 autocast, chosen as asked or, with auto, by what is faster here.

auto takes bf16 on GPUs that have it and on CPUs with bf16 units from BF16_MIN_PARAMS parameters;
below that it measures a few real steps of a copy of the model in both precisions (`measure_precision`)
and keeps the answer in the cache, so the same command chooses alike next time. `StepContext` is
what a family's train_step sees of the choice: the autocast and the gradient clipping.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict

import torch

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, cache_root, read_json
from genlab.runtime import cpu_name

# Autocast to bf16 paid for 10M-parameter models on every 2-core CPU with bf16 units we measured
# (n_embd 384: 770 -> 331 ms/step on one, 1202 -> 404 on another). Below that it depends on the
# machine: at n_embd 128 it lost on one (24 -> 30 ms/step, the casts cost more than the tiny matmuls
# save) and won on others (25.6 -> 14.4; 67 -> 55), so there the trainer measures (`pick_precision`).
BF16_MIN_PARAMS = 5_000_000
BF16_MARGIN = 0.85  # bf16 must take at most this share of fp32's step time: a near tie stays fp32
PROBE_STEPS = (3, 10)  # timed steps per precision: at least, and at most while time is left
PROBE_SECONDS = 3.0  # the most the probe spends once both precisions have their least steps


def autocast_context(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class StepContext:
    """What a family's train_step may use: mixed precision, gradient clipping and accumulation, as configured."""

    def __init__(self, device: torch.device, precision: str, grad_clip: float, grad_accum: int = 1):
        self.device, self.precision, self.grad_clip, self.grad_accum = device, precision, grad_clip, grad_accum

    def autocast(self):
        return autocast_context(self.device, self.precision)

    def micro_batches(self, model: torch.nn.Module, batch: tuple):
        """The batch in `grad_accum` equal parts, for one backward each. Under DDP the gradients are averaged
        across processes once, with the last part's backward (no_sync holds back the others')."""
        parts = list(zip(*(t.chunk(self.grad_accum) for t in batch), strict=True))
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            with contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync():
                yield part

    def clip(self, params) -> torch.Tensor | None:
        if self.grad_clip > 0:
            return torch.nn.utils.clip_grad_norm_(list(params), self.grad_clip, foreach=True)
        return None


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


def measure_precision(family, model, model_config, batch, cfg, device: torch.device) -> tuple[str, str]:
    """The faster precision for training this model on this machine, and how it was found.

    A copy of the model takes real training steps on the first batch in fp32 and in bf16 autocast,
    alternated, after one warm-up step each; the medians are compared, as the trainer reports its
    own. The model, its optimizer and the RNG streams are left untouched. bf16 is taken only when
    clearly faster, and the answer is kept in the cache per machine, model and batch shape, so the
    same command chooses the same precision (and gives the same weights) again, and so does the same
    global batch shared by several processes (whatever their threads: DDP equals one process).
    """
    key = json.dumps({"cpu": cpu_name(), "torch": torch.__version__, "family": family.name,
                      "model": asdict(model_config), "batch": [list(t.shape) for t in batch]}, sort_keys=True)
    cache_file = cache_root() / "precision.json"
    cache = read_json(cache_file) if cache_file.is_file() else {}
    if key not in cache:
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        least, most = PROBE_STEPS
        with torch.random.fork_rng(devices=[]):
            probe = copy.deepcopy(model)
            optimizers = family.make_optimizers(probe, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2),
                                                fused=device.type == "cpu")
            deadline = math.inf  # set once each precision has its least steps
            for step in range(1 + most):  # step 0 warms up
                if step > least and time.perf_counter() > deadline:
                    break
                for precision in times:
                    t0 = time.perf_counter()
                    family.train_step(probe, batch, optimizers, StepContext(device, precision, cfg.grad_clip))
                    times[precision].append(time.perf_counter() - t0)
                if step == least:
                    deadline = time.perf_counter() + PROBE_SECONDS
        fp32, bf16 = (statistics.median(times[p][1:]) * 1000 for p in ("fp32", "bf16"))  # the first warms up
        cache[key] = {"precision": "bf16" if bf16 <= BF16_MARGIN * fp32 else "fp32",
                      "fp32_ms": round(fp32, 2), "bf16_ms": round(bf16, 2)}
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache_file, cache)
    found = cache[key]
    return found["precision"], f"auto: measured {found['fp32_ms']} ms/step in fp32, {found['bf16_ms']} in bf16"
