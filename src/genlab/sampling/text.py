"""Autoregressive sampling for any token family (gpt, lstm), with a KV cache or a carried state.

The model contract: `model(idx, cache) -> logits (B, T, V)` continues `cache` in place, and
`model.new_cache(batch, max_len)` makes an empty one; `model.max_context` is the longest context
(None for a recurrent model). The loop prefills the prompt once, then feeds one token per step,
through `model.decode_step(idx, cache)` where a family offers that lean one-token path (same contract).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import torch

from genlab.errors import GenlabError
from genlab.sampling.decode import Decoders
from genlab.sampling.logits import SamplingSettings, choose, process_logits


def make_generator(seed: int | None, device: torch.device) -> tuple[torch.Generator, int]:
    seed = random.randrange(2**31) if seed is None else int(seed)
    return torch.Generator(device=device).manual_seed(seed), seed


@torch.inference_mode()
def sample_tokens(model, prompt_ids: torch.Tensor, s: SamplingSettings, generator: torch.Generator
                  ) -> Iterator[torch.Tensor]:
    """Yield the next token of every sample, (B,), for up to s.max_new_tokens steps.

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
    cache = model.new_cache(B, window)
    logits = model(tokens[:, :T0], cache)[:, -1]
    for i in range(s.max_new_tokens):
        token = choose(process_logits(logits, s, seen), s, generator)  # (B,)
        yield token
        if i + 1 == s.max_new_tokens:
            return
        end = T0 + i + 1
        tokens[:, end - 1] = token
        if seen is not None:
            seen.scatter_(1, token[:, None], True)
        if window is not None and cache.pos + 1 > window:
            cache = model.new_cache(B, window)
            logits = model(tokens[:, end - (window // 2 + 1) : end], cache)[:, -1]
        else:
            logits = decode(tokens[:, end - 1 : end], cache)[:, -1]


class TextSampler:
    """Turns a token stream into text pieces per sample, honouring stop strings while streaming."""

    def __init__(self, tokenizer, stop: list[str]):
        self.tokenizer = tokenizer
        self.stop = list(stop)
        self.hold = max((len(x) for x in self.stop), default=1) - 1  # text that might start a stop string

    def pieces(self, token_steps: Iterator[torch.Tensor], num_samples: int,
               incremental: bool) -> Iterator[tuple[int, str]]:
        """Yield (sample index, new text) as tokens arrive (incremental) or once at the end."""
        generated: list[list[int]] = [[] for _ in range(num_samples)]
        emitted = [0] * num_samples
        done = [False] * num_samples
        for tokens in token_steps:
            values = tokens.tolist()
            for i in range(num_samples):
                if not done[i]:
                    generated[i].append(values[i])
            if not (incremental or self.stop):
                continue
            for i in range(num_samples):
                if done[i]:
                    continue
                text, done[i] = self._text(generated[i])
                safe = len(text) if done[i] else len(text.rstrip("\ufffd")) - self.hold
                if incremental and safe > emitted[i]:
                    yield i, text[emitted[i] : safe]
                    emitted[i] = safe
            if all(done):
                break
        for i in range(num_samples):
            text, _ = self._text(generated[i])
            if len(text) > emitted[i]:
                yield i, text[emitted[i] :]

    def _text(self, ids: list[int]) -> tuple[str, bool]:
        text = self.tokenizer.decode(ids)
        cut = min((p for p in (text.find(x) for x in self.stop) if p >= 0), default=-1)
        return (text[:cut], True) if cut >= 0 else (text, False)


class TextModel:
    """A trained text model, ready to sample: `m.generate(...)`, `m.stream(...)`, `m.model`."""

    def __init__(self, model, tokenizer, config: dict, run_dir, device: torch.device, precision: str = "fp32"):
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.run_dir, self.device, self.precision = run_dir, device, precision
        self.last_seed: int | None = None
        self.decoder = Decoders(model, precision)  # the model tuned for decoding n sequences: decoder(n)

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        if prompt:
            ids = self.tokenizer.encode(prompt)
        else:  # no prompt: start from a newline, as nanoGPT does, or from token 0 if the model never saw one
            ids = self.tokenizer.encode("\n") if self._knows_newline() else [0]
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        limit = self.model.max_context
        if limit is not None and len(ids) >= limit:
            raise GenlabError(
                f"the prompt is {len(ids)} tokens but this model's context is {limit}; shorten the prompt"
            )
        return ids

    def _knows_newline(self) -> bool:
        try:
            self.tokenizer.encode("\n")
            return True
        except GenlabError:
            return False

    def _pieces(self, prompt: str, incremental: bool, **controls) -> Iterator[tuple[int, str]]:
        s = SamplingSettings(**controls)
        s.validate()
        ids = self.encode_prompt(prompt)
        generator, self.last_seed = make_generator(s.seed, self.device)
        steps = sample_tokens(self.decoder(s.num_samples), ids, s, generator)
        yield from TextSampler(self.tokenizer, s.stop).pieces(steps, s.num_samples, incremental)

    def generate(self, prompt: str = "", **controls) -> str | list[str]:
        """Sample a continuation of `prompt` (the continuation only); a list when num_samples > 1."""
        n = controls.get("num_samples", 1)
        texts = [""] * max(n, 1)
        for i, piece in self._pieces(prompt, incremental=False, **controls):
            texts[i] += piece
        return texts[0] if n == 1 else texts

    def stream(self, prompt: str = "", **controls) -> Iterator[str]:
        """Yield the continuation piece by piece as it is sampled (one sample)."""
        if controls.get("num_samples", 1) != 1:
            raise GenlabError("stream() makes one sample; use generate(num_samples=N) or stream_samples()")
        for _, piece in self._pieces(prompt, incremental=True, **controls):
            yield piece

    def stream_samples(self, prompt: str = "", **controls) -> Iterator[tuple[int, str]]:
        """Yield (sample index, piece) for several samples made together in one batch."""
        yield from self._pieces(prompt, incremental=True, **controls)
