"""Text corpora: built-in ones from the standard library, or any .txt/.md file or folder.

A corpus is tokenized once and cached on disk, keyed by the hash of its content and the tokenizer
settings; training then reads random windows from a memory-mapped array (as nanoGPT does).
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.io import atomic_directory, cache_root
from genlab.text.tokenizer import load_tokenizer, train_tokenizer

TEXT_SUFFIXES = (".txt", ".md")
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


def read_text_source(source: str) -> str:
    """Return the raw text of a named corpus or of a .txt/.md file or folder."""
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
    texts = []
    for f in files:
        try:
            texts.append(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise GenlabError(f"{f} is not UTF-8 text; convert it (e.g. iconv -t utf-8) or remove it") from None
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

    @property
    def train(self) -> np.ndarray:
        return self.tokens[: self.split]

    @property
    def val(self) -> np.ndarray:
        return self.tokens[self.split :]


def prepare_text(
    source: str, tokenizer: str = "char", vocab_size: int | None = None, val_fraction: float = 0.1, text=None
) -> TokenizedCorpus:
    """Tokenize a corpus once (cached), training the tokenizer on it; the last `val_fraction` is validation."""
    text = read_text_source(source) if text is None else text
    if not text.strip():
        raise GenlabError(f"dataset {source!r} is empty; give it some text")
    content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    key = f"{content_hash[:24]}-{tokenizer}-{vocab_size or 0}"
    folder = cache_root() / "text" / key
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        tok = train_tokenizer(tokenizer, text, vocab_size)
        ids = tok.encode(text)
        dtype = np.uint16 if tok.vocab_size <= 65536 else np.uint32
        with atomic_directory(folder) as tmp:
            ids.astype(dtype).tofile(tmp / "tokens.bin")
            tok.save(tmp / "tokenizer.json")
            (tmp / "meta.json").write_text(
                json.dumps({"n_tokens": int(len(ids)), "dtype": np.dtype(dtype).name, "tokenizer": tokenizer})
            )
    meta = json.loads(meta_path.read_text())
    tok = load_tokenizer(tokenizer, folder / "tokenizer.json")
    n = meta["n_tokens"]
    if n < 2:
        raise GenlabError(f"dataset {source!r} has only {n} token(s); give it more text")
    tokens = np.memmap(folder / "tokens.bin", dtype=np.dtype(meta["dtype"]), mode="r", shape=(n,))
    split = int(n * (1.0 - val_fraction))
    return TokenizedCorpus(tokens=tokens, split=split, tokenizer=tok, source=source, content_hash=content_hash)


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
