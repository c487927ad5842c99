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

import copy
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from genlab.music.constraints import AbcMeterConstraint, F, _tuplet

ROOM_NONE, ROOM_OVER = 0, 1
ROOM_GRID = 12  # ids per eighth note
MAX_ROOM = 16 * ROOM_GRID  # two bars of 4/4; longer rooms (rare meters like 12/4) share the last id
ROOM_IDS = 2 + MAX_ROOM + 1  # the feature_vocab_size of a model that reads them


@dataclass(slots=True)
class Count:
    """Where one tune is in its bar; lengths in BarRoom.unit ticks per eighth note, factors in 1/F."""

    bar: int | None = None  # the meter's bar; None: no meter yet, free meter, or the tune has ended
    compound: bool = False  # 6/8, 9/8, 12/8...: (5 (7 (9 are in the time of 3
    pos: int = 0  # the length of the bar so far, the last note included
    factor: int = 0  # tuplet x broken factor of the last note while a duration may still follow it (0: none may)
    dur: int = 0  # the last note's duration
    broken: int = F  # the factor of the next note, after `>` or `<`
    tuplet_left: int = 0  # notes still to come in a tuplet
    tuplet_factor: int = F
    in_chord: bool = False  # between `[` and `]`: the chord counts once, at its `[`

    def new_bar(self) -> None:
        """A bar line: nothing of the bar so far, no note pending, no broken rhythm or tuplet carried over."""
        self.pos, self.factor, self.broken, self.tuplet_left = 0, 0, F, 0


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
        self.counts: list[Count] = []

    def step(self, c: Count, token: int) -> int:
        """Read one token into `c` (changed in place); returns the room id after it."""
        kind, value = self.kinds[token]
        if kind == "<s>":
            c.__init__()
            return ROOM_NONE
        if kind in ("meter", "inline_meter"):
            bar, c.compound = value
            c.bar = None if bar is None else int(bar * self.unit)
            c.pos = 0 if kind == "meter" else c.pos
            c.factor = 0
        elif kind in ("note", "rest") and c.in_chord:
            pass  # a note inside a chord: the chord counted at its `[`
        elif kind in ("note", "rest", "["):
            factor = c.broken * (c.tuplet_factor if c.tuplet_left else F) // F
            c.pos += self.unit * factor // F
            c.factor, c.dur, c.broken = factor, self.unit, F
            c.tuplet_left = max(c.tuplet_left - 1, 0)
            c.in_chord = kind == "["
        elif kind == "]":
            c.in_chord = False
        elif kind == "dur":
            if c.factor:
                c.pos += (value - c.dur) * c.factor // F
                c.dur, c.factor = value, 0  # one duration per note
        elif kind == "broken":
            first, second = value
            c.pos += c.dur * (first - F) // F  # the note before grows (or shrinks), the next takes the rest
            c.broken, c.factor = second, 0
        elif kind == "tuplet":
            c.tuplet_left, c.tuplet_factor = _tuplet(value, c.compound)
            c.factor = 0
        elif kind in ("bar", "ending"):
            c.new_bar()
        elif kind == "</s>":
            c.bar = None
        else:
            c.factor = 0  # a tie, an inline key: the note before is complete
        return self.room(c)

    def room(self, c: Count) -> int:
        if c.bar is None:
            return ROOM_NONE
        left = c.bar - c.pos
        if left < 0:
            return ROOM_OVER
        return 2 + min(MAX_ROOM, round(left * ROOM_GRID / self.unit))

    def ids(self, tokens: np.ndarray) -> np.ndarray:
        """The room id after each token of a token stream (tunes one after another, each from its <s>)."""
        c, step = Count(), self.step
        return np.fromiter((step(c, t) for t in np.asarray(tokens).tolist()), dtype=np.uint8, count=len(tokens))

    # ---- the token loop's features protocol
    def start(self, prompt_ids: list[int], num_samples: int) -> torch.Tensor:
        """(num_samples, len(prompt)) room ids of the prompt; every sample continues from its end."""
        c = Count()
        row = [self.step(c, int(t)) for t in prompt_ids]
        self.counts = [copy.copy(c) for _ in range(num_samples)]
        return torch.tensor([row] * num_samples, dtype=torch.long)

    def advance(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B,) drawn tokens -> (B,) room ids after them."""
        return torch.tensor([self.step(c, t) for c, t in zip(self.counts, tokens.tolist(), strict=True)],
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
    c, out, added = Count(), [], 0
    for t in tokens:
        kind, _ = counter.kinds[index[t]]
        starts = kind in ("note", "rest", "[", "tuplet") and not c.in_chord
        if starts and c.bar is not None and c.pos == c.bar and c.broken == F and c.tuplet_left == 0:
            out.append("|")
            c.new_bar()
            added += 1
        if kind == "</s>" and counter.kinds[index[out[-1]]][0] not in ("bar", "<s>", "meter", "key"):
            out.append("|]")
            added += 1
        counter.step(c, index[t])
        out.append(t)
    return out, added
