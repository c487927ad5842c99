"""The token loop every token family (gpt, lstm) samples with, for text and music alike.

The model contract: `model(idx, cache) -> logits (B, T, V)` continues `cache` in place, and
`model.new_cache(batch, max_len)` makes an empty one; `model.max_context` is the longest context
(None for a recurrent model). The loop prefills the prompt once, then feeds one token per step,
through `model.decode_step(idx, cache)` where a family offers that lean one-token path (same contract).
A `constraint` (sampling/constraints.py) masks each step's logits before the creativity dial.

A model that reads a feature id beside each token (music: the room left in the bar) samples with a
`features` counter: `features.start(prompt_ids, B)` gives the prompt's ids, (B, T0), and
`features.advance(tokens)` the ids after each drawn token, (B,); they go to the model as `features=`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import torch

from genlab.sampling.constraints import Constraint
from genlab.sampling.logits import SamplingSettings, choose, process_logits


def make_generator(seed: int | None, device: torch.device) -> tuple[torch.Generator, int]:
    seed = random.randrange(2**31) if seed is None else int(seed)
    return torch.Generator(device=device).manual_seed(seed), seed


@torch.inference_mode()
def sample_tokens(model, prompt_ids: torch.Tensor, s: SamplingSettings, generator: torch.Generator,
                  constraint: Constraint | None = None, features=None,
                  logits_processor=None) -> Iterator[torch.Tensor]:
    """Yield the next token of every sample, (B,), for up to s.max_new_tokens steps.

    With a `constraint`, each step draws only among the tokens it allows (it starts from the prompt). A
    `logits_processor(logits (B, V), previous tokens (B,))` changes each step's raw logits before the creativity
    dial (a watermark's green-list bias, genlab.safety.watermark).

    Within the model's context this is exactly what recomputing the whole sequence every step
    gives. Past it, a GPT keeps the newest half of its window and refills the cache from it
    (a sliding window, recomputed once per half window instead of once per token).
    """
    B, T0 = s.num_samples, len(prompt_ids)
    tokens = prompt_ids.new_empty(B, T0 + s.max_new_tokens)  # the whole text so far, (B, T0 + new)
    tokens[:, :T0] = prompt_ids
    seen = None
    if s.repetition_penalty != 1.0:
        seen = torch.zeros(B, model.config.vocab_size, dtype=torch.bool, device=prompt_ids.device)
        seen.scatter_(1, tokens[:, :T0], True)
    window = model.max_context
    decode = getattr(model, "decode_step", model)  # a family's lean one-token path, where it has one
    feats = None  # the feature id beside every token so far, (B, T0 + new), for a model that reads them
    if features is not None:
        feats = torch.zeros_like(tokens)
        feats[:, :T0] = features.start(prompt_ids.tolist(), B).to(tokens.device)

    def logits_after(run, a: int, b: int) -> torch.Tensor:
        """Next-token logits after tokens a..b-1 fed to `run` (the model, or its one-token path), (B, V)."""
        if feats is None:
            return run(tokens[:, a:b], cache)[:, -1]
        return run(tokens[:, a:b], cache, features=feats[:, a:b])[:, -1]

    cache = model.new_cache(B, window)
    logits = logits_after(model, 0, T0)
    if constraint is not None:
        constraint.start(prompt_ids.tolist(), B)
    for i in range(s.max_new_tokens):
        allowed = constraint.allowed() if constraint is not None else None
        if logits_processor is not None:
            logits = logits_processor(logits, tokens[:, T0 + i - 1])
        token = choose(process_logits(logits, s, seen, allowed), s, generator)  # (B,)
        if constraint is not None:
            constraint.advance(token)
        yield token
        if i + 1 == s.max_new_tokens:
            return
        end = T0 + i + 1
        tokens[:, end - 1] = token
        if feats is not None:
            feats[:, end - 1] = features.advance(token).to(tokens.device)
        if seen is not None:
            seen.scatter_(1, token[:, None], True)
        if window is not None and cache.pos + 1 > window:
            cache = model.new_cache(B, window)
            logits = logits_after(model, end - (window // 2 + 1), end)
        else:
            logits = logits_after(decode, end - 1, end)
