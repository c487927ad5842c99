"""The creativity dial: turning next-token logits into a choice.

Order as in Hugging Face transformers: repetition penalty, temperature, top-k, top-p (nucleus,
Holtzman et al. 2019), then a draw from the remaining distribution, or argmax at temperature 0. A
constraint's mask (sampling/constraints.py) comes first of all, so top-k and top-p choose among the
allowed tokens only.
All of it is tensor work over the whole batch: no per-token Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from genlab.errors import GenlabError


@dataclass
class SamplingSettings:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    num_samples: int = 1

    def validate(self) -> None:
        if self.max_new_tokens < 0:
            raise GenlabError(f"--max-new-tokens must be 0 or more, got {self.max_new_tokens}")
        if not self.temperature >= 0:
            raise GenlabError(f"--temperature must be 0 (greedy) or more, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise GenlabError(f"--top-k must be 1 or more, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise GenlabError(f"--top-p must be in (0, 1], got {self.top_p}")
        if not self.repetition_penalty > 0:
            raise GenlabError(f"--repetition-penalty must be positive (1 = off), got {self.repetition_penalty}")
        if self.num_samples < 1:
            raise GenlabError(f"--num-samples must be 1 or more, got {self.num_samples}")
        if any(s == "" for s in self.stop):
            raise GenlabError("--stop strings must not be empty")


def mask_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """-inf where `allowed` (B, V) is False. A row with nothing allowed is left as it is: the sample goes on
    unconstrained rather than drawing from nothing (constraints avoid this by allowing their end token)."""
    allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
    return logits.masked_fill(~allowed, float("-inf"))


def process_logits(logits: torch.Tensor, s: SamplingSettings, seen: torch.Tensor | None,
                   allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Apply a constraint's mask, penalty, temperature and truncation to (B, V) logits; returns float logits."""
    logits = logits.float()
    if allowed is not None:
        logits = mask_logits(logits, allowed.to(logits.device))
    if seen is not None and s.repetition_penalty != 1.0:
        # CTRL (Keskar et al. 2019): make tokens already in the text less likely, whatever their sign
        penalised = torch.where(logits > 0, logits / s.repetition_penalty, logits * s.repetition_penalty)
        logits = torch.where(seen, penalised, logits)
    if s.temperature > 0 and s.temperature != 1.0:
        logits = logits / s.temperature
    if s.top_k is not None and s.top_k < logits.size(-1):
        kth = torch.topk(logits, s.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p is not None and s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        drop = (probs.cumsum(dim=-1) - probs) > s.top_p  # mass before this token already exceeds p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def choose(logits: torch.Tensor, s: SamplingSettings, generator: torch.Generator) -> torch.Tensor:
    """(B, V) processed logits -> (B,) token ids."""
    if s.temperature == 0:
        return logits.argmax(dim=-1)
    # a draw from softmax(logits): argmax of p / E with E ~ Exponential(1) (the Gumbel-max trick in another
    # guise); one elementwise pass instead of torch.multinomial's cumulative-sum search
    probs = torch.softmax(logits, dim=-1)
    noise = torch.empty_like(probs).exponential_(generator=generator)
    return (probs / noise).argmax(dim=-1)
