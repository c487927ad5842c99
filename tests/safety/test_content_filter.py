"""The content filter: each normalisation trick caught on its own, redaction cutting exactly the original span,
whole words only (the Scunthorpe problem), user TOML files and their mistakes, fingerprints, speed, and not one
match on the built-in corpora's ordinary words (Python's documentation, music21's tune titles, Shakespeare).

The tricks are tried on neutral words of a filter of the test's own; the default list's words are read from the
list itself and disguised programmatically, so no slur is spelled out here."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from genlab.errors import GenlabError
from genlab.safety.content_filter import ContentFilter, ContentFiltered, Match, load_filter, normalise, refusal

SHAKESPEARE = [Path(__file__).resolve().parents[3] / "shared" / "data" / "tinyshakespeare" / "input.txt",
               Path("/work/shared/data/tinyshakespeare/input.txt")]


@pytest.fixture(scope="module")
def f() -> ContentFilter:
    return ContentFilter(words=["badword", "forbidden", "filth", "gate"])


@pytest.fixture(scope="module")
def default() -> ContentFilter:
    return ContentFilter.default()


# --------------------------------------------------------------------------------- disguises, built by hand

def fullwidth(w: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in w)


def math_bold(w: str) -> str:
    return "".join(chr(0x1D41A + ord(c) - ord("a")) for c in w)


def swap(w: str, table: dict[str, str]) -> str:
    return "".join(table.get(c, c) for c in w)


CYRILLIC = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "y": "у", "x": "х", "i": "і", "s": "ѕ", "j": "ј"}
GREEK = {"a": "α", "o": "ο", "p": "ρ", "v": "ν", "i": "ι", "k": "κ", "t": "τ", "u": "υ"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


def zero_width(w: str) -> str:
    return w[:1] + "\u200b" + w[1:-1] + "\u2060" + w[-1:]


def zalgo(w: str) -> str:
    return "".join(c + "\u0334\u0301" for c in w)


TRICKS = {
    "case": str.upper,
    "mixed case": lambda w: "".join(c.upper() if i % 2 else c for i, c in enumerate(w)),
    "NFKC full-width": fullwidth,
    "NFKC mathematical bold": math_bold,
    "Cyrillic homoglyphs": lambda w: swap(w, CYRILLIC),
    "Greek homoglyphs": lambda w: swap(w, GREEK),
    "leetspeak": lambda w: swap(w, LEET),
    "zero-width inside": zero_width,
    "soft hyphen inside": lambda w: w[:2] + "\u00ad" + w[2:],
    "byte-order mark inside": lambda w: w[:3] + "\ufeff" + w[3:],
    "combining marks": zalgo,
    "precomposed accents": lambda w: swap(w, {"a": "á", "o": "ö", "e": "é", "i": "ï"}),
    "spaced-out letters": " ".join,
    "dotted letters": ".".join,
    "dashed letters": "-".join,
    "underscored letters": "_".join,
    "starred letters": "*".join,
    "spaced dots": " . ".join,
    "stretched letters": lambda w: "".join(c * 3 if c in "aeiou" else c for c in w),
}


@pytest.mark.parametrize("trick", TRICKS)
@pytest.mark.parametrize("word", ["badword", "forbidden"])
def test_each_trick_alone_is_caught_and_redacted_exactly(f, trick, word):
    disguised = TRICKS[trick](word)
    if trick in ("Cyrillic homoglyphs", "Greek homoglyphs", "leetspeak"):
        assert disguised != word  # the trick did disguise it
    text = f"they said {disguised} twice"
    [m] = f.check(text)
    assert m.term == word and m.kind == "word"
    assert m.text == disguised and text[m.start:m.end] == disguised  # the original span, invisibles included
    assert f.redact(text) == "they said [filtered] twice"


def test_the_ligature_and_small_capitals(f):
    assert [m.text for m in f.check("ﬁlth")] == ["ﬁlth"]  # NFKC: the fi ligature is two letters
    assert f.blocks("ꜰᴏʀʙɪᴅᴅᴇɴ")  # small capitals, which NFKC leaves alone
    assert f.blocks("ⓑⓐⓓⓦⓞⓡⓓ")  # circled letters


def test_tricks_combined(f):
    text = "ok Ｂ\u200b 4 d̴ w 0 r d!"
    assert [m.text for m in f.check(text)] == ["Ｂ\u200b 4 d̴ w 0 r d"]
    assert f.redact(text) == "ok [filtered]!"


def test_marks_and_invisibles_after_a_match_go_with_it(f):
    assert f.redact("badword\u0334\u200b ok") == "[filtered] ok"  # no stray mark on the mask's last character


def test_punctuation_and_markup_around_a_word(f):
    for text in ["badword!", "(badword)", "@badword", "|badword|", "#badword", "'badword'", "foo_badword", "BADWORD?"]:
        [m] = f.check(text)
        assert m.normalised == "badword", text


def test_allowed_cases(f):
    for text in ["a bad word", "badwords", "xbadword", "bad-ish word", "forbid den", "forbiddance", "gateway",
                 "the words were bad", "b a d", "word bad", ""]:
        assert f.check(text) == [], text


def test_leetspeak_signs(f):
    for text in ["b@dword", "f0rb!dden", "f0rb|dden", "$illy badw0rd$", "BADW0RD"]:
        assert f.blocks(text), text


def test_ordinary_numbers_never_spell_a_word():
    nums = ContentFilter(words=["gate", "tool", "isle", "lose"])  # every letter has a leetspeak digit
    assert nums.check("in 9473 there were 7001 ships, 1513 isles and 1053 items; +1 513, 1.053") == []
    assert nums.blocks("g4t3") and nums.blocks("700l") and nums.blocks("l053")


# ---------------------------------------------------------------------------------- whole words, not parts

SCUNTHORPE = ContentFilter(words=["ass", "sex", "cock", "rapist", "rape", "shit", "cunt", "tit", "hell", "arse"])


@pytest.mark.parametrize("text", ["class", "assassin", "Scunthorpe", "Essex", "Sussex", "cocktail", "therapist",
                                  "grape", "shitake", "title", "shell", "hello", "parse", "Middlesex", "bass",
                                  "the class is hot", "a passing glass", "Cockburn's Reel", "CLASS", "Ｃｌａｓｓ"])
def test_no_scunthorpe_problem(text):
    assert SCUNTHORPE.check(text) == [], text


def test_the_shorter_words_alone_are_still_caught():
    assert [m.term for m in SCUNTHORPE.check("you ass, in Essex")] == ["ass"]
    assert [m.text for m in SCUNTHORPE.check("the rapist, not the therapist")] == ["rapist"]


@pytest.mark.parametrize(("words", "text"), [
    (["ass"], "as sex"), (["assex"], "as sex"), (["shot"], "the class is hot"), (["ishot", "sshot"], "class is hot"),
    (["ass"], "the class is hot"), (["sa"], "it's a day"), (["iamok", "amok"], "I am ok"), (["ama"], "I am a man"),
])
def test_spacing_joins_single_letters_only_never_words(words, text):
    assert ContentFilter(words=words).check(text) == []


# ------------------------------------------------------------------------------------------ the default list

def test_every_default_word_is_caught_plain_and_disguised(default):
    assert len(default.words) >= 30 and default.action == "redact"
    for word in default.words:
        for trick in ("case", "NFKC full-width", "zero-width inside", "combining marks", "spaced-out letters",
                      "dotted letters", "Cyrillic homoglyphs", "leetspeak"):
            disguised = TRICKS[trick](word)
            assert default.blocks(f"well {disguised} then"), (trick, word[:1])
        assert default.blocks(word)


def test_refusal_names_the_match_masked(default):
    word = default.words[0]
    with pytest.raises(ContentFiltered) as e:
        default.check_prompt(f"please write {TRICKS['spaced-out letters'](word)}")
    msg = str(e.value)
    assert isinstance(e.value, GenlabError) and e.value.type == "content_filter" and e.value.exit_code == 2
    assert msg.startswith("the prompt was refused by the content filter (it matched '" + word[0] + "*")
    assert word not in msg and "--content-filter off" in msg and "\n" not in msg
    assert e.value.matches and e.value.matches[0].term == word
    default.check_prompt("a prompt about fiddle tunes")  # passes: no exception
    many = [Match("x", "word", 0, 1, "x", w) for w in ["xyz", "xyz", "abc", "defg", "hi", "jk"]]
    assert refusal(many, "title", "hint") == ("the title was refused by the content filter (it matched 'x**', 'a**', "
                                              "'d***' and 2 more); hint")


def test_apply_redacts_by_default_and_records_it(default):
    word = default.words[-1]
    out = default.apply(f"a {word} here")
    assert (out.text, out.outcome, len(out.matches)) == ("a [filtered] here", "redacted", 1)
    assert out.record == {"filter": "default", "sha256": default.sha256, "action": "redact", "outcome": "redacted",
                          "matches": 1}
    assert word not in str(out.record)
    clean = default.apply("The Lads of the Village")
    assert (clean.text, clean.outcome, clean.record["matches"]) == ("The Lads of the Village", "passed", 0)


# ----------------------------------------------------------------------------- no false positives on corpora

def _report(matches: list[Match], text: str) -> list[str]:
    return [f"{m.term!r} in {text[max(0, m.start - 30):m.end + 30]!r}" for m in matches[:10]]


def test_no_match_in_python_documentation(default):
    from pydoc_data.topics import topics

    assert len(topics) > 50
    for name, text in topics.items():
        assert (found := default.check(text)) == [], (name, _report(found, text))


def test_no_match_in_music21_tune_titles(default):
    from music21 import corpus

    titles = []
    for path in corpus.getPaths(fileExtensions=["abc"]):
        with open(path, encoding="utf-8", errors="replace") as fh:
            titles += [line[2:].strip() for line in fh if line.startswith("T:")]
    assert len(titles) > 5000
    text = "\n".join(titles)
    assert (found := default.check(text)) == [], _report(found, text)


def test_no_match_in_shakespeare(default):
    path = next((p for p in SHAKESPEARE if p.is_file()), None)
    if path is None:
        pytest.skip("tiny-shakespeare is not in ../shared/data here")
    text = path.read_text(encoding="utf-8")
    assert (found := default.check(text)) == [], _report(found, text)


@pytest.mark.slow
def test_no_match_in_the_standard_library_source(default):
    from genlab.text.data import read_text_source

    text = read_text_source("text:pystdlib")  # 11 MB of code and comments, checked in a couple of seconds
    assert (found := default.check(text)) == [], _report(found, text)


# ------------------------------------------------------------------------------------ files of the user's

def write(tmp_path: Path, body: str, name: str = "filter.toml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_a_file_replaces_the_default_list(tmp_path, default):
    mine = ContentFilter.from_file(write(tmp_path, 'words = ["Badword"]\n'))
    assert mine.words == ("badword",) and mine.action == "redact" and mine.name == str(tmp_path / "filter.toml")
    assert mine.blocks("BADWORD") and not mine.blocks(default.words[0])


def test_a_file_extends_the_default_list(tmp_path, default):
    mine = ContentFilter.from_file(write(tmp_path, 'extends = "default"\nwords = ["badword"]\naction = "withhold"\n'))
    assert mine.blocks("badword") and mine.blocks(default.words[0]) and mine.action == "withhold"
    assert set(default.words) < set(mine.words) and mine.sha256 != default.sha256


def test_allow_list_and_patterns(tmp_path, default):
    body = f'''extends = "default"
patterns = ['\\w*bad\\w*', '[\\w.+-]+@[\\w-]+\\.[\\w.]+']   # parts of words, and e-mail addresses
allow = ["badminton", "{default.words[0].upper()}"]
'''
    mine = ContentFilter.from_file(write(tmp_path, body))
    assert not mine.blocks("badminton on Sunday") and not mine.blocks(default.words[0])
    assert [m.text for m in mine.check("such badness")] == ["badness"]
    text = "write to user@example.com today"
    [m] = mine.check(text)
    assert (m.kind, m.text) == ("pattern", "user@example.com")
    assert mine.redact(text) == "write to [filtered] today"


def test_withhold_gives_no_text(tmp_path):
    path = write(tmp_path, 'action = "withhold"\nwords = ["badword"]\n')
    out = ContentFilter.from_file(path).apply("a b-a-d-w-o-r-d title")
    assert (out.text, out.outcome) == (None, "withheld")
    assert out.record["filter"] == str(path) and out.record["action"] == "withhold"


def test_a_mask_of_ones_own(tmp_path):
    mine = ContentFilter.from_file(write(tmp_path, 'words = ["badword"]\nmask = "███"\n'))
    assert mine.redact("so badword and BADWORD.") == "so ███ and ███."


@pytest.mark.parametrize(("body", "expected"), [
    ('action = "redact"\nwords = ["a",\n"b" "c"]\n', "is not valid TOML: Unclosed array (at line 3, column 5)"),
    ("patterns = ['(unclosed']\n", "bad regular expression '(unclosed'"),
    ("patterns = ['x*']\n", "matches the empty text"),
    ('wrods = ["badword"]\n', "unknown key 'wrods'"),
    ('words = "badword"\n', "words in content filter"),
    ('allow = [1, 2]\n', "must be a list of strings"),
    ('action = "delete"\nwords = ["x1"]\n', "must be 'redact' or 'withhold', not 'delete'"),
    ('extends = "mine"\n', "can only be \"default\""),
    ('words = ["1234"]\n', "has no letter"),
])
def test_mistakes_in_a_file_are_one_clear_line(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(GenlabError) as e:
        ContentFilter.from_file(path)
    msg = str(e.value)
    assert expected in msg and str(path) in msg and "\n" not in msg, msg


def test_unknown_keys_are_named_with_the_right_ones(tmp_path):
    with pytest.raises(GenlabError, match="the keys are action, allow, extends, mask, patterns, words"):
        ContentFilter.from_file(write(tmp_path, "wrods = []\n"))


def test_load_filter_is_the_per_run_setting(tmp_path, default):
    assert load_filter(None) is default and load_filter("default") is default and load_filter(default) is default
    assert load_filter("off") is None and load_filter("None") is None
    assert load_filter(write(tmp_path, 'words = ["badword"]\n')).words == ("badword",)
    with pytest.raises(GenlabError, match="no content filter file .*missing.toml; pass 'default', 'off'"):
        load_filter(str(tmp_path / "missing.toml"))


def test_fingerprint_is_stable_and_says_nothing_of_the_words(default):
    a = ContentFilter(words=["Badword", "forbidden"], patterns=["x+y"])
    b = ContentFilter(words=["forbidden", "badword", "ＢＡＤＷＯＲＤ"], patterns=["x+y"])
    assert a.sha256 == b.sha256 and len(a.sha256) == 64 and a.id == "cf-" + a.sha256[:12]
    assert ContentFilter(words=["badword"]).sha256 != a.sha256
    assert ContentFilter(words=["badword", "forbidden"], patterns=["x+y"], action="withhold").sha256 != a.sha256
    assert default.describe() == {"filter": "default", "sha256": default.sha256, "action": "redact"}
    assert ContentFilter.default().sha256 == default.sha256  # the same list, the same fingerprint


def test_normalise_keeps_the_way_back():
    norm, origin = normalise("ﬁ B a-d é\u200bx")
    assert norm == "fi bad ex"
    assert [origin[i] for i in range(len(norm))] == [0, 0, 1, 2, 4, 6, 7, 8, 10]


def test_every_normalised_character_comes_from_its_original():
    import random

    from genlab.safety.content_filter import _fold

    rng = random.Random(0)
    alphabet = [*"ab d.-_ *x", "ﬁ", "\u200b", "\u0334", "Ｂ", "é", "ß", "\u00ad", "а", "\u3000"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        norm, origin = normalise(text)
        where = [origin[j] for j in range(len(norm))]
        assert where == sorted(where), text
        assert all(ch in _fold(text[i]) for ch, i in zip(norm, where, strict=True)), text


def test_a_100_kb_text_is_checked_fast(default, f):
    from pydoc_data.topics import topics

    prose = "".join(topics.values())[:100_000]
    tricky = ("naïve ｆｕｌｌ-width b a d w o r d \u200b words " * 2500)[:100_000]
    spaced = "a b " * 25_000
    for text in (prose, tricky, spaced):
        for filt in (default, f):
            t = time.perf_counter()
            filt.check(text)
            assert time.perf_counter() - t < 2.0


def test_the_docstring_example_works():
    import genlab.safety.content_filter as cf

    doc = cf.__doc__
    example = doc[doc.rindex("\n", 0, doc.index("# my-filter.toml")) + 1:doc.index("Limits, on purpose")]
    mine = ContentFilter.from_toml(textwrap.dedent(example), "example")
    assert mine.action == "withhold" and mine.blocks("badword") and mine.blocks(ContentFilter.default().words[0])
    assert [m.text for m in mine.check("mail user@example.com or call 555-123-4567")] == ["user@example.com",
                                                                                        "555-123-4567"]
    assert not mine.blocks("badwordshire") and not mine.blocks("version 3.12.1 of 2024-10-07")
