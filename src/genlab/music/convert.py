"""Conversions between ABC, scores, note lists and MIDI.

music21 parses ABC and MusicXML. Its own ABC -> MIDI path fails on about 8% of real folk tunes
for two reasons that are not the tunes' fault: after a pickup bar the parser puts one
TimeSignature object into two measures, which the MIDI conductor track then refuses; and
malformed repeats make `expandRepeats` raise. So we (1) give every measure its own copy of a
shared time signature, (2) expand repeats when they are well formed and otherwise play the
tune straight through, and (3) write MIDI ourselves with mido from the plain list of notes,
which also lets us put the provenance into a text meta event.
"""

from __future__ import annotations

import copy
import io
import warnings
from fractions import Fraction
from pathlib import Path

from genlab.errors import GenlabError
from genlab.music.notes import Note

TICKS_PER_QUARTER = 480
DEFAULT_QPM = 120.0


class ConversionError(ValueError):
    """A tune that music21 cannot read or that has no playable notes."""


def parse_abc(abc: str):
    """ABC text -> a music21 score (raises ConversionError)."""
    from music21 import converter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.parse(abc, format="abc")
    except Exception as e:  # music21 raises many unrelated types on bad input
        raise ConversionError(f"music21 cannot parse it: {type(e).__name__}: {str(e)[:100]}") from None


def parse_score_file(path: Path):
    """A MusicXML/MXL/ABC file -> a music21 score (raises ConversionError)."""
    from music21 import converter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.parse(str(path))
    except Exception as e:
        raise ConversionError(f"music21 cannot parse {path.name}: {type(e).__name__}: {str(e)[:100]}") from None


def _unshare_time_signatures(score) -> None:
    """Give each measure its own TimeSignature object (music21 shares one after a pickup bar)."""
    from music21 import meter, stream

    seen: set[int] = set()
    for measure in score.recurse().getElementsByClass(stream.Measure):
        for ts in list(measure.getElementsByClass(meter.TimeSignature)):
            if id(ts) in seen:
                measure.replace(ts, copy.deepcopy(ts))
            seen.add(id(ts))


def _expand_or_flatten_repeats(part):
    """Play repeats when they are well formed; else drop them and play the tune through once."""
    from music21 import bar, spanner

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return part.expandRepeats()
    except Exception:
        for b in list(part.recurse().getElementsByClass(bar.Repeat)):
            site = b.activeSite
            if site is not None and getattr(site, "leftBarline", None) is b:
                site.leftBarline = None
            elif site is not None and getattr(site, "rightBarline", None) is b:
                site.rightBarline = None
        for sp in list(part.recurse().getElementsByClass(spanner.RepeatBracket)):
            part.remove(sp, recurse=True)
        return part


def score_to_notes(score) -> tuple[list[Note], float]:
    """All notes of a score (repeats played, ties merged) in quarter notes, and its tempo in quarters/minute."""
    from music21 import stream, tempo

    _unshare_time_signatures(score)
    parts = list(score.parts) if isinstance(score, stream.Score) and score.parts else [score]
    notes: list[Note] = []
    for part in parts:
        played = _expand_or_flatten_repeats(part)
        try:
            flat = played.flatten().stripTies()
        except Exception:
            flat = played.flatten()
        for el in flat.notes:
            start = Fraction(el.offset).limit_denominator(96)
            dur = Fraction(el.duration.quarterLength).limit_denominator(96)
            if dur <= 0:
                continue  # grace notes
            velocity = int(getattr(el.volume, "velocity", None) or 80)
            for p in el.pitches:
                if 0 <= p.midi <= 127:
                    notes.append(Note(int(p.midi), start, dur, velocity))
    marks = list(score.recurse().getElementsByClass(tempo.MetronomeMark))
    qpm = DEFAULT_QPM
    if marks and marks[0].getQuarterBPM():
        qpm = float(marks[0].getQuarterBPM())
    return sorted(notes, key=lambda n: (n.start, n.pitch)), qpm


def chorale_notes(name: str) -> list[Note] | str:
    """The notes of one score of music21's corpus (e.g. bach/bwv253), or the name of the error that
    kept music21 from reading or flattening it. A plain function, so worker processes can run it."""
    from music21 import corpus

    try:
        return score_to_notes(corpus.parse(name))[0]
    except Exception as e:  # a chorale music21 cannot read or flatten
        return type(e).__name__


def abc_to_notes(abc: str) -> tuple[list[Note], float]:
    """ABC text -> notes and tempo; raises ConversionError when music21 cannot read it."""
    score = parse_abc(abc)
    try:
        return score_to_notes(score)
    except Exception as e:
        raise ConversionError(f"cannot turn it into notes: {type(e).__name__}: {str(e)[:100]}") from None


def notes_to_midi(notes: list[Note], qpm: float = DEFAULT_QPM, provenance: dict | None = None,
                  program: int = 0) -> bytes:
    """Notes -> a standard MIDI file (type 1): a conductor track with tempo (and the provenance record, sealed
    with the hash of the file's other events, as its first text event), one note track."""
    if provenance is not None:
        from genlab.safety.provenance import comment, midi_hash, seal

        sealed = seal(provenance, "audio/midi", midi_hash(notes_to_midi(notes, qpm, program=program)))
        return _midi(notes, qpm, comment(sealed), program)
    return _midi(notes, qpm, None, program)


def _midi(notes: list[Note], qpm: float, text: str | None, program: int) -> bytes:
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    conductor = mido.MidiTrack()
    if text:
        conductor.append(mido.MetaMessage("text", text=text.encode("ascii", "replace").decode("ascii"), time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm), time=0))
    conductor.append(mido.MetaMessage("end_of_track", time=0))
    track = mido.MidiTrack()
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    events = []  # (tick, order, message); offs first at equal ticks so a repeated pitch restarts cleanly
    for n in notes:
        on = round(n.start * TICKS_PER_QUARTER)
        off = max(on + 1, round((n.start + n.duration) * TICKS_PER_QUARTER))
        events.append((on, 1, mido.Message("note_on", note=n.pitch, velocity=max(1, min(127, n.velocity)))))
        events.append((off, 0, mido.Message("note_off", note=n.pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1], e[2].note))
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.extend([conductor, track])
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def midi_to_notes(data: bytes | Path) -> tuple[list[Note], float, list[str]]:
    """A MIDI file -> notes (in quarter notes), the first tempo, and its text meta events."""
    import mido

    try:
        mid = mido.MidiFile(file=io.BytesIO(data)) if isinstance(data, bytes) else mido.MidiFile(str(data))
    except Exception as e:
        name = "the MIDI data" if isinstance(data, bytes) else str(data)
        raise GenlabError(f"{name} is not a readable MIDI file ({type(e).__name__}: {str(e)[:80]})") from None
    tpq = mid.ticks_per_beat or TICKS_PER_QUARTER
    qpm, texts, notes = None, [], []
    for track in mid.tracks:
        tick = 0
        sounding: dict[tuple[int, int], tuple[int, int]] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and qpm is None:
                qpm = mido.tempo2bpm(msg.tempo)
            elif msg.type == "text":
                texts.append(msg.text)
            elif msg.type == "note_on" and msg.velocity > 0:
                if msg.channel == 9:
                    continue  # percussion has no pitch
                sounding[(msg.channel, msg.note)] = (tick, msg.velocity)
            elif msg.type in ("note_off", "note_on"):
                start = sounding.pop((getattr(msg, "channel", 0), msg.note), None)
                if start is not None and tick > start[0]:
                    notes.append(Note(msg.note, Fraction(start[0], tpq), Fraction(tick - start[0], tpq), start[1]))
    return sorted(notes, key=lambda n: (n.start, n.pitch)), float(qpm or DEFAULT_QPM), texts


def transpose(notes: list[Note], semitones: int) -> list[Note]:
    """Shift every pitch, dropping notes that leave the MIDI range."""
    return [Note(n.pitch + semitones, n.start, n.duration, n.velocity) for n in notes
            if 0 <= n.pitch + semitones <= 127]
