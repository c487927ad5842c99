"""The constraint hook: masks come before the creativity dial, allow-all changes nothing, an empty mask
does not crash, and a user can write a constraint in a few lines (StateConstraint)."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.sampling.constraints import AllowAll, StateConstraint
from genlab.sampling.logits import SamplingSettings, process_logits
from genlab.sampling.tokens import sample_tokens

V = 12


class TinyLM(torch.nn.Module):
    """A random bigram model with the token loop's contract (no context limit, a cache it ignores)."""

    max_context = None

    def __init__(self, vocab: int = V, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.table = torch.nn.Embedding(vocab, vocab)
        self.config = type("Config", (), {"vocab_size": vocab})()

    def new_cache(self, batch: int, max_len):
        return None

    def forward(self, idx: torch.Tensor, cache) -> torch.Tensor:
        return self.table(idx) * 3


class Fixed(torch.nn.Module):
    """Always the same next-token logits."""

    max_context = None

    def __init__(self, logits: list[float]):
        super().__init__()
        self.logits = torch.tensor(logits)
        self.config = type("Config", (), {"vocab_size": len(logits)})()

    def new_cache(self, batch: int, max_len):
        return None

    def forward(self, idx: torch.Tensor, cache) -> torch.Tensor:
        return self.logits.expand(idx.size(0), idx.size(1), -1)


class Only(StateConstraint):
    """Allows only the tokens in `ids` (the state never changes)."""

    def __init__(self, vocab: int, ids: set[int], end_id: int | None = None):
        super().__init__(vocab, end_id)
        self.ids = ids

    def initial(self):
        return 0

    def step(self, state, token):
        return 0 if token in self.ids else None


class AfterPrompt(StateConstraint):
    """Takes the two prompt tokens, then allows nothing at all."""

    def initial(self):
        return 0

    def step(self, state, token):
        return state + 1 if state < 2 else None


class Counting(StateConstraint):
    """An example a user might write: odd and even tokens alternate, and token 0 ends after 5 tokens."""

    def initial(self):
        return (0, None)  # (tokens so far, parity of the last)

    def step(self, state, token):
        n, parity = state
        if n == -1:
            return state if token == 0 else None  # ended: the end token again
        if token == 0:
            return (-1, None) if n >= 5 else None
        if parity is not None and token % 2 == parity:
            return None
        return (n + 1, token % 2)


def draw(model, s: SamplingSettings, constraint=None, seed: int = 7, prompt=(1, 2)) -> torch.Tensor:
    prompt = torch.tensor(prompt)
    return torch.stack(list(sample_tokens(model, prompt, s, torch.Generator().manual_seed(seed), constraint)), dim=1)


def test_the_mask_comes_before_top_k_and_top_p():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    allowed = torch.tensor([[True, False, True, False, True]])  # the two likeliest tokens are not allowed
    out = process_logits(logits, SamplingSettings(top_k=1), None, allowed)
    assert torch.isfinite(out).tolist() == [[False, False, True, False, False]]  # top-1 among the allowed
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = process_logits(probs.log(), SamplingSettings(top_p=0.5), None, torch.tensor([[False, True, True, True]]))
    # renormalised over the allowed: 0.6, 0.3, 0.1 -> the nucleus of 0.5 is the first allowed token alone
    assert torch.isfinite(out).tolist() == [[False, True, False, False]]
    seen = torch.tensor([[False, False, True, False, False]])
    out = process_logits(logits, SamplingSettings(top_k=2, repetition_penalty=10.0), seen, allowed)
    assert torch.isfinite(out).tolist() == [[True, False, False, False, True]]  # 3 -> 0.3: the penalty after the mask


def test_the_token_loop_draws_only_allowed_tokens_even_greedy():
    model = Fixed([0.0, 9.0, 1.0, 8.0, 2.0])
    for s in (SamplingSettings(max_new_tokens=20, temperature=0), SamplingSettings(max_new_tokens=20, top_k=1),
              SamplingSettings(max_new_tokens=20, num_samples=3, top_p=0.5, temperature=2.0)):
        got = set(draw(model, s, Only(5, {0, 2}), prompt=(2,)).flatten().tolist())
        assert got == {2} if s.temperature == 0 or s.top_k == 1 else got <= {0, 2}


def test_allow_all_gives_identical_tokens():
    model = TinyLM()
    for s in (SamplingSettings(max_new_tokens=40, num_samples=3),
              SamplingSettings(max_new_tokens=40, num_samples=2, temperature=0.7, top_k=5, top_p=0.9,
                               repetition_penalty=1.3),
              SamplingSettings(max_new_tokens=10, temperature=0)):
        assert torch.equal(draw(model, s), draw(model, s, AllowAll(V)))


def test_nothing_allowed_falls_back_to_the_end_token_or_to_no_mask():
    model = TinyLM()
    s = SamplingSettings(max_new_tokens=8, num_samples=2, top_k=3)
    assert draw(model, s, AfterPrompt(V, end_id=5)).unique().tolist() == [5]
    got = draw(model, s, AfterPrompt(V, end_id=None))  # no end token to fall back on: the row is left unmasked
    assert got.shape == (2, 8) and torch.equal(got, draw(model, s))


def test_a_user_written_constraint_holds_at_every_step_and_caches_its_masks():
    model = TinyLM(seed=3)
    c = Counting(V, end_id=0)
    got = draw(model, SamplingSettings(max_new_tokens=30, num_samples=4, temperature=1.5), c)
    for row in got.tolist():
        body = [1, 2] + (row[: row.index(0)] if 0 in row else row)  # the prompt counts
        assert all(a % 2 != b % 2 for a, b in zip(body, body[1:], strict=False))
        assert 0 not in row or (len(body) >= 5 and set(row[row.index(0):]) == {0})
    assert c.n_states < 30  # one mask per distinct state, not per step


def test_a_prompt_that_breaks_the_constraint_is_one_clear_error():
    with pytest.raises(GenlabError, match="--no-constraint"):
        Only(V, {3}).start([1, 2], 1)
