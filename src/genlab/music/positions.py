"""Where in the bar a tune is: a second input beside each ABC token, so the model need not add up durations.

A bar line is right when the notes before it fill the meter's bar, and to know that, a model that
reads only tokens must add up every duration since the last bar line, tuplets and broken rhythms
included. Small models learn that sum slowly (they write bars of 7 eighths in 6/8). Like the
bar/position tokens of REMI (Huang & Yang 2020, "Pop Music Transformer") and the metrical position
embeddings of beat-aware music models, we hand the model the answer instead: after each token, how
much of the bar is left, as an id of its own embedding (`feature_vocab_size` in the family's config;
the token loop and the loss pass it beside the token ids).

The room is counted exactly as AbcMeterConstraint counts lengths (music/constraints.py: a note, rest or
chord is one unit times its duration, tuplet and broken-rhythm factors; a bar line starts a new bar), in
twelfths of an eighth note (which holds sixteenths, thirty-seconds and triplets):

    ROOM_NONE (0)    no bar to count: the header, free meter (`M:none`), the end
    ROOM_OVER (1)    the bar is already longer than the meter's
    2 + k            k/12 eighth notes left (k capped at MAX_ROOM; lengths off that grid round to it)

Unlike the constraint, the counter never refuses a token: it reads real tunes and unconstrained
samples alike, so the ids describe whatever the tokens say.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from genlab.music.constraints import AbcMeterConstraint, F, _tuplet

ROOM_NONE, ROOM_OVER = 0, 1
ROOM_GRID = 12  # ids per eighth note
MAX_ROOM = 16 * ROOM_GRID  # two bars of 4/4; longer rooms (rare meters like 12/4) share the last id
ROOM_IDS = 2 + MAX_ROOM + 1  # the feature_vocab_size of a model that reads them


class BarRoom:
    """Counts the room left in the bar over ABC token ids: `ids(tokens)` for a whole stream, or one sample at a
    time with `start`/`advance` (the token loop's `features` protocol, batched)."""

    def __init__(self, vocab: list[str]):
        kinds = [AbcMeterConstraint._kind(t) for t in vocab]
        values = {Fraction(1)} | {v for k, v in kinds if k == "dur"}
        denominators = 1
        for v in values:
            denominators = denominators * v.denominator // np.gcd(denominators, v.denominator)
        self.unit = F * int(denominators)  # ticks per eighth note: every length is a whole number of them
        self.kinds = [(k, int(v * self.unit) if k == "dur" else v) for k, v in kinds]
        self.states: list[list] = []

    # ---- one tune, token by token: the state is [bar, pos, factor, dur, broken, tuplet_left, tuplet_factor, chord]
    def fresh(self) -> list:
        return [None, 0, 0, 0, F, 0, F, False]

    def step(self, s: list, token: int) -> int:
        """Read one token into the state `s` (changed in place); returns the room id after it."""
        kind, value = self.kinds[token]
        if kind == "<s>":
            s[:] = self.fresh()
            return ROOM_NONE
        if kind in ("meter", "inline_meter"):
            bar = value[0]
            s[0] = None if bar is None else int(bar * self.unit)
            s[1] = 0 if kind == "meter" else s[1]
            s[2] = 0
        elif kind in ("note", "rest") and s[7]:
            pass  # a note inside a chord: the chord counts once, at its `[`
        elif kind in ("note", "rest", "["):
            factor = s[4] * (s[6] if s[5] else F) // F
            s[1] += self.unit * factor // F
            s[2], s[3], s[4] = factor, self.unit, F
            s[5] = max(s[5] - 1, 0)
            s[7] = kind == "["
        elif kind == "]":
            s[7] = False
        elif kind == "dur":
            if s[2]:
                s[1] += (value - s[3]) * s[2] // F
                s[3] = value
                s[2] = 0  # one duration per note
        elif kind == "broken":
            if s[2] or s[3]:
                first, second = value
                s[1] += s[3] * (first - F) // F
                s[4] = second
            s[2] = 0
        elif kind == "tuplet":
            s[5], s[6] = _tuplet(value, False)
            s[2] = 0
        elif kind in ("bar", "ending"):
            _new_bar(s)
        elif kind == "</s>":
            s[0] = None
        else:
            s[2] = 0  # a tie, an inline key: the note before is complete
        return self.room(s)

    def room(self, s: list) -> int:
        if s[0] is None:
            return ROOM_NONE
        left = s[0] - s[1]
        if left < 0:
            return ROOM_OVER
        return 2 + min(MAX_ROOM, round(left * ROOM_GRID / self.unit))

    def ids(self, tokens: np.ndarray) -> np.ndarray:
        """The room id after each token of a token stream (tunes one after another, each from its <s>)."""
        s = self.fresh()
        step = self.step
        return np.fromiter((step(s, t) for t in np.asarray(tokens).tolist()), dtype=np.uint8, count=len(tokens))

    # ---- the token loop's features protocol
    def start(self, prompt_ids: list[int], num_samples: int) -> torch.Tensor:
        """(num_samples, len(prompt)) room ids of the prompt; every sample continues from its end."""
        s = self.fresh()
        row = [self.step(s, int(t)) for t in prompt_ids]
        self.states = [list(s) for _ in range(num_samples)]
        return torch.tensor([row] * num_samples, dtype=torch.long)

    def advance(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B,) drawn tokens -> (B,) room ids after them."""
        return torch.tensor([self.step(s, t) for s, t in zip(self.states, tokens.tolist(), strict=True)],
                            dtype=torch.long)


def complete_bar_lines(tokens: list[str]) -> tuple[list[str], int]:
    """A tune's tokens with the bar lines its transcriber left out put back; returns them and how many.

    Some collections leave the bar line out where a line ends (the Essen folk songs, at every phrase end),
    so one written bar holds two; music21 reads it as two bars, and so should the model: where a bar is full
    exactly at the start of a new note, rest, chord or tuplet, a `|` goes in before it. A bar that overflows
    between notes is left as it is. A tune that ends without a bar line (two in three Essen songs) gets the
    final one, `|]`: sampling ends a tune on a bar line, and a model that learned to stop after a note
    would otherwise never find its end there."""
    vocab = sorted(set(tokens))
    index = {t: i for i, t in enumerate(vocab)}
    counter = BarRoom(vocab)
    s, out, added = counter.fresh(), [], 0
    for t in tokens:
        kind, _ = counter.kinds[index[t]]
        starts = kind in ("note", "rest", "[", "tuplet") and not s[7]
        if starts and s[0] is not None and s[1] == s[0] and s[4] == F and s[5] == 0:
            out.append("|")
            _new_bar(s)
            added += 1
        if kind == "</s>" and counter.kinds[index[out[-1]]][0] not in ("bar", "<s>", "meter", "key"):
            out.append("|]")
            added += 1
        counter.step(s, index[t])
        out.append(t)
    return out, added


def _new_bar(s: list) -> None:
    """A bar line: nothing of the bar so far, no note pending, no broken rhythm or tuplet carried over."""
    s[1], s[2], s[4], s[5] = 0, 0, F, 0
