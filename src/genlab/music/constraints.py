"""Constraints for sampling music (the hook: genlab/sampling/constraints.py): tunes that keep time.

AbcMeterConstraint, for models trained with the ABC tokenizer, lets a tune be only what music21 reads
as bars of the meter's length. Lengths are counted in the tokenizer's unit, an eighth note (L:1/8):

- Header: `<s>`, then one meter token (`M:6/8`), then one key token (`K:Dmaj`), then the body.
- A note, rest or chord (`[` notes `]`) takes 1 unit times its duration token (`2`, `/2`, `3/2`; none = 1),
  times its tuplet factor (`(3`: 3 in the time of 2; `(2`, `(4`, `(5`... as music21 reads them, 5/7/9 in
  the time of 3 in compound meters) and its broken-rhythm factor (`A>B`: 3/2 and 1/2; `>>`: 7/4 and 1/4).
- Nothing may overflow a bar, and every step keeps the bar completable exactly (a tuplet can still close
  on the grid of the duration tokens), so the sampler never walks into a dead end.
- A bar line (`|`, `||`, `|]`, `|:`, `:|`, `::`, `|1`, `:|2`...) may close a bar only when it is full,
  except: the first bar of the tune, a pickup of any positive length; and the last bar, which may be
  short when it is closed by `|]`, `||` or `:|` - then the tune must end there. A short bar before a
  repeat sign in mid-tune (a pickup's complement) is not allowed: music21 counts it as a short bar, and
  the model is steered to write whole bars instead. An empty bar (two bar lines in a row) only as `|:`
  after a closing bar line (not after an ending: music21 then reads no measures at all), or at the start
  of the body; an ending marker `[1`, `[2` right after a closing bar line, then a note.
- Repeats balance: `:|` (and `::`, `:|2`) needs an open `|:`, the tune's start, or a `||`/`|]` section
  start before it; `|:` may not open inside an open `|:`; a tune may not end inside an open `|:`. A first
  ending (`[1`, `|1`) opens inside a repeat, holds plain bars up to its `:|`, and the second ending (`[2`
  right after that `:|`, or `:|2`) follows; music21 refuses to play repeats formed otherwise.
- `</s>` only right after a closing bar line (not `|:` or an ending), with no chord, tuplet or broken
  rhythm pending. An inline key `[K:...]` once, right after a closing bar line, and a note after it. No
  inline meter `[M:3/4]`: the header's meter holds for the whole tune (music21 ignores an inline meter when it reads
  tuplets and lays out measures, so such a tune could not be checked bar by bar; tunes that change
  meter are rare in folk corpora).
- `M:none` (free meter): no bar-length rule, the rest as above.

Real transcriptions are looser than this, and music21 reads them anyway. `lenient=True` accepts what it
reads as the same bars: a bar line left out at a line end (the Essen collection does so at every phrase
end; music21 splits such an overfull bar once, at the bar length, so a written bar may hold one bar or
two) or at the tune's end (`</s>` after the last note), an ending marker `[1` straight after notes, a
short last bar closed by any bar line, empty bars (`| |`), repeats in any order, inline keys anywhere
between notes and inline meters at the start of a bar. Sampling is strict:
sampled tunes write every bar line and balance their repeats. The tests read real tunes leniently and
check that the verdict agrees with music21's own measure lengths.

EventConstraint keeps `--tokenizer events` tunes well formed: OFF:p only for a sounding pitch, ON:p
only for a silent one and at most `max_voices` at once, no note held past `max_hold` steps (a SHIFT
that would exceed it is not allowed, so the note must be switched off first), and `</s>` only when
nothing sounds.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from math import gcd
from typing import NamedTuple

import torch

from genlab.music.describe import DESCRIPTION_TOKEN
from genlab.music.tokenizers import BOS, EOS, MAX_SHIFT, STEPS_PER_QUARTER, duration_value
from genlab.sampling.constraints import Constraint, StateConstraint

_NOTE = re.compile(r"^(\^\^|\^|__|_|=)?[A-Ga-g][,']*$")
_DURATION = re.compile(r"^(\d+/*\d*|/+\d*)$")
_TUPLET = re.compile(r"^\((\d)(?::(\d*))?(?::\d*)?$")
_METER = re.compile(r"^M:(\d+)/(\d+)$")
# Lengths are integers (Fractions made masks ~4x slower to compute): factors are in 1/F (F is divisible by
# every tuplet's p up to 9 and by the broken rhythms' 4), durations in ticks of 1/(F x their denominators) unit
F = 10080
_BROKEN = {">": (3 * F // 2, F // 2), "<": (F // 2, 3 * F // 2), ">>": (7 * F // 4, F // 4), "<<": (F // 4, 7 * F // 4)}
_FINAL_BARS = ("|]", "||", ":|")  # the bar lines that may close a short last bar
MAX_CHORD_NOTES = 4

START, METER, KEY, BODY, DONE = range(5)


class Abc(NamedTuple):
    """The state of one ABC tune being written; lengths in ticks (AbcMeterConstraint.unit to the eighth note),
    factors in 1/F."""

    phase: int = START
    bar_len: int | None = None  # None: free meter
    compound: bool = False  # 6/8, 9/8, 12/8...: (5 (7 (9 are in the time of 3
    pos: int = 0  # length of the bar so far, the pending note included
    factor: int = 0  # tuplet x broken factor of the pending note (0: no note pending)
    dur: int = 0  # its duration so far (a duration token may still change it while open)
    open: bool = False  # the pending note may still take a duration token
    broken: int = F  # factor of the next note, after `>` or `<`
    tuplet_left: int = 0  # notes still to come in the tuplet
    tuplet_factor: int = F
    chord: int = -1  # notes in the open chord; -1: no chord open
    first_bar: bool = True  # still in the first bar (a pickup may be short)
    repeat: int = 1  # 0: nothing open, 1: the start or a section start (implicit |:), 2: an explicit |: open
    last: str = "open"  # the last token: "bar" (a closing bar line), "open" (|:, ending, body start), "field"
    # (an inline key), "other"
    ending: int = 0  # 1: inside a first ending ([1 or |1), 2: its :| came and a [2 must follow
    must_end: bool = False  # a short last bar was closed
    notes: bool = False  # the tune has a note


def _meter(text: str) -> tuple[Fraction | None, bool]:
    """The bar length in eighth notes (None: free meter) and whether the meter is compound."""
    m = _METER.match(text)
    if not m:
        return None, False  # M:none
    num, den = int(m.group(1)), int(m.group(2))
    return Fraction(8 * num, den), num % 3 == 0 and num > 3


def _tuplet(match: re.Match, compound: bool) -> tuple[int, int]:
    """(notes, factor in 1/F) of a tuplet as music21 reads it: (p:q means p notes in the time of q."""
    p = int(match.group(1))
    q = int(match.group(2)) if match.group(2) else {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}.get(p, 3 if compound else 2)
    return p, q * F // p


class AbcMeterConstraint(StateConstraint):
    """Bars that fit their meter, a well-formed header, balanced repeats, an ending on a bar line (module doc)."""

    def __init__(self, tokenizer, lenient: bool = False):
        super().__init__(tokenizer.vocab_size, end_id=tokenizer.eos)
        self.lenient = lenient
        self.vocab_text = list(tokenizer.vocab)
        kinds = [self._kind(t) for t in tokenizer.vocab]
        values = {Fraction(1)} | {v for k, v in kinds if k == "dur"}
        self.unit = F * functools.reduce(lambda a, b: a * b // gcd(a, b), (v.denominator for v in values))  # ticks
        ticks = {"dur": lambda v: int(v * self.unit), "meter": self._meter_ticks, "inline_meter": self._meter_ticks}
        self.kinds = [(k, ticks[k](v) if k in ticks else v) for k, v in kinds]
        self.durations = sorted(int(v * self.unit) for v in values)
        self.grid = functools.reduce(gcd, self.durations)  # every bar lands on it
        # tokens that are allowed or not together (every note, every rest, ...): one step decides for the class
        classes: dict[object, list[int]] = {}
        for i, (kind, _) in enumerate(self.kinds):
            together = kind in ("note", "rest", "meter", "key", "inline_key", "inline_meter", "unknown", "description")
            classes.setdefault(kind if together else i, []).append(i)
        self.classes = [ids[0] for ids in classes.values()]  # one token that speaks for each class
        self.class_of = torch.empty(len(self.vocab_text), dtype=torch.long)  # token -> its class
        for k, ids in enumerate(classes.values()):
            self.class_of[ids] = k
        self._fits_cache: dict[int, bool] = {}
        self._alive_cache: dict[tuple, bool] = {}
        self._element_cache: dict[tuple, bool] = {}

    @staticmethod
    def _kind(token: str) -> tuple[str, object]:
        if token in (BOS, EOS):
            return token, None
        if token.startswith(DESCRIPTION_TOKEN):
            return "description", None
        if token.startswith("M:"):
            return "meter", _meter(token)
        if token.startswith("K:"):
            return "key", None
        if token.startswith("[M:"):
            return "inline_meter", _meter(token[1:-1])
        if token.startswith("[K:"):
            return "inline_key", None
        if _NOTE.match(token):
            return "note", None
        if token in ("z", "x"):
            return "rest", None
        if _DURATION.match(token):
            return "dur", duration_value(token)
        if _TUPLET.match(token):
            return "tuplet", _TUPLET.match(token)
        if token in _BROKEN:
            return "broken", _BROKEN[token]
        if token in ("-", "[", "]"):
            return token, None
        if re.match(r"^\[\d$", token):
            return "ending", None
        if token[0] in "|:" or token.startswith("[|"):
            return "bar", token
        return "unknown", None  # e.g. a token of a newer tokenizer: never allowed

    def _meter_ticks(self, meter: tuple[Fraction | None, bool]) -> tuple[int | None, bool]:
        return (None if meter[0] is None else int(meter[0] * self.unit)), meter[1]

    def initial(self) -> Abc:
        return Abc()

    def mask(self, state: Abc) -> torch.Tensor:
        if state == self.FREE:
            return super().mask(state)
        allowed = torch.tensor([self.step(state, token) is not None and self.kinds[token][0] != "description"
                                for token in self.classes])  # a description is read from the prompt, never drawn
        row = allowed[self.class_of]  # one gather: every token as its class
        if not row.any():
            row[self.end_id] = True
        return row

    # ---- lengths
    def _fits(self, room: int) -> bool:
        """Whether notes of the duration tokens can fill exactly `room` units."""
        if room == 0:
            return True
        if room < 0 or room % self.grid:
            return False
        known = self._fits_cache.get(room)
        if known is None:
            known = self._fits_cache[room] = any(self._fits(room - d) for d in self.durations if d <= room)
        return known

    def _alive(self, bar_len: int | None, pos: int, left: int, factor: int, broken: int) -> bool:
        """Whether the bar can still be filled exactly, `left` tuplet notes of `factor` (or a broken half) to come.
        Leniently a written bar may also hold two bars (music21 splits it once)."""
        key = (bar_len, pos, left, factor, broken)
        known = self._alive_cache.get(key)  # every rule asks this, for every state met: one look-up once known
        if known is None:
            known = self._alive_cache[key] = self._can_fill(bar_len, pos, left, factor, broken)
        return known

    def _can_fill(self, bar_len: int | None, pos: int, left: int, factor: int, broken: int) -> bool:
        if bar_len is None:
            return True
        cap = 2 * bar_len if self.lenient else bar_len
        if pos > cap:
            return False
        if left == 0 and broken == F:
            return self._fits(bar_len - pos) or (self.lenient and self._fits(cap - pos))
        f = factor * broken // F if left else broken
        return any(self._alive(bar_len, pos + d * f // F, max(left - 1, 0), factor, F)
                   for d in self.durations if pos + d * f // F <= cap)

    # ---- the rules
    def step(self, s: Abc, token: int) -> Abc | None:
        kind, value = self.kinds[token]
        if s.phase == DONE:
            return s if kind == EOS else None
        if s.phase == START:
            return s._replace(phase=METER) if kind == BOS else None
        if s.phase == METER:
            if kind == "description":
                return s  # the prompt's description, between <s> and the meter
            return s._replace(phase=KEY, bar_len=value[0], compound=value[1]) if kind == "meter" else None
        if s.phase == KEY:
            return s._replace(phase=BODY) if kind == "key" else None
        if s.must_end and kind != EOS:
            return None
        if s.ending == 2 and not (kind == "ending" and self.vocab_text[token][1] == "2"):
            return None  # after a first ending's :| comes the second ending
        if s.chord >= 0:  # inside [ ]: notes, then ]
            if kind == "note" and s.chord < MAX_CHORD_NOTES:
                return s._replace(chord=s.chord + 1)
            return self._element(s._replace(chord=-1)) if kind == "]" and s.chord > 0 else None
        pending = s.tuplet_left or s.broken != F  # a note must come next
        if s.open and kind not in ("dur", "broken") and \
                not self._alive(s.bar_len, s.pos, s.tuplet_left, s.tuplet_factor, s.broken):
            return None  # the pending note needs a duration token: as it stands (one unit) it does not fit
        if kind in ("note", "rest"):
            return self._element(s)
        if kind == "[":
            nxt = self._element(s)  # the chord is one note: check now that it fits
            return None if nxt is None else s._replace(chord=0)
        if kind == "dur":
            if not s.open:
                return None
            pos = s.pos + (value - s.dur) * s.factor // F
            if not self._alive(s.bar_len, pos, s.tuplet_left, s.tuplet_factor, s.broken):
                return None
            return s._replace(pos=pos, dur=value, open=False)
        if kind == "broken":
            if s.factor != F or pending:
                return None  # after a plain note only (not inside a tuplet or another broken pair)
            pos = s.pos + s.dur * (value[0] - F) // F
            if not self._alive(s.bar_len, pos, 0, F, value[1]):
                return None
            return s._replace(pos=pos, factor=0, open=False, broken=value[1], last="other")
        if kind == "-":
            return s._replace(factor=0, open=False, last="other") if s.factor else None
        if kind == "tuplet":
            left, factor = _tuplet(value, s.compound)
            if pending or (s.bar_len is not None and s.pos == s.bar_len) or \
                    not self._alive(s.bar_len, s.pos, left, factor, F):
                return None
            return s._replace(factor=0, open=False, tuplet_left=left, tuplet_factor=factor, last="other")
        if kind == "inline_key":
            if self.lenient:
                return None if pending else s._replace(factor=0, open=False, last="other")
            return s._replace(last="field") if s.last == "bar" else None  # once, at the start of a bar
        if kind == "inline_meter":
            if not self.lenient or pending or s.pos or s.last == "other":
                return None
            return s._replace(bar_len=value[0], compound=value[1], first_bar=s.first_bar and not s.notes)
        if kind == "ending":
            if s.last == "bar" and self.lenient:
                return s._replace(last="open")
            if s.last == "bar":
                first = self.vocab_text[token][1] == "1"
                if (first and (s.ending or not s.repeat or not s.notes)) or (not first and s.ending != 2):
                    return None  # [1 inside a repeat, [2 right after the first ending's :|
                return s._replace(last="open", ending=1 if first else 0)
            return None if pending or not self.lenient else self._bar(s, "|" + self.vocab_text[token][1:])
        if kind == "bar":
            return None if pending else self._bar(s, value)
        if kind == EOS:
            if self.lenient and s.pos and not pending:  # the last bar line left out
                s = self._bar(s, "|]")
                return None if s is None else s._replace(phase=DONE)
            return s._replace(phase=DONE) if s.last == "bar" and s.repeat != 2 and s.notes and not s.ending else None
        return None

    def _element(self, s: Abc) -> Abc | None:
        """A note, rest or closed chord: it starts at one unit, and a duration token may follow."""
        pos = s.pos
        factor = s.broken * (s.tuplet_factor if s.tuplet_left else F) // F
        left = max(s.tuplet_left - 1, 0)
        key = (s.bar_len, pos, factor, left, s.tuplet_factor)
        fits = self._element_cache.get(key)
        if fits is None:  # some duration of it fits: asked for every note, rest and chord of every new state
            fits = self._element_cache[key] = any(
                self._alive(s.bar_len, pos + d * factor // F, left, s.tuplet_factor, F) for d in self.durations)
        if not fits:
            return None
        return s._replace(pos=pos + self.unit * factor // F, factor=factor, dur=self.unit, open=True, broken=F,
                          tuplet_left=left, last="other", notes=True)

    def _bar(self, s: Abc, token: str) -> Abc | None:
        """A bar line: it closes the bar (full, a pickup, or a short last one) and moves the repeats on."""
        core = token.rstrip("0123456789")
        closes, opens = core.startswith(":"), core.endswith(":")
        if s.pos == 0:  # an empty bar: a repeat start after a bar line, or bar lines before the first note
            if s.last == "field" and not self.lenient:
                return None  # a bar of an inline key alone: music21 reads a measure of no length
            starts = not s.notes and core in ("|", "||", "[|", "|:")  # bar lines before the first note
            if not ((core == "|:" and s.last == "bar") or starts or self.lenient):
                return None
        elif s.bar_len is not None and s.pos != s.bar_len and not (self.lenient and s.pos == 2 * s.bar_len):
            if s.first_bar and s.pos < s.bar_len:
                pass  # a pickup
            elif token in _FINAL_BARS or self.lenient:
                s = s._replace(must_end=True)  # a short last bar
            else:
                return None
        repeat, ending, digit = s.repeat, s.ending, token[-1] if token[-1].isdigit() else ""
        if self.lenient:
            closes = opens = False  # repeats in any order
            digit = ""
        if ending == 1 and core not in ("|", ":|"):
            return None  # a first ending is plain bars up to its :|
        if digit == "1":
            if ending or not repeat or core != "|" or not s.notes:
                return None  # (music21 does not read `||1` as a first ending)
            ending = 1
        elif closes:
            if digit == "2" and ending != 1:
                return None  # :|2 ends a first ending
            ending = 2 if ending == 1 and digit != "2" else 0
        elif digit:
            return None  # |2 without its :|
        if closes:
            if repeat == 0:
                return None
            repeat = 0
        if opens:
            if repeat == 2 and not closes:
                return None
            repeat = 2
        if core in ("||", "|]", "[|") and repeat == 0:
            repeat = 1  # a section start: a later :| repeats back to here
        if s.must_end and (repeat == 2 or ending):
            return None
        return s._replace(pos=0, factor=0, open=False, first_bar=s.first_bar and s.pos == 0,
                          repeat=repeat, ending=ending, last="open" if opens or token[-1].isdigit() else "bar")


class EventConstraint(Constraint):
    """Well-formed note events: OFF only for a sounding pitch, every note off within `max_hold` steps,
    at most `max_voices` sounding at once, `</s>` only in silence. Rows are built directly (the state has
    times in it, too many to cache per state)."""

    def __init__(self, tokenizer, max_hold: int = 4 * 4 * STEPS_PER_QUARTER, max_voices: int = 12):
        self.tok, self.max_hold, self.max_voices = tokenizer, max_hold, max_voices
        v = tokenizer.vocab_size
        ids = tokenizer.index
        self.on = torch.tensor([ids[f"ON:{p}"] for p in range(128)])
        self.off = torch.tensor([ids[f"OFF:{p}"] for p in range(128)])
        self.shift = torch.tensor([ids[f"SHIFT:{s}"] for s in range(1, MAX_SHIFT + 1)])
        self.base = torch.zeros(v, dtype=torch.bool)  # velocities, always allowed in a tune
        for t, i in ids.items():
            if t.startswith("VEL:"):
                self.base[i] = True
        self.kind = {i: t.partition(":") for t, i in ids.items()}
        self.states: list[dict | None] = []  # per sample: pitch -> steps sounding; None: not started or done

    def start(self, prompt_ids: list[int], num_samples: int) -> None:
        from genlab.errors import GenlabError

        state: dict[int, int] | None = None
        for i, t in enumerate(prompt_ids):
            state = self._step(state, int(t), started=i > 0)
            if state is False:
                raise GenlabError(f"the prompt breaks the event rules at its token {i + 1} (an OFF for a silent "
                                  "pitch, a note held too long or too many at once); fix it or use --no-constraint")
        self.states = [dict(state) if state is not None else None for _ in range(num_samples)]
        self.started = [len(prompt_ids) > 0] * num_samples

    def _step(self, state, token: int, started: bool):
        """The next state, or False if `token` is not allowed."""
        name, _, value = self.kind[token]
        if not started:
            return {} if name == BOS else False
        if state is None:  # done
            return None if name == EOS else False
        if name == EOS:
            return None if not state else False
        if name == "VEL":
            return state
        if name == "SHIFT":
            if state and max(state.values()) + int(value) > self.max_hold:
                return False
            return {p: t + int(value) for p, t in state.items()}
        p = int(value)
        if name == "ON":
            return {**state, p: 0} if p not in state and len(state) < self.max_voices else False
        if name == "OFF":
            return {q: t for q, t in state.items() if q != p} if p in state else False
        return False

    def allowed(self) -> torch.Tensor:
        rows = torch.zeros(len(self.states), self.tok.vocab_size, dtype=torch.bool)
        for i, (state, started) in enumerate(zip(self.states, self.started, strict=True)):
            if not started:
                rows[i, self.tok.bos] = True
            elif state is None:
                rows[i, self.tok.eos] = True
            else:
                rows[i] = self.base
                sounding = torch.tensor(sorted(state), dtype=torch.long)
                if len(state) < self.max_voices:
                    rows[i, self.on] = True
                    rows[i, self.on[sounding]] = False
                rows[i, self.off[sounding]] = True
                room = self.max_hold - max(state.values(), default=0)
                rows[i, self.shift[: max(0, min(room, MAX_SHIFT))]] = True
                rows[i, self.tok.eos] = not state
        return rows

    def advance(self, tokens: torch.Tensor) -> None:
        for i, t in enumerate(tokens.tolist()):
            nxt = self._step(self.states[i], t, self.started[i])
            self.started[i] = True
            self.states[i] = None if nxt is False else nxt  # a refused token (never drawn) ends the constraint


def music_constraint(tokenizer) -> Constraint:
    """The default constraint for a music model's tokenizer."""
    return AbcMeterConstraint(tokenizer) if tokenizer.kind == "abc" else EventConstraint(tokenizer)
