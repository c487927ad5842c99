"""Text corpora: built-in ones from the standard library, or any text or source file or folder.

A folder reads its text and source files (TEXT_EXTENSIONS: prose and markup, program source, small
config files; --extensions chooses others) and never walks into version-control, cache, build or
packaging folders (SKIP_DIRS, `*.egg-info` and any hidden folder): those hold copies and generated
files, not what a user means by "my code". What a folder gave is one line on stderr when training
starts (files by extension, characters, files skipped with their reasons, folders left out) and is
written into the run's data summary.

A corpus is tokenized once and cached on disk, keyed by the hash of its content, the tokenizer
settings and the cache format (CACHE_VERSION): the hash is of exactly the text read, so another
choice of extensions that reads other files is another cache. Training then reads random windows
from a memory-mapped array (as nanoGPT does). A cache is checked each time it is read (meta.json's
keys and types, the size of tokens.bin against the token count, the largest id against the
vocabulary, tokenizer.json); one that fails is removed and built again, with one line on stderr
saying why (`cached` below, which the music wing shares).

A file of a folder that is not UTF-8, cannot be read, or is over MAX_TEXT_FILE_BYTES (256 MiB) is
skipped and counted by reason (`skipped_files`, `skipped_reasons` of the data summary), as a broken
image is; only a folder where nothing readable is left is an error. A single file given by name
must be readable.
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

# What a text folder reads unless --extensions says otherwise: prose and markup, program source and small
# config files. Data dumps (.json, .csv, .xml), logs, lock files and files without an extension are left
# out: a stray one can swamp a corpus; --extensions json,csv reads them on purpose
TEXT_EXTENSIONS = (
    ".txt", ".text", ".md", ".markdown", ".rst", ".adoc", ".org", ".tex",
    ".py", ".pyi", ".pyx", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cs", ".java", ".kt",
    ".kts", ".scala", ".go", ".rs", ".swift", ".m", ".mm", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx",
    ".html", ".htm", ".css", ".scss", ".vue", ".svelte", ".rb", ".php", ".pl", ".pm", ".lua", ".r", ".jl",
    ".hs", ".ml", ".mli", ".fs", ".ex", ".exs", ".erl", ".clj", ".dart", ".zig", ".nim", ".el", ".lisp",
    ".scm", ".sql", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".vim",
    ".toml", ".yaml", ".yml", ".ini", ".cfg",
)
# Folders no folder source walks into, nor any hidden one (.git, .venv, .tox, .mypy_cache ...), *.egg-info, or
# a virtual environment (a folder with pyvenv.cfg): version control, caches, installed dependencies and build
# output are copies or generated files, not the user's own text
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "build", "dist"})
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
CONVERSATION_SETS = ("text:pyhelp",)  # built-in chat data (text/pyhelp.py), for genlab finetune --chat


# ---------------------------------------------------------------------------------------------------
# Folder sources (shared with the music and image wings)
# ---------------------------------------------------------------------------------------------------


def skipped_dir(folder: Path) -> bool:
    """Whether a folder source leaves this sub-folder out (see SKIP_DIRS)."""
    name = folder.name
    return (name in SKIP_DIRS or name.startswith(".") or name.endswith(".egg-info")
            or (folder / "pyvenv.cfg").is_file())


def folder_files(root: Path) -> tuple[list[Path], list[str]]:
    """Every file under `root` in a fixed order, and the sub-folders left out (relative to root)."""
    files, left_out = [], []
    for dirpath, dirnames, filenames in os.walk(root):  # symlinked folders are not followed: no loops
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if skipped_dir(here / d):
                left_out.append(str((here / d).relative_to(root)))
            else:
                keep.append(d)
        dirnames[:] = keep
        files.extend(here / f for f in filenames)
    return sorted(files), left_out


def parse_extensions(extensions: str | None, allowed: tuple[str, ...] | None = None,
                     kind: str = "") -> tuple[str, ...] | None:
    """`--extensions py,.md, TXT` as ('.py', '.md', '.txt'); None when not given. `allowed` bounds them."""
    if extensions is None:
        return None
    items = [e.strip().lower().lstrip("*").lstrip(".") for e in str(extensions).split(",")]
    chosen = tuple(dict.fromkeys("." + e for e in items if e))
    if not chosen:
        raise GenlabError(f"--extensions {extensions!r} names no extension; give some, e.g. --extensions py,md,txt")
    if allowed is not None:
        wrong = [e for e in chosen if e not in allowed]
        if wrong:
            raise GenlabError(f"--extensions {','.join(e[1:] for e in wrong)}: {kind} folders read only "
                              f"{', '.join(allowed)}; choose among those")
    return chosen


def extensions_for_folder(source: str, extensions: str | None) -> None:
    """--extensions chooses files in a folder: with a built-in dataset or a single file it is a one-line error."""
    if extensions is not None:
        what = "a file" if Path(source).expanduser().is_file() else "a built-in dataset"
        raise GenlabError(f"--extensions chooses the files of a folder, but {source} is {what}; leave it out")


def count(n: int) -> str:
    """1234567 as 1.2M: a count for a one-line summary."""
    return str(n) if n < 1000 else f"{n / 1e3:.1f}k" if n < 1e6 else f"{n / 1e6:.1f}M"


def _by_extension(files) -> collections.Counter:
    return collections.Counter(f.suffix.lower() or "(no extension)" for f in files)


def _listing(counts: collections.Counter, most: int = 6) -> str:
    top = [f"{n} {ext}" for ext, n in counts.most_common(most)]
    return ", ".join(top) + (", ..." if len(counts) > most else "")


def choose_files(root: Path, default: tuple[str, ...], chosen: tuple[str, ...] | None, kind: str,
                 files: list[Path] | None = None) -> list[Path]:
    """The files of a folder with the chosen extensions (or the default ones); an extension the folder has
    no file of, or a folder with none of the default ones, is a one-line error naming what it does hold."""
    files = folder_files(root)[0] if files is None else files
    held = _by_extension(files)
    holds = f"it holds {_listing(held)}" if held else "it holds no files"
    if chosen is not None:
        missing = [e for e in chosen if e not in held]
        if missing:
            names = " or ".join(missing)
            raise GenlabError(f"--extensions {','.join(e[1:] for e in chosen)}: {root} has no {names} files "
                              f"({holds}); choose among those")
        return [f for f in files if f.suffix.lower() in chosen]
    picked = [f for f in files if f.suffix.lower() in default]
    if not picked:
        if len(default) <= 8:  # music and images: name every suffix
            shown = ", ".join(default[:-1]) + f" or {default[-1]}" if len(default) > 1 else default[0]
        else:
            shown = f"{kind} ({', '.join(default[:6])}, ...)"
        hint = f"; choose some with --extensions {held.most_common(1)[0][0].lstrip('.')}" if held else ""
        raise GenlabError(f"folder {root} has no {shown} files: {holds}{hint}")
    return picked


@dataclass
class FolderRead:
    """What a folder source gave: files read by extension, files skipped by reason, folders left out."""

    root: str
    kind: str  # what its files are called in the summary: text, music
    extensions: tuple[str, ...] | None  # the --extensions chosen; None: the default ones
    files: collections.Counter = field(default_factory=collections.Counter)  # extension -> files read
    skipped: collections.Counter = field(default_factory=collections.Counter)  # reason -> files left out
    examples: dict = field(default_factory=dict)  # reason -> a few of those files, relative to the root
    left_out_dirs: list = field(default_factory=list)  # sub-folders not walked (see skipped_dir)
    characters: int | None = None  # of the text read, where it is text

    def skip(self, f: Path, reason: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 3:
            self.examples[reason].append(str(f.relative_to(self.root)) if f != Path(self.root) else str(f))

    def line(self, extra: str = "") -> str:
        """The one stderr line: read 412 files from src/ (380 .py, ...), 1.9M characters; skipped ...; left out ..."""
        n = sum(self.files.values())
        parts = [f"read {n} file{'s' if n != 1 else ''} from {self.root.rstrip('/')}/ ({_listing(self.files)})"
                 + (f", {count(self.characters)} characters" if self.characters is not None else "") + extra]
        if self.skipped:
            n_skipped = sum(self.skipped.values())
            head = f"skipped {n_skipped} of {n + n_skipped} {self.kind} files"
            each = [(c, f"{reason} ({', '.join(self.examples[reason])}{', ...' if c > 3 else ''})")
                    for reason, c in self.skipped.most_common()]
            if len(each) == 1:
                parts.append(f"{head} {each[0][1]}")  # skipped 1 of 2 text files over the 256 MiB cap (a.log)
            else:
                parts.append(f"{head}: " + ", ".join(f"{c} {e}" for c, e in each))
            hints = [hint for word, hint in (("UTF-8", "convert them with iconv -t utf-8"),
                                             ("cap", "split them into smaller files"))
                     if any(word in reason for reason in self.skipped)]
            if hints:
                parts[-1] += f"; {' or '.join(hints)} to use them"
        if self.left_out_dirs:
            shown = ", ".join(self.left_out_dirs[:3]) + (", ..." if len(self.left_out_dirs) > 3 else "")
            parts.append(f"left out {len(self.left_out_dirs)} build/cache/VCS folder"
                         f"{'s' if len(self.left_out_dirs) != 1 else ''} ({shown})")
        return "genlab: " + "; ".join(parts)

    def say(self, extra: str = "") -> None:
        """The line on stderr, from the first process only under torchrun."""
        if os.environ.get("RANK", "0") == "0":
            print(self.line(extra), file=sys.stderr, flush=True)

    def describe(self) -> dict:
        """For the run's data summary (config.json)."""
        return {
            "extensions": list(self.extensions) if self.extensions is not None else "default",
            "files_by_extension": dict(self.files.most_common()),
            "left_out_folders": list(self.left_out_dirs),
            **({"characters": self.characters} if self.characters is not None else {}),
        }


def _unknown(source: str) -> GenlabError:
    from genlab.modalities import unknown_dataset

    return unknown_dataset(source)


def read_text(source: str, extensions: str | None = None) -> tuple[str, FolderRead | None]:
    """The raw text of a named corpus, a file or a folder, and for a folder what it read (see the module
    docstring). Nothing is printed."""
    if source in BUILTIN_TEXT:
        extensions_for_folder(source, extensions)
        return BUILTIN_TEXT[source](), None
    if source in CONVERSATION_SETS:
        raise GenlabError(f"{source} holds conversations, not a text to continue: teach a trained text model to "
                          f"answer with them, genlab finetune BASE {source} --chat")
    path = Path(source).expanduser()
    if "+" in source and not path.exists():  # several corpora as one: text:pydocs+text:pystdlib
        parts = [read_text(part, extensions)[0] for part in source.split("+")]
        return "\n\n".join(parts), None
    if not path.exists():
        raise _unknown(source)
    cap = f"{MAX_TEXT_FILE_BYTES / 2**20:g} MiB"
    if path.is_file():
        extensions_for_folder(source, extensions)
        try:
            if path.stat().st_size > MAX_TEXT_FILE_BYTES:
                raise GenlabError(f"{path} is over the {cap} cap per text file; split it into smaller files")
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise GenlabError(f"{path} is not UTF-8 text; convert it (e.g. iconv -t utf-8) or remove it") from None
        except OSError as e:
            raise GenlabError(f"cannot read {path} ({e.strerror}); check its permissions or remove it") from None
        if not text.strip():
            raise GenlabError(f"dataset {source!r} is empty; give it some text")
        return text, None
    chosen = parse_extensions(extensions)
    everything, left_out = folder_files(path)
    files = choose_files(path, TEXT_EXTENSIONS, chosen, "text or source", everything)
    report = FolderRead(str(path), "text", chosen, left_out_dirs=left_out)
    texts = []
    for f in files:
        try:
            if f.stat().st_size > MAX_TEXT_FILE_BYTES:
                report.skip(f, f"over the {cap} cap per file")
                continue
            texts.append(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            report.skip(f, "not UTF-8")
            continue
        except OSError as e:
            report.skip(f, f"unreadable ({e.strerror or e})")
            continue
        report.files[f.suffix.lower()] += 1
    if not texts:
        reasons = ", ".join(f"{c} {r}" for r, c in report.skipped.most_common())
        if set(report.skipped) == {f"over the {cap} cap per file"}:
            how = "split them into smaller files"
        else:
            how = "convert them to UTF-8 (e.g. iconv -t utf-8), or choose other files with --extensions"
        raise GenlabError(f"none of the {len(files)} text files of {path} could be read ({reasons}); {how}")
    text = "\n\n".join(texts)
    report.characters = len(text)
    if not text.strip():
        raise GenlabError(f"dataset {source!r} is empty; give it some text")
    return text, report


def read_text_source(source: str, skipped: collections.Counter | None = None, extensions: str | None = None) -> str:
    """The raw text of a named corpus or of a text file or folder; for a folder, what it read is one line on
    stderr and the files it skipped are counted by reason in `skipped` when given."""
    text, report = read_text(source, extensions)
    if report is not None:
        report.say()
        if skipped is not None:
            skipped.update(report.skipped)
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
    read: FolderRead | None = None  # what a folder source gave; None for a built-in corpus or one file

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
    source: str, tokenizer: str = "char", vocab_size: int | None = None, val_fraction: float = 0.1, text=None,
    extensions: str | None = None, given=None,
) -> TokenizedCorpus:
    """Tokenize a corpus once (cached), training the tokenizer on it, or with the `given` one (a parent run's,
    for fine-tuning); the last `val_fraction` is validation.

    The cache is keyed by the hash of the text read (and of a given tokenizer), so other `extensions` that
    read other files never reuse this one."""
    report = None
    if text is None:
        text, report = read_text(source, extensions)
    if not text.strip():
        raise GenlabError(f"dataset {source!r} is empty; give it some text")
    content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    key = f"v{CACHE_VERSION}-{content_hash[:24]}-{tokenizer}-{vocab_size or 0}"
    if given is not None:
        tokenizer = given.kind
        key = f"v{CACHE_VERSION}-{content_hash[:24]}-{tokenizer}-given-{tokenizer_fingerprint(given)[:16]}"

    def build(folder: Path) -> None:
        tok = given if given is not None else train_tokenizer(tokenizer, text, vocab_size)
        try:
            ids = tok.encode(text)
        except GenlabError as e:  # characters a parent's character tokenizer never saw
            raise GenlabError(f"{source} does not fit the model's tokenizer: {e}") from None
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
                           skipped=dict(report.skipped) if report else {}, read=report)


def tokenizer_fingerprint(tok) -> str:
    """sha256 of the tokenizer's file, as its save() writes it."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tok.save(Path(tmp) / "tokenizer.json")
        return hashlib.sha256((Path(tmp) / "tokenizer.json").read_bytes()).hexdigest()


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

    def __init__(self, corpus: TokenizedCorpus, block_size: int, fim_rate: float | None = None):
        from genlab.text.tokenizer import AddedTokens

        self.corpus = corpus
        self.tokenizer = corpus.tokenizer
        self.block_size = block_size
        self.fim_rate = fim_rate
        if fim_rate and not set(FIM_TOKENS) <= set(getattr(self.tokenizer, "specials", ())):
            kept = getattr(self.tokenizer, "specials", ())  # a chat model's markers stay where they are
            base = getattr(self.tokenizer, "base", self.tokenizer)
            self.tokenizer = AddedTokens(base, (*kept, *(t for t in FIM_TOKENS if t not in kept)),
                                         getattr(self.tokenizer, "end", None) or FIM_END,
                                         getattr(self.tokenizer, "chat_template", None))

    def model_settings(self) -> dict:
        """Settings the model must take from the data."""
        return {"vocab_size": self.tokenizer.vocab_size}

    def batch(self, split: str, batch_size: int, generator: torch.Generator):
        data = self.corpus.train if split == "train" else self.corpus.val
        x, y = random_windows(data, batch_size, self.block_size, generator)
        if not self.fim_rate:
            return x, y
        return self.fill_in_the_middle(torch.cat([x, y[:, -1:]], dim=1), generator)

    def fill_in_the_middle(self, windows: torch.Tensor, generator: torch.Generator):
        """Rows of (B, T + 1) tokens, a fim_rate share of them rearranged in the suffix-prefix-middle order of
        bigcode's (StarCoder's) training code, <fim_prefix><fim_suffix> suffix <fim_middle> prefix middle
        <|endoftext|>, from their first T - 3 tokens: the middle goes straight on from the prefix, with the suffix
        in view before both, which even a small model learns to use. In this order prefix and middle are one
        run, so one random cut (where the suffix starts) makes an example; (input, target) of T tokens each."""
        B, n = windows.shape
        ids = self.tokenizer.special_ids
        pre, mid, suf, end = (ids[t] for t in FIM_TOKENS)
        chosen = (torch.rand(B, generator=generator) < self.fim_rate).tolist()
        cuts = torch.randint(n - 4 + 1, (B,), generator=generator).tolist()
        rows = windows.clone()
        for r in range(B):
            if chosen[r]:
                w, j = windows[r, : n - 4], cuts[r]
                rows[r] = torch.cat([w.new_tensor([pre, suf]), w[j:], w.new_tensor([mid]), w[:j],
                                     w.new_tensor([end])])
        return rows[:, :-1], rows[:, 1:]

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
            **(self.corpus.read.describe() if self.corpus.read else {}),
            **({"fim_rate": self.fim_rate} if self.fim_rate else {}),
        }

    def preprocessing(self) -> dict:
        return {"tokenizer": {"kind": self.tokenizer.kind, "vocab_size": self.tokenizer.vocab_size}}

    def save(self, run_dir: Path) -> None:
        self.tokenizer.save(Path(run_dir) / "tokenizer.json")


FIM_TOKENS = ("<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<|endoftext|>")  # StarCoder's sentinels
FIM_END = "<|endoftext|>"  # what closes the middle: sampling stops there


def open_text(source: str, *, block_size: int, tokenizer: str = "char", vocab_size: int | None = None,
              val_fraction: float = 0.1, extensions: str | None = None, given=None,
              fim_rate: float | None = None) -> TextData:
    """A text corpus prepared for training: tokenized (cached; with the `given` tokenizer if any) and cut into
    train and validation. What a folder gave is one line on stderr."""
    corpus = prepare_text(source, tokenizer, vocab_size, val_fraction, extensions=extensions, given=given)
    if corpus.read is not None:
        corpus.read.say()
    for split, tokens in (("training", corpus.train), ("validation", corpus.val)):
        if len(tokens) <= block_size:
            raise GenlabError(
                f"the {split} split of {source} has {len(tokens)} tokens, too few for --block-size {block_size}; "
                "use a smaller --block-size or more text"
            )
    return TextData(corpus, block_size, fim_rate)
