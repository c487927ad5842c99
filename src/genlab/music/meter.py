"""Does a tune keep time? Bar lengths against the meter, music21's own MIDI export, and a MIDI round trip.

Each check takes one tune (ABC text, a music21 score or notes) and returns its own result, so the
evaluation, benches and tests share them; `bar_figures` and `grid_figures` pool many tunes into shares.

Bars (ABC), measured by music21, a tool nobody here wrote:

- A bar is right when its length, music21's `Measure.duration.quarterLength`, equals the meter's bar
  (`TimeSignature.barDuration.quarterLength`). The first bar (a pickup) and the last bar are excepted, as
  music theory allows; a tune needs at least one inner bar to have "every inner bar right".
- Section breaks: folk tunes split a bar around a repeat sign, a double or final bar line or an ending
  (`|1`, `|2`): the section's last bar is short by as much as the next section's pickup. So a short bar
  next to a section break is right when some other bar next to a section break (or the first or last bar)
  makes up the difference: their lengths add up to the meter's bar. Likewise two short bars side by side
  that add up to one bar (a bar line set inside a bar, as transcribers set off a pickup in mid-tune) keep
  time. An overfull bar is never right.
- A tune in free meter (`M:none`, no time signature) has no wrong bar. A tune music21 cannot parse has
  no right bar.
- music21 quirks handled: it splits an overfull bar into a full measure and a remainder measure with a
  time signature of its own (e.g. 7 eighths in 6/8 become 6/8 + 1/8, then 6/8 again), which would read as
  two right bars: a remainder is merged back into the bar it came from (a measure with a new time
  signature that the next measure takes back). It drops empty bars (`| |`); they count as section breaks.
  It ignores inline meter changes (`[M:3/4]`), so a tune that changes meter is measured against its
  header's meter (a few real folk tunes in a thousand do).

music21's own MIDI export: `music21.midi.translate.streamToMidiFile(score).writestr()` on the parsed score;
any exception is a failure. (It fails on about one real folk tune in ten: after a pickup its parser
shares one TimeSignature object between two measures, which the conductor track refuses; overfull bars
do the same, so most tunes with overfull bars fail.)

Round trip: the tune's notes as genlab plays them (convert.score_to_notes: repeats played, ties merged,
grace notes dropped) -> genlab's MIDI writer (convert.notes_to_midi) -> music21's MIDI reader (no
quantizing, ties stripped). The same notes means: as many notes, and after sorting both by onset, pitch
and length, each pair has the same MIDI pitch and onsets and lengths within 1/96 of a quarter note (5
ticks at 480 per quarter). Velocities are not compared.

Event tunes carry no meter. Their grid: onsets on sixteenth notes (1/4 quarter; triplets count as off the
grid) in bars of four quarter notes from time 0; `notes_per_bar` is notes over the bars from time 0
through the bar of the last onset.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from fractions import Fraction

from genlab.music.notes import Note

ROUNDTRIP_TOLERANCE = Fraction(1, 96)  # quarter notes: 5 ticks at 480 per quarter
GRID = Fraction(1, 4)  # a sixteenth note, in quarter notes
GRID_BAR = Fraction(4)  # four quarter notes: event tunes have no meter of their own


# ---------------------------------------------------------------------------------------------------
# Bars
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    length: Fraction  # quarter notes, as music21 measures it (an overfull bar's remainder merged back)
    meter: Fraction | None  # the meter's bar in quarter notes; None in free meter
    edge: bool  # next to a repeat sign, a double or final bar line, an ending or a dropped empty bar


@dataclass(frozen=True)
class BarCheck:
    """One tune's bars: how many inner bars, how many right, and the positions (0 = the pickup) of the wrong."""

    parsed: bool
    inner: int = 0
    right: int = 0
    wrong: tuple[int, ...] = ()

    @property
    def all_right(self) -> bool:
        return self.parsed and self.inner > 0 and self.right == self.inner


def _quarters(ql) -> Fraction:
    return Fraction(ql).limit_denominator(10_000)


def _is_break(barline) -> bool:
    """A repeat sign or a double, final or heavy bar line (a plain bar line is None or "regular")."""
    from music21 import bar

    return barline is not None and (isinstance(barline, bar.Repeat) or barline.type != "regular")


def score_bars(score) -> list[Bar]:
    """The bars of the score's first part as written: music21's overflow remainders merged back, empty bars
    dropped."""
    from music21 import meter, spanner, stream

    part = score.parts[0] if isinstance(score, stream.Score) and score.parts else score
    measures = list(part.getElementsByClass(stream.Measure))
    free = not any(True for _ in score.recurse().getElementsByClass(meter.TimeSignature))
    bars: list[list] = []  # [length, meter, starts a section, ends a section]
    written = None  # the TimeSignature in force, as the tune wrote it
    empty_before = False
    for k, m in enumerate(measures):
        ts = m.timeSignature
        nxt = measures[k + 1].timeSignature if k + 1 < len(measures) else None
        length = _quarters(m.duration.quarterLength)
        if ts is not None and written is not None and ts.ratioString != written.ratioString and bars \
                and (k + 1 == len(measures) or (nxt is not None and nxt.ratioString == written.ratioString)):
            bars[-1][0] += length  # music21 split an overfull bar here: the remainder belongs to the bar before
            bars[-1][3] = bars[-1][3] or _is_break(m.rightBarline)
            continue
        written = ts or written
        if length == 0:
            empty_before = True  # an empty bar: its neighbours meet at a section break
            if bars:
                bars[-1][3] = True
            continue
        volta = any(isinstance(sp, spanner.RepeatBracket) for sp in m.getSpannerSites())
        bar_length = None if free else _quarters((written or m).barDuration.quarterLength)
        bars.append([length, bar_length, empty_before or volta or _is_break(m.leftBarline),
                     volta or _is_break(m.rightBarline)])
        empty_before = False
    out = []
    for i, (length, bar_length, starts, ends) in enumerate(bars):
        edge = starts or ends or (i > 0 and bars[i - 1][3]) or (i + 1 < len(bars) and bars[i + 1][2])
        out.append(Bar(length, bar_length, edge))
    return out


def bar_is_right(bars: list[Bar], i: int) -> bool:
    """Bar i is the meter's length, or a short bar that the bar beside it, or (at a section break) another
    short bar at a section break, makes up to the meter's length."""
    b = bars[i]
    if b.meter is None or b.length == b.meter:
        return True
    if b.length > b.meter:
        return False
    if any(0 <= j < len(bars) and b.length + bars[j].length == b.meter for j in (i - 1, i + 1)):
        return True  # one bar cut in two by a bar line: the notes still fall where the meter says
    last = len(bars) - 1
    return b.edge and any(j != i and (c.edge or j in (0, last)) and b.length + c.length == b.meter
                          for j, c in enumerate(bars))


def check_bars(tune) -> BarCheck:
    """ABC text or a music21 score -> its inner bars and which are right (see the module docstring)."""
    from genlab.music.convert import ConversionError, parse_abc

    if isinstance(tune, str):
        try:
            tune = parse_abc(tune)
        except ConversionError:
            return BarCheck(parsed=False)
    try:
        bars = score_bars(tune)
    except Exception:  # a score music21 built but cannot walk counts as not parsed
        return BarCheck(parsed=False)
    inner = range(1, len(bars) - 1)
    wrong = tuple(i for i in inner if not bar_is_right(bars, i))
    return BarCheck(True, len(inner), len(inner) - len(wrong), wrong)


def bar_figures(checks: list[BarCheck]) -> dict:
    """`bars_right_share`: right inner bars over all inner bars of the tunes music21 parsed;
    `tunes_all_bars_right`: tunes with every inner bar right over all tunes (unparsed ones included)."""
    inner = sum(c.inner for c in checks)
    return {"bars_right_share": round(sum(c.right for c in checks) / inner, 4) if inner else 0.0,
            "tunes_all_bars_right": round(sum(c.all_right for c in checks) / max(1, len(checks)), 4)}


# ---------------------------------------------------------------------------------------------------
# music21's own MIDI export, and the round trip through genlab's MIDI
# ---------------------------------------------------------------------------------------------------


def music21_midi(tune) -> bool:
    """Whether music21 parses the tune (ABC text or a score) and writes it as MIDI with its own writer."""
    from music21.midi import translate

    from genlab.music.convert import parse_abc

    try:
        score = parse_abc(tune) if isinstance(tune, str) else tune
        # music21 prints its complaints (e.g. "beam: WARNING") to stderr: keep them out of genlab's output
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return len(translate.streamToMidiFile(score).writestr()) > 0
    except Exception:  # a tune music21 cannot parse, or any failure of its writer
        return False


def music21_reads(midi: bytes) -> list[Note]:
    """The notes music21 reads from a MIDI file, unquantized, with ties merged."""
    from music21 import midi as m21midi

    mf = m21midi.MidiFile()
    mf.readstr(midi)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        score = m21midi.translate.midiFileToStream(mf, quantizePost=False)
        flat = score.stripTies().flatten()
    return [Note(p.midi, _quarters(el.offset), _quarters(el.duration.quarterLength))
            for el in flat.notes for p in el.pitches]


def same_notes(a: list[Note], b: list[Note], tolerance: Fraction = ROUNDTRIP_TOLERANCE) -> bool:
    """As many notes, and pairwise (sorted by onset, pitch, length) the same pitch with onsets and lengths
    within `tolerance` quarter notes."""
    if len(a) != len(b):
        return False
    key = lambda n: (n.start, n.pitch, n.duration)  # noqa: E731
    return all(x.pitch == y.pitch and abs(x.start - y.start) <= tolerance and abs(x.duration - y.duration) <= tolerance
               for x, y in zip(sorted(a, key=key), sorted(b, key=key), strict=True))


def roundtrip(notes: list[Note], qpm: float = 120.0) -> bool:
    """Whether genlab's MIDI of these notes reads back in music21 as the same notes (no notes: False)."""
    from genlab.music.convert import notes_to_midi

    if not notes:
        return False
    try:
        return same_notes(notes, music21_reads(notes_to_midi(notes, qpm)))
    except Exception:  # music21 failing to read genlab's MIDI is a failed round trip
        return False


def roundtrip_abc(abc: str) -> bool:
    """ABC -> music21 -> genlab's notes -> genlab's MIDI -> music21: the same notes?"""
    from genlab.music.convert import ConversionError, abc_to_notes

    try:
        notes, qpm = abc_to_notes(abc)
    except ConversionError:
        return False
    return roundtrip(notes, qpm)


# ---------------------------------------------------------------------------------------------------
# Event tunes: onsets on the grid, notes per bar
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridCheck:
    notes: int
    on_grid: int  # notes whose onset lies on the sixteenth-note grid
    bars: int  # bars of GRID_BAR quarter notes from time 0 through the bar of the last onset

    @property
    def all_on_grid(self) -> bool:
        return self.notes > 0 and self.on_grid == self.notes


def check_grid(notes: list[Note], grid: Fraction = GRID, bar: Fraction = GRID_BAR) -> GridCheck:
    """Notes -> how many start on the grid, and the bars they span."""
    if not notes:
        return GridCheck(0, 0, 0)
    on = sum((Fraction(n.start) / grid).denominator == 1 for n in notes)
    last = max(Fraction(n.start) for n in notes)
    return GridCheck(len(notes), on, int(last // bar) + 1)


def grid_figures(checks: list[GridCheck]) -> dict:
    """`onset_grid_share` (pooled over notes), `tunes_all_on_grid` and `notes_per_bar` (pooled over bars)."""
    notes, bars = sum(c.notes for c in checks), sum(c.bars for c in checks)
    return {"onset_grid_share": round(sum(c.on_grid for c in checks) / notes, 4) if notes else 0.0,
            "tunes_all_on_grid": round(sum(c.all_on_grid for c in checks) / max(1, len(checks)), 4),
            "notes_per_bar": round(notes / bars, 2) if bars else 0.0}
