"""Digit scenes: captioned images composed from scikit-learn's real handwritten digits, for prompted generation.

A scene is a 32x32 grey canvas holding two or three different digits (8x8 scans from load_digits, upsampled)
in a row or a column, each small (10 px) or large (16 px), white on black or, inverted, black on white.
Every scene has several captions generated from its layout ("a small 3 to the left of a large 7",
"seven on the right, three on the left, the seven larger"), each exactly true of it, and `parse_caption`
reads any of them back to the same `LayoutSpec`. That round trip is what the sampler's checks and the
bench's "does the sample match its prompt" rest on: `regions` says where a caption puts each digit,
`layout_match` classifies the ink found there.

Why these numbers: 32x32 is the smallest canvas where two digits stand side by side at a legible size
(16 + 16 px), and it is 4x the pixels of images:digits at 16, which a small diffusion U-Net still learns
on 2 CPU cores in minutes. Small is 10 px so that three fit in a row (3 x 10 <= 32); large is 16 px, the
size images:digits trains at, and the 6 px between them is easy to tell apart in a sample.

Each digit lies inside its share of the canvas along the arrangement's axis (the left or right half, the
top or bottom half, a third for three digits), with its centre within 4 px of the canvas's middle across
it: a row never reads as a column. Layout of a two-digit scene is (arrangement, sizes in reading order);
the digits are kept in reading order (left to right, top to bottom), so "a 7 to the right of a 3" and
"a 3 to the left of a 7" are one layout.

`build_scenes` is deterministic in its seed and holds out, for validation:
  - a layout: a large digit above a small one (training sees large-left-of-small and small-above-large,
    never large-above-small); half of each validation split has it (`novel_layout`);
  - digit pairs: {0,5} {1,6} {2,7} {3,8} {4,9} (b = a + 5, so every digit is in exactly one held-out pair
    and still has eight partners in training) never appear together in a training scene, two digits or
    three; `val_unseen_pairs` is made of scenes holding one of them;
  - scans: training scenes draw from the first 80% of scikit-learn's 1,797 scans, validation from the rest.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genlab.errors import GenlabError

CANVAS = 32
SMALL, LARGE = 10, 16
SIZES = {"small": SMALL, "large": LARGE}
ARRANGEMENTS = ("row", "column")
JITTER = 4  # how far a digit's centre may stray from the canvas's middle line across the arrangement
INVERT_SHARE = 0.25  # scenes drawn black on white
TRAIN_SCAN_SHARE = 0.8  # scans [0, 80%) make training scenes, the rest validation scenes
INK = 80  # a pixel at or above this (of 255, after undoing inversion) is ink: the scans' faint fringe is not
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# held out of training together: b = a + 5, each digit in exactly one pair
UNSEEN_PAIRS = tuple((a, a + 5) for a in range(5))
# (arrangement, sizes in reading order) never seen in training: a large digit above a small one
HELD_OUT_LAYOUTS = (("column", ("large", "small")),)
LAYOUTS = tuple([(a, s) for a in ARRANGEMENTS for s in itertools.product(("small", "large"), repeat=2)]
                + [(a, ("small",) * 3) for a in ARRANGEMENTS])  # three digits fit only small


# ---------------------------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class LayoutSpec:
    """What a caption says: digits in reading order, their arrangement and sizes, the background.
    A size the text leaves unsaid is None (a caption of ours always says them)."""

    digits: tuple[int, ...]
    arrangement: str  # "row" (left to right) or "column" (top to bottom)
    sizes: tuple[str | None, ...]
    inverted: bool = False  # black digits on a white background

    @property
    def relation(self) -> str | None:
        """The first digit's relation to the second in a two-digit layout: left-of or above."""
        if len(self.digits) != 2:
            return None
        return "left-of" if self.arrangement == "row" else "above"

    @property
    def layout(self) -> tuple[str, tuple[str | None, ...]]:
        """The layout class, (arrangement, sizes), that held-out layouts are named by."""
        return self.arrangement, self.sizes


@dataclass(frozen=True)
class Scene:
    """Digits (reading order) and where each is drawn: boxes are (x, y, size) in pixels of the canvas."""

    digits: tuple[int, ...]
    boxes: tuple[tuple[int, int, int], ...]
    arrangement: str
    inverted: bool
    scans: tuple[int, ...]  # indices into sklearn.datasets.load_digits()

    @property
    def sizes(self) -> tuple[str, ...]:
        return tuple("large" if s == LARGE else "small" for _, _, s in self.boxes)

    @property
    def relation(self) -> str | None:
        return self.spec.relation

    @property
    def spec(self) -> LayoutSpec:
        return LayoutSpec(self.digits, self.arrangement, self.sizes, self.inverted)


@functools.lru_cache(maxsize=1)
def _scans() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's scans as uint8 (N, 8, 8) in 0..255 and their labels, as images:digits reads them."""
    from genlab.images.data import _digits

    pixels, labels, _ = _digits()
    return pixels[:, 0], labels


@functools.lru_cache(maxsize=4)
def _glyphs(size: int) -> np.ndarray:
    """Every scan upsampled once to size x size, (N, size, size) uint8: rendering is then slicing."""
    from genlab.images.data import _resize

    pixels, _ = _scans()
    return _resize(pixels[:, None], size)[:, 0]


def _bounds(n: int, length: int) -> list[int]:
    """Where n equal shares of a side begin and end: [0, ..., length]."""
    return [round(i * length / n) for i in range(n + 1)]


def _place(arrangement: str, sizes: Sequence[str], u: np.ndarray) -> tuple[tuple[int, int, int], ...]:
    """Boxes for digits of these sizes, from uniform draws u (2 per digit): along the axis anywhere in the
    digit's share, across it within JITTER of the middle."""
    cut = _bounds(len(sizes), CANVAS)
    boxes = []
    for i, name in enumerate(sizes):
        s = SIZES[name]
        slack = cut[i + 1] - cut[i] - s
        along = cut[i] + int(u[2 * i] * (slack + 1))
        j = min(JITTER, (CANVAS - s) // 2)
        across = (CANVAS - s) // 2 - j + int(u[2 * i + 1] * (2 * j + 1))
        boxes.append((along, across, s) if arrangement == "row" else (across, along, s))
    return tuple(boxes)


def _check_layout(digits: Sequence[int], arrangement: str, sizes: Sequence[str]) -> None:
    if len(digits) not in (2, 3) or len(set(digits)) != len(digits) or not all(0 <= d <= 9 for d in digits):
        raise GenlabError(f"a scene holds 2 or 3 different digits 0-9, got {tuple(digits)}")
    if arrangement not in ARRANGEMENTS:
        raise GenlabError(f"arrangement must be row or column, got {arrangement!r}")
    if len(sizes) != len(digits) or any(s not in SIZES for s in sizes):
        raise GenlabError(f"give one size (small or large) per digit, got {tuple(sizes)}")
    if sum(SIZES[s] for s in sizes) > CANVAS:
        raise GenlabError(f"digits of sizes {', '.join(sizes)} do not fit side by side in {CANVAS} px; "
                          "three digits are always small")


def make_scene(digits: Sequence[int], arrangement: str = "row", sizes: Sequence[str] | None = None,
               inverted: bool = False, seed: int = 0, scans: str = "train") -> Scene:
    """One scene of these digits (reading order), each drawn from a random scan of the `scans` pool
    ("train", "val" or "all") at a random position its layout allows."""
    sizes = tuple(sizes or ("small",) * len(digits))
    _check_layout(digits, arrangement, sizes)
    rng = np.random.default_rng(seed)
    pools = _pools(scans)
    picks = tuple(int(pools[d][rng.integers(len(pools[d]))]) for d in digits)
    return Scene(tuple(int(d) for d in digits), _place(arrangement, sizes, rng.random(6)), arrangement,
                 bool(inverted), picks)


def _pools(which: str) -> list[np.ndarray]:
    """Scan indices per digit of a pool: the first 80% of scans (train), the rest (val), or all."""
    _, labels = _scans()
    cut = int(len(labels) * TRAIN_SCAN_SHARE)
    idx = {"train": np.arange(cut), "val": np.arange(cut, len(labels)), "all": np.arange(len(labels))}.get(which)
    if idx is None:
        raise GenlabError(f"scans must be train, val or all, got {which!r}")
    return [idx[labels[idx] == d] for d in range(10)]


def render(scene: Scene, out: np.ndarray | None = None) -> np.ndarray:
    """The scene as a uint8 (CANVAS, CANVAS) image: white digits on black, or black on white inverted."""
    canvas = np.zeros((CANVAS, CANVAS), np.uint8) if out is None else out
    canvas[:] = 0
    for scan, (x, y, s) in zip(scene.scans, scene.boxes, strict=True):
        np.maximum(canvas[y:y + s, x:x + s], _glyphs(s)[scan], out=canvas[y:y + s, x:x + s])
    if scene.inverted:
        np.subtract(255, canvas, out=canvas)
    return canvas


# ---------------------------------------------------------------------------------------------- captions


def _a(word: str) -> str:
    """The article before a digit or its word: "an 8", "an eight", "a 7"."""
    return "an" if word in ("8", "eight") else "a"


_AXIS = {  # the words of each arrangement
    "row": {"first": "on the left", "last": "on the right", "middle": "in the middle", "before": "to the left of",
            "after": "to the right of", "next": "to its right", "order": "from left to right"},
    "column": {"first": "on top", "last": "at the bottom", "middle": "in the middle", "before": "above",
               "after": "below", "next": "below it", "order": "from top to bottom"},
}
_BACKGROUND = {False: ("", ", on a black background", "", ", white on black"),  # unsaid is black
               True: (", on a white background", ", black on white", ", inverted")}


def _sizes_clause(spec: LayoutSpec, name: Callable[[int], str], smaller: bool = False) -> str:
    """How the sizes are said when not per digit: "both small", "all small", "the 7 larger"."""
    if len(set(spec.sizes)) == 1:
        return f"{'both' if len(spec.digits) == 2 else 'all'} {spec.sizes[0]}"
    if smaller:
        return f"the {name(spec.digits[spec.sizes.index('small')])} smaller"
    return f"the {name(spec.digits[spec.sizes.index('large')])} larger"


def captions(scene: Scene | LayoutSpec) -> list[str]:
    """Every phrasing of a scene's layout, each exactly true of it, in numerals and in words."""
    spec = scene.spec if isinstance(scene, Scene) else scene
    w = _AXIS[spec.arrangement]
    num, word = str, WORDS.__getitem__
    if len(spec.digits) == 2:
        (a, b), (sa, sb) = spec.digits, spec.sizes
        phrases = [
            f"{_a(sa)} {sa} {a} {w['before']} {_a(sb)} {sb} {b}",
            f"{_a(sb)} {sb} {b} {w['after']} {_a(sa)} {sa} {a}",
            f"{word(b)} {w['last']}, {word(a)} {w['first']}, {_sizes_clause(spec, word)}",
            f"{a} and {b} {w['order']}, {_sizes_clause(spec, num, smaller=True)}",
            f"{_a(num(a))} {a} with {_a(num(b))} {b} {w['next']}, {_sizes_clause(spec, num)}",
            f"{w['order']}: {_a(sa)} {sa} {word(a)} and {_a(sb)} {sb} {word(b)}",
            f"{_a(sa)} {sa} {word(a)} {w['first']} and {_a(sb)} {sb} {word(b)} {w['last']}",
        ]
    else:
        (a, b, c), s = spec.digits, spec.sizes[0]
        phrases = [
            f"{_a(s)} {s} {a}, {_a(s)} {s} {b} and {_a(s)} {s} {c} {w['order']}",
            f"{s} digits {w['order']}: {a}, {b}, {c}",
            f"{word(a)}, {word(b)} and {word(c)} {w['order']}, {_sizes_clause(spec, word)}",
            f"{_a(s)} {s} {c} {w['last']}, {_a(s)} {s} {b} {w['middle']} and {_a(s)} {s} {a} {w['first']}",
            f"{w['order']}: {_a(s)} {s} {word(a)}, {_a(s)} {s} {word(b)} and {_a(s)} {s} {word(c)}",
            f"{a} {w['first']}, {b} {w['middle']}, {c} {w['last']}, {_sizes_clause(spec, num)}",
        ]
    backgrounds = _BACKGROUND[spec.inverted]
    return [p + backgrounds[k % len(backgrounds)] for k, p in enumerate(phrases)]


# the parser: a small grammar over tokens, exact for every phrasing above and tolerant of close variants
_TOKEN = re.compile(r"[a-z]+|\d+|[,:]")
_DIGIT = {**{w: i for i, w in enumerate(WORDS)}, **{str(i): i for i in range(10)}}
_SIZE_WORD = {"small": "small", "little": "small", "tiny": "small", "large": "large", "big": "large"}
_INVERTED = re.compile(r"\b(on (a )?white( background)?|white background|black on white|inverted)\b")
_NORMAL = re.compile(r"\b(on (a )?black( background)?|black background|white on black)\b")
_ROW_WORDS, _COLUMN_WORDS = {"left", "right"}, {"above", "below", "top", "bottom", "beneath", "under", "over"}
_ORDER = {"left to right": False, "top to bottom": False, "right to left": True, "bottom to top": True}
_SLOT = {"on the left": 0, "on the right": -1, "on top": 0, "at the top": 0, "at the bottom": -1,
         "on the bottom": -1, "in the middle": 1}
# relation to the next digit mentioned (before/after it), and to the previous one ("with a 7 to its right")
_TO_NEXT = {"left of": "before", "above": "before", "over": "before",
            "right of": "after", "below": "after", "beneath": "after", "under": "after"}
_TO_PREVIOUS = {"to its right": "after", "below it": "after", "beneath it": "after", "under it": "after",
                "to its left": "before", "above it": "before", "over it": "before"}
_EXAMPLE = "e.g. 'a small 3 to the left of a large 7'"


def parse_caption(text: str) -> LayoutSpec:
    """The layout a caption describes; a GenlabError when it does not name 2-3 digits and where they are."""
    t = " ".join(text.lower().split())
    inverted, normal = bool(_INVERTED.search(t)), bool(_NORMAL.search(t))
    if inverted and normal:
        raise GenlabError(f"caption {text!r} names both a white and a black background; say one")
    t = _NORMAL.sub(" ", _INVERTED.sub(" ", t))
    tokens = _TOKEN.findall(t)
    mentions = [(i, _DIGIT[tok]) for i, tok in enumerate(tokens) if tok in _DIGIT]
    if any(tok.isdigit() and tok not in _DIGIT for tok in tokens):
        raise GenlabError(f"caption {text!r} has a number that is not a single digit; scenes hold digits 0-9")
    digits = list(dict.fromkeys(d for _, d in mentions))  # the digits, in order of first mention
    if not 2 <= len(digits) <= 3:
        raise GenlabError(f"caption {text!r} names {len(digits)} different digits; name 2 or 3, {_EXAMPLE}")
    words = set(tokens)
    row, column = bool(words & _ROW_WORDS), bool(words & _COLUMN_WORDS)
    if row == column:
        raise GenlabError(f"caption {text!r} says {'both' if row else 'neither'} left/right and above/below; "
                          f"say where each digit is, {_EXAMPLE}")
    sizes = _parse_sizes(text, tokens, mentions, digits)
    order = _parse_order(text, tokens, mentions, digits)
    return LayoutSpec(tuple(order), "row" if row else "column", tuple(sizes.get(d) for d in order), inverted)


def _parse_sizes(text: str, tokens: list[str], mentions: list[tuple[int, int]], digits: list[int]
                 ) -> dict[int, str]:
    """Sizes from adjectives before a digit, "both/all small", "small digits" and "the 7 larger/smaller"."""
    said: dict[int, set[str]] = {d: set() for d in digits}
    for i, d in mentions:
        j = i - 1
        while j >= 0 and tokens[j] in ("a", "an", "the", "digit"):
            j -= 1
        if j >= 0 and tokens[j] in _SIZE_WORD:
            said[d].add(_SIZE_WORD[tokens[j]])
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        if after in ("larger", "bigger", "smaller"):
            big = after != "smaller"
            for other in digits:
                said[other].add("large" if (other == d) == big else "small")
    for i, tok in enumerate(tokens[:-1]):
        nxt = tokens[i + 1]
        if (tok in ("both", "all") and nxt in _SIZE_WORD) or (tok in _SIZE_WORD and nxt == "digits"):
            for d in digits:
                said[d].add(_SIZE_WORD[nxt if tok in ("both", "all") else tok])
    if any(len(s) > 1 for s in said.values()):
        raise GenlabError(f"caption {text!r} gives one digit two sizes; say small or large once")
    return {d: next(iter(s)) for d, s in said.items() if s}


def _parse_order(text: str, tokens: list[str], mentions: list[tuple[int, int]], digits: list[int]) -> list[int]:
    """The digits in reading order: the one order that every position phrase in the caption allows."""
    joined = " ".join(tokens)
    before: list[tuple[int, int]] = []  # (x, y): x comes before y
    slots: dict[int, int] = {}
    for phrase, reverse in _ORDER.items():
        if phrase in joined:
            chain = digits[::-1] if reverse else digits
            before += list(itertools.pairwise(chain))
    if not before:
        for k, (i, d) in enumerate(mentions):
            end = mentions[k + 1][0] if k + 1 < len(mentions) else len(tokens)
            window = " " + " ".join(tokens[i + 1:end]) + " "
            for phrase, slot in _SLOT.items():
                if f" {phrase} " in window:
                    slots[d] = slot
            for phrase, rel in _TO_PREVIOUS.items():
                if f" {phrase} " in window and k > 0:
                    prev = mentions[k - 1][1]
                    before.append((prev, d) if rel == "after" else (d, prev))
                    window = window.replace(f" {phrase} ", " ")
            for phrase, rel in _TO_NEXT.items():
                if f" {phrase} " in window and k + 1 < len(mentions):
                    nxt = mentions[k + 1][1]
                    before.append((d, nxt) if rel == "before" else (nxt, d))
    fits = [p for p in itertools.permutations(digits)
            if all(p.index(x) < p.index(y) for x, y in before if x != y)
            and all(p[s] == d for d, s in slots.items())]
    if len(fits) != 1:
        problem = "contradicts itself about" if not fits else "does not say"
        raise GenlabError(f"caption {text!r} {problem} where each digit is; {_EXAMPLE}")
    return list(fits[0])


# ---------------------------------------------------------------------------------------------- the data set


@dataclass
class SceneSplit:
    """One split: scenes, their images (N, H, W) uint8, every phrasing of each, and their layouts."""

    name: str
    scenes: list[Scene]
    images: np.ndarray
    captions: list[list[str]]
    novel_layout: np.ndarray  # (N,) bool: the scene's layout is held out of training
    offsets: np.ndarray = field(repr=False)  # (N,) where each scene starts cycling through its phrasings

    def __len__(self) -> int:
        return len(self.scenes)

    @property
    def specs(self) -> list[LayoutSpec]:
        return [s.spec for s in self.scenes]

    def caption(self, i: int, epoch: int = 0) -> str:
        """Scene i's phrasing for an epoch: each epoch the next one, so all are seen, from a different start
        per scene, so one batch mixes them."""
        options = self.captions[i]
        return options[(int(self.offsets[i]) + epoch) % len(options)]


@dataclass
class SceneSet:
    """The train, val (seen digit pairs) and val_unseen_pairs splits of build_scenes."""

    train: SceneSplit
    val: SceneSplit
    val_unseen_pairs: SceneSplit
    seed: int
    unseen_pairs: tuple[tuple[int, int], ...] = UNSEEN_PAIRS
    held_out_layouts: tuple = HELD_OUT_LAYOUTS

    @property
    def splits(self) -> dict[str, SceneSplit]:
        return {"train": self.train, "val": self.val, "val_unseen_pairs": self.val_unseen_pairs}


def has_unseen_pair(digits: Sequence[int]) -> bool:
    """Whether a scene's digits hold a pair that training never shows together."""
    return any(tuple(sorted(p)) in UNSEEN_PAIRS for p in itertools.combinations(digits, 2))


def _build_split(name: str, n: int, seed: int, stream: int, layouts: Sequence, novel: Sequence,
                 unseen: bool, pool: str) -> SceneSplit:
    """n scenes of a split: every other one (odd i) in a `novel` layout when there are any."""
    rng = np.random.default_rng([seed, stream])  # one stream per split: its scenes don't depend on the others'
    pools = _pools(pool)
    tuples = {k: [t for t in itertools.permutations(range(10), k) if has_unseen_pair(t) == unseen] for k in (2, 3)}
    u = rng.random((n, 12))
    scenes, images = [], np.empty((n, CANVAS, CANVAS), np.uint8)
    is_novel = np.zeros(n, bool)
    for i in range(n):
        is_novel[i] = bool(novel) and i % 2 == 1
        choices = novel if is_novel[i] else layouts
        arrangement, sizes = choices[int(u[i, 0] * len(choices))]
        options = tuples[len(sizes)]
        digits = options[int(u[i, 1] * len(options))]
        scans = tuple(int(pools[d][int(u[i, 2 + k] * len(pools[d]))]) for k, d in enumerate(digits))
        scene = Scene(tuple(digits), _place(arrangement, sizes, u[i, 5:11]), arrangement,
                      bool(u[i, 11] < INVERT_SHARE), scans)
        scenes.append(scene)
        render(scene, images[i])
    texts = [captions(s) for s in scenes]
    offsets = rng.integers(0, 1 << 16, n)
    return SceneSplit(name, scenes, images, texts, is_novel, offsets)


def build_scenes(n_train: int, n_val: int, seed: int = 0, n_unseen: int | None = None) -> SceneSet:
    """Deterministic captioned scenes: n_train for training, n_val of digit pairs seen in training (new scans,
    positions and phrasings; half in a held-out layout) and n_unseen (default n_val) holding a digit pair
    training never shows together (half in a held-out layout). Each split is a function of (seed, its size)."""
    if n_train < 1 or n_val < 1 or (n_unseen is not None and n_unseen < 1):
        raise GenlabError(f"build_scenes needs at least 1 scene per split, got {n_train}, {n_val}, {n_unseen}")
    train_layouts = [lay for lay in LAYOUTS if lay not in HELD_OUT_LAYOUTS]
    held = list(HELD_OUT_LAYOUTS)
    return SceneSet(
        train=_build_split("train", n_train, seed, 0, train_layouts, [], False, "train"),
        val=_build_split("val", n_val, seed, 1, train_layouts, held, False, "val"),
        val_unseen_pairs=_build_split("val_unseen_pairs", n_val if n_unseen is None else n_unseen, seed, 2,
                                      train_layouts, held, True, "val"),
        seed=seed,
    )


# ---------------------------------------------------------------------------------------------- checking samples


def regions(spec: LayoutSpec, size: int = CANVAS) -> list[tuple[int, int, int, int]]:
    """Where the caption puts each digit (spec order) on a size x size image: boxes (x0, y0, x1, y1),
    the digit's share of the canvas along the arrangement, the whole side across it."""
    cut = _bounds(len(spec.digits), size)
    if spec.arrangement == "row":
        return [(cut[i], 0, cut[i + 1], size) for i in range(len(spec.digits))]
    return [(0, cut[i], size, cut[i + 1]) for i in range(len(spec.digits))]


def ink_crop(pixels: np.ndarray, threshold: int = INK) -> np.ndarray | None:
    """The square around the ink of a white-on-black patch, the ink centred (None when there is none):
    what a digit classifier reads, whatever the digit's size and position."""
    rows, cols = np.flatnonzero((pixels >= threshold).any(1)), np.flatnonzero((pixels >= threshold).any(0))
    if rows.size == 0:
        return None
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = max(y1 - y0, x1 - x0)
    out = np.zeros((side, side), np.uint8)
    oy, ox = (side - (y1 - y0)) // 2, (side - (x1 - x0)) // 2
    out[oy:oy + y1 - y0, ox:ox + x1 - x0] = pixels[y0:y1, x0:x1]
    return out


def region_crops(image: np.ndarray, spec: LayoutSpec) -> list[np.ndarray | None]:
    """The ink crop of each region the caption names (spec order), white on black whatever the background."""
    image = np.asarray(image)
    image = image.reshape(image.shape[-2:]) if image.ndim == 3 else image  # (1, H, W) or (H, W, 1) too
    ink = 255 - image if spec.inverted else image
    return [ink_crop(ink[y0:y1, x0:x1]) for x0, y0, x1, y1 in regions(spec, image.shape[-1])]


def layout_match(image: np.ndarray, spec: LayoutSpec, classify: Callable[[np.ndarray], int],
                 check_sizes: bool = True) -> bool:
    """Whether a square uint8 grey image shows what the spec says: its background, and in each region the
    caption names the digit `classify` reads there (from its ink crop), small or large as said."""
    image = np.asarray(image)
    image = image.reshape(image.shape[-2:]) if image.ndim == 3 else image
    if (np.median(image) > 127) != spec.inverted:
        return False
    large_from = (SMALL + LARGE) / 2 * image.shape[-1] / CANVAS  # ink taller or wider than this is large
    for crop, digit, size in zip(region_crops(image, spec), spec.digits, spec.sizes, strict=True):
        if crop is None or classify(crop) != digit:
            return False
        if check_sizes and size is not None and (crop.shape[0] >= large_from) != (size == "large"):
            return False
    return True


class DigitClassifier:
    """A classifier of digit ink crops (any size; resized to `size`), trained on real scans."""

    def __init__(self, model: Any, size: int, accuracy: float):
        self.model, self.size, self.accuracy = model, size, accuracy  # accuracy on held-out real scans

    def features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        from PIL import Image

        resized = [np.asarray(Image.fromarray(c).resize((self.size, self.size), Image.Resampling.BILINEAR))
                   for c in crops]
        return np.stack(resized).reshape(len(crops), -1).astype(np.float32) / 255.0  # (N, size * size)

    def predict(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return self.model.predict(self.features(crops)).astype(np.int64)

    def __call__(self, crop: np.ndarray) -> int:
        return int(self.predict([crop])[0])


def _scan_crops(pool: str) -> tuple[list[np.ndarray], np.ndarray]:
    """The ink crops of a pool's scans rendered at both scene sizes, and their digits."""
    _, labels = _scans()
    idx = np.concatenate(_pools(pool))
    crops = [ink_crop(_glyphs(s)[i]) for s in (SMALL, LARGE) for i in idx]
    return crops, np.concatenate([labels[idx]] * 2)


def digit_classifier(size: int = 12) -> DigitClassifier:
    """An RBF support-vector classifier of ink crops resized to size x size, trained on the scans that
    make training scenes (0.3 s); its `accuracy` is measured on the scans that make validation scenes, whose
    writers it never saw (0.968 at 12 px; 8 and 16 px and logistic regression measured lower)."""
    from sklearn.svm import SVC

    crops, y = _scan_crops("train")
    clf = DigitClassifier(SVC(C=3.0, gamma="scale"), size, float("nan"))
    clf.model.fit(clf.features(crops), y)
    val_crops, val_y = _scan_crops("val")
    clf.accuracy = float((clf.predict(val_crops) == val_y).mean())
    return clf
