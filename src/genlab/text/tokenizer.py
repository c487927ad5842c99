"""Tokenizers: character level, byte-level BPE trained with Hugging Face `tokenizers`, and `hf`: a
`tokenizers` tokenizer another tool made (e.g. GPT-2's), brought in by `genlab import`.

All turn text into a 1-D array of ids and back, exactly. Each gives its `tokenizers` equivalent with
`to_hf()`, which `genlab export --format hf-gpt2` writes as tokenizer.json for transformers. A tokenizer
is saved with the model (`tokenizer.json`) so that sampling decodes with the very vocabulary the model
was trained on. A missing, truncated or corrupt tokenizer.json is a TokenizerFileError: one line naming
the file and what to do (a token cache catches it and rebuilds itself).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genlab.errors import GenlabError
from genlab.io import atomic_write_text


class TokenizerFileError(GenlabError):
    """A tokenizer file that is missing, unreadable, truncated or corrupt."""


def corrupt_tokenizer(path: str | Path, what: str) -> TokenizerFileError:
    return TokenizerFileError(f"{path} is truncated or corrupt ({what}); restore it from a copy of the run, "
                              "or train the run again")


def read_tokenizer_json(path: str | Path) -> dict:
    """A tokenizer file's JSON object; any way it cannot be read is a one-line TokenizerFileError."""
    try:
        saved = json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise TokenizerFileError(f"{path} is missing; the run directory is incomplete") from None
    except OSError as e:
        raise TokenizerFileError(f"cannot read {path} ({e.strerror}); check its permissions") from None
    except UnicodeDecodeError:
        raise corrupt_tokenizer(path, "not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise corrupt_tokenizer(path, f"not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(saved, dict):
        raise corrupt_tokenizer(path, "not a JSON object")
    return saved


class CharTokenizer:
    """One id per distinct character of the training corpus (sorted by code point)."""

    kind = "char"

    def __init__(self, chars: str):
        self.chars = chars
        self.codepoints = np.array([ord(c) for c in chars], dtype=np.int64)  # sorted
        self.vocab_size = len(chars)

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None) -> CharTokenizer:
        return cls("".join(sorted(set(text))))

    def encode(self, text: str) -> np.ndarray:
        if not text:
            return np.zeros(0, dtype=np.int64)
        # vectorised lookup: code points -> positions in the sorted vocabulary
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.searchsorted(self.codepoints, cps).clip(0, self.vocab_size - 1)
        unknown = self.codepoints[ids] != cps
        if unknown.any():
            missing = sorted({chr(c) for c in cps[unknown]})
            shown = "".join(missing[:20])
            raise GenlabError(
                f"the text has {len(missing)} character(s) this character-level model never saw in training: "
                f"{shown!r}; remove them, or train with --tokenizer bpe"
            )
        return ids

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in np.asarray(ids, dtype=np.int64).tolist())

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps({"kind": "char", "chars": self.chars}, ensure_ascii=False))

    def to_hf(self):
        """The same tokenizer in `tokenizers`: a BPE with one token per character and no merges splits any text
        into its characters, ids as ours; Fuse joins tokens back without the spaces a plain decode puts between."""
        from tokenizers import Tokenizer, decoders, models

        tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(self.chars)}, merges=[]))
        tok.decoder = decoders.Fuse()
        return tok

    @classmethod
    def load(cls, path: Path) -> CharTokenizer:
        chars = read_tokenizer_json(path).get("chars")
        # encode() looks characters up by binary search: they must be distinct and sorted, as train() makes them
        if not isinstance(chars, str) or not chars or list(chars) != sorted(set(chars)):
            raise corrupt_tokenizer(path, 'no sorted "chars" string')
        return cls(chars)


class BPETokenizer:
    """Byte-level BPE (GPT-2 style): any text round-trips, no unknown characters."""

    kind = "bpe"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None) -> BPETokenizer:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        vocab_size = vocab_size or 1024
        if vocab_size < 257:
            raise GenlabError(f"--vocab-size {vocab_size} is too small for byte-level BPE; use 257 or more")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(_chunks(text), trainer=trainer, length=None)
        return cls(tok)

    def encode(self, text: str) -> np.ndarray:
        if not text:
            return np.zeros(0, dtype=np.int64)
        # encode line chunks in parallel; byte-level pre-tokenization never merges across a newline boundary
        pieces = list(_chunks(text))
        encs = self.tokenizer.encode_batch(pieces, add_special_tokens=False)
        return np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encs])

    def decode(self, ids) -> str:
        return self.tokenizer.decode(np.asarray(ids, dtype=np.int64).tolist(), skip_special_tokens=False)

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.tokenizer.to_str())

    def to_hf(self):
        return self.tokenizer  # already a `tokenizers` tokenizer; encode() only cuts long texts into pieces

    @classmethod
    def load(cls, path: Path) -> BPETokenizer:
        tok = read_hf_tokenizer(path)
        if tok.get_vocab_size() < 257:  # byte-level BPE always holds the 256 bytes (and we ask for 257 or more)
            raise corrupt_tokenizer(path, f"a vocabulary of {tok.get_vocab_size()} tokens, too few for byte-level BPE")
        return cls(tok)


class HFTokenizer:
    """A `tokenizers` tokenizer made by another tool (GPT-2's byte-level BPE of 50257 tokens, say), brought in
    with a model by `genlab import`. Encodes a text in one piece, without adding special tokens, and decodes
    keeping them, so that ids and text are exactly transformers' own."""

    kind = "hf"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        # its special tokens (GPT-2's <|endoftext|>) end a sample, as transformers' generation ends there
        self.end_texts = [t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special]

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None) -> HFTokenizer:
        raise GenlabError("the hf tokenizer comes with a model brought in by `genlab import`; train a new model "
                          "with --tokenizer char or bpe")

    def encode(self, text: str) -> np.ndarray:
        if not text:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(np.asarray(ids, dtype=np.int64).tolist(), skip_special_tokens=False)

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.tokenizer.to_str())

    def to_hf(self):
        return self.tokenizer

    @classmethod
    def load(cls, path: Path) -> HFTokenizer:
        tok = read_hf_tokenizer(path)
        if tok.get_vocab_size() < 1:
            raise corrupt_tokenizer(path, "an empty vocabulary")
        return cls(tok)


def read_hf_tokenizer(path: str | Path):
    """A `tokenizers` tokenizer.json; any way it cannot be read is a one-line TokenizerFileError."""
    from tokenizers import Tokenizer

    if not Path(path).is_file():
        raise TokenizerFileError(f"{path} is missing; the run directory is incomplete")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # `tokenizers` raises a plain Exception for any file it cannot read
        raise corrupt_tokenizer(path, str(e).splitlines()[0][:120] if str(e) else type(e).__name__) from None


def _chunks(text: str, size: int = 1 << 16):
    """Split text into ~64 KiB pieces at newlines so that each piece tokenizes independently."""
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            nl = text.rfind("\n", start, end)
            end = nl + 1 if nl > start else end
        yield text[start:end]
        start = end


TOKENIZERS = {"char": CharTokenizer, "bpe": BPETokenizer, "hf": HFTokenizer}


def seen_text(tokenizer, text: str) -> str:
    """`text` without the characters a character-level tokenizer never saw; any other tokenizer reads all of it."""
    chars = getattr(tokenizer, "chars", None)
    if chars is None:
        return text
    keep = set(chars)
    return "".join(c for c in text if c in keep)


def train_tokenizer(kind: str, text: str, vocab_size: int | None = None):
    if kind not in TOKENIZERS:
        raise GenlabError(f"unknown tokenizer {kind!r}; choose one of: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[kind].train(text, vocab_size)


def load_tokenizer(kind: str, path: Path):
    if kind not in TOKENIZERS:
        raise GenlabError(f"unknown tokenizer {kind!r} in {path}; the run directory may come from a newer genlab")
    if not Path(path).is_file():
        raise TokenizerFileError(f"{path} is missing; the run directory is incomplete")
    return TOKENIZERS[kind].load(path)


CONFIG_FILE = "tokenizer_config.json"  # transformers' name: special tokens and the chat template beside tokenizer.json


class AddedTokens:
    """A run's tokenizer with special tokens after its own ids (a chat template's turn markers, fill-in-the-middle
    sentinels): encode() reads them where a text spells them, decode() writes them back, and everything else goes
    to the base tokenizer unchanged. They are ids no ordinary text can make, which is why a chat message that
    spells one out is refused (genlab.text.chat) rather than read. Saved as tokenizer.json (the base tokenizer's,
    unchanged) and tokenizer_config.json, in transformers' names."""

    def __init__(self, base, specials, end: str | None = None, chat_template: str | None = None):
        import re

        self.base, self.specials = base, tuple(specials)
        self.end, self.chat_template = end, chat_template
        self.kind = base.kind
        self.offset = base.vocab_size
        self.vocab_size = base.vocab_size + len(self.specials)
        self.special_ids = {s: self.offset + i for i, s in enumerate(self.specials)}
        self._split = re.compile("(" + "|".join(re.escape(s) for s in self.specials) + ")")
        # sampling stops where the model closes a turn or a text, as at a tokenizer's own end-of-text token
        self.end_texts = [end] if end else []

    def __getattr__(self, name: str):
        return getattr(self.base, name)  # chars (a character model's), to_hf, ...

    def encode(self, text: str) -> np.ndarray:
        parts = [p for p in self._split.split(text) if p]
        ids = [np.array([self.special_ids[p]]) if p in self.special_ids else self.base.encode(p) for p in parts]
        return np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, dtype=np.int64)

    def decode(self, ids) -> str:
        out, run = [], []
        for i in np.asarray(ids, dtype=np.int64).tolist():
            if i >= self.offset:
                out += [self.base.decode(run) if run else "", self.specials[i - self.offset]]
                run = []
            else:
                run.append(i)
        return "".join(out) + (self.base.decode(run) if run else "")

    def save(self, path: Path) -> None:
        self.base.save(path)
        config = {"additional_special_tokens": list(self.specials), "eos_token": self.end,
                  **({"chat_template": self.chat_template} if self.chat_template else {})}
        atomic_write_text(Path(path).with_name(CONFIG_FILE), json.dumps(config, indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, base, run_dir: Path):
        """The base tokenizer with the special tokens RUN/tokenizer_config.json names, or the base where it has
        none."""
        path = Path(run_dir) / CONFIG_FILE
        if not path.is_file():
            return base
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
            specials, end, template = config["additional_special_tokens"], config.get("eos_token"), \
                config.get("chat_template")
        except (ValueError, KeyError, TypeError) as e:
            raise corrupt_tokenizer(path, f"no readable special tokens ({e})") from None
        if not isinstance(specials, list) or not specials or not all(isinstance(s, str) and s for s in specials) \
                or not isinstance(end, str | None) or not isinstance(template, str | None):
            raise corrupt_tokenizer(path, "additional_special_tokens must be a list of non-empty strings")
        return cls(base, specials, end, template)
