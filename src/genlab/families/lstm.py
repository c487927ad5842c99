"""LSTM: a recurrent language model.

Implements a multi-layer LSTM (Hochreiter & Schmidhuber 1997) language model in the style of
char-rnn (Karpathy 2015) and the regularised LSTM of Zaremba et al. 2014: token embedding, a stack
of LSTM layers with dropout between them, and a linear head (tied to the embedding when sizes
match, Press & Wolf 2017). Training uses truncated back-propagation through random windows;
sampling carries the hidden state forward, so the context is not limited to the training window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from genlab.families.base import LanguageModelFamily, feature_ids


@dataclass
class LSTMConfig:
    vocab_size: int = 65
    block_size: int = 128  # length of the training windows (truncated BPTT)
    n_layer: int = 2
    n_embd: int = 256  # embedding and hidden size
    dropout: float = 0.0
    tie_weights: bool = True
    # ids of a second input the data gives beside each token (music: the room left in the bar), embedded and
    # added to the token embedding; 0: none
    feature_vocab_size: int = 0


class LSTMState:
    """The (h, c) state of every layer, carried from one sampling step to the next."""

    def __init__(self, batch_size: int = 1):
        self.hc: tuple[torch.Tensor, torch.Tensor] | None = None
        self.pos = 0
        self.batch_size = batch_size

    def put_row(self, row: int, other: LSTMState, src: int = 0, length: int | None = None) -> None:
        """Copy row `src` of `other`'s state into row `row` (a prompt prefilled alone joins a batch; `other` may
        be this state: a row moves). The state holds all history, so `length` is not needed."""
        if self.hc is None:  # zeros, as nn.LSTM starts from
            self.hc = tuple(t.new_zeros(t.size(0), self.batch_size, t.size(2)) for t in other.hc)
        for mine, theirs in zip(self.hc, other.hc, strict=True):
            mine[:, row] = theirs[:, src]


class LSTM(nn.Module):
    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.feature_vocab_size:
            self.wfe = nn.Embedding(config.feature_vocab_size, config.n_embd)
            nn.init.normal_(self.wfe.weight, std=0.02)
        self.drop = nn.Dropout(config.dropout)
        self.rnn = nn.LSTM(
            config.n_embd, config.n_embd, num_layers=config.n_layer, batch_first=True,
            dropout=config.dropout if config.n_layer > 1 else 0.0,
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.zeros_(self.lm_head.bias)

    @property
    def max_context(self) -> None:
        return None  # the state summarises any amount of history

    def new_cache(self, batch_size: int, max_len: int | None = None) -> LSTMState:
        return LSTMState(batch_size)

    def forward(self, idx: torch.Tensor, cache: LSTMState | None = None, features: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Token ids (B, T) -> next-token logits (B, T, vocab). With a state, idx continues it. `features`
        (B, T): the data's second input, for a model built with feature_vocab_size."""
        return self.lm_head(self.body(idx, cache, features))

    def body(self, idx: torch.Tensor, cache: LSTMState | None = None, features: torch.Tensor | None = None
             ) -> torch.Tensor:
        """The hidden states (B, T, n_embd) that the head reads (a reward model's head reads them too)."""
        x = self.wte(idx)  # (B, T, C)
        if self.config.feature_vocab_size:
            x = x + self.wfe(feature_ids(features, idx))
        x = self.drop(x)
        out, hc = self.rnn(x, cache.hc if cache is not None else None)
        if cache is not None:
            cache.hc = hc
            cache.pos += idx.size(1)
        return self.drop(out)

    def decode_rows(self, idx: torch.Tensor, cache: LSTMState, positions: torch.Tensor) -> torch.Tensor:
        """One token per row, (B, 1), continuing the first B rows of a batch state (continuous batching), as
        forward() would: rows are independent states, so `positions` (GPT's per-row lengths) is not needed."""
        B, (h, c) = idx.size(0), cache.hc
        rows = LSTMState(B)
        rows.hc = (h[:, :B].contiguous(), c[:, :B].contiguous())
        logits = self(idx, rows)
        h[:, :B], c[:, :B] = rows.hc
        return logits


class LSTMFamily(LanguageModelFamily):
    name = "lstm"
    config_class = LSTMConfig
    lora_targets = r"rnn\.weight_(ih|hh)_l\d+"  # the gates' input and recurrent matrices of every layer
    presets: ClassVar[dict] = {"tiny": {"n_layer": 1, "n_embd": 64, "block_size": 64},
                               "small": {"n_layer": 2, "n_embd": 256, "block_size": 128},
                               "base": {"n_layer": 3, "n_embd": 512, "block_size": 256}}

    def build(self, config: LSTMConfig) -> LSTM:
        return LSTM(config)
