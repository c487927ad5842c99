"""Read notes straight from ABC tokens, without music21.

Metrics compare thousands of training tunes with the samples; music21 reads ~20 tunes/s, this
reads thousands. It follows the ABC rules that decide pitch and length — key signatures and
modes, accidentals that last to the bar line, octave marks, durations on a 1/8 unit, broken
rhythm, tuplets and ties — and is used for statistics only (conversion to MIDI goes through
music21, see convert.py). A chord counts as its first note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from genlab.music.tokenizers import duration_value

_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_TONIC_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F": -1, "F#": 6, "C#": 7, "Bb": -2, "Eb": -3,
                 "Ab": -4, "Db": -5, "Gb": -6, "Cb": -7, "G#": 8, "D#": 9, "A#": 10, "Fb": -8}
_MODE_FIFTHS = {"maj": 0, "min": -3, "dor": -2, "mix": -1, "lyd": 1, "phr": -4, "loc": -5}
_SHARP_ORDER, _FLAT_ORDER = "FCGDAEB", "BEADGCF"
_NOTE_RE = re.compile(r"^(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)$")
_ACCIDENTAL = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
_BAR_START = ("|", ":", "[|")
UNIT = Fraction(1, 2)  # L:1/8 in quarter notes
_BROKEN = {">": Fraction(3, 2), ">>": Fraction(7, 4), "<": Fraction(1, 2), "<<": Fraction(1, 4)}


@dataclass
class AbcNotes:
    pitches: list[int]  # MIDI numbers
    durations: list[Fraction]  # quarter notes
    bars: int
    tonic: int | None  # pitch class of the first key's tonic (K:Dmaj -> 2), None without a readable key


def key_signature(key_token: str) -> dict[str, int]:
    """'K:Dmaj' -> {'F': 1, 'C': 1}: the alteration of each letter."""
    body = key_token.strip("[]")[2:]
    tonic, mode = body[:-3], body[-3:]
    fifths = _TONIC_FIFTHS.get(tonic, 0) + _MODE_FIFTHS.get(mode, 0)
    if fifths >= 0:
        return {c: 1 for c in _SHARP_ORDER[: min(fifths, 7)]}
    return {c: -1 for c in _FLAT_ORDER[: min(-fifths, 7)]}


def key_tonic(key_token: str) -> int | None:
    """'K:Dmaj' -> 2, 'K:Bbmin' -> 10: the pitch class of the key's tonic."""
    tonic = key_token.strip("[]")[2:-3]
    if tonic not in _TONIC_FIFTHS:
        return None
    return (_LETTER[tonic[0]] + tonic.count("#") - tonic.count("b")) % 12


def is_duration(token: str) -> bool:
    return bool(token) and (token[0].isdigit() or token[0] == "/")


def abc_notes(tokens: list[str]) -> AbcNotes:
    """Pitches and lengths of the notes of one tune's tokens (tolerant: skips what it cannot read)."""
    pitches: list[int] = []
    durations: list[Fraction] = []
    tied: list[bool] = []  # note i continues note i-1 (a tie between equal pitches)
    keysig: dict[str, int] = {}
    tonic: int | None = None
    bar_acc: dict[tuple[str, int], int] = {}
    bars = 0
    tuplet_left, tuplet_ratio = 0, Fraction(1)
    broken_next = Fraction(1)
    tie = in_chord = chord_first = False
    last: int | None = None  # the note a duration or broken rhythm applies to (None after a rest)
    for tok in tokens:
        if tok.startswith(("K:", "[K:")):
            keysig, bar_acc = key_signature(tok), {}
            tonic = key_tonic(tok) if tonic is None else tonic
        elif tok.startswith(("M:", "[M:")) or tok in ("<s>", "</s>"):
            continue
        elif tok.startswith(_BAR_START) or (tok.startswith("[") and tok[1:].isdigit()):
            bars += not tok.startswith("[")
            bar_acc = {}
        elif tok == "[":
            in_chord, chord_first = True, True
        elif tok == "]":
            in_chord = False
        elif tok.startswith("("):
            p = int(tok[1])
            tuplet_left, tuplet_ratio = p, Fraction(3 if p in (2, 4, 8) else 2, p)
        elif tok in _BROKEN:
            if last is not None:
                durations[last] *= _BROKEN[tok]
                broken_next = 2 - _BROKEN[tok]
        elif tok == "-":
            tie = True
        elif is_duration(tok):
            if last is not None:
                durations[last] *= duration_value(tok)
        elif tok == "z":
            last, tie = None, False
        elif m := _NOTE_RE.match(tok):
            if in_chord and not chord_first:
                continue
            chord_first = False
            acc, letter, marks = m.groups()
            octave = (1 if letter.islower() else 0) + marks.count("'") - marks.count(",")
            up = letter.upper()
            if acc is not None:
                bar_acc[(up, octave)] = _ACCIDENTAL[acc]
            pitch = 60 + 12 * octave + _LETTER[up] + bar_acc.get((up, octave), keysig.get(up, 0))
            length = UNIT * broken_next
            broken_next = Fraction(1)
            if tuplet_left > 0:
                length *= tuplet_ratio
                tuplet_left -= 1
            tied.append(tie and bool(pitches) and pitches[-1] == pitch)
            tie = False
            pitches.append(pitch)
            durations.append(length)
            last = len(pitches) - 1
    out_p: list[int] = []
    out_d: list[Fraction] = []
    for p, d, t in zip(pitches, durations, tied, strict=True):
        if t:
            out_d[-1] += d
        else:
            out_p.append(p)
            out_d.append(d)
    return AbcNotes(out_p, out_d, bars, tonic)
