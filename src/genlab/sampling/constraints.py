"""Constrained sampling: which next tokens are allowed, asked at every step for every sample.

As in llama.cpp's GBNF grammars and Outlines, a constraint is a small automaton over token ids. The
token loop (sampling/tokens.py) asks it for a boolean mask over the vocabulary before each draw, sets
the logits of disallowed tokens to -inf BEFORE the repetition penalty, temperature, top-k and top-p (so
top-k picks among allowed tokens only), and tells it which tokens were drawn:

    c.start(prompt_ids, num_samples)     once: every sample begins where the prompt leaves the automaton
    mask = c.allowed()                   (B, V) bool, True = may come next; at least one True per row
    c.advance(tokens)                    (B,) the drawn tokens; each sample's state moves on

The interface is `Constraint`. Most constraints are easiest written as a `StateConstraint`: give the
initial state and one pure function `step(state, token_id) -> next state, or None if the token is not
allowed there`. States must be hashable (tuples, frozensets): each distinct state's mask is computed
once, by trying every token, and kept in a table, as are the transitions (numbered states, so a step
costs two tensor gathers however complex the rules are; Python runs `step` only where a state or a
transition is met for the first time). Keep the state small (round what does not
matter) so that the number of distinct states stays in the thousands. A state where nothing is allowed
allows the end token (`end_id`), so a sample stops rather than the sampler failing; if even that is
impossible the token loop leaves such a row unmasked (sampling/logits.py: mask_logits).

An example, text that must match a regular expression as it grows (character tokenizer; the state is the
text so far, fine for short outputs, a compiled DFA state for long ones):

    class Matches(StateConstraint):
        def __init__(self, tokenizer, pattern):
            super().__init__(tokenizer.vocab_size, end_id=None)
            self.tok, self.pattern = tokenizer, regex.compile(pattern)   # the third-party `regex` module
        def initial(self):
            return ""
        def step(self, text, token):
            text += self.tok.decode([token])
            return text if self.pattern.fullmatch(text, partial=True) else None

`AllowAll` is the identity: sampling with it gives exactly the tokens of sampling without a constraint.
The music constraints (ABC meter, event well-formedness) are in genlab/music/constraints.py.
"""

from __future__ import annotations

from collections.abc import Hashable

import torch

from genlab.errors import GenlabError


class Constraint:
    """What the token loop asks. Subclasses implement the three methods below."""

    def start(self, prompt_ids: list[int], num_samples: int) -> None:
        """Begin `num_samples` samples, each after `prompt_ids` (raise GenlabError if the prompt breaks the rules)."""
        raise NotImplementedError

    def allowed(self) -> torch.Tensor:
        """(B, V) bool mask of the tokens each sample may take next."""
        raise NotImplementedError

    def advance(self, tokens: torch.Tensor) -> None:
        """The (B,) tokens just drawn."""
        raise NotImplementedError


class StateConstraint(Constraint):
    """A constraint given by `initial()` and `step(state, token) -> state | None`, with masks cached per state.

    Each state met gets a row number; its mask and its transitions are kept in two tables indexed by row (and
    token), so a step of the token loop is two tensor gathers, and Python runs `step` only on the first visit
    of a state or a transition. A sample that drew the fallback end token stays where it was (the end token
    stays its fallback); after any other token `step` refuses (a caller that ignored the mask) the sample is
    left unconstrained.
    """

    FREE = ("<unconstrained>",)  # the state of a sample past a refused token: everything allowed
    UNKNOWN = -1  # a transition not taken yet

    def __init__(self, vocab_size: int, end_id: int | None):
        self.vocab_size, self.end_id = vocab_size, end_id
        self._rows: dict[Hashable, int] = {}  # state -> its row of the tables
        self._states: list[Hashable] = []  # row -> state
        # one mask and one row of transitions per state met; both grow by doubling
        self._table = torch.zeros(64, vocab_size, dtype=torch.bool)
        self._next = torch.full((64, vocab_size), self.UNKNOWN, dtype=torch.long)  # (row, token) -> next row
        self.rows = torch.zeros(0, dtype=torch.long)  # (B,) each sample's state, as its row

    # ---- what a subclass writes
    def initial(self) -> Hashable:
        raise NotImplementedError

    def step(self, state: Hashable, token: int) -> Hashable | None:
        raise NotImplementedError

    # ---- the machinery
    def mask(self, state: Hashable) -> torch.Tensor:
        """(V,) bool: the tokens `step` accepts in `state`; the end token alone where it accepts none."""
        if state == self.FREE:
            return torch.ones(self.vocab_size, dtype=torch.bool)
        row = torch.tensor([self.step(state, t) is not None for t in range(self.vocab_size)], dtype=torch.bool)
        if not row.any() and self.end_id is not None:
            row[self.end_id] = True
        return row

    def _row(self, state: Hashable) -> int:
        row = self._rows.get(state)
        if row is None:
            row = self._rows[state] = len(self._states)
            self._states.append(state)
            if row == len(self._table):
                self._table = torch.cat([self._table, torch.zeros_like(self._table)])
                self._next = torch.cat([self._next, torch.full_like(self._next, self.UNKNOWN)])
            self._table[row] = self.mask(state)
        return row

    @property
    def n_states(self) -> int:
        """How many distinct states have been met (and their masks computed)."""
        return len(self._states)

    @property
    def states(self) -> list[Hashable]:
        """Each sample's state."""
        return [self._states[r] for r in self.rows.tolist()]

    def move(self, state: Hashable, token: int) -> Hashable:
        """The state after `token`; a refused token frees the sample, except the fallback end token."""
        if state == self.FREE:
            return state
        nxt = self.step(state, token)
        if nxt is None:  # the fallback end token keeps its state (it stays the fallback); anything else frees
            nxt = state if token == self.end_id else self.FREE
        return nxt

    def start(self, prompt_ids: list[int], num_samples: int) -> None:
        state = self.initial()
        for i, t in enumerate(prompt_ids):
            nxt = self.step(state, int(t))
            if nxt is None:
                raise GenlabError(f"the prompt breaks {type(self).__name__} at its token {i + 1}; fix the prompt "
                                  "or sample without the constraint (--no-constraint)")
            state = nxt
        self.rows = torch.full((num_samples,), self._row(state), dtype=torch.long)

    def allowed(self) -> torch.Tensor:
        return self._table[self.rows]

    def advance(self, tokens: torch.Tensor) -> None:
        tokens = tokens.cpu()
        nxt = self._next[self.rows, tokens]
        for i in (nxt == self.UNKNOWN).nonzero().flatten().tolist():  # first visits only
            row, token = int(self.rows[i]), int(tokens[i])
            if self._next[row, token] == self.UNKNOWN:  # an earlier sample of this step may have taken it
                self._next[row, token] = self._row(self.move(self._states[row], token))
            nxt[i] = self._next[row, token]
        self.rows = nxt


class AllowAll(StateConstraint):
    """Every token, always: the identity constraint (tests use it to check that masking changes nothing)."""

    def __init__(self, vocab_size: int):
        super().__init__(vocab_size, end_id=None)

    def initial(self) -> Hashable:
        return 0

    def step(self, state: Hashable, token: int) -> Hashable:
        return 0
