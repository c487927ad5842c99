"""Continuous batching gives every request the tokens it gets decoded alone (sample_tokens with the same prompt,
settings and seed), whatever else is in the batch and whenever it joined or left."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.families.gpt import GPT, GPTConfig
from genlab.families.lstm import LSTM, LSTMConfig
from genlab.sampling.batching import ContinuousBatcher, can_batch
from genlab.sampling.logits import SamplingSettings
from genlab.sampling.tokens import sample_tokens

V = 50


def tiny_gpt(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{"vocab_size": V, "block_size": 48, "n_layer": 2, "n_head": 2, "n_embd": 32, **kw})).eval()


def tiny_lstm(**kw) -> LSTM:
    torch.manual_seed(0)
    return LSTM(LSTMConfig(**{"vocab_size": V, "n_layer": 2, "n_embd": 32, **kw})).eval()


def prompt(length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, V, (length,), generator=torch.Generator().manual_seed(seed))


def alone(model, ids: torch.Tensor, s: SamplingSettings, seed: int) -> list[int]:
    return [int(t) for t in sample_tokens(model, ids, s, torch.Generator().manual_seed(seed))]


# (prompt length, settings, seed): greedy, temperature + top_k, top_p, repetition penalty, mixed; two share settings
REQUESTS = [
    (4, SamplingSettings(max_new_tokens=20, temperature=0), 10),
    (9, SamplingSettings(max_new_tokens=36, temperature=1.3, top_k=8), 11),
    (2, SamplingSettings(max_new_tokens=25, top_p=0.7), 12),
    (6, SamplingSettings(max_new_tokens=10, temperature=0.8, repetition_penalty=1.6), 13),
    (5, SamplingSettings(max_new_tokens=18, temperature=1.3, top_k=8), 14),
    (3, SamplingSettings(max_new_tokens=14, temperature=0.9, top_k=20, top_p=0.9, repetition_penalty=1.3), 15),
]


@pytest.mark.parametrize("make", [tiny_gpt, tiny_lstm], ids=["gpt", "lstm"])
def test_each_request_gets_the_tokens_it_gets_alone_whenever_it_joins(make):
    model = make()
    want = [alone(model, prompt(n, i), s, seed) for i, (n, s, seed) in enumerate(REQUESTS)]
    assert want[1] != want[4] and len(set(map(tuple, want))) == len(want)  # the seeds matter: a real check
    b = ContinuousBatcher(model, max_rows=3, max_len=48)
    waiting = list(range(len(REQUESTS)))
    got: dict[int, list[int]] = {}
    of: dict[int, int] = {}  # handle -> request
    step = 0
    while waiting or b.active:
        # one joins every third step while a row is free: rows fill, finish at different steps, are reused
        if waiting and b.free and step % 3 == 0:
            i = waiting.pop(0)
            n, s, seed = REQUESTS[i]
            of[b.add(prompt(n, i), s, seed)] = i
            got[i] = []
        before = b.active
        out = b.step()
        assert len(out) == before
        for h, t in out.items():
            got[of[h]].append(t)
        finished = sum(len(got[of[h]]) == REQUESTS[of[h]][1].max_new_tokens for h in out)
        assert b.active == before - finished  # freed right after its last token
        step += 1
    assert [got[i] for i in range(len(REQUESTS))] == want


def test_a_removed_request_frees_its_row_at_once_and_the_others_go_on_undisturbed():
    model = tiny_gpt()
    s = SamplingSettings(max_new_tokens=16, temperature=1.0, top_k=10)
    b = ContinuousBatcher(model, max_rows=3)
    handles = [b.add(prompt(3 + i, i), s, 20 + i) for i in range(3)]
    got = {h: [] for h in handles}
    for _ in range(5):
        for h, t in b.step().items():
            got[h].append(t)
    gone = handles[0]  # not the last row: the last one moves into its place
    b.remove(gone)
    assert (b.active, b.free) == (2, 1)
    b.remove(gone)  # again, or after it finished: nothing happens
    late = b.add(prompt(7, 9), s, 29)  # takes the freed row
    got[late] = []
    while b.active:
        out = b.step()
        assert gone not in out
        for h, t in out.items():
            got[h].append(t)
    assert late not in handles  # handles are never reused
    for i, h in enumerate(handles[1:], start=1):
        assert got[h] == alone(model, prompt(3 + i, i), s, 20 + i)
    assert got[late] == alone(model, prompt(7, 9), s, 29)
    assert b.step() == {}


def test_decode_rows_matches_decode_step_at_each_rows_own_position():
    model = tiny_gpt()
    lengths, nxt = [3, 11, 6], torch.tensor([[5], [17], [2]])
    batch, want = model.new_cache(4, 48), []
    with torch.inference_mode():
        for r, n in enumerate(lengths):
            one = model.new_cache(1)
            model(prompt(n, r)[None], one)
            batch.put_row(r, one)
            want.append(model.decode_step(nxt[r : r + 1], one)[0])
        got = model.decode_rows(nxt, batch, torch.tensor(lengths))
    torch.testing.assert_close(got, torch.stack(want), atol=1e-5, rtol=1e-5)


def test_full_batch_and_too_long_requests_are_refused_in_one_line():
    b = ContinuousBatcher(tiny_gpt(), max_rows=2, max_len=20)
    s = SamplingSettings(max_new_tokens=10)
    with pytest.raises(GenlabError, match="past the 20 tokens") as e:
        b.add(prompt(11, 0), s, 0)
    assert "\n" not in str(e.value)
    b.add(prompt(10, 0), s, 0)  # exactly max_len fits
    b.add(prompt(4, 1), s, 1)
    with pytest.raises(GenlabError, match="rows are busy"):
        b.add(prompt(4, 2), s, 2)
    assert (b.active, b.free) == (2, 0)
    with pytest.raises(GenlabError, match="context"):
        ContinuousBatcher(tiny_gpt(), max_rows=2, max_len=49)


@pytest.mark.parametrize("make", [tiny_gpt, tiny_lstm], ids=["gpt", "lstm"])
def test_a_model_with_a_feature_stream_is_served_one_request_at_a_time(make):
    assert can_batch(make())
    music = make(feature_vocab_size=4)
    assert not can_batch(music)
    with pytest.raises(GenlabError, match="one request at a time"):
        ContinuousBatcher(music, max_rows=2)
