"""Text corpora: built-in ones from the standard library, or any .txt/.md file or folder.

A corpus is tokenized once and cached on disk, keyed by the hash of its content, the tokenizer
settings and the cache format (CACHE_VERSION); training then reads random windows from a memory-mapped
array (as nanoGPT does). A cache is checked each time it is read (meta.json's keys and types, the size
of tokens.bin against the token count, the largest id against the vocabulary, tokenizer.json); one that
fails is removed and built again, with one line on stderr saying why (`cached` below, which the music
wing shares).

A text file over MAX_TEXT_FILE_BYTES (256 MiB) is skipped with a warning and counted in the run's
data summary (`skipped_files`, `skipped_reasons`).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.io import atomic_directory, cache_root
from genlab.text.tokenizer import TokenizerFileError, load_tokenizer, train_tokenizer

TEXT_SUFFIXES = (".txt", ".md")
CACHE_VERSION = 2  # the token cache's format; bump it when tokenization or the files change (a new folder)
# A file is read whole and tokenized in memory (int64 ids: 8 bytes per character, more at the peak), so one
# file past this is far more likely a stray log or dump than a corpus; split a genuine one into files
MAX_TEXT_FILE_BYTES = 256 * 2**20
_SKIP_STDLIB_DIRS = {
    "site-packages", "dist-packages", "test", "tests", "idlelib", "turtledemo", "lib2to3", "__pycache__"
}


def _pydocs() -> str:
    """The prose of Python's documentation topics, shipped in the standard library."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip() for k in sorted(topics)) + "\n"


def _pystdlib() -> str:
    """The standard library's own Python source (tests and vendored packages left out), for code generation."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_STDLIB_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py"):
                try:
                    parts.append(Path(dirpath, name).read_text(encoding="utf-8"))
                except (UnicodeDecodeError, OSError):
                    continue
    return "\n\n".join(parts)


BUILTIN_TEXT = {"text:pydocs": _pydocs, "text:pystdlib": _pystdlib}


def read_text_source(source: str, skipped: collections.Counter | None = None) -> str:
    """Return the raw text of a named corpus or of a .txt/.md file or folder. Files over MAX_TEXT_FILE_BYTES
    are left out with a warning, and counted by reason in `skipped` when given."""
    if source in BUILTIN_TEXT:
        return BUILTIN_TEXT[source]()
    if source.startswith("text:"):
        raise GenlabError(f"unknown dataset {source!r}; built-in text datasets are: {', '.join(BUILTIN_TEXT)}")
    path = Path(source).expanduser()
    if not path.exists():
        raise GenlabError(
            f"dataset {source!r} is neither a built-in name ({', '.join(BUILTIN_TEXT)}) nor an existing path"
        )
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise GenlabError(f"folder {path} has no .txt or .md files; put your text in such files")
    texts, too_big = [], []
    cap = f"{MAX_TEXT_FILE_BYTES / 2**20:g} MiB"
    for f in files:
        try:
            if f.stat().st_size > MAX_TEXT_FILE_BYTES:
                too_big.append(f)
                continue
            texts.append(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise GenlabError(f"{f} is not UTF-8 text; convert it (e.g. iconv -t utf-8) or remove it") from None
        except OSError as e:
            raise GenlabError(f"cannot read {f} ({e.strerror}); check its permissions or remove it") from None
    if too_big:
        if not texts:
            if len(too_big) == 1:
                raise GenlabError(f"{too_big[0]} is over the {cap} cap per text file; split it into smaller files")
            raise GenlabError(f"all {len(too_big)} text files of {path} are over the {cap} cap per file; "
                              "split them into smaller files")
        if skipped is not None:
            skipped[f"over the {cap} cap per file"] += len(too_big)
        names = ", ".join(str(f.relative_to(path)) for f in too_big[:3])
        print(f"genlab: warning: skipped {len(too_big)} of {len(files)} text files over the {cap} cap per file "
              f"({names}{', ...' if len(too_big) > 3 else ''}); split them into smaller files to use them",
              file=sys.stderr, flush=True)
    text = "\n\n".join(texts)
    if not text.strip():
        raise GenlabError(f"dataset {source!r} is empty; give it some text")
    return text


@dataclass
class TokenizedCorpus:
    """Token ids of a whole corpus, memory-mapped, and the split point between train and validation."""

    tokens: np.ndarray
    split: int
    tokenizer: object
    source: str
    content_hash: str
    skipped: dict = field(default_factory=dict)  # reason -> files left out of the corpus

    @property
    def train(self) -> np.ndarray:
        return self.tokens[: self.split]

    @property
    def val(self) -> np.ndarray:
        return self.tokens[self.split :]


# ---------------------------------------------------------------------------------------------------
# Token caches that heal themselves (shared with the music wing)
# ---------------------------------------------------------------------------------------------------


class BrokenCache(Exception):
    """A token cache that fails a check on read; its message says which, and `cached` rebuilds it."""


T = TypeVar("T")


def cached(folder: Path, build: Callable[[Path], None], read: Callable[[Path], T]) -> T:
    """`read(folder)`, after `build(folder)` when the cache is absent. A cache that fails a check is removed
    and built again, with one line on stderr; one that fails right after it was built is a GenlabError."""
    if folder.exists():
        try:
            return read(folder)
        except BrokenCache as e:
            print(f"genlab: the token cache {folder} is broken ({e}); removing it and building it again",
                  file=sys.stderr, flush=True)
            _discard(folder)
    build(folder)
    try:
        return read(folder)
    except BrokenCache as e:
        raise GenlabError(f"the token cache {folder} is still broken after a rebuild ({e}); remove it by hand "
                          "(is the cache folder read-only, or the disk full?)") from None


def _discard(folder: Path) -> None:
    """Remove a cache folder: renamed aside first, so no reader ever sees it half deleted."""
    trash = folder.with_name(f".{folder.name}.broken-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(folder, trash)
    except FileNotFoundError:
        return  # another process removed it first
    except OSError:
        trash = folder
    if trash.is_dir():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)  # a stray file where the folder should be


def read_cache_meta(folder: Path, schema: dict[str, type]) -> dict:
    """meta.json of a cache, with each key of `schema` present and of its type (bool is not an int)."""
    path = folder / "meta.json"
    if not path.is_file():
        raise BrokenCache("no meta.json")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise BrokenCache("meta.json is empty or not valid JSON") from None
    if not isinstance(meta, dict):
        raise BrokenCache("meta.json is not a JSON object")
    for key, kind in schema.items():
        value = meta.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BrokenCache(f"meta.json has no {kind.__name__} {key!r}")
    return meta


def cache_dtype(name: str) -> np.dtype:
    if name not in ("uint16", "uint32"):  # the two dtypes caches are written in
        raise BrokenCache(f"meta.json names dtype {name!r}")
    return np.dtype(name)


def read_cache_tokens(path: Path, n: int, dtype: np.dtype, vocab_size: int) -> np.ndarray:
    """tokens.bin memory-mapped, once its size matches n tokens of dtype and every id is in the vocabulary."""
    try:
        size = path.stat().st_size
    except OSError:
        raise BrokenCache(f"no {path.name}") from None
    if n < 0 or size != n * dtype.itemsize:
        raise BrokenCache(f"{path.name} has {size} bytes, not the {n * dtype.itemsize} of {n} {dtype.name} tokens")
    if n == 0:
        return np.zeros(0, dtype=dtype)  # an empty file cannot be memory-mapped
    try:
        tokens = np.memmap(path, dtype=dtype, mode="r", shape=(n,))
        top = int(tokens.max())  # one vectorised pass over the file
    except (OSError, ValueError) as e:
        raise BrokenCache(f"{path.name} cannot be read ({e})") from None
    if top >= vocab_size:
        raise BrokenCache(f"{path.name} holds id {top}, beyond the tokenizer's {vocab_size} tokens")
    return tokens


def cache_tokenizer(load: Callable[[], T]) -> T:
    """A cache's tokenizer; a missing or corrupt tokenizer.json marks the cache broken."""
    try:
        return load()
    except TokenizerFileError:
        raise BrokenCache("tokenizer.json is missing or corrupt") from None


# ---------------------------------------------------------------------------------------------------
# Preparing a corpus
# ---------------------------------------------------------------------------------------------------


def prepare_text(
    source: str, tokenizer: str = "char", vocab_size: int | None = None, val_fraction: float = 0.1, text=None
) -> TokenizedCorpus:
    """Tokenize a corpus once (cached), training the tokenizer on it; the last `val_fraction` is validation."""
    skipped: collections.Counter = collections.Counter()
    text = read_text_source(source, skipped) if text is None else text
    if not text.strip():
        raise GenlabError(f"dataset {source!r} is empty; give it some text")
    content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    key = f"v{CACHE_VERSION}-{content_hash[:24]}-{tokenizer}-{vocab_size or 0}"

    def build(folder: Path) -> None:
        tok = train_tokenizer(tokenizer, text, vocab_size)
        ids = tok.encode(text)
        dtype = np.uint16 if tok.vocab_size <= 65536 else np.uint32
        with atomic_directory(folder) as tmp:
            ids.astype(dtype).tofile(tmp / "tokens.bin")
            tok.save(tmp / "tokenizer.json")
            (tmp / "meta.json").write_text(json.dumps({
                "version": CACHE_VERSION, "n_tokens": int(len(ids)), "dtype": np.dtype(dtype).name,
                "tokenizer": tokenizer,
            }))

    def read(folder: Path) -> tuple[np.ndarray, object]:
        meta = read_cache_meta(folder, {"version": int, "n_tokens": int, "dtype": str, "tokenizer": str})
        if meta["version"] != CACHE_VERSION or meta["tokenizer"] != tokenizer:
            raise BrokenCache("meta.json does not match the folder's name")
        dtype = cache_dtype(meta["dtype"])
        tok = cache_tokenizer(lambda: load_tokenizer(tokenizer, folder / "tokenizer.json"))
        return read_cache_tokens(folder / "tokens.bin", meta["n_tokens"], dtype, tok.vocab_size), tok

    tokens, tok = cached(cache_root() / "text" / key, build, read)
    n = len(tokens)
    if n < 2:
        raise GenlabError(f"dataset {source!r} has only {n} token(s); give it more text")
    split = int(n * (1.0 - val_fraction))
    return TokenizedCorpus(tokens=tokens, split=split, tokenizer=tok, source=source, content_hash=content_hash,
                           skipped=dict(skipped))


def random_windows(
    data: np.ndarray, batch_size: int, block_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random (input, next-token target) windows, each block_size long."""
    if len(data) <= block_size:
        raise GenlabError(
            f"a split has {len(data)} tokens, not more than --block-size {block_size}; "
            "use a smaller --block-size or more text"
        )
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator).numpy()
    return windows_at(data, starts, block_size)


def windows_at(data: np.ndarray, starts: np.ndarray, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, next-token target) windows of block_size tokens beginning at `starts`."""
    window = torch.from_numpy(data[starts[:, None] + np.arange(block_size + 1)].astype(np.int64))  # (B, T+1)
    return window[:, :-1], window[:, 1:]


class TextData:
    """A tokenized corpus served as random next-token windows of `block_size` tokens."""

    modality = "text"
    unit = "tok"  # what the progress bar counts per second
    items = "tokens"  # what the training split is counted in

    def __init__(self, corpus: TokenizedCorpus, block_size: int):
        self.corpus = corpus
        self.tokenizer = corpus.tokenizer
        self.block_size = block_size

    def model_settings(self) -> dict:
        """Settings the model must take from the data."""
        return {"vocab_size": self.tokenizer.vocab_size}

    def batch(self, split: str, batch_size: int, generator: torch.Generator):
        data = self.corpus.train if split == "train" else self.corpus.val
        return random_windows(data, batch_size, self.block_size, generator)

    def items_in(self, batch) -> int:
        return batch[0].numel()

    @property
    def train_items(self) -> int:
        return int(len(self.corpus.train))

    def describe(self) -> dict:
        return {
            "modality": "text",
            "source": self.corpus.source,
            "content_sha256": self.corpus.content_hash,
            "train_tokens": int(len(self.corpus.train)),
            "val_tokens": int(len(self.corpus.val)),
            "skipped_files": int(sum(self.corpus.skipped.values())),
            "skipped_reasons": dict(self.corpus.skipped),
        }

    def preprocessing(self) -> dict:
        return {"tokenizer": {"kind": self.tokenizer.kind, "vocab_size": self.tokenizer.vocab_size}}

    def save(self, run_dir: Path) -> None:
        self.tokenizer.save(Path(run_dir) / "tokenizer.json")


def open_text(source: str, *, block_size: int, tokenizer: str = "char", vocab_size: int | None = None,
              val_fraction: float = 0.1) -> TextData:
    """A text corpus prepared for training: tokenized (cached) and cut into train and validation."""
    corpus = prepare_text(source, tokenizer, vocab_size, val_fraction)
    for split, tokens in (("training", corpus.train), ("validation", corpus.val)):
        if len(tokens) <= block_size:
            raise GenlabError(
                f"the {split} split of {source} has {len(tokens)} tokens, too few for --block-size {block_size}; "
                "use a smaller --block-size or more text"
            )
    return TextData(corpus, block_size)
