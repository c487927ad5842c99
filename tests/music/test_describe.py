"""Descriptions of tunes from their metadata, read back from prompts, and prompt/sample agreement."""

from __future__ import annotations

import random

import pytest

from genlab.errors import GenlabError
from genlab.music.describe import (
    FULL,
    PHRASINGS,
    TuneFacts,
    agreement,
    agreement_rates,
    analysed_facts,
    contour,
    corpus_agreement,
    describe,
    describe_corpus,
    descriptions,
    facts_from_abc,
    facts_from_notes,
    parse_description,
    pitch_name,
    stated,
)
from genlab.music.notes import Note

KESH = """X:1
T:The Kesh
R:jig
M:6/8
L:1/8
K:G
|:G3 GAB|A3 ABd|edd gdd|edB dBA|GAG GAB|ABA ABd|edd gdB|AGF G3:|
|:BAB dBd|ege dBA|BAB dBG|ABA AGA|BAB dBd|ege dBd|gfg aga|bgf g3:|
"""
REEL = """X:2
T:Silver Spear, The
R:Reel
M:4/4
L:1/8
K:D
|:FAAB AFED|FAAB A2dB|FAAB AFEF|DEFD E2D2:|
"""
AIR = """X:3
T:An Air
R:air
M:3/4
L:1/8
Q:1/4=60
K:Em
E2G2B2|e4d2|B2A2G2|F6|E2G2B2|e4g2|f2e2^d2|e6|]
"""
DORIAN = """X:4
T:Dorian Jig
R:double jig
M:6/8
L:1/8
K:A Dorian
|:EAA EAA|BAB G2E|EAA EAA|Bcd e3:|
"""
NO_RHYTHM = """X:5
T:Untitled
M:C|
L:1/8
K:Bb
B2dB FBdf|gfdB c2BA|B2dB FBdf|gfed B4|]
"""

KNOWN = {
    "kesh": (KESH, TuneFacts(key="G", mode="major", meter="6/8", rhythm="jig", title="The Kesh")),
    "reel": (REEL, TuneFacts(key="D", mode="major", meter="4/4", rhythm="reel", title="The Silver Spear")),
    "air": (AIR, TuneFacts(key="E", mode="minor", meter="3/4", rhythm="air", tempo=60.0, tempo_beat=1.0,
                           title="An Air")),
    "dorian": (DORIAN, TuneFacts(key="A", mode="dorian", meter="6/8", rhythm="jig", title="Dorian Jig")),
    "no_rhythm": (NO_RHYTHM, TuneFacts(key="Bb", mode="major", meter="2/2", title="Untitled")),
}


@pytest.mark.parametrize("name", KNOWN)
def test_header_facts_of_known_tunes(name):
    abc, facts = KNOWN[name]
    assert facts_from_abc(abc) == facts
    assert facts.described


def test_descriptions_of_known_tunes():
    kesh = facts_from_abc(KESH)
    assert descriptions(kesh) == [
        "a jig in G major", "a jig in G major, 6/8", "a G major jig", "a tune in 6/8 in G major",
        "a 6/8 jig in G major", 'a jig in G major, in 6/8, called "The Kesh"']
    assert describe(facts_from_abc(REEL), 1) == "a reel in D major, 4/4"
    air = facts_from_abc(AIR)
    assert air.slow
    assert [describe(air, i) for i in range(4)] == [
        "a slow air in E minor", "a slow air in E minor, 3/4", "a slow E minor air", "a slow tune in 3/4 in E minor"]
    assert describe(facts_from_abc(DORIAN), 3) == "a tune in 6/8 in A dorian"
    assert describe(facts_from_abc(DORIAN), 2) == "an A dorian jig"
    assert describe(facts_from_abc(NO_RHYTHM)) == "a tune in Bb major"
    assert describe(TuneFacts()) == "a tune"  # says nothing it does not know
    assert describe(kesh, rng=random.Random(0)) in descriptions(kesh)
    with pytest.raises(GenlabError, match="phrasing"):
        describe(kesh, len(PHRASINGS))


def test_notes_facts_and_full_description():
    kesh = facts_from_abc(KESH, notes=True)
    assert (kesh.lowest, kesh.highest, kesh.contour) == (66, 83, "rising")  # F#4 .. B5; the B part is higher
    assert describe(kesh, FULL) == ('a jig in G major, in 6/8, with a rising melody spanning F#4 to B5, '
                                    'called "The Kesh"')
    flats = facts_from_abc(NO_RHYTHM, notes=True)
    assert pitch_name(flats.lowest, True) == "F4" and pitch_name(70, True) == "Bb4" and pitch_name(60) == "C4"
    assert contour([60, 62, 64, 65, 67, 69, 71, 72]) == "rising"
    assert contour([72, 71, 69, 67, 65, 64, 62, 60]) == "falling"
    assert contour([60, 62, 67, 69, 71, 67, 62, 60]) == "arch"
    assert contour([67, 65, 60, 58, 57, 60, 65, 67]) == "valley"
    assert contour([60, 62, 60, 62, 61, 60, 62, 60]) == "flat"
    assert contour([60, 72]) is None
    events = facts_from_notes([Note(60 + i, i, 1) for i in range(8)], qpm=96.0)
    assert (events.tempo, events.lowest, events.highest, events.contour) == (96.0, 60, 67, "rising")
    assert describe(events, FULL) == "a tune, at 96 quarter notes a minute, with a rising melody spanning C4 to G4"


@pytest.mark.parametrize("name", KNOWN)
def test_every_phrasing_parses_back_to_the_facts_it_states(name):
    abc, _ = KNOWN[name]
    facts = facts_from_abc(abc, notes=True)
    for i in range(len(PHRASINGS)):
        text = describe(facts, i)
        assert parse_description(text) == stated(facts, i), text


@pytest.mark.parametrize("field,value,expected", [
    ("K", "D", ("D", "major")), ("K", "Dmaj", ("D", "major")), ("K", "Dmix", ("D", "mixolydian")),
    ("K", "Ador", ("A", "dorian")), ("K", "Em", ("E", "minor")), ("K", "E Minor", ("E", "minor")),
    ("K", "A Mixolydian", ("A", "mixolydian")), ("K", "F#m", ("F#", "minor")), ("K", "Bb", ("Bb", "major")),
    ("K", "G clef=bass", ("G", "major")), ("K", "Dmix=c % one sharp", ("D", "mixolydian")),
    ("K", "Hp", (None, None)), ("K", "none", (None, None)),
    ("M", "C", "4/4"), ("M", "C|", "2/2"), ("M", " 6/8 % comment", "6/8"), ("M", "none", None), ("M", "FREI4/4", None),
    ("R", "Reel", "reel"), ("R", "slipjig", "slip jig"), ("R", "Slip Jig", "slip jig"), ("R", "clog", "hornpipe"),
    ("R", "highland fling", "strathspey"), ("R", " Kinder -, Wiegen - Lied", "lullaby"),
    ("R", " Romanze, Ballade, Lied", None),
])
def test_header_fields_are_normalised(field, value, expected):
    facts = facts_from_abc(f"X:1\n{field}:{value}\n" + ("" if field == "K" else "K:C\n") + "CDEF|\n")
    got = (facts.key, facts.mode) if field == "K" else facts.meter if field == "M" else facts.rhythm
    assert got == expected


def test_tempo_and_title():
    def facts(q: str) -> TuneFacts:
        return facts_from_abc(f"X:1\nT:Old Woman Lamenting Her Purse., The\nM:6/8\nQ:{q}\nK:G\nGAB|\n")

    assert facts('1/4=80 "Slow"').tempo == 80.0 and facts('1/4=80 "Slow"').slow
    assert facts("3/8=120").tempo == 180.0 and not facts("3/8=120").slow  # 120 dotted quarters a minute
    assert facts("3/8=50").slow
    assert facts("100").tempo == 100.0  # a bare number: quarter notes, as music21 reads it
    assert facts("100").title == "The Old Woman Lamenting Her Purse"
    assert facts("100").title_words == ("the", "old", "woman", "lamenting", "her", "purse")
    with pytest.raises(GenlabError, match="not ABC"):
        facts_from_abc("a jig in G major")


@pytest.mark.parametrize("text,expected", [
    ("a jig in G major", dict(rhythm="jig", key="G", mode="major", implied_meter="6/8")),
    ("a reel in D major, 4/4", dict(rhythm="reel", key="D", mode="major", meter="4/4", implied_meter="4/4")),
    ("a slow air in E minor", dict(rhythm="air", key="E", mode="minor", slow=True)),
    ("A minor hornpipe", dict(rhythm="hornpipe", key="A", mode="minor", implied_meter="4/4")),
    ("a minor tune", dict(mode="minor")),  # lower-case "a" is the article
    ("A tune in G", dict(key="G")),  # a bare tonic counts after "in"; the capital article does not
    ("F sharp minor slip-jigs", dict(rhythm="slip jig", key="F#", mode="minor", implied_meter="9/8")),
    ("something in B flat, 3/4 time", dict(key="Bb", meter="3/4")),
    ("M:C| K:Dmix", dict(key="D", mode="mixolydian", meter="2/2")),
    ("M:6/8 K:G", dict(key="G", mode="major", meter="6/8")),  # in ABC, K:G is G major
    ("an Em waltz at 90 bpm", dict(rhythm="waltz", key="E", mode="minor", implied_meter="3/4", tempo=90.0)),
    ("a tune in Dorian mode", dict(mode="dorian")),
    ("a happy little melody", {}),
])
def test_parse_description(text, expected):
    empty = dict(rhythm=None, key=None, mode=None, meter=None, implied_meter=None, slow=False, tempo=None, title=None)
    assert parse_description(text) == {**empty, **expected}


def test_a_prompt_that_names_nothing_is_refused_when_strict():
    with pytest.raises(GenlabError, match="names no key, mode, meter or tune type"):
        parse_description("a happy little melody", strict=True)
    assert parse_description("a reel", strict=True)["rhythm"] == "reel"


def test_agreement():
    sample = TuneFacts(key="G", mode="major", meter="6/8", analysed_key="G", analysed_mode="major")
    assert agreement(parse_description("a jig in G major"), sample) == {
        "mode_written": True, "mode_analysed": True, "key_written": True, "key_analysed": True,
        "scale_analysed": True, "meter": True, "key_and_meter_written": True, "key_and_meter_analysed": True}
    # the model wrote K:G but the notes sound in E minor, the relative minor: the same scale, another tonic
    relative = TuneFacts(key="G", mode="major", meter="6/8", analysed_key="E", analysed_mode="minor")
    got = agreement(parse_description("a jig in G major"), relative)
    assert got["key_written"] and not got["key_analysed"] and not got["mode_analysed"] and got["scale_analysed"]
    # music21 knows only major and minor: A dorian agrees with an analysed A minor, not with G major
    ador = parse_description("a tune in A dorian")
    a_minor = TuneFacts(key="A", mode="dorian", analysed_key="A", analysed_mode="minor")
    g_major = TuneFacts(key="G", mode="major", analysed_key="G", analysed_mode="major")
    assert agreement(ador, a_minor) == {"mode_written": True, "mode_analysed": True, "key_written": True,
                                        "key_analysed": True, "scale_analysed": False}
    assert agreement(ador, g_major) == {"mode_written": False, "mode_analysed": False, "key_written": False,
                                        "key_analysed": False, "scale_analysed": True}
    # a reel implies 4/4 or 2/2; an explicit 4/4 is 4/4; enharmonic tonics agree; what is unnamed is not judged
    cut = TuneFacts(meter="2/2")
    assert agreement(parse_description("a reel"), cut) == {"meter": True}
    assert agreement(parse_description("a tune in 4/4"), cut) == {"meter": False}
    assert agreement(parse_description("in F#"), TuneFacts(key="Gb", analysed_key="Gb")) == {
        "key_written": True, "key_analysed": True}
    assert agreement(parse_description("a jig in G major"), TuneFacts()) == dict.fromkeys(
        ["mode_written", "mode_analysed", "key_written", "key_analysed", "scale_analysed", "meter",
         "key_and_meter_written", "key_and_meter_analysed"], False)  # an unreadable sample agrees with nothing
    assert agreement(parse_description("nothing"), sample) == {}
    assert agreement_rates([{"meter": True, "key_written": False}, {"meter": False}]) == {
        "meter": 0.5, "key_written": 0.0}


def test_music21_analysis_of_clear_keys():
    from genlab.music.convert import parse_abc

    g = "X:1\nT:G scale\nM:4/4\nL:1/8\nK:G\nG2AB c2de|f2g2 d2B2|GABc defg|d2B2 G4|]\n"
    e = "X:2\nT:E minor\nM:3/4\nL:1/8\nK:Em\nE2G2B2|e4B2|G2F2E2|B,4E2|EFGABc|B2G2E2|F2D2B,2|E6|]\n"
    got = analysed_facts(g)
    assert (got.key, got.mode, got.analysed_key, got.analysed_mode, got.meter) == ("G", "major", "G", "major", "4/4")
    assert got.key_confidence > 0.5
    score = analysed_facts(parse_abc(e), notes=True)  # a score, as from MusicXML: no written key
    assert (score.key, score.analysed_key, score.analysed_mode, score.meter) == (None, "E", "minor", "3/4")
    assert (score.lowest, score.highest) == (59, 76)
    assert all(agreement(parse_description("a tune in E minor, 3/4"), analysed_facts(e)).values())
    rates = corpus_agreement(n=2, seed=0)  # real tunes against their own headers: the ceiling
    assert rates["tunes"] + rates["unreadable"] == 2


def test_describe_corpus_of_the_folk_tunes():
    stats = describe_corpus("music:folk")
    # measured: 12,762 tunes; 98% get key+mode+meter; rhythms: reel 715, jig 514, hornpipe 501, slip jig 97,
    # strathspey 65, lullaby 54, air 33 (84% have no tune type: Essen's R: names song genres); modes: major
    # 12,035, minor 516, mixolydian 102, dorian 88; meters: 2/4 3,528, 4/4 2,694, 6/8 2,125, 3/4 1,880, 2/2 1,055
    assert stats["tunes"] > 10_000
    assert stats["described_share"] >= 0.5
    assert {"reel", "jig", "hornpipe", "slip jig"} <= set(stats["rhythms"])
    assert max(stats["modes"], key=stats["modes"].get) == "major"
    assert {"dorian", "mixolydian", "minor"} <= set(stats["modes"])
    assert stats["rhythm_meters"]["slip jig"] == {"9/8": stats["rhythms"]["slip jig"]}
    with pytest.raises(GenlabError, match="music:bach"):
        describe_corpus("music:bach")
