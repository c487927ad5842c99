"""A note: what every music format here (ABC, MIDI, MusicXML, event tokens, audio) converts through."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI number
    start: Fraction  # in quarter notes
    duration: Fraction
    velocity: int = 80
