"""Music tokenizers: ABC in musical units (folk-rnn style) and note events (performance style).

AbcTokenizer follows folk-rnn (Sturm et al. 2016, "Music transcription modelling and composition
using deep learning"): a tune is its meter, its key and then its body as a sequence of musical
units — a note with its accidental and octave, a duration, a bar line or repeat, a tuplet, a
broken rhythm, a tie, a rest, a chord bracket. Titles, chord symbols, slurs, grace notes and
ornaments are dropped, and every duration is rescaled to a unit length of 1/8, so the vocabulary
is small (~150) and each token means one musical thing. `encode(decode(t)) == t` for every tune.

EventTokenizer encodes notes as performance events in the manner of Music Transformer's
performance encoding (Oore et al. 2018; Huang et al. 2018): NOTE_ON, NOTE_OFF, TIME_SHIFT and
VELOCITY. We keep its events (they handle overlapping voices, as in Bach chorales, with no notion
of bars) but measure time in twelfths of a quarter note instead of 10 ms: the MIDI and MusicXML
we read are scores, so beat-relative time is exact for sixteenths and triplets, tempo-free, and
the encoding round-trips a quantized score exactly. REMI's bar/position tokens would need a
reliable meter, which arbitrary MIDI files do not carry.

Inputs are bounded, so that a tiny file cannot become a huge token stream: a silence between notes
longer than MAX_SILENCE (four 4/4 bars) is shortened to it, an event tune is cut at MAX_EVENT_TOKENS
tokens and an ABC tune at MAX_ABC_TOKENS (after its last whole bar). Each cut is counted by the caller
into the corpus's data summary.
"""

from __future__ import annotations

import collections
import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from genlab.errors import GenlabError
from genlab.io import atomic_write_text
from genlab.music.notes import Note
from genlab.text.tokenizer import TokenizerFileError, corrupt_tokenizer, read_tokenizer_json

BOS, EOS = "<s>", "</s>"

# ---------------------------------------------------------------------------------------------------
# ABC
# ---------------------------------------------------------------------------------------------------

_MODES = {
    "": "maj", "maj": "maj", "major": "maj", "ion": "maj", "ionian": "maj", "m": "min", "min": "min",
    "minor": "min", "aeo": "min", "aeolian": "min", "dor": "dor", "dorian": "dor", "mix": "mix",
    "mixolydian": "mix", "phr": "phr", "phrygian": "phr", "lyd": "lyd", "lydian": "lyd", "loc": "loc",
    "locrian": "loc",
}
_KEY_RE = re.compile(r"^([A-Ga-g])([#b]?)\s*([A-Za-z]*)")
_METER_RE = re.compile(r"^(\d+)/(\d+)$")
_ABC_START = re.compile(r"\s*(X:|[MKL]:)")  # a prompt in ABC (header fields, a tune), not a description

# One body unit per alternative; order matters (longer forms first).
_BODY_RE = re.compile(r"""
    (?P<field>\[[A-Za-z]:[^\]]*\])                # inline field [M:3/4]
  | (?P<bar>:*\[?\|+[\]:|]*\d?|::+\d?|\[\d)       # bar lines, repeats and endings
  | (?P<note>(?:\^\^|\^|__|_|=)?[A-Ga-g][,']*)    # a pitch with accidental and octave
  | (?P<rest>[zx])
  | (?P<mrest>Z\d*)                               # multi-bar rest
  | (?P<dur>\d+/*\d*|/+\d*)                       # a duration
  | (?P<tuplet>\(\d(?::\d*)*)
  | (?P<broken>[<>]+)
  | (?P<tie>-)
  | (?P<chord_open>\[)
  | (?P<chord_close>\])
  | (?P<skip>"[^"]*"|![^!\n]*!|\+[^+\n]*\+|\{[^}]*\}|\((?!\d)|!|[ \t\\)~.H-Yh-wy`$*&;@#%]+)  # ornaments, slurs, text
""", re.VERBOSE)


class AbcError(ValueError):
    """A tune (or prompt) that this tokenizer cannot represent."""


def _meter_token(value: str) -> str:
    v = value.split("%")[0].strip().replace(" ", "")
    if v == "C":
        return "M:4/4"
    if v == "C|":
        return "M:2/2"
    if _METER_RE.match(v):
        return f"M:{v}"
    if v.lower() in ("none", "") or v.upper().startswith("FREI"):
        return "M:none"
    raise AbcError(f"meter {value!r}")


def _key_token(value: str) -> str:
    v = value.split("%")[0].strip()
    m = _KEY_RE.match(v)
    if not m:
        raise AbcError(f"key {value!r}")
    rest = v[m.end():].strip()
    mode = _MODES.get(m.group(3).lower()[:10])
    if mode is None and m.group(3).lower()[:3] in _MODES:
        mode = _MODES[m.group(3).lower()[:3]]
    if mode is None or (rest and not rest.startswith(("clef", "octave", "transpose"))):
        raise AbcError(f"key {value!r}")
    return f"K:{m.group(1).upper()}{m.group(2)}{mode}"


def _unit_length(value: str) -> Fraction:
    try:
        return Fraction(value.split("%")[0].strip().replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        raise AbcError(f"unit length {value!r}") from None


def _default_unit(meter: str) -> Fraction:
    """ABC's rule: unit 1/16 when the meter is below 3/4, else 1/8."""
    m = _METER_RE.match(meter[2:])
    if m and Fraction(int(m.group(1)), int(m.group(2))) < Fraction(3, 4):
        return Fraction(1, 16)
    return Fraction(1, 8)


def duration_value(text: str) -> Fraction:
    """ABC duration text -> multiple of the unit: '2' -> 2, '/2' -> 1/2, '/' -> 1/2, '3/' -> 3/2, '//' -> 1/4."""
    if "/" not in text:
        return Fraction(int(text))
    num, _, den = text.partition("/")
    n = int(num) if num else 1
    if den.startswith("/") or not den:
        return Fraction(n, 2 ** text.count("/"))
    return Fraction(n, int(den.lstrip("/")))


def _duration_token(value: Fraction) -> str | None:
    """Canonical duration text relative to L:1/8 (None when it is one unit)."""
    if value == 1:
        return None
    if value.denominator == 1:
        return str(value.numerator)
    if value.numerator == 1:
        return f"/{value.denominator}"
    return f"{value.numerator}/{value.denominator}"


def _bar_token(text: str) -> str:
    """Canonical bar line: ':|', '|:', '::' (both), '||', '|]', '[|', '|', with an ending digit kept."""
    digit = text[-1] if text[-1].isdigit() else ""
    core = text.rstrip("0123456789")
    if core == "[":
        return f"[{digit}"
    left, right = core.startswith(":"), core.endswith(":")
    if left and right:
        bar = "::"
    elif left:
        bar = ":|"
    elif right:
        bar = "|:"
    elif core.startswith("[|"):
        bar = "[|"
    elif core.endswith("]"):
        bar = "|]"
    elif core.count("|") >= 2:
        bar = "||"
    else:
        bar = "|"
    return bar + digit


def split_tunes(text: str) -> list[str]:
    """The tunes of an ABC file: each starts at an `X:` line."""
    starts = [m.start() for m in re.finditer(r"^X:", text, flags=re.MULTILINE)]
    if not starts:
        return [text] if re.search(r"^K:", text, flags=re.MULTILINE) else []
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)], strict=True)]


def abc_to_tokens(tune: str) -> list[str]:
    """One ABC tune -> [<s>, M:.., K:.., body units..., </s>]; raises AbcError if it cannot be represented."""
    lines = tune.replace("\r", "").split("\n")
    meter, key, unit = "M:4/4", None, None
    body_start = len(lines)
    for i, line in enumerate(lines):
        field = re.match(r"^([A-Za-z]):(.*)$", line)
        if not field:
            continue
        name, value = field.group(1), field.group(2)
        if name == "M":
            meter = _meter_token(value)
        elif name == "L":
            unit = _unit_length(value)
        elif name == "V":
            raise AbcError("several voices")
        elif name == "K":
            key = _key_token(value)
            body_start = i + 1
            break
    if key is None:
        raise AbcError("no K: field")
    unit = unit or _default_unit(meter)
    tokens = [BOS, meter, key]
    n_notes = 0
    for line in lines[body_start:]:
        line = line.split("%")[0]
        field = re.match(r"^([A-Za-z]):(.*)$", line)
        if field:
            name, value = field.group(1), field.group(2)
            if name == "M":
                tokens.append(f"[{_meter_token(value)}]")
            elif name == "K":
                tokens.append(f"[{_key_token(value)}]")
            elif name == "L":
                unit = _unit_length(value)
            elif name == "V":
                raise AbcError("several voices")
            continue  # lyrics, titles, parts, notes: not music we model
        unit, count = _body_units(line, unit, tokens)
        n_notes += count
    if n_notes == 0:
        raise AbcError("no notes")
    tokens.append(EOS)
    return tokens


def _body_units(line: str, unit: Fraction, out: list[str]) -> tuple[Fraction, int]:
    """Append the units of one body line to `out`; returns the (possibly changed) unit length and notes seen."""
    scale = unit / Fraction(1, 8)
    pos, n_notes, after_value = 0, 0, False  # after_value: a duration may follow (note, rest, chord end)
    while pos < len(line):
        m = _BODY_RE.match(line, pos)
        if m is None or m.end() == pos:
            raise AbcError(f"cannot read {line[pos:pos + 12]!r}")
        kind, text = m.lastgroup, m.group()
        pos = m.end()
        if kind == "dur":
            if not after_value:
                raise AbcError(f"a duration {text!r} with no note")
            token = _duration_token(duration_value(text) * scale)
            if token:
                out.append(token)
            after_value = False
            continue
        if after_value and scale != 1 and kind != "dur":
            # an implicit single unit becomes an explicit duration when the unit length changes
            token = _duration_token(scale)
            if token:
                out.append(token)
        after_value = kind in ("note", "rest", "chord_close") and not _in_chord(out, kind)
        if kind == "note":
            out.append(text)
            n_notes += 1
        elif kind == "rest":
            out.append("z")
        elif kind == "mrest":
            raise AbcError("multi-bar rest")
        elif kind == "bar":
            out.append(_bar_token(text))
        elif kind == "field":
            name, value = text[1], text[3:-1]
            if name == "M":
                out.append(f"[{_meter_token(value)}]")
            elif name == "K":
                out.append(f"[{_key_token(value)}]")
            elif name == "L":
                unit = _unit_length(value)
                scale = unit / Fraction(1, 8)
        elif kind in ("tuplet", "broken", "tie", "chord_open", "chord_close"):
            out.append(text)
    if after_value and scale != 1:
        token = _duration_token(scale)
        if token:
            out.append(token)
    return unit, n_notes


def _in_chord(out: list[str], kind: str) -> bool:
    """Inside [CEG] the duration belongs to the chord, not to each note (we write it after ']')."""
    if kind != "note":
        return False
    for t in reversed(out):
        if t == "[":
            return True
        if t == "]" or t.startswith(("|", ":", "[|")):
            return False
    return False


def tokens_to_abc(tokens: list[str], title: str = "genlab tune", comments: list[str] | None = None,
                  index: int = 1) -> str:
    """Tokens -> an ABC tune (unit length 1/8). Bar lines are spaced so that the text lexes back to the tokens."""
    from genlab.music.describe import DESCRIPTION_TOKEN

    body = [t for t in tokens if t not in (BOS, EOS) and not t.startswith(DESCRIPTION_TOKEN)]  # a prompt's words
    meter = body.pop(0) if body and body[0].startswith("M:") else "M:4/4"
    key = body.pop(0) if body and body[0].startswith("K:") else "K:Cmaj"
    head = [f"X:{index}", f"T:{title}"] + [f"% {c}" for c in (comments or [])]
    head += [meter, "L:1/8", key]
    lines, line, bars = [], [], 0
    for t in body:
        if t.startswith("[") and t[1:2] in ("M", "K"):
            line.append(f" {t} ")
        elif t[0] in "|:" or (t[0] == "[" and t[1:2] != "" and t[1:2] in "|0123456789"):  # not a chord's [
            line.append(f" {t} ")
            bars += 1
            if bars % 4 == 0:
                lines.append("".join(line).strip())
                line = []
        else:
            line.append(t)
    if line:
        lines.append("".join(line).strip())
    return "\n".join(head + [x for x in lines if x]) + "\n"


class _Vocabulary:
    """Tokens <-> ids over a fixed list of token strings, <s> and </s> first."""

    unknown = "is not in this vocabulary"  # how ids() names a token it does not know

    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.vocab_size = len(self.vocab)
        self.bos, self.eos = self.index[BOS], self.index[EOS]
        from genlab.music.describe import DESCRIPTION_TOKEN

        # which ids are description words (a model trained with --descriptions reads them before a tune)
        self.description_mask = np.array([t.startswith(DESCRIPTION_TOKEN) for t in self.vocab], dtype=bool)
        self.described = bool(self.description_mask.any())

    def ids(self, tokens: list[str]) -> np.ndarray:
        try:
            return np.array([self.index[t] for t in tokens], dtype=np.int64)
        except KeyError as e:
            raise GenlabError(f"{e.args[0]!r} {self.unknown}") from None

    def tokens(self, ids) -> list[str]:
        return [self.vocab[i] for i in np.asarray(ids, dtype=np.int64).tolist()]

    def decode(self, ids) -> str:
        return " ".join(self.tokens(ids))


class AbcTokenizer(_Vocabulary):
    """folk-rnn style ABC vocabulary, built from the corpus it is trained on."""

    kind = "abc"
    unknown = "is not in this model's ABC vocabulary"

    @classmethod
    def build(cls, tunes: list[list[str]]) -> AbcTokenizer:
        seen = sorted({t for tune in tunes for t in tune} - {BOS, EOS})
        return cls([BOS, EOS] + seen)

    def encode_tune(self, abc: str) -> np.ndarray:
        return self.ids(abc_to_tokens(abc))

    def encode_prompt(self, prompt: str) -> np.ndarray:
        """A prompt: header fields (`M:6/8 K:Dmaj`) and optionally the start of a body, or a whole tune; for a
        model trained with --descriptions, also a description ("a jig in G major"), which it reads after <s>."""
        if self.described and prompt.strip() and not _ABC_START.match(prompt):
            return self.ids([BOS] + self.description_prompt(prompt))
        try:
            tokens = prompt_tokens(prompt)
        except AbcError as e:
            if not _ABC_START.match(prompt):
                raise GenlabError(
                    f"this model was trained without --descriptions, so it reads a prompt as ABC, and {prompt[:60]!r} "
                    "is not; give a header such as 'M:6/8 K:Gmaj', or train with --descriptions to prompt in words "
                    "('a jig in G major')") from None
            raise GenlabError(
                f"the prompt {prompt!r} is not valid ABC for this model ({e}); "
                "write e.g. 'M:6/8 K:Dmaj' optionally followed by notes such as '|: A2 d'"
            ) from None
        unknown = [t for t in tokens if t not in self.index]
        if unknown:
            kind = "K:" if any(t.startswith("K:") for t in unknown) else "M:"
            known = " ".join(t for t in self.vocab if t.startswith(kind))[:200]
            raise GenlabError(
                f"the prompt uses {', '.join(map(repr, unknown[:5]))}, which this model never saw in training "
                f"({'keys' if kind == 'K:' else 'meters'} it knows: {known})"
            )
        return self.ids(tokens)

    def description_prompt(self, prompt: str) -> list[str]:
        """A description's tokens in this vocabulary; a word the model never read is a one-line error."""
        from genlab.music.describe import DESCRIPTION_TOKEN, description_tokens

        tokens = description_tokens(prompt)
        if not tokens:
            raise GenlabError(f"the prompt {prompt[:60]!r} has no words; describe a tune, e.g. 'a jig in G major'")
        unknown = [t for t in tokens if t not in self.index]
        if unknown:
            n = len(DESCRIPTION_TOKEN)
            known = " ".join(sorted(t[n:] for t in self.vocab if t.startswith(DESCRIPTION_TOKEN)))
            raise GenlabError(f"this model never read the word(s) {', '.join(repr(t[n:]) for t in unknown[:5])} in "
                              f"a description; describe the tune in its words ({known}), e.g. 'a jig in G major', "
                              "or give an ABC header such as 'M:6/8 K:Gmaj'")
        return tokens

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps({"kind": "abc", "vocab": self.vocab}, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> AbcTokenizer:
        vocab = read_tokenizer_json(path).get("vocab")
        if (not isinstance(vocab, list) or vocab[:2] != [BOS, EOS] or not all(isinstance(t, str) for t in vocab)
                or len(set(vocab)) != len(vocab)):
            raise corrupt_tokenizer(path, 'no "vocab" list of distinct tokens beginning with <s>, </s>')
        return cls(vocab)


# A folk tune is ~110 units (the longest of music21's 12,600 readable folk tunes has 1,185); a "tune" past this
# is a run-on file without X: lines, and would otherwise become one enormous training example
MAX_ABC_TOKENS = 4096


def _is_bar(token: str) -> bool:
    return token[0] in "|:" or (token[0] == "[" and token[1:2] in "|0123456789")


def cap_abc_tune(tokens: list[str], limit: int = MAX_ABC_TOKENS) -> tuple[list[str], bool]:
    """A tune of at most `limit` tokens: a longer one is cut after its last bar line that fits, then </s>.
    Returns the tokens and whether they were cut."""
    if len(tokens) <= limit:
        return tokens, False
    head = tokens[: limit - 1]
    bars = [i for i in range(3, len(head)) if _is_bar(head[i])]  # after <s>, meter and key
    return head[: bars[-1] + 1 if bars else len(head)] + [EOS], True


def prompt_tokens(prompt: str) -> list[str]:
    """Tokens of a prompt: `M:6/8 K:Dmaj |: A2 d` (fields in any order, space separated) or an ABC tune head."""
    text = prompt.strip()
    if not text:
        return [BOS]
    if re.search(r"^X:", text, flags=re.MULTILINE) or "\n" in text:
        return abc_to_tokens(text + ("" if re.search(r"^K:", text, re.MULTILINE) else "\nK:C"))[:-1]
    meter, key = "M:4/4", None
    rest = text
    while True:
        m = re.match(r"\s*([MKL]):\s*(\S+)", rest)
        if not m:
            break
        if m.group(1) == "M":
            meter = _meter_token(m.group(2))
        elif m.group(1) == "K":
            key = _key_token(m.group(2))
        elif _unit_length(m.group(2)) != Fraction(1, 8):
            raise AbcError("prompts are written with unit length L:1/8")
        rest = rest[m.end():]
    if key is None:
        if rest.strip():
            raise AbcError("a body needs a key first (K:...)")
        return [BOS, meter]
    out = [BOS, meter, key]
    if rest.strip():
        _body_units(rest, Fraction(1, 8), out)
    return out


# ---------------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------------

STEPS_PER_QUARTER = 12  # sixteenths (3 steps) and eighth-note triplets (4 steps) are exact
MAX_SHIFT = 48  # one TIME_SHIFT moves at most a whole 4/4 bar; longer gaps repeat it
VELOCITY_BINS = 8
# A silence (no note sounding) longer than four 4/4 bars is shortened to four bars: longer ones carry no
# music a model can learn, and a 44-byte MIDI file with a gap of millions of ticks otherwise became 250,000
# SHIFT tokens. Leading silence counts too.
MAX_SILENCE = 4 * 4 * STEPS_PER_QUARTER
# An event tune is cut at this many tokens: ~90 Bach chorales (~370 tokens each), about a quarter of an hour of
# dense piano; the bound that holds when a note itself is held for hours (not a silence, so MAX_SILENCE lets it be)
MAX_EVENT_TOKENS = 32_768


def quantize(q: float | Fraction) -> int:
    return int(round(float(q) * STEPS_PER_QUARTER))


class EventTokenizer(_Vocabulary):
    """NOTE_ON / NOTE_OFF / TIME_SHIFT / VELOCITY events on a grid of 1/12 quarter note. Fixed vocabulary."""

    kind = "events"
    unknown = "is not an event token"

    def __init__(self):
        super().__init__([BOS, EOS] + [f"ON:{p}" for p in range(128)] + [f"OFF:{p}" for p in range(128)]
                         + [f"SHIFT:{s}" for s in range(1, MAX_SHIFT + 1)] + [f"VEL:{v}" for v in range(VELOCITY_BINS)])

    def notes_to_tokens(self, notes: list[Note], cuts: collections.Counter | None = None,
                        max_tokens: int = MAX_EVENT_TOKENS) -> list[str]:
        """Notes -> events. Offs come before ons at the same time; a note-on of a sounding pitch ends it first.

        Silences over MAX_SILENCE are shortened and the tune is cut at `max_tokens` (</s> included); each
        cut is counted in `cuts` when given."""
        actions = []  # (time step, order, pitch, velocity); order 0 = off, 1 = on
        for n in notes:
            start = quantize(n.start)
            end = max(start + 1, quantize(n.start + n.duration))
            actions.append((start, 1, n.pitch, n.velocity))
            actions.append((end, 0, n.pitch, 0))
        actions.sort(key=lambda a: (a[0], a[1], a[2]))
        tokens, now, velocity = [BOS], 0, None
        limit = max_tokens - 1  # room for </s>
        removed = 0  # steps of silence taken out so far: later events move earlier by this much
        sounding: dict[int, int] = {}
        n_sounding = 0  # pitches sounding now
        for step, order, pitch, vel in actions:
            if len(tokens) > limit:
                break  # cut: the tokens past the limit are dropped below
            step -= removed
            if n_sounding == 0 and step - now > MAX_SILENCE:
                removed += step - now - MAX_SILENCE
                step = now + MAX_SILENCE
                if cuts is not None:
                    cuts[f"silences longer than {MAX_SILENCE // (4 * STEPS_PER_QUARTER)} bars shortened"] += 1
            if order == 0:
                sounding[pitch] = sounding.get(pitch, 0) - 1
                n_sounding -= sounding[pitch] == 0
                if sounding[pitch] != 0:
                    continue  # an overlapping copy of this pitch is still due to end later
            else:
                sounding[pitch] = sounding.get(pitch, 0) + 1
                n_sounding += sounding[pitch] == 1
            while step > now and len(tokens) <= limit:  # bounded: a note held for hours stops at the cap
                shift = min(MAX_SHIFT, step - now)
                tokens.append(f"SHIFT:{shift}")
                now += shift
            if order == 1:
                v = min(VELOCITY_BINS - 1, vel * VELOCITY_BINS // 128)
                if v != velocity:
                    tokens.append(f"VEL:{v}")
                    velocity = v
                if sounding[pitch] > 1:
                    continue  # already sounding: one MIDI note stands for the unison
                tokens.append(f"ON:{pitch}")
            else:
                tokens.append(f"OFF:{pitch}")
        if len(tokens) > limit:
            tokens = tokens[:limit]
            if cuts is not None:
                cuts[f"tunes cut at {max_tokens} tokens"] += 1
        tokens.append(EOS)
        return tokens

    def tokens_to_notes(self, tokens: list[str]) -> list[Note]:
        """Events -> notes; a note never switched off ends at the last time reached."""
        now, velocity = 0, 80
        open_notes: dict[int, tuple[int, int]] = {}
        notes = []
        for t in tokens:
            kind, _, value = t.partition(":")
            if kind == "SHIFT":
                now += int(value)
            elif kind == "VEL":
                velocity = int(value) * (128 // VELOCITY_BINS) + 128 // VELOCITY_BINS // 2
            elif kind == "ON":
                p = int(value)
                if p in open_notes:  # re-struck without an off: end the first
                    s, v = open_notes.pop(p)
                    if now > s:
                        notes.append(_note(p, s, now, v))
                open_notes[p] = (now, velocity)
            elif kind == "OFF":
                p = int(value)
                if p in open_notes:
                    s, v = open_notes.pop(p)
                    notes.append(_note(p, s, max(now, s + 1), v))
            elif t == EOS:
                break
        for p, (s, v) in open_notes.items():
            notes.append(_note(p, s, max(now, s + 1), v))
        return sorted(notes, key=lambda n: (n.start, n.pitch))

    def encode_prompt(self, prompt: str) -> np.ndarray:
        """A prompt is space-separated event tokens, e.g. `VEL:5 ON:60 SHIFT:12 OFF:60`."""
        words = prompt.split()
        bad = [w for w in words if w not in self.index or w == EOS]
        if bad:
            raise GenlabError(
                f"the prompt has {', '.join(map(repr, bad[:5]))}, which are not event tokens; this model was "
                "trained on MIDI/MusicXML events: write e.g. 'VEL:5 ON:60 SHIFT:12 OFF:60' or no prompt"
            )
        return self.ids([BOS] + [w for w in words if w != BOS])

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps({"kind": "events", "steps_per_quarter": STEPS_PER_QUARTER}))

    @classmethod
    def load(cls, path: Path) -> EventTokenizer:
        saved = read_tokenizer_json(path)
        if saved.get("kind") != "events" or type(saved.get("steps_per_quarter")) is not int:
            raise corrupt_tokenizer(path, 'no "kind": "events" with an integer "steps_per_quarter"')
        if saved["steps_per_quarter"] != STEPS_PER_QUARTER:
            raise TokenizerFileError(f"{path} uses another event grid; it comes from a different genlab version")
        return cls()


def _note(pitch: int, start: int, end: int, velocity: int) -> Note:
    return Note(pitch, Fraction(start, STEPS_PER_QUARTER), Fraction(end - start, STEPS_PER_QUARTER), velocity)


MUSIC_TOKENIZERS = {"abc": AbcTokenizer, "events": EventTokenizer}


def load_music_tokenizer(kind: str, path: Path):
    if kind not in MUSIC_TOKENIZERS:
        raise GenlabError(f"unknown music tokenizer {kind!r} in {path}")
    if not Path(path).is_file():
        raise TokenizerFileError(f"{path} is missing; the run directory is incomplete")
    return MUSIC_TOKENIZERS[kind].load(path)
