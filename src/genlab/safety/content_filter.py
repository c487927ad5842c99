r"""The content filter: lists of words and regular expressions (a TOML file) matched against prompts, generated
text and tune titles after normalisation, so that "ＢＡＤ", "bаd" (a Cyrillic a), "b\u200bad", "b̴a̴d̴", "b4d" and
"b . a . d" are all the same word to it while "Scunthorpe", "class" and "therapist" stay innocent.

Normalising maps each character of the original text to zero or more characters of a normalised text and keeps
the index each came from, so a match found in the normalised text cuts exactly the right characters from the
original. One character at a time (memoised; a text whose characters each fold to one goes in one `str.translate`):
  - Unicode NFKC (full-width letters, ligatures, mathematical alphanumerics, circled letters), then NFD, dropping
    combining marks (accents, "Zalgo"); invisible characters (zero-width, soft hyphen, joiners, variation
    selectors, any format character) disappear altogether;
  - Cyrillic, Greek and small-capital look-alikes become the Latin letter they imitate, then case-folding.
Then over the whole text: runs of single letters split by up to three separators ("b a d", "b.a.d", "b-a-d",
"b_a_d", "b*a*d") are joined. Only runs of *single* letters are joined, never whole words, so "as sex" and "the
class is hot" stay as they are; and since a run may swallow a one-letter word ("a b a d" is "abad"), inside a run a
word also counts where it begins or ends the run.

Words are whole words (never a part of a longer word: the Scunthorpe problem) in one compiled regular expression
over the normalised text. Each letter of a listed word also matches its leetspeak digits and signs (a: 4 @,
e: 3, i: 1 ! |, l: 1 |, o: 0, s: 5 $, t: 7, b: 8, g: 9 6) and may be stretched ("baaad"); a match must contain a
real letter, so an ordinary number ("455", "1337") never spells a word. Patterns are Python regular expressions
(case-insensitive) over the same normalised text, without the leetspeak; `allow` names words never blocked, even
when a pattern would catch them.

What happens: a blocked prompt is refused (`check_prompt` raises ContentFiltered, a GenlabError); a generated
output that matches is redacted (the default: each matched span becomes "[filtered]") or withheld (`action =
"withhold"`: no text at all), and `apply` returns the record for provenance saying which filter ran (its sha256,
not its words) and which of the two happened.

A filter of your own (`--content-filter my-filter.toml`):

    # my-filter.toml
    extends = "default"        # add to the built-in list; leave it out to replace the list
    action = "withhold"        # or "redact": what happens to a generated output that matches
    mask = "[filtered]"        # what a redacted span becomes
    words = ["badword", "bad phrase"]
    patterns = [
      '[\w.+-]+@[\w-]+\.[\w.]+',           # e-mail addresses (PII; off by default: documentation is full of them)
      '\b\d{3}[ .-]?\d{3}[ .-]?\d{4}\b',   # ten-digit phone numbers
    ]
    allow = ["badwordshire"]   # never blocked, even inside a pattern's match

Limits, on purpose: a word cut into pieces of two or more letters ("bad wo rd") is not joined back, because that
would join ordinary words too; and patterns are trusted code of the user's (a catastrophic regex is theirs).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import importlib.resources
import json
import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from genlab.errors import GenlabError

ACTIONS = ("redact", "withhold")
KEYS = ("action", "allow", "extends", "mask", "patterns", "words")
HINT = "rephrase it, or pass --content-filter off or a TOML file of your own"
_VERSION = 1  # of the normalisation: part of the fingerprint, so a change to it changes every filter's sha256

# --------------------------------------------------------------------------------------------- normalisation

# invisible characters beyond the format (Cf) category, all of which go too: soft hyphen and zero-width ones are Cf,
# U+034F and the variation selectors are combining marks; these are letters or symbols that render as nothing
_INVISIBLE = frozenset("\u115f\u1160\u17b4\u17b5\u3164\uffa0")
_BLANK = frozenset("\u2800")  # braille blank: looks like a space, so it is one
_NEWLINES = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")

# look-alikes, both cases (upper and lower case of one letter may imitate different Latin letters: Greek Η is H, η is n)
_HOMOGLYPHS = str.maketrans({
    # Cyrillic
    "А": "a", "а": "a", "В": "b", "в": "b", "Е": "e", "е": "e", "К": "k", "к": "k", "М": "m", "м": "m",
    "Н": "h", "н": "h", "О": "o", "о": "o", "Р": "p", "р": "p", "С": "c", "с": "c", "Т": "t", "т": "t",
    "У": "y", "у": "y", "Х": "x", "х": "x", "Ѕ": "s", "ѕ": "s", "І": "i", "і": "i", "Ј": "j", "ј": "j",
    "Ԁ": "d", "ԁ": "d", "Һ": "h", "һ": "h", "Ԛ": "q", "ԛ": "q", "Ԝ": "w", "ԝ": "w", "Ӏ": "l", "ӏ": "l",
    "Ү": "y", "ү": "y", "п": "n", "г": "r", "Ь": "b", "ь": "b",
    # Greek
    "Α": "a", "α": "a", "Β": "b", "β": "b", "Ε": "e", "ε": "e", "Ζ": "z", "Η": "h", "η": "n", "Ι": "i",
    "ι": "i", "Κ": "k", "κ": "k", "Μ": "m", "μ": "u", "Ν": "n", "ν": "v", "Ο": "o", "ο": "o", "Ρ": "p",
    "ρ": "p", "Τ": "t", "τ": "t", "Υ": "y", "υ": "u", "Χ": "x", "χ": "x", "ω": "w", "γ": "y",
    # Latin letters that NFKC leaves alone: dotless i, script a, small capitals, barred and stroked letters
    "ı": "i", "ɑ": "a", "ɩ": "i", "ɡ": "g", "ø": "o", "đ": "d", "ħ": "h", "ł": "l", "ŧ": "t",
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
    "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u",
    "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
})


def _strip_marks(s: str) -> str:
    """NFD, then without combining marks and format characters: "é" -> "e", "b̴" -> "b"."""
    return "".join(ch for ch in unicodedata.normalize("NFD", s) if unicodedata.category(ch) not in ("Mn", "Me", "Cf"))


def _fold(c: str) -> str:
    """The normalised form of one character: '' for invisible ones, possibly several for a ligature ("ﬁ")."""
    if c in _NEWLINES:
        return "\n"
    if c.isspace() or c in _BLANK:
        return " "
    if c in _INVISIBLE:
        return ""
    s = _strip_marks(unicodedata.normalize("NFKC", c)).translate(_HOMOGLYPHS)
    return _strip_marks(s.casefold()).translate(_HOMOGLYPHS)  # casefold may add marks again: "İ" -> "i̇"


_TABLE: dict[int, str] = {}  # memo for str.translate, code point -> folded form: a text uses few distinct characters


def _folded(c: str) -> str:
    s = _TABLE.get(ord(c))
    if s is None:
        s = _TABLE[ord(c)] = _fold(c)
    return s


# spaced-out letters: a unit is one letter, digit, @ or $ standing alone (not the s of "it's"); the separators
# between units go ("!" and "|" are not units: "b a d!" ends with the d)
_SEPARATORS = " .-_*~/\\+·•‧∙⋅‐‑‒–—"  # tabs and odd spaces are spaces by now
_SEP = "[" + re.escape(_SEPARATORS) + "]"
_UNIT = r"(?:[^\W_]|[@$])"
_NO_UNIT_BEFORE, _NO_UNIT_AFTER = r"(?<![^\W_])(?<![@$'’])", r"(?![^\W_])(?![@$])"
_SPACED = re.compile(rf"{_NO_UNIT_BEFORE}{_UNIT}(?:{_SEP}{{1,3}}{_UNIT}{_NO_UNIT_AFTER})+")
_SEP_CHARS = frozenset(_SEPARATORS)


class _Pieces(Sequence[int]):
    """Original indices as a piecewise shift, where a character folded to none or several (seldom): piece k starts
    at normalised index `starts[k]`, which came from original index `origins[k]`, and goes up one for one after."""

    def __init__(self, starts: list[int], origins: list[int], n: int):
        self.starts, self.origins, self.n = starts, origins, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, j: int) -> int:  # type: ignore[override]  # no slices: check() asks for single indices
        if not 0 <= j < self.n:
            raise IndexError(j)
        k = bisect.bisect_right(self.starts, j) - 1
        return self.origins[k] + j - self.starts[k]


class _Dropped(Sequence[int]):
    """`base` after some of its positions were dropped (the separators of spaced-out letters): `cut[i]` is the
    new index at which the i-th drop happened."""

    def __init__(self, base: Sequence[int], cut: list[int]):
        self.base, self.cut, self.n = base, cut, len(base) - len(cut)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, j: int) -> int:  # type: ignore[override]
        if not 0 <= j < self.n:
            raise IndexError(j)
        return self.base[j + bisect.bisect_right(self.cut, j)]


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_TABLE.update({i: _fold(chr(i)) for i in range(128)})  # ASCII from the start: a text's other characters are few


def normalise(text: str) -> tuple[str, Sequence[int]]:
    """The normalised text, and for each of its characters the index in `text` of the character it came from."""
    norm, origin, _ = _normalise(text)
    return norm, origin


def _normalise(text: str) -> tuple[str, Sequence[int], list[tuple[int, int]]]:
    """normalise(), and where the runs of spaced-out letters it joined now lie in the normalised text."""
    starts, origins, shift = [0], [0], 0  # shift: normalised index - original index, so far
    for m in _NON_ASCII.finditer(text):
        for i, c in enumerate(m.group(), m.start()):
            s = _folded(c)
            if len(s) != 1:  # a ligature's letters all come from it; after it (or an invisible), a new piece
                starts += range(i + shift + 1, i + shift + len(s))
                origins += [i] * (len(s) - 1)
                shift += len(s) - 1
                starts.append(i + 1 + shift)
                origins.append(i + 1)
    norm = text.translate(_TABLE)  # in C; every character of the text is in the table by now
    origin: Sequence[int] = range(len(text)) if len(starts) == 1 else _Pieces(starts, origins, len(norm))
    drop: list[int] = []
    runs: list[tuple[int, int]] = []
    for m in _SPACED.finditer(norm):  # join the spaced-out letters: "b a d" -> "bad"
        a, b = m.span()
        start = a - len(drop)
        drop += [j for j in range(a, b) if norm[j] in _SEP_CHARS]
        runs.append((start, b - len(drop)))
    if drop:
        norm = "".join(norm[a + 1:b] for a, b in zip([-1, *drop], [*drop, len(norm)], strict=True))
        origin = _Dropped(origin, [d - i for i, d in enumerate(drop)])
    return norm, origin, runs


def _normal_term(term: str) -> str:
    """A listed word as the text it must match: folded like the text, spaces squeezed."""
    return " ".join("".join(_folded(c) for c in term).split())


# ------------------------------------------------------------------------------------------------- matching

_LEET = {"a": "a4@", "b": "b8", "e": "e3", "g": "g96", "i": "i1!|", "l": "l1|", "o": "o0", "s": "s5$", "t": "t7"}
_WORD_START, _WORD_END = r"(?<![^\W_])", r"(?![^\W_])"  # whole words: no letter or digit on either side
_LONGEST = 64  # letters: how far into a run of spaced-out letters a word is looked for from either end
_GAP = r"[\W_]*"  # between the parts of a listed phrase or hyphenated word


def _word_regex(word: str) -> str:
    """One listed word as a regex: leetspeak classes, stretchable letters, any separation between its parts."""
    out: list[str] = []
    for run in re.finditer(r"(.)\1*", word):
        ch, n = run.group(1), len(run.group())
        if ch.isalpha():
            cls = "[" + re.escape(_LEET.get(ch, ch)) + "]"
            # the first letter is spelled out ("[b][b]*", not "[b]+") so that the regex engine can skip an
            # alternative on its first character: three times faster over a long text
            out.append(cls * n + cls + "*" if not out else cls + ("+" if n == 1 else f"{{{n},}}"))
        elif ch.isdigit():
            out.append(re.escape(run.group()))
        elif out and out[-1] != _GAP:
            out.append(_GAP)  # "bad-word" and "bad word" match "badword", "bad  word", "bad_word" too
    return "".join(out[:-1] if out and out[-1] == _GAP else out)


@dataclass(frozen=True)
class Match:
    """One hit: the listed word or pattern that fired, and where, in the original text."""

    term: str  # the listed word (normalised) or the pattern, as written
    kind: str  # "word" or "pattern"
    start: int  # text[start:end] is the original substring, invisible characters inside it included
    end: int
    text: str
    normalised: str  # what the filter saw there, e.g. "badword" for "b a d w o r d"

    def masked(self) -> str:
        """The hit as a user may be shown it without repeating it: its first letter, then stars ("b******")."""
        s = self.normalised.replace(" ", "")
        return s[:1] + "*" * min(len(s) - 1, 12)


@dataclass(frozen=True)
class Filtered:
    """A generated output after the filter: its text (None when withheld) and the record for its provenance."""

    text: str | None
    matches: tuple[Match, ...]
    outcome: str  # "passed", "redacted" or "withheld"
    record: dict


class ContentFiltered(GenlabError):
    """A prompt the content filter refused. The CLI exits 2 on it; the server answers 400, type content_filter."""

    type = "content_filter"
    exit_code = 2

    def __init__(self, message: str, matches: Sequence[Match]):
        super().__init__(message)
        self.matches = tuple(matches)


def refusal(matches: Sequence[Match], what: str = "prompt", hint: str = HINT) -> str:
    """The one line a user reads when `what` was refused: which part matched (masked), and what to do about it."""
    masks = list(dict.fromkeys(m.masked() for m in matches))  # each once, in order
    shown = ", ".join(f"'{m}'" for m in masks[:3])
    more = f" and {len(masks) - 3} more" if len(masks) > 3 else ""
    return f"the {what} was refused by the content filter (it matched {shown}{more}); {hint}"


class ContentFilter:
    """Words, patterns and allowed words, compiled once; `check` finds what they match in a text."""

    def __init__(self, words: Iterable[str] = (), patterns: Iterable[str] = (), allow: Iterable[str] = (),
                 action: str = "redact", mask: str = "[filtered]", name: str = "custom"):
        where = f" in {name}" if name != "custom" else ""
        if action not in ACTIONS:
            raise GenlabError(f"content filter action{where} must be 'redact' or 'withhold', not {action!r}")
        if not isinstance(mask, str):
            raise GenlabError(f"content filter mask{where} must be a string, like \"[filtered]\"")
        self.name, self.action, self.mask = name, action, mask
        self.allow = tuple(sorted({_normal_term(a) for a in allow} - {""}))
        listed: list[str] = []
        for w in words:
            t = _normal_term(w)
            if not any(ch.isalpha() for ch in t):
                raise GenlabError(f"content filter word {w!r}{where} has no letter; write numbers as a pattern")
            listed.append(t)
        self.words = tuple(sorted(set(listed) - set(self.allow)))
        self.patterns = tuple(dict.fromkeys(patterns))  # in order, once each
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for p in self.patterns:
            try:
                rx = re.compile(p, re.IGNORECASE)
            except re.error as e:
                raise GenlabError(f"bad regular expression {p!r}{where}: {e}; fix it (a Python regular "
                                  f"expression over the normalised, lower-case text)") from None
            if rx.match(""):
                raise GenlabError(f"regular expression {p!r}{where} matches the empty text, so it would match "
                                  f"everywhere; make it match at least one character")
            self._patterns.append((p, rx))
        # longest first, so a phrase wins over the word it starts with
        order = sorted(self.words, key=lambda w: (-len(w), w))
        alternatives = [_word_regex(w) for w in order]
        # one regex for all the words (no groups: they would hide each alternative's first character), and one
        # for each, to tell which word a hit is
        self._words = re.compile(_WORD_START + "(?:" + "|".join(alternatives) + ")" + _WORD_END) if order else None
        self._bare = re.compile("(?:" + "|".join(alternatives) + ")")  # the same without the word boundaries
        self._each = [(w, re.compile(a)) for w, a in zip(order, alternatives, strict=True)]
        self._allow = re.compile(_WORD_START + "(?:" + "|".join(
            re.escape(a) for a in sorted(self.allow, key=len, reverse=True)) + ")" + _WORD_END) if self.allow else None
        spec = {"v": _VERSION, "action": action, "mask": mask, "words": list(self.words),
                "patterns": list(self.patterns), "allow": list(self.allow)}
        self.sha256 = hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        self.id = "cf-" + self.sha256[:12]

    def __repr__(self) -> str:
        return (f"ContentFilter({self.name!r}, {len(self.words)} words, {len(self.patterns)} patterns, "
                f"action={self.action!r}, {self.id})")

    # ------------------------------------------------------------------------------------------- loading

    @classmethod
    def default(cls) -> ContentFilter:
        """The built-in list (genlab/safety/blocklist.toml), read once."""
        return _default()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ContentFilter:
        """A filter from a TOML file of the user's (see the module docstring for its keys)."""
        path = Path(path)
        if not path.is_file():
            raise GenlabError(f"no content filter file {path}; pass 'default', 'off' or the path of a TOML file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise GenlabError(f"cannot read content filter file {path} ({e}); it must be UTF-8 text") from None
        return cls.from_toml(text, str(path))

    @classmethod
    def from_toml(cls, text: str, name: str = "custom") -> ContentFilter:
        """A filter from TOML text; `name` says where it came from, in errors and in provenance."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise GenlabError(f"{name} is not valid TOML: {' '.join(str(e).split())}; fix it or pass "
                              f"--content-filter default") from None
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise GenlabError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in "
                              f"content filter {name}; the keys are {', '.join(KEYS)}")
        lists = {k: _strings(data, k, name) for k in ("words", "patterns", "allow")}
        base = None
        if "extends" in data:
            if data["extends"] != "default" or name == "default":
                raise GenlabError(f"extends in content filter {name} can only be \"default\" (add to the built-in "
                                  f"list); leave it out to replace the list, not {data['extends']!r}")
            base = _default()
            lists = {"words": [*base.words, *lists["words"]], "patterns": [*base.patterns, *lists["patterns"]],
                     "allow": [*base.allow, *lists["allow"]]}
        action = data.get("action", base.action if base else "redact")
        mask = data.get("mask", base.mask if base else "[filtered]")
        return cls(**lists, action=action, mask=mask, name=name)

    # ------------------------------------------------------------------------------------------ matching

    def check(self, text: str) -> list[Match]:
        """Every hit in `text`, in order; empty when the text may pass."""
        if not text or (self._words is None and not self._patterns):
            return []
        norm, origin, runs = _normalise(text)
        hits: list[tuple[int, int, str, str]] = []
        if self._words is not None:
            spans = {m.span() for m in self._words.finditer(norm)}
            for a, b in runs:
                # a spaced-out word may have taken a one-letter word with it ("a b a d w o r d", "b a d w o r d u"):
                # inside a run of single letters, a word that begins or ends the run counts too
                if m := self._bare.match(norm, a, min(b, a + _LONGEST)):
                    spans.add(m.span())
                for p in range(max(a + 1, b - _LONGEST), b):
                    if m := self._bare.fullmatch(norm, p, b):
                        spans.add(m.span())
                        break
            for s, e in spans:
                if any(ch.isalpha() for ch in norm[s:e]):  # digits alone are a number, never a word
                    term = next(w for w, rx in self._each if rx.fullmatch(norm, s, e))
                    hits.append((s, e, term, "word"))
        for p, rx in self._patterns:
            hits.extend((m.start(), m.end(), p, "pattern") for m in rx.finditer(norm) if m.end() > m.start())
        if hits and self._allow is not None:
            allowed = [m.span() for m in self._allow.finditer(norm)]
            hits = [h for h in hits if not any(a <= h[0] and h[1] <= b for a, b in allowed)]
        out: list[Match] = []
        last: tuple[int, int] | None = None
        for s, e, term, kind in sorted(hits, key=lambda h: (h[0], h[1], h[3] != "word")):
            if (s, e) == last:
                continue  # a word and a pattern on the same span: the word says more
            last = (s, e)
            start, end = origin[s], origin[e - 1] + 1
            while end < len(text) and not _folded(text[end]):  # take the marks and invisibles that trail it
                end += 1
            out.append(Match(term, kind, start, end, text[start:end], norm[s:e]))
        return out

    def blocks(self, text: str) -> bool:
        """Whether anything in `text` matches."""
        return bool(self.check(text))

    def redact(self, text: str, matches: Sequence[Match] | None = None) -> str:
        """`text` with each matched span of the original (overlapping ones merged) replaced by the mask."""
        matches = self.check(text) if matches is None else matches
        out: list[str] = []
        at = 0
        for m in sorted(matches, key=lambda m: m.start):
            if m.end <= at:
                continue
            if m.start >= at:
                out += [text[at:m.start], self.mask]
            at = m.end
        return "".join(out) + text[at:]

    def check_prompt(self, text: str, what: str = "prompt", hint: str = HINT) -> None:
        """Refuse a prompt the filter matches: raises ContentFiltered with the one line to show."""
        matches = self.check(text)
        if matches:
            raise ContentFiltered(refusal(matches, what, hint), matches)

    def apply(self, text: str) -> Filtered:
        """A generated output (text, a tune title) after the filter's action, with its provenance record."""
        matches = self.check(text)
        if not matches:
            out, outcome = text, "passed"
        elif self.action == "redact":
            out, outcome = self.redact(text, matches), "redacted"
        else:
            out, outcome = None, "withheld"
        return Filtered(out, tuple(matches), outcome, {**self.describe(), "outcome": outcome,
                                                         "matches": len(matches)})

    def describe(self) -> dict:
        """Which filter ran, for provenance: its name or file, its fingerprint and its action (never its words)."""
        return {"filter": self.name, "sha256": self.sha256, "action": self.action}


def _strings(data: dict, key: str, name: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GenlabError(f"{key} in content filter {name} must be a list of strings, like {key} = [\"...\"]")
    return value


@functools.cache
def _default() -> ContentFilter:
    text = (importlib.resources.files("genlab.safety") / "blocklist.toml").read_text(encoding="utf-8")
    return ContentFilter.from_toml(text, "default")


def load_filter(setting: str | os.PathLike | ContentFilter | None) -> ContentFilter | None:
    """The per-run setting: None or "default" is the built-in list, "off" (or "none") is no filter, else a file."""
    if setting is None or isinstance(setting, ContentFilter):
        return _default() if setting is None else setting
    if isinstance(setting, str) and setting.strip().lower() in ("default", "on"):
        return _default()
    if isinstance(setting, str) and setting.strip().lower() in ("off", "none"):
        return None
    return ContentFilter.from_file(setting)
