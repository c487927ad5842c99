"""Music corpora: music21's folk tunes and Bach chorales, or any folder of ABC, MIDI and MusicXML.

ABC tunes are tokenized straight from their text (music21 parses only ~20 tunes/s; the tokenizer
reads the whole 13,000-tune folk corpus in seconds). MIDI is read with mido, MusicXML with
music21, and both become note events. A corpus is prepared once and cached, keyed by the hash
of its files and the tokenizer, like text corpora; training reads random windows from the
memory-mapped token stream, so gpt and lstm train on tunes exactly as they train on text.

Tunes are shuffled once with a fixed seed and the last `val_fraction` of them are held out, so
validation tunes come from every collection. Tunes that cannot be read are counted by reason,
reported, and stored in the run's config; none is dropped silently.

A folder is read as the text wing reads one (text/data.py): build, cache and VCS folders are left out,
--extensions chooses among the music suffixes, and what it read (files by extension, files skipped
with their reasons: an unreadable file, an .xml file that is not MusicXML) is one line on stderr when
training starts and is written into the run's data summary. A folder is music when it holds music
files and no more text or source files than music files: a code folder with a MIDI test fixture or a
pom.xml is text.

Tunes are bounded (music/tokenizers.py): a silence between notes over four bars is shortened
(MAX_SILENCE), an event tune is cut at MAX_EVENT_TOKENS tokens and an ABC tune at MAX_ABC_TOKENS.
Each cut is counted by kind, reported, and stored in the run's config (`cuts` of the data summary).

ABC tunes are read as music21 reads them where their transcribers were terse: a bar line left out where
a written bar holds two whole bars (the Essen collection does this at every phrase end) is put back
(music/positions.py: complete_bar_lines), and so is the final bar line of a tune that ends without one,
so that every bar the model sees is as long as its meter says and every tune ends as sampling ends it; the
count is `bar_lines_added` of the data summary. Beside each ABC token the model reads how much of the
bar is left after it (positions.BarRoom), counted once when the corpus is opened.

The cache (`v{CACHE_VERSION}-{hash}-{kind}` under the cache root) is checked whenever it is read,
as text caches are: meta.json's keys and types, starts.npy against tokens.bin (size, and each tune
starting with <s>), the largest id against the vocabulary, tokenizer.json. One that fails is removed
and rebuilt with one line on stderr.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import math
import multiprocessing
import os
import random
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.io import atomic_directory, cache_root
from genlab.music.tokenizers import (
    MAX_ABC_TOKENS,
    AbcError,
    AbcTokenizer,
    EventTokenizer,
    abc_to_tokens,
    cap_abc_tune,
    load_music_tokenizer,
    split_tunes,
)
from genlab.text.data import (
    TEXT_EXTENSIONS,
    BrokenCache,
    FolderRead,
    TextData,
    cache_dtype,
    cache_tokenizer,
    cached,
    choose_files,
    extensions_for_folder,
    folder_files,
    parse_extensions,
    read_cache_meta,
    read_cache_tokens,
    windows_at,
)

FOLK_COLLECTIONS = ("essenFolksong", "oneills1850", "airdsAirs", "ryansMammoth")
BUILTIN_MUSIC = ("music:folk", "music:bach")
ABC_SUFFIXES = (".abc",)
MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = (".musicxml", ".mxl", ".xml")
MUSIC_SUFFIXES = ABC_SUFFIXES + MIDI_SUFFIXES + SCORE_SUFFIXES
CACHE_VERSION = 4  # bump when tokenization changes, so old caches are not reused (2: the caps on tunes, 3 and 4:
# bar lines put back)
SHUFFLE_SEED = 1234
# with --descriptions: the share of tunes trained without one, so the model also learns the unconditioned tune
# (the prompt dropout of classifier-free guidance; the bench's chance baseline is that empty prompt)
DESCRIPTION_DROPOUT = 0.15
TRANSPOSE_RANGE = 5  # event training windows are shifted by -5..+6 semitones: every key


@dataclass
class MusicCorpus:
    tokens: np.ndarray  # every tune's tokens, <s> ... </s>, one after another (memory-mapped)
    starts: np.ndarray  # where each tune begins in `tokens`; one more entry at the end
    n_train: int  # the first n_train tunes are training tunes, the rest validation
    tokenizer: object
    source: str
    content_hash: str
    failures: dict = field(default_factory=dict)  # reason -> count
    examples: list = field(default_factory=list)  # a few (file, reason) pairs
    cuts: dict = field(default_factory=dict)  # what was cut to the caps on tunes -> count
    bar_lines_added: int = 0  # bar lines put back where a written bar held two or a tune ended without one (ABC)
    read: FolderRead | None = None  # what a folder source gave; None for a built-in corpus or one file

    @property
    def split(self) -> int:
        return int(self.starts[self.n_train])

    @property
    def train(self) -> np.ndarray:
        return self.tokens[: self.split]

    @property
    def val(self) -> np.ndarray:
        return self.tokens[self.split :]

    def tune(self, i: int) -> np.ndarray:
        return np.asarray(self.tokens[self.starts[i] : self.starts[i + 1]])

    @functools.cached_property
    def features(self) -> np.ndarray | None:
        """The id the model reads beside each token (ABC: the room left in the bar), or None."""
        if self.tokenizer.kind != "abc":
            return None
        from genlab.music.positions import BarRoom

        return BarRoom(self.tokenizer.vocab).ids(self.tokens)

    def tune_features(self, i: int) -> np.ndarray | None:
        f = self.features
        return None if f is None else f[self.starts[i] : self.starts[i + 1]]

    @property
    def n_tunes(self) -> int:
        return len(self.starts) - 1


def is_music_source(source: str) -> bool:
    """A `music:` name, a music file, or a folder holding music files and no more text or source files."""
    if source.startswith("music:"):
        return True
    path = Path(source).expanduser()
    if path.is_file():
        return path.suffix.lower() in MUSIC_SUFFIXES
    if path.is_dir():
        files = folder_files(path)[0]
        music = sum(1 for f in files if f.suffix.lower() in MUSIC_SUFFIXES and _is_score(f))
        return music > 0 and music >= sum(1 for f in files if f.suffix.lower() in TEXT_EXTENSIONS)
    return False


def _is_score(f: Path) -> bool:
    """False for an .xml file that is not MusicXML (a pom.xml, a config); True for every other music suffix."""
    if f.suffix.lower() != ".xml":
        return True
    try:
        with open(f, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return True  # counted as unreadable where it is read
    return b"score-partwise" in head or b"score-timewise" in head


# ---------------------------------------------------------------------------------------------------
# Reading sources
# ---------------------------------------------------------------------------------------------------


def _music21_corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _source_files(source: str, extensions: str | None = None) -> tuple[list[Path], FolderRead | None]:
    """The files of a source, and for a folder what it read (files by extension, files skipped by reason)."""
    if source in BUILTIN_MUSIC:
        extensions_for_folder(source, extensions)
    if source == "music:bach":
        return [], None  # read from music21's corpus by name (_event_tunes)
    if source == "music:folk":
        root = _music21_corpus_root()
        return [f for c in FOLK_COLLECTIONS for f in sorted((root / c).rglob("*.abc"))], None
    path = Path(source).expanduser()
    if source.startswith("music:") or not path.exists():
        from genlab.modalities import unknown_dataset

        raise unknown_dataset(source)
    if path.is_file():
        extensions_for_folder(source, extensions)
        if path.suffix.lower() not in MUSIC_SUFFIXES:
            raise GenlabError(f"{path} is not a music file; use .abc, .mid, .midi, .musicxml or .mxl")
        return [path], None
    chosen = parse_extensions(extensions, MUSIC_SUFFIXES, "music")
    everything, left_out = folder_files(path)
    report = FolderRead(str(path), "music", chosen, left_out_dirs=left_out)
    files = []
    for f in choose_files(path, MUSIC_SUFFIXES, chosen, "music", everything):
        if not os.access(f, os.R_OK):
            report.skip(f, "unreadable (permission denied)")
        elif not _is_score(f):
            report.skip(f, "not MusicXML")
        else:
            files.append(f)
            report.files[f.suffix.lower()] += 1
    if not files:
        reasons = ", ".join(f"{c} {r}" for r, c in report.skipped.most_common())
        raise GenlabError(f"none of the music files of {path} can be read ({reasons}); "
                          "give ABC, MIDI or MusicXML files")
    return files, report


def _content_hash(source: str, files: list[Path]) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    if source == "music:bach":
        import music21

        h.update(f"bach-chorales-{music21.__version__}".encode())
        return h.hexdigest()
    for f in files:
        h.update(f.name.encode())
        try:
            h.update(f.read_bytes())
        except OSError as e:
            raise GenlabError(f"cannot read {f} ({e.strerror}); check its permissions or remove it") from None
    return h.hexdigest()


def _choose_kind(source: str, files: list[Path], asked: str | None) -> str:
    has_abc = any(f.suffix.lower() in ABC_SUFFIXES for f in files)
    has_other = source == "music:bach" or any(f.suffix.lower() not in ABC_SUFFIXES for f in files)
    if asked in (None, "char", "auto"):
        return "events" if has_other else "abc"
    if asked == "abc" and has_other:
        raise GenlabError(f"--tokenizer abc reads only ABC text, but {source} holds MIDI/MusicXML; "
                          "use --tokenizer events")
    if asked == "events" and not has_other and not has_abc:
        raise GenlabError(f"{source} holds no music files")
    if asked not in ("abc", "events"):
        raise GenlabError(f"--tokenizer {asked} is for text; music uses abc or events (default: chosen by the files)")
    return asked


def _abc_text(f: Path) -> str:
    data = f.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # older ABC collections are Latin-1


def _abc_tunes(files: list[Path], failures, examples, cuts: collections.Counter,
               descriptions: bool = False) -> tuple[list[list[str]], int]:
    """The tunes of ABC files as tokens, and how many bar lines were put back. With `descriptions`, each tune
    but a DESCRIPTION_DROPOUT share begins with a description of it (music/describe.py), after its <s>."""
    from genlab.music.describe import description_tokens, training_description
    from genlab.music.positions import complete_bar_lines

    tunes, added = [], 0
    rng = random.Random(SHUFFLE_SEED)  # the same phrasing for a tune every time the corpus is read
    for f in files:
        pieces = split_tunes(_abc_text(f))
        if not pieces:
            _fail(failures, examples, f, "no tune (no X: or K: line)")
        for piece in pieces:
            try:
                tokens, put_back = complete_bar_lines(abc_to_tokens(piece))
                tokens, cut = cap_abc_tune(tokens, MAX_ABC_TOKENS)
            except AbcError as e:
                _fail(failures, examples, f, str(e))
                continue
            if descriptions and rng.random() >= DESCRIPTION_DROPOUT:
                text = training_description(piece, rng)
                tokens = tokens[:1] + (description_tokens(text) if text else []) + tokens[1:]
            tunes.append(tokens)
            added += put_back
            if cut:
                cuts[f"tunes cut at {MAX_ABC_TOKENS} tokens"] += 1
    return tunes, added


def _event_tunes(source: str, files: list[Path], tok: EventTokenizer, failures, examples,
                 cuts: collections.Counter) -> list[list[str]]:
    from genlab.music.convert import (
        ConversionError,
        abc_to_notes,
        chorale_notes,
        midi_to_notes,
        parse_score_file,
        score_to_notes,
    )

    tunes = []

    def add(notes, origin):
        if notes:
            tunes.append(tok.notes_to_tokens(notes, cuts))
        else:
            _fail(failures, examples, origin, "no notes")

    if source == "music:bach":
        from music21.corpus.chorales import Iterator

        names = list(Iterator(returnType="filename"))  # corpus names, e.g. bach/bwv253
        # music21's parsing is pure Python, so one process per core. Forked (as DataLoader workers are),
        # not spawned: a spawned worker re-runs the user's script, which may lack a __main__ guard
        workers = min(os.cpu_count() or 1, 8) if sys.platform == "linux" else 1
        print(f"genlab: reading the {len(names)} Bach chorales with music21 in {workers} process(es) "
              "(once; a minute or two)", file=sys.stderr, flush=True)
        if workers > 1:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                read = list(pool.map(chorale_notes, names, chunksize=4))
        else:
            read = [chorale_notes(name) for name in names]
        for i, notes in enumerate(read):  # in corpus order, whichever process read them
            if isinstance(notes, str):
                _fail(failures, examples, Path(f"chorale-{i + 1}"), notes)
            else:
                add(notes, Path(f"chorale-{i + 1}"))
        return tunes
    for f in files:
        suffix = f.suffix.lower()
        try:
            if suffix in MIDI_SUFFIXES:
                add(midi_to_notes(f)[0], f)
            elif suffix in SCORE_SUFFIXES:
                add(score_to_notes(parse_score_file(f))[0], f)
            else:
                for piece in split_tunes(_abc_text(f)):
                    add(abc_to_notes(piece)[0], f)
        except (GenlabError, ConversionError) as e:
            _fail(failures, examples, f, str(e).split(" (")[0][:80])
    return tunes


def _fail(failures: collections.Counter, examples: list, f: Path, reason: str) -> None:
    failures[reason] += 1
    if len(examples) < 5:
        examples.append([str(f.name), reason])


# ---------------------------------------------------------------------------------------------------
# Preparing (once, cached)
# ---------------------------------------------------------------------------------------------------


def prepare_music(source: str, tokenizer: str | None = None, val_fraction: float = 0.1,
                  quiet: bool = False, extensions: str | None = None, given=None,
                  descriptions: bool | None = None) -> MusicCorpus:
    """Tokenize a music corpus once (cached on disk) and split its tunes into train and validation; with a
    `given` tokenizer (a parent run's, for fine-tuning) the tunes are read in its vocabulary. With
    `descriptions` (default: whether the given tokenizer reads them) each ABC tune begins with a description.

    The cache is keyed by the hash of the files read (their names and bytes) and of a given tokenizer, so
    other `extensions` that read other files never reuse this one."""
    from genlab.text.data import tokenizer_fingerprint

    # unknown names, empty folders and extensions without files raise here
    files, report = _source_files(source, extensions)
    kind = given.kind if given is not None else _choose_kind(source, files, tokenizer)
    if descriptions is None:
        descriptions = bool(getattr(given, "described", False))
    if descriptions and kind != "abc":
        raise GenlabError(f"--descriptions describes a tune by its ABC header (K:, M:, R:), and {source} is read as "
                          "MIDI/MusicXML events, which have none; train on ABC tunes (e.g. music:folk)")
    content_hash = _content_hash(source, files)
    name = f"v{CACHE_VERSION}-{content_hash[:24]}-{kind}" + ("-described" if descriptions else "")
    if given is not None:
        name += f"-given-{tokenizer_fingerprint(given)[:16]}"
    meta, tok, starts, tokens = cached(cache_root() / "music" / name,
                                       lambda f: _build_cache(source, files, kind, f, given, descriptions),
                                       lambda f: _read_cache(f, kind))
    n_tunes = len(starts) - 1
    failures, cuts = meta["failures"], meta["cuts"]
    if n_tunes < 2:
        raise GenlabError(f"dataset {source!r} has {n_tunes} readable tune(s) "
                          f"({sum(failures.values())} could not be read); it needs at least 2")
    n_val = min(n_tunes - 1, max(1, round(n_tunes * val_fraction)))
    corpus = MusicCorpus(tokens, starts, n_tunes - n_val, tok, source, content_hash, failures, meta["examples"],
                         cuts, meta["bar_lines_added"], report)
    if failures and not quiet:
        top = ", ".join(f"{c} {r!r}" for r, c in sorted(failures.items(), key=lambda x: -x[1])[:3])
        print(f"genlab: {source}: {n_tunes} tunes read, {sum(failures.values())} could not be and are left out "
              f"({top}{', ...' if len(failures) > 3 else ''})", file=sys.stderr, flush=True)
    if cuts and not quiet:
        print(f"genlab: {source}: cut to the caps on tunes: " + ", ".join(f"{c} {r}" for r, c in cuts.items()),
              file=sys.stderr, flush=True)
    return corpus


def _read_cache(folder: Path, kind: str) -> tuple[dict, object, np.ndarray, np.ndarray]:
    """meta.json, the tokenizer, starts.npy and tokens.bin of a cache, each checked (BrokenCache if not)."""
    meta = read_cache_meta(folder, {"version": int, "dtype": str, "kind": str, "n_files": int, "failures": dict,
                                    "examples": list, "cuts": dict, "bar_lines_added": int})
    if meta["version"] != CACHE_VERSION or meta["kind"] != kind:
        raise BrokenCache("meta.json does not match the folder's name")
    for name in ("failures", "cuts"):
        if not all(isinstance(k, str) and type(v) is int for k, v in meta[name].items()):
            raise BrokenCache(f"meta.json's {name!r} are not counts")
    dtype = cache_dtype(meta["dtype"])
    tok = cache_tokenizer(lambda: load_music_tokenizer(kind, folder / "tokenizer.json"))
    try:
        starts = np.load(folder / "starts.npy", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        raise BrokenCache("starts.npy is missing or truncated") from None
    if (starts.ndim != 1 or starts.dtype != np.int64 or len(starts) < 1 or starts[0] != 0
            or (np.diff(starts) <= 0).any()):
        raise BrokenCache("starts.npy is not a rising list of tune starts")
    tokens = read_cache_tokens(folder / "tokens.bin", int(starts[-1]), dtype, tok.vocab_size)
    if len(starts) > 1 and (tokens[starts[:-1]] != tok.bos).any():
        raise BrokenCache("tokens.bin does not begin a tune at each of starts.npy")
    return meta, tok, starts, tokens


def _build_cache(source: str, files: list[Path], kind: str, folder: Path, given=None,
                 descriptions: bool = False) -> None:
    failures: collections.Counter = collections.Counter()
    examples: list = []
    cuts: collections.Counter = collections.Counter()
    added = 0
    if kind == "abc":
        tunes, added = _abc_tunes(files, failures, examples, cuts, descriptions)
        tok = given or (AbcTokenizer.build(tunes) if tunes else None)
    else:
        tok = given or EventTokenizer()
        tunes = _event_tunes(source, files, tok, failures, examples, cuts)
    unknown = sorted({t for tune in tunes for t in tune} - set(tok.index)) if tunes else []
    if unknown:  # only with a given (parent's) vocabulary: one built here holds every token
        raise GenlabError(f"{source} uses {len(unknown)} ABC token(s) the model never saw in training "
                          f"({', '.join(map(repr, unknown[:8]))}); leave out the tunes that use them, or train a "
                          "new model on this music")
    if not tunes:
        top = "; ".join(f"{f}: {r}" for f, r in examples[:2])
        raise GenlabError(f"no tune of {source} could be read ({sum(failures.values())} failed, e.g. {top}); "
                          "check that the files are valid ABC, MIDI or MusicXML")
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(tunes))
    ids = [tok.ids(tunes[i]) for i in order]
    starts = np.concatenate([[0], np.cumsum([len(x) for x in ids])]).astype(np.int64)
    dtype = np.uint16 if tok.vocab_size <= 65536 else np.uint32
    with atomic_directory(folder) as tmp:
        np.concatenate(ids).astype(dtype).tofile(tmp / "tokens.bin")
        np.save(tmp / "starts.npy", starts, allow_pickle=False)
        tok.save(tmp / "tokenizer.json")
        (tmp / "meta.json").write_text(json.dumps({
            "version": CACHE_VERSION, "dtype": np.dtype(dtype).name, "kind": kind, "n_files": len(files),
            "failures": dict(failures), "examples": examples, "cuts": dict(cuts), "bar_lines_added": added,
        }))


# ---------------------------------------------------------------------------------------------------
# The dataset the trainer sees
# ---------------------------------------------------------------------------------------------------


IGNORE = -100  # a target the loss skips (cross_entropy's ignore_index)
ALIGNED_SHARE = 0.25  # of each batch, windows that begin at a tune's first token


class MusicData(TextData):
    """Tunes as one token stream served as next-token windows; windows of event tokens are also
    transposed to random keys.

    Sampling always begins at a tune's first token, at position 0 and with nothing before it. Random
    windows as for text put a tune's start there only about once in a tune's length, and a model
    trained on them alone mispredicts the opening (the meter share was off by a third for common
    meters), so a share of each batch begins exactly at a tune's start; the rest begins anywhere,
    which trains the tails of long tunes and the continuation past the context.
    """

    modality = "music"

    def batch(self, split: str, batch_size: int, generator: torch.Generator):
        c = self.corpus
        data = c.train if split == "train" else c.val
        if len(data) <= self.block_size:
            return super().batch(split, batch_size, generator)  # raises the one-line error
        first = c.starts[: c.n_train] if split == "train" else c.starts[c.n_train : -1] - c.split
        aligned = math.ceil(batch_size * ALIGNED_SHARE)
        picks = torch.randint(len(first), (aligned,), generator=generator).numpy()
        anywhere = torch.randint(len(data) - self.block_size, (batch_size - aligned,), generator=generator).numpy()
        starts = np.concatenate([np.minimum(first[picks], len(data) - self.block_size - 1), anywhere])
        x, y = windows_at(data, starts, self.block_size)
        if self.tokenizer.described:  # a description is read, never written: its words are no target
            y = y.masked_fill(torch.from_numpy(self.tokenizer.description_mask)[y], IGNORE)
        if split == "train" and self.tokenizer.kind == "events":
            x, y = _transpose_windows(x, y, self.tokenizer, generator)
        if c.features is None:
            return x, y
        features = c.features[: c.split] if split == "train" else c.features[c.split :]
        return x, y, windows_at(features, starts, self.block_size)[0]

    def model_settings(self) -> dict:
        settings = super().model_settings()
        if self.corpus.features is not None:
            from genlab.music.positions import ROOM_IDS

            settings["feature_vocab_size"] = ROOM_IDS
        return settings

    def describe(self) -> dict:
        c = self.corpus
        return {
            "modality": "music",
            "source": c.source,
            "content_sha256": c.content_hash,
            "tokenizer": self.tokenizer.kind,
            "train_tokens": int(c.split),
            "val_tokens": int(len(c.tokens) - c.split),
            "train_tunes": int(c.n_train),
            "val_tunes": int(c.n_tunes - c.n_train),
            "unreadable_tunes": int(sum(c.failures.values())),
            "unreadable_reasons": dict(sorted(c.failures.items(), key=lambda x: -x[1])[:10]),
            "cuts": dict(c.cuts),
            "bar_lines_added": int(c.bar_lines_added),
            "skipped_files": int(sum(c.read.skipped.values())) if c.read else 0,
            "skipped_reasons": dict(c.read.skipped) if c.read else {},
            **(c.read.describe() if c.read else {}),
        }


def _transpose_windows(x: torch.Tensor, y: torch.Tensor, tok: EventTokenizer, generator: torch.Generator):
    """Shift each training window by a random number of semitones (augmentation to every key).

    ON:p and OFF:p ids are contiguous ranges, so a transposition is an addition on those ids; a
    window that would leave the MIDI range keeps its key.
    """
    shift = torch.randint(-TRANSPOSE_RANGE, TRANSPOSE_RANGE + 2, (x.size(0), 1), generator=generator)
    on0, off0 = tok.index["ON:0"], tok.index["OFF:0"]
    out = []
    for t in (x, y):
        is_on = (t >= on0) & (t < on0 + 128)
        is_off = (t >= off0) & (t < off0 + 128)
        pitch = torch.where(is_on, t - on0, torch.where(is_off, t - off0, torch.zeros_like(t)))
        out.append((pitch, is_on | is_off))
    fits = torch.ones(x.size(0), dtype=torch.bool)
    for pitch, mask in out:
        moved = pitch + shift
        fits &= ~(mask & ((moved < 0) | (moved > 127))).any(dim=1)
    shift = torch.where(fits[:, None], shift, torch.zeros_like(shift))
    return tuple(torch.where(mask, t + shift, t) for t, (_, mask) in zip((x, y), out, strict=True))


def open_music(source: str, *, block_size: int, tokenizer: str | None = None,
               val_fraction: float = 0.1, extensions: str | None = None, given=None,
               descriptions: bool | None = None) -> MusicData:
    """A music corpus prepared for training (in the `given` tokenizer's vocabulary, if any); what a folder
    gave is one line on stderr."""
    corpus = prepare_music(source, tokenizer, val_fraction, extensions=extensions, given=given,
                           descriptions=descriptions)
    if corpus.read is not None:
        corpus.read.say(f", {corpus.n_tunes} tunes")
    return MusicData(corpus, block_size)
