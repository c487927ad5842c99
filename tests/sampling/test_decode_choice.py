"""The decoding variant is measured once per machine and model shape, then read from the cache: the first
generate of a later process builds the chosen variant without timing the others."""

from __future__ import annotations

import json

import pytest
import torch

from genlab.families.gpt import GPT, GPTConfig
from genlab.sampling import decode


def test_the_choice_is_measured_once_and_then_read_from_the_cache(cache, monkeypatch):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=1, n_head=2, n_embd=32)).eval()
    timed = []
    seconds = iter([3.0, 2.0, 1.0, 4.0, 5.0, 6.0])  # the plain model, then split2, split4 (fastest), split8, packed

    def fake_timing(candidate, batch_size, steps=8):
        timed.append(candidate)
        return next(seconds)

    monkeypatch.setattr(decode, "_seconds_per_step", fake_timing)
    first = decode.decoding_model(model, 2)
    assert len(timed) >= 4
    assert first is not model and isinstance(first.transformer.h[0].mlp.c_fc, decode.SplitLinear)
    assert first.transformer.h[0].mlp.c_fc.splits == 4
    assert list(json.loads((cache / "decoding.json").read_text()).values()) == ["split4"]

    def no_timing(*args, **kwargs):
        raise AssertionError("a cached choice is not measured again")

    monkeypatch.setattr(decode, "_seconds_per_step", no_timing)
    again = decode.decoding_model(model, 2)
    assert again.transformer.h[0].mlp.c_fc.splits == 4
    idx = torch.randint(0, 50, (2, 5))
    with torch.inference_mode():
        c1, c2 = first.new_cache(2), again.new_cache(2)
        torch.testing.assert_close(first(idx, c1), again(idx, c2))
    with pytest.raises(AssertionError, match="not measured again"):
        decode.decoding_model(model, 3)  # another batch size is another choice
