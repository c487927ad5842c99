"""Text descriptions of tunes, read back from prompts, and whether a sampled tune agrees with its prompt.

A tune's facts come from its own metadata: the ABC header fields (`R:` tune type such as jig or reel,
`M:` meter, `K:` key and mode, `Q:` tempo, `T:` title), read straight from the text so that the
13,000-tune folk corpus is read in about a second, and optionally from its notes (pitch range and
melodic contour) through the project's own fast ABC reader (abc_notes). `describe` turns facts into a
short description in one of a fixed set of phrasings ("a jig in G major", "a reel in D major, 4/4",
"a slow air in E minor", "a tune in 6/8 in A dorian", ...), and says only what the facts support;
`parse_description` reads a free-text prompt back into the facts a model can be conditioned on.

What carries over, honestly:
- key, mode and meter are what an ABC model writes itself (its `M:` and `K:` tokens) and what music21 can
  check in the sampled tune, so these are the facts that conditioning is measured on;
- the tune type (`R:`) is not in the ABC tokens (the tokenizer drops it): a model conditioned on
  "a jig" can only show it through the meter and rhythm it writes, so it is checked through the meter
  the type implies (jig 6/8, reel 4/4, ...), never directly;
- tempo (`Q:`) is rare in the corpus (about one tune in ten) and not in the ABC tokens either; "slow"
  is said for airs and for tunes whose `Q:` is slow, and is not checked on samples;
- the title, pitch range and contour describe one tune; they are for `genlab describe` (one modality
  describing another), not conditioning targets, and a text-to-image model can only use the words it
  was trained on.

Agreement (`agreement`) is reported two ways, because music21's key analysis (`analyze("key")`: the
Aarden-Essen key profiles, learned from folk songs) knows major and minor only:
- `*_written`: the `K:` the model wrote has the prompt's tonic and, when the prompt names one, its mode
  exactly (dorian is dorian);
- `*_analysed`: music21's analysis of the notes has the prompt's tonic, and its major/minor is the
  prompt mode's third: dorian, phrygian, aeolian and locrian count as minor, ionian, lydian and
  mixolydian as major. This keeps the tonic, which is what makes A dorian A dorian; comparing through
  the relative major (A dorian ~ G major) would let a plain G major tune agree with an A dorian prompt.
Meter is music21's reading of the time signature, against the prompt's meter or, when the prompt names
only a tune type, the meters that type is conventionally written in (a reel in 4/4 or 2/2).
The bench computes these rates over samples and against an unconditioned model's (the chance baseline).
"""

from __future__ import annotations

import collections
import itertools
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path

from genlab.errors import GenlabError

# ---------------------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------------------

# K: mode spellings (case-insensitive; ABC reads only the first three letters) -> mode name.
# The same table as the tokenizer's (tokenizers._MODES), in full words.
_MODE_NAMES = {
    "": "major", "maj": "major", "major": "major", "ion": "major", "ionian": "major",
    "m": "minor", "min": "minor", "minor": "minor", "aeo": "minor", "aeolian": "minor",
    "dor": "dorian", "dorian": "dorian", "mix": "mixolydian", "mixolydian": "mixolydian",
    "phr": "phrygian", "phrygian": "phrygian", "lyd": "lydian", "lydian": "lydian",
    "loc": "locrian", "locrian": "locrian",
}
MODES = ("major", "minor", "dorian", "mixolydian", "lydian", "phrygian", "locrian")
# the third above the tonic decides what music21's major/minor analysis can agree with
MINOR_LIKE = frozenset({"minor", "dorian", "phrygian", "locrian"})

# R: values (lower case, " - " joined as in Essen's "Wiegen - Lied") -> tune type. Essen's song genres
# ("Ballade", "Liebeslied") are not rhythms and stay None.
RHYTHM_ALIASES = {
    "slip jig": "slip jig", "slipjig": "slip jig", "slip-jig": "slip jig", "hop jig": "slip jig", "hopjig": "slip jig",
    "jig": "jig", "double jig": "jig", "single jig": "jig", "jigg": "jig",
    "reel": "reel", "hornpipe": "hornpipe", "clog": "hornpipe",  # clogs are played as hornpipes
    "strathspey": "strathspey", "highland fling": "strathspey", "fling": "strathspey",  # danced to strathspeys
    "polka": "polka", "waltz": "waltz", "walzer": "waltz", "valse": "waltz",
    "march": "march", "marsch": "march", "air": "air", "slow air": "air",
    "slide": "slide", "mazurka": "mazurka", "schottische": "schottische", "barndance": "schottische",
    "barn dance": "schottische", "minuet": "minuet", "menuett": "minuet",
    "lullaby": "lullaby", "wiegenlied": "lullaby",
}
RHYTHMS = tuple(dict.fromkeys(RHYTHM_ALIASES.values()))
# the meters a tune type is conventionally written in; the first is the one a prompt implies
IMPLIED_METERS = {
    "jig": ("6/8",), "slip jig": ("9/8",), "reel": ("4/4", "2/2"), "hornpipe": ("4/4", "2/2"),
    "strathspey": ("4/4", "2/2"), "polka": ("2/4",), "waltz": ("3/4",), "mazurka": ("3/4",),
    "slide": ("12/8",), "minuet": ("3/4",),
}
_RHYTHM_RE = re.compile(r"\b(" + "|".join(re.escape(a).replace(r"\ ", r"\s+")
                                            for a in sorted(RHYTHM_ALIASES, key=len, reverse=True))
                        + r")s?\b", re.IGNORECASE)

SLOW_WORDS = re.compile(r"\b(slow(ly)?|lento|largo|adagio)\b", re.IGNORECASE)
SLOW_BEATS = 66  # beats a minute (the meter's beat: a dotted quarter in 6/8) below which a tune is slow

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_TONIC_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F#": 6, "C#": 7, "F": -1, "Bb": -2, "Eb": -3,
                 "Ab": -4, "Db": -5, "Gb": -6, "Cb": -7}
_MODE_FIFTHS = {"major": 0, "minor": -3, "dorian": -2, "mixolydian": -1, "lydian": 1, "phrygian": -4,
                "locrian": -5}

CONTOURS = ("rising", "falling", "arch", "valley", "flat")
CONTOUR_STEP = 2.0  # semitones: how far the mean pitch of a part must move to count as a direction
_CONTOUR_WORDS = {"rising": "a rising melody", "falling": "a falling melody", "arch": "an arching melody",
                  "valley": "a dipping melody", "flat": "a level melody"}


# ---------------------------------------------------------------------------------------------------
# Facts
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TuneFacts:
    """What a tune's metadata (and, optionally, its notes and music21's analysis) say about it."""

    key: str | None = None  # the tonic as written: "D", "F#", "Bb"
    mode: str | None = None  # one of MODES, as K: gives it
    meter: str | None = None  # "6/8"; C is 4/4 and C| is 2/2; None when free or absent
    rhythm: str | None = None  # the tune type, one of RHYTHMS; None when R: is absent or not a tune type
    tempo: float | None = None  # quarter notes a minute, from Q:
    tempo_text: str | None = None  # Q:'s words, e.g. "Slow"
    tempo_beat: float | None = None  # the beat Q: counts, in quarter notes (1.5 for Q:3/8=...); None if unsaid
    title: str | None = None  # the first T:, "Kesh, The" read as "The Kesh"
    lowest: int | None = None  # MIDI pitch, from the notes
    highest: int | None = None
    contour: str | None = None  # one of CONTOURS, from the notes (see `contour`)
    analysed_key: str | None = None  # music21's analysis of the notes (analysed_facts)
    analysed_mode: str | None = None  # "major" or "minor": all music21's analysis knows
    key_confidence: float | None = None  # music21's correlation coefficient for its key

    @property
    def title_words(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\w+", self.title.lower())) if self.title else ()

    @property
    def slow(self) -> bool:
        """An air, a tune whose Q: says slow, or one under SLOW_BEATS beats a minute (Q:'s own beat, else
        the meter's)."""
        if self.rhythm == "air" or (self.tempo_text and SLOW_WORDS.search(self.tempo_text)):
            return True
        return self.tempo is not None and self.tempo / (self.tempo_beat or _beat_quarters(self.meter)) < SLOW_BEATS

    @property
    def described(self) -> bool:
        """Whether the facts give a non-trivial description: key, mode and meter at least."""
        return bool(self.key and self.mode and self.meter)

    @property
    def minor_like(self) -> bool:
        """Whether the mode's third is minor (minor, dorian, phrygian, locrian)."""
        return self.mode in MINOR_LIKE

    def to_dict(self) -> dict:
        return {**asdict(self), "slow": self.slow, "minor_like": self.minor_like, "title_words": list(self.title_words)}


def _beat_quarters(meter: str | None) -> float:
    """The beat of a meter in quarter notes: a dotted quarter in 6/8, 9/8, 12/8; else its denominator."""
    m = re.match(r"^(\d+)/(\d+)$", meter or "")
    if not m:
        return 1.0
    num, den = int(m.group(1)), int(m.group(2))
    if den == 8 and num % 3 == 0 and num > 3:
        return 1.5
    return 4 / den


def _clean(value: str) -> str:
    return value.split("%")[0].strip()


def _key_and_mode(value: str) -> tuple[str | None, str | None]:
    """A K: value -> (tonic, mode): "Dmix" -> ("D", "mixolydian"), "E Minor" -> ("E", "minor"),
    "Hp" or "none" -> (None, None). Explicit accidentals after the mode ("Dmix=c") are ignored."""
    m = re.match(r"^([A-G])([#b]?)\s*([A-Za-z]*)", _clean(value))
    if not m:
        return None, None
    word = m.group(3).lower()
    if word in ("clef", "octave", "transpose"):  # "K:G clef=bass" is G major
        word = ""
    mode = _MODE_NAMES.get(word, _MODE_NAMES.get(word[:3]))
    if mode is None:
        return None, None
    return m.group(1) + m.group(2), mode


def _meter(value: str) -> str | None:
    v = _clean(value).rstrip("]").replace(" ", "")
    if v == "C":
        return "4/4"
    if v == "C|":
        return "2/2"
    return v if re.match(r"^\d+/\d+$", v) else None


def _tempo(value: str) -> tuple[float | None, float | None, str | None]:
    """A Q: value -> (quarter notes a minute, the beat it counts in quarters, its words):
    "1/4=80 \"Slow\"" -> (80.0, 1.0, "Slow"), "3/8=120" -> (180.0, 1.5, None). A bare number is read as
    music21 reads it, in quarter notes (ABC's old standard counted unit lengths, which makes the corpus's
    O'Neill hornpipes, Q:80 at L:1/16, play at 20 quarters a minute)."""
    v = _clean(value)
    words = " ".join(w.strip() for w in re.findall(r'"([^"]*)"', v)) or None
    rest = re.sub(r'"[^"]*"', " ", v)
    if m := re.search(r"((?:\d+/\d+\s*)+)=\s*(\d+(?:\.\d+)?)", rest):
        beat = float(sum(Fraction(f) for f in m.group(1).split()) * 4)
        return beat * float(m.group(2)), beat, words
    if m := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*", rest):
        return float(m.group(1)), None, words
    if not words and re.fullmatch(r"[A-Za-z ]+", rest.strip()):
        words = rest.strip()  # Q:Allegro, without quotes
    return None, None, words


def _rhythm(value: str) -> str | None:
    """An R: value -> a tune type (the first one named), or None."""
    v = re.sub(r"\s*-\s*(?=\w)", "", _clean(value).lower())  # "Wiegen - Lied" -> "wiegenlied"
    m = _RHYTHM_RE.search(v)
    return RHYTHM_ALIASES[" ".join(m.group(1).lower().split())] if m else None


def _title(value: str) -> str | None:
    t = _clean(value).strip('"').strip()
    if m := re.match(r"^(.*?),\s*(The|A|An)\.?$", t):  # "Kesh, The" -> "The Kesh"
        t = f"{m.group(2)} {m.group(1)}"
    t = t.rstrip(" .,;").replace('"', "'")
    return t or None


def _first_tune(abc: str) -> str:
    from genlab.music.tokenizers import split_tunes

    tunes = split_tunes(abc)
    return tunes[0] if tunes else abc


def facts_from_abc(abc: str, notes: bool = False) -> TuneFacts:
    """The facts of one ABC tune (the first, if the text holds several) from its header fields; with
    `notes`, also its pitch range and contour from its notes."""
    tune = _first_tune(abc)
    fields: dict[str, str] = {}
    for line in tune.replace("\r", "").split("\n"):
        m = re.match(r"^([A-Za-z]):(.*)$", line)
        if not m:
            continue
        fields.setdefault(m.group(1), m.group(2))  # the first of each: a later T: is a part's title
        if m.group(1) == "K":
            break  # the header ends at K:
    if not fields:
        raise GenlabError("this is not ABC: it has no header field (X:, T:, M:, K:); give an ABC tune")
    key, mode = _key_and_mode(fields["K"]) if "K" in fields else (None, None)
    meter = _meter(fields["M"]) if "M" in fields else None
    tempo, beat, words = _tempo(fields["Q"]) if "Q" in fields else (None, None, None)
    facts = TuneFacts(key=key, mode=mode, meter=meter, rhythm=_rhythm(fields["R"]) if "R" in fields else None,
                      tempo=tempo, tempo_beat=beat, tempo_text=words or None,
                      title=_title(fields["T"]) if "T" in fields else None)
    if notes:
        pitches = _abc_pitches(tune)
        if pitches:
            facts = replace(facts, lowest=min(pitches), highest=max(pitches), contour=contour(pitches))
    return facts


def _abc_pitches(tune: str) -> list[int]:
    """The tune's pitches in order: by the fast reader (abc_notes), or music21 where that cannot read it."""
    from genlab.music.abc_notes import abc_notes
    from genlab.music.tokenizers import AbcError, abc_to_tokens

    try:
        return abc_notes(abc_to_tokens(tune)).pitches
    except AbcError:
        from genlab.music.convert import ConversionError, abc_to_notes

        try:
            return [n.pitch for n in abc_to_notes(tune)[0]]
        except ConversionError:
            return []


def facts_from_notes(notes: Sequence, qpm: float | None = None) -> TuneFacts:
    """The facts of event-encoded music (MIDI, MusicXML): tempo, pitch range and contour; no header to read."""
    pitches = [n.pitch for n in sorted(notes, key=lambda n: (n.start, -n.pitch))]
    if not pitches:
        return TuneFacts(tempo=qpm)
    return TuneFacts(tempo=qpm, lowest=min(pitches), highest=max(pitches), contour=contour(pitches))


def contour(pitches: Sequence[int]) -> str | None:
    """The melody's overall shape from the mean pitch of its first quarter, middle half and last quarter:
    "arch" when the middle lies CONTOUR_STEP above both ends, "valley" below both, else "rising" or
    "falling" when the end lies CONTOUR_STEP from the start, else "flat". Means rather than single notes,
    because a tune's first note is often a pickup and its peak a passing note. None under four notes."""
    if len(pitches) < 4:
        return None
    q = len(pitches) // 4

    def mean(xs: Sequence[int]) -> float:
        return sum(xs) / len(xs)

    start, middle, end = mean(pitches[:q]), mean(pitches[q:-q]), mean(pitches[-q:])
    if middle - max(start, end) >= CONTOUR_STEP:
        return "arch"
    if min(start, end) - middle >= CONTOUR_STEP:
        return "valley"
    if end - start >= CONTOUR_STEP:
        return "rising"
    if start - end >= CONTOUR_STEP:
        return "falling"
    return "flat"


def pitch_name(midi: int, flats: bool = False) -> str:
    """60 -> "C4" (scientific pitch notation); flats for keys with flats."""
    return (_FLAT_NAMES if flats else _SHARP_NAMES)[midi % 12] + str(midi // 12 - 1)


def _uses_flats(facts: TuneFacts) -> bool:
    if facts.key is None:
        return False
    return _TONIC_FIFTHS.get(facts.key, 0) + _MODE_FIFTHS.get(facts.mode or "major", 0) < 0


# ---------------------------------------------------------------------------------------------------
# Descriptions
# ---------------------------------------------------------------------------------------------------

# The fixed phrasings; each states some of the facts (PHRASING_STATES), and leaves out what the facts lack.
PHRASINGS = ("a {what} in {key}", "a {what} in {key}, {meter}", "a {key} {what}", "a tune in {meter} in {key}",
             "a {meter} {what} in {key}", "a {what} in {key}, in {meter}, at {tempo} quarter notes a minute, "
             "with {contour} spanning {low} to {high}, called \"{title}\"")
FULL = len(PHRASINGS) - 1  # the phrasing that says everything the facts hold (genlab describe)
_HEAD = ("rhythm", "key", "mode", "slow")
PHRASING_STATES: tuple[frozenset[str], ...] = (
    frozenset(_HEAD), frozenset({*_HEAD, "meter"}), frozenset(_HEAD), frozenset({"key", "mode", "meter", "slow"}),
    frozenset({*_HEAD, "meter"}), frozenset({*_HEAD, "meter", "tempo", "title"}),
)


def _article(word: str) -> str:
    vowel = word[:1].lower() in "aeio8" or re.match(r"^[AEF][#b]?(\s|$)", word) is not None
    return f"an {word}" if vowel else f"a {word}"


def _key_text(facts: TuneFacts) -> str | None:
    if facts.key is None:
        return None
    return f"{facts.key} {facts.mode}" if facts.mode else facts.key


def describe(facts: TuneFacts, phrasing: int = 0, rng: random.Random | None = None) -> str:
    """A description of a tune in one of the fixed PHRASINGS (or a random one, with `rng`), saying only
    what its facts support: "a jig in G major", "a reel in D major, 4/4", "a slow air in E minor"."""
    if rng is not None:
        phrasing = rng.randrange(len(PHRASINGS))
    if not 0 <= phrasing < len(PHRASINGS):
        raise GenlabError(f"phrasing {phrasing} does not exist; choose 0 to {len(PHRASINGS) - 1}")
    slow, noun = "slow " if facts.slow else "", facts.rhythm or "tune"
    what = slow + noun  # "slow" leads: "a slow E minor air", not "an E minor slow air"
    key, meter = _key_text(facts), facts.meter
    if phrasing == 0:
        return _article(what) + (f" in {key}" if key else "")
    if phrasing == 1:
        return _article(what) + (f" in {key}" if key else "") + ((", " if key else " in ") + meter if meter else "")
    if phrasing == 2:
        return _article(f"{slow}{key} {noun}" if key else what)
    if phrasing == 3:
        return _article(slow + "tune") + "".join(f" in {x}" for x in (meter, key) if x)
    if phrasing == 4:
        return _article(f"{slow}{meter} {noun}" if meter else what) + (f" in {key}" if key else "")
    parts = [_article(what) + (f" in {key}" if key else "")]
    if meter:
        parts.append(f"in {meter}")
    if facts.tempo is not None:
        parts.append(f"at {round(facts.tempo)} quarter notes a minute")
    if facts.contour or facts.lowest is not None:
        shape = f"with {_CONTOUR_WORDS[facts.contour]}" if facts.contour else "with a melody"
        if facts.lowest is not None and facts.highest is not None:
            flats = _uses_flats(facts)
            shape += f" spanning {pitch_name(facts.lowest, flats)} to {pitch_name(facts.highest, flats)}"
        parts.append(shape)
    if facts.title:
        parts.append(f'called "{facts.title}"')
    return ", ".join(parts)


def descriptions(facts: TuneFacts) -> list[str]:
    """Every phrasing of a tune's description, each once (phrasings that come out alike are merged)."""
    return list(dict.fromkeys(describe(facts, i) for i in range(len(PHRASINGS))))


def stated(facts: TuneFacts, phrasing: int) -> dict:
    """What `describe(facts, phrasing)` states, in parse_description's shape: parsing that description
    gives exactly this."""
    says = PHRASING_STATES[phrasing]
    rhythm = facts.rhythm if "rhythm" in says else None
    return {
        "rhythm": rhythm,
        "key": facts.key if "key" in says else None,
        "mode": facts.mode if "mode" in says and facts.key else None,
        "meter": facts.meter if "meter" in says else None,
        "implied_meter": IMPLIED_METERS.get(rhythm, (None,))[0] if rhythm else None,
        "slow": facts.slow if "slow" in says else False,
        "tempo": float(round(facts.tempo)) if "tempo" in says and facts.tempo is not None else None,
        "title": facts.title if "title" in says else None,
    }


# ---------------------------------------------------------------------------------------------------
# Descriptions as a model reads them (text-to-music)
# ---------------------------------------------------------------------------------------------------

# A model trained with --descriptions reads each tune after a description of it, word by word, as tokens of its
# own vocabulary: <s> desc:a desc:jig desc:in desc:G desc:major M:6/8 K:Gmaj ... The phrasings are those of key,
# mode, meter and tune type (all but FULL, whose title and pitch words are open-ended), so the words form a
# small closed vocabulary that every prompt is read in.
DESCRIPTION_TOKEN = "desc:"
TRAINING_PHRASINGS = tuple(range(FULL))
_WORD_RE = re.compile(r"\d+/\d+|[A-Za-z]+#?|,")
_LEADING_ARTICLE = re.compile(r"^(A|An|The)\b")  # "A jig in G": the article, not the key of A


def description_words(text: str) -> list[str]:
    """The words of a description as a model reads them: "a reel in D major, 4/4" -> a reel in D major , 4/4.
    Case is kept, because a capital letter is a key ("A minor") and a small one an article."""
    text = _LEADING_ARTICLE.sub(lambda m: m.group(1).lower(), text.strip())
    return _WORD_RE.findall(text)


def description_tokens(text: str) -> list[str]:
    return [DESCRIPTION_TOKEN + w for w in description_words(text)]


def training_description(abc: str, rng: random.Random) -> str | None:
    """A description of one tune in a random training phrasing, or None when its header says nothing a
    description can (no key, meter or tune type)."""
    facts = facts_from_abc(abc)
    if not (facts.key or facts.meter or facts.rhythm):
        return None
    return describe(facts, rng.choice(TRAINING_PHRASINGS))


def describe_tune_file(path: Path) -> TuneFacts:
    """The facts of a tune file: an ABC file's header and notes; a MIDI or MusicXML file's notes, meter and
    tempo as music21 reads them, with music21's key analysis as its key (such files seldom say one)."""
    from genlab.music.convert import ConversionError, parse_score_file

    if path.suffix.lower() == ".abc":
        from genlab.music.data import _abc_text

        return facts_from_abc(_abc_text(path), notes=True)
    try:
        score = parse_score_file(path)
    except ConversionError as e:
        raise GenlabError(f"{e}; give a MIDI, MusicXML or ABC file music21 can read") from None
    facts = analysed_facts(score, notes=True)
    marks = score.metronomeMarkBoundaries()
    tempo = float(marks[0][2].getQuarterBPM()) if marks and marks[0][2].number is not None else None
    return replace(facts, key=facts.analysed_key, mode=facts.analysed_mode, tempo=tempo)


def facts_from_dict(facts: Mapping) -> TuneFacts:
    """A TuneFacts from its to_dict() (the properties it adds are left out)."""
    names = TuneFacts.__dataclass_fields__
    return TuneFacts(**{k: v for k, v in facts.items() if k in names})


# An image's digits become a tune's meter when they spell one: the lower number a note value
DENOMINATORS = (2, 4, 8)
# The background picks the mode, and a tonic with it (the image has none to give): genlab's choice, said as such
BACKGROUND_KEYS = {False: "G major", True: "E minor"}  # white ink on black, black ink on white


def meter_from_digits(digits: Sequence[int]) -> str | None:
    """The first meter two of the digits spell in reading order (3, 4 -> 3/4; 8, 6 -> 6/8), or None."""
    for a, b in itertools.permutations(digits, 2):
        if a >= 1 and b in DENOMINATORS:
            return f"{a}/{b}"
    return None


# ---------------------------------------------------------------------------------------------------
# Reading prompts
# ---------------------------------------------------------------------------------------------------

CONDITIONS = ("rhythm", "key", "mode", "meter")  # what a prompt must name for a model to condition on it
_MODE_WORD = r"major|minor|dorian|mixolydian|lydian|phrygian|locrian|aeolian|ionian"
# A key: a capital tonic, an accidental, then a mode word ("G major", "F sharp minor") or a short mode
# glued on ("Dmaj", "Em", "Ador"); a bare tonic ("in G") counts only after "in", "key (of)" or "K:", so
# that the article in "A jig in G" is not a key.
_KEY_RE = re.compile(
    r"(?<![\w#])(?P<tonic>[A-G])(?P<acc>#|♯|b|♭|[\s-]?(?i:sharp|flat)(?![a-z]))?"
    rf"(?:[\s-]+(?P<mode>(?i:{_MODE_WORD}))|(?P<short>(?i:maj|min|dor|mix|lyd|phr|loc|aeo|ion)|m))?(?![\w#♯♭])")
_BARE_KEY_BEFORE = re.compile(r"(?:\bin|\bkey(?:\s+of)?|\bK:)\s*$", re.IGNORECASE)
_LONE_MODE_RE = re.compile(rf"\b({_MODE_WORD})\b", re.IGNORECASE)
_METER_RE = re.compile(r"(?<![\d/])(\d{1,2})\s*/\s*(\d{1,2})(?![\d/=])")
_NAMED_METERS = ((re.compile(r"\bM:\s*C\|", re.IGNORECASE), "2/2"), (re.compile(r"\bM:\s*C\b"), "4/4"),
                 (re.compile(r"\b(cut time|alla breve)\b", re.IGNORECASE), "2/2"),
                 (re.compile(r"\bcommon time\b", re.IGNORECASE), "4/4"))
_TEMPO_RE = re.compile(r"\b(\d{2,3}(?:\.\d+)?)\s*(?:bpm|qpm|(?:quarter notes|beats) (?:a|per) minute)\b",
                       re.IGNORECASE)
_TITLE_RE = re.compile(r"\b(?:called|titled|named)\s+[\"“]([^\"”]*)[\"”]", re.IGNORECASE)


def _accidental(acc: str | None) -> str:
    if not acc:
        return ""
    return "#" if acc in ("#", "♯") or "sharp" in acc.lower() else "b"


def parse_description(text: str, strict: bool = False) -> dict:
    """What a free-text prompt names: {"rhythm", "key", "mode", "meter", "implied_meter", "slow", "tempo",
    "title"}. "a jig in G major" -> rhythm "jig", key "G", mode "major", meter None, implied_meter "6/8".

    Unknown words are ignored; the first key, meter and tune type named are taken. A capital letter is a
    tonic ("A minor" is a key, "a minor tune" is a mode). With `strict`, a prompt that names none of
    CONDITIONS raises GenlabError."""
    title = None
    if m := _TITLE_RE.search(text):  # read and set aside first: a title's words are not facts
        title = m.group(1).strip() or None
        text = text[: m.start()] + " " + text[m.end():]
    key = mode = None
    rest = text
    for m in _KEY_RE.finditer(text):
        named = m.group("mode") or m.group("short")
        if not named and not _BARE_KEY_BEFORE.search(text[: m.start()]):
            continue
        key = m.group("tonic") + _accidental(m.group("acc"))
        if named:
            mode = _MODE_NAMES[named.lower()[:3] if named.lower() not in _MODE_NAMES else named.lower()]
        elif text[: m.start()].rstrip().endswith("K:"):
            mode = "major"  # an ABC field: K:G is G major; "in G" leaves the mode unsaid
        rest = text[: m.start()] + " " + text[m.end():]
        break
    if mode is None and (m := _LONE_MODE_RE.search(rest)):
        mode = _MODE_NAMES[m.group(1).lower()]
    meter = None
    for pattern, value in _NAMED_METERS:
        if pattern.search(rest):
            meter = value
            break
    if meter is None:
        for m in _METER_RE.finditer(rest):
            num, den = int(m.group(1)), int(m.group(2))
            if 1 <= num <= 16 and den in (1, 2, 4, 8, 16, 32):
                meter = f"{num}/{den}"
                break
    rhythm = None
    if m := _RHYTHM_RE.search(re.sub(r"\s*-\s*(?=\w)", "", rest.lower())):
        rhythm = RHYTHM_ALIASES[" ".join(m.group(1).lower().split())]
    tempo = float(m.group(1)) if (m := _TEMPO_RE.search(rest)) else None
    out = {"rhythm": rhythm, "key": key, "mode": mode, "meter": meter,
           "implied_meter": IMPLIED_METERS[rhythm][0] if rhythm in IMPLIED_METERS else None,
           "slow": bool(SLOW_WORDS.search(rest)), "tempo": tempo, "title": title}
    if strict and not names_something(out):
        raise GenlabError(f"the prompt {text.strip()[:60]!r} names no key, mode, meter or tune type to condition "
                          "on; say e.g. \"a jig in G major\" or \"a reel in D major, 4/4\"")
    return out


def names_something(parsed: Mapping) -> bool:
    """Whether a parsed prompt names anything a model can be conditioned on (one of CONDITIONS)."""
    return any(parsed.get(k) for k in CONDITIONS)


# ---------------------------------------------------------------------------------------------------
# Checking samples
# ---------------------------------------------------------------------------------------------------


def _spelled(music21_name: str) -> str:
    return music21_name.replace("-", "b")  # music21 writes B flat as "B-"


def analysed_facts(abc_or_score, notes: bool = False) -> TuneFacts:
    """A sampled tune's facts with music21's analysis: `analysed_key`/`analysed_mode` from
    `score.analyze("key")` (major or minor only), `meter` from the time signature music21 reads. For ABC
    text, `key`/`mode` stay the K: the model wrote; a score has none (key_written never agrees). Raises
    convert.ConversionError when music21 cannot read the tune; a bench counts that as disagreement."""
    from music21 import meter as m21meter

    if isinstance(abc_or_score, str):
        from genlab.music.convert import parse_abc

        facts = facts_from_abc(abc_or_score, notes=notes)
        score = parse_abc(_first_tune(abc_or_score))
    else:
        score, facts = abc_or_score, TuneFacts()
        if notes:
            pitches = [p.midi for n in score.flatten().notes for p in n.pitches[:1]]
            if pitches:
                facts = replace(facts, lowest=min(pitches), highest=max(pitches), contour=contour(pitches))
    try:
        found = score.analyze("key")
        key, mode, confidence = _spelled(found.tonic.name), found.mode, float(found.correlationCoefficient)
    except Exception:  # music21 raises assorted types on a score without pitches
        key = mode = confidence = None
    signature = score.recurse().getElementsByClass(m21meter.TimeSignature).first()
    meter = signature.ratioString if signature is not None else facts.meter
    return replace(facts, meter=meter, analysed_key=key,
                   analysed_mode=mode if mode in ("major", "minor") else None, key_confidence=confidence)


def _pc(tonic: str | None) -> int | None:
    if not tonic or tonic[0] not in _LETTER_PC:
        return None
    return (_LETTER_PC[tonic[0]] + tonic.count("#") - tonic.count("b")) % 12


def _signature(tonic: str | None, mode: str | None) -> int | None:
    """The key signature as sharps mod 12 (flats negative): A dorian, G major and E minor are all 1."""
    pc = _pc(tonic)
    if pc is None or mode not in _MODE_FIFTHS:
        return None
    return (pc * 7 + _MODE_FIFTHS[mode]) % 12


def agreement(prompt: Mapping | TuneFacts, analysed: TuneFacts) -> dict[str, bool]:
    """Whether a sampled tune's facts (analysed_facts) agree with what the prompt named (parse_description,
    or a TuneFacts). Only what the prompt names is judged:
    key_written/key_analysed (tonic, and mode when named), mode_written/mode_analysed, scale_analysed
    (music21's key has the prompt key's signature: the notes use its scale, whatever their tonic), meter,
    and key_and_meter_written/key_and_meter_analysed. See the module docstring for why several ways."""
    p = asdict(prompt) if isinstance(prompt, TuneFacts) else dict(prompt)
    want_pc, want_mode = _pc(p.get("key")), p.get("mode")
    out: dict[str, bool] = {}
    if want_mode:
        out["mode_written"] = analysed.mode == want_mode
        out["mode_analysed"] = analysed.analysed_mode == ("minor" if want_mode in MINOR_LIKE else "major")
    if want_pc is not None:
        out["key_written"] = _pc(analysed.key) == want_pc and (not want_mode or out["mode_written"])
        out["key_analysed"] = _pc(analysed.analysed_key) == want_pc and (not want_mode or out["mode_analysed"])
        if want_mode:
            out["scale_analysed"] = _signature(analysed.analysed_key, analysed.analysed_mode) == _signature(
                p["key"], want_mode)
    if p.get("meter"):
        out["meter"] = analysed.meter == p["meter"]
    elif p.get("rhythm") in IMPLIED_METERS:
        out["meter"] = analysed.meter in IMPLIED_METERS[p["rhythm"]]
    if "meter" in out and want_pc is not None:
        out["key_and_meter_written"] = out["key_written"] and out["meter"]
        out["key_and_meter_analysed"] = out["key_analysed"] and out["meter"]
    return out


# ---------------------------------------------------------------------------------------------------
# Corpus statistics
# ---------------------------------------------------------------------------------------------------


def describe_corpus(source: str = "music:folk") -> dict:
    """Counts of the tune types, modes, keys and meters of an ABC corpus's headers (no music21 parsing),
    the meters each tune type is written in, and the share of tunes that get a non-trivial description
    (key, mode and meter at least)."""
    from genlab.music.data import ABC_SUFFIXES, _abc_text, _source_files
    from genlab.music.tokenizers import split_tunes

    if source == "music:bach":
        raise GenlabError("music:bach is read as scores, not ABC, so it has no headers to describe; "
                          "give music:folk or a folder of .abc files")
    files = [f for f in _source_files(source)[0] if f.suffix.lower() in ABC_SUFFIXES]
    if not files:
        raise GenlabError(f"{source} holds no .abc files; describe_corpus reads ABC headers")
    counts = {k: collections.Counter() for k in ("rhythms", "modes", "keys", "meters")}
    rhythm_meters: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    n = described = with_rhythm = with_tempo = slow = 0
    for f in files:
        for piece in split_tunes(_abc_text(Path(f))):
            facts = facts_from_abc(piece)
            n += 1
            described += facts.described
            with_rhythm += facts.rhythm is not None
            with_tempo += facts.tempo is not None
            slow += facts.slow
            counts["rhythms"][facts.rhythm or "none"] += 1
            counts["modes"][facts.mode or "none"] += 1
            counts["keys"][f"{facts.key} {facts.mode}" if facts.key else "none"] += 1
            counts["meters"][facts.meter or "none"] += 1
            if facts.rhythm:
                rhythm_meters[facts.rhythm][facts.meter or "none"] += 1
    share = (lambda k: round(k / n, 4)) if n else (lambda k: 0.0)
    return {
        "source": source, "files": len(files), "tunes": n,
        **{k: dict(c.most_common()) for k, c in counts.items()},
        "rhythm_meters": {r: dict(c.most_common()) for r, c in sorted(rhythm_meters.items())},
        "described": described, "described_share": share(described), "with_rhythm_share": share(with_rhythm),
        "with_tempo_share": share(with_tempo), "slow_share": share(slow),
    }


def agreement_rates(results: Sequence[Mapping[str, bool]]) -> dict[str, float]:
    """The share of samples that agree, per entry of `agreement`, over the samples where it was judged."""
    judged: collections.Counter = collections.Counter()
    agreed: collections.Counter = collections.Counter()
    for r in results:
        for k, v in r.items():
            judged[k] += 1
            agreed[k] += bool(v)
    return {k: round(agreed[k] / judged[k], 4) for k in judged}


def corpus_agreement(source: str = "music:folk", n: int = 50, seed: int = 0) -> dict:
    """How often `n` real tunes of a corpus agree with their own headers: the ceiling a conditioned model is
    measured under, since music21's analysis and the transcriber's K: differ on real tunes too (on 50
    folk tunes: key_analysed 0.70, scale_analysed 0.84). Tunes music21 cannot read are counted apart."""
    from genlab.music.convert import ConversionError
    from genlab.music.data import ABC_SUFFIXES, _abc_text, _source_files
    from genlab.music.tokenizers import split_tunes

    if n < 1:
        raise GenlabError(f"n must be at least 1, not {n}")
    tunes = [p for f in _source_files(source)[0] if f.suffix.lower() in ABC_SUFFIXES
             for p in split_tunes(_abc_text(f))]
    if not tunes:
        raise GenlabError(f"{source} holds no ABC tunes to check")
    results, unreadable = [], 0
    for tune in random.Random(seed).sample(tunes, min(n, len(tunes))):
        try:
            results.append(agreement(facts_from_abc(tune), analysed_facts(tune)))
        except ConversionError:
            unreadable += 1
    return {"source": source, "tunes": len(results), "unreadable": unreadable, **agreement_rates(results)}
