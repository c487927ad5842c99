"""Text token caches heal themselves; tokenizer files and oversized text files fail or skip in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cache_breaks import put_id, rewrite, truncate

from genlab.errors import GenlabError
from genlab.text import data as text_data
from genlab.text.data import CACHE_VERSION, open_text, prepare_text
from genlab.text.tokenizer import BPETokenizer, CharTokenizer, load_tokenizer

TEXT = "It was the best of times, it was the worst of times; it was the age of wisdom.\n" * 40


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _only_folder(cache: Path) -> Path:
    [folder] = [p for p in (cache / "text").iterdir() if not p.name.startswith(".")]
    return folder


def _id_beyond_vocabulary(folder: Path) -> None:
    put_id(folder, 3, 60_000)


def _n_tokens_as_text(folder: Path) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta["n_tokens"] = str(meta["n_tokens"])
    rewrite(folder / "meta.json", json.dumps(meta).encode())


BREAKS = {
    "truncated tokens.bin": (lambda f: truncate(f / "tokens.bin"), "tokens.bin has"),
    "empty meta.json": (lambda f: rewrite(f / "meta.json", b""), "meta.json is empty or not valid JSON"),
    "no meta.json": (lambda f: (f / "meta.json").unlink(), "no meta.json"),
    "id beyond the vocabulary": (_id_beyond_vocabulary, "holds id 60000"),
    "truncated tokenizer.json": (lambda f: truncate(f / "tokenizer.json"), "tokenizer.json"),
    "n_tokens of the wrong type": (_n_tokens_as_text, "no int 'n_tokens'"),
}


@pytest.mark.parametrize(("case", "tokenizer"), [(case, "char") for case in BREAKS]
                         + [("truncated tokenizer.json", "bpe"), ("id beyond the vocabulary", "bpe")])
def test_broken_cache_is_rebuilt_with_one_line(cache, corpus, capsys, case, tokenizer):
    vocab = 300 if tokenizer == "bpe" else None
    fresh = np.array(prepare_text(str(corpus), tokenizer, vocab).tokens)
    folder = _only_folder(cache)
    assert folder.name.startswith(f"v{CACHE_VERSION}-")
    breaking, reason = BREAKS[case]
    breaking(folder)
    capsys.readouterr()
    again = prepare_text(str(corpus), tokenizer, vocab)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(folder) in err and reason in err and "building it again" in err, err
    assert np.array_equal(np.asarray(again.tokens), fresh) and again.tokenizer.vocab_size > int(fresh.max())
    prepare_text(str(corpus), tokenizer, vocab)
    assert capsys.readouterr().err == ""  # healed: read quietly from now on
    assert [p.name for p in (cache / "text").iterdir()] == [folder.name]  # nothing left aside


def test_cache_key_carries_the_format_version(cache, corpus, monkeypatch):
    prepare_text(str(corpus))
    monkeypatch.setattr(text_data, "CACHE_VERSION", CACHE_VERSION + 1)
    prepare_text(str(corpus))
    names = sorted(p.name.split("-")[0] for p in (cache / "text").iterdir())
    assert names == [f"v{CACHE_VERSION}", f"v{CACHE_VERSION + 1}"]


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_corrupt_run_tokenizer_is_one_line(tmp_path, kind):
    tok = CharTokenizer.train(TEXT) if kind == "char" else BPETokenizer.train(TEXT, 300)
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    assert load_tokenizer(kind, path).vocab_size == tok.vocab_size
    for broken in (path.read_bytes()[:20], b"", b"[1, 2]", b"\xff\xfe not utf-8"):
        path.write_bytes(broken)
        with pytest.raises(GenlabError) as e:
            load_tokenizer(kind, path)
        message = str(e.value)
        assert "\n" not in message and str(path) in message, message
        assert "truncated or corrupt" in message and "train the run again" in message


def test_text_file_over_the_cap_is_skipped_and_counted(tmp_path, cache, monkeypatch, capsys):
    monkeypatch.setattr(text_data, "MAX_TEXT_FILE_BYTES", 5000)
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text(TEXT[:3000])
    (folder / "huge.txt").write_text(TEXT * 3)
    data = open_text(str(folder), block_size=16)
    err = capsys.readouterr().err
    assert "skipped 1 of 2 text files over the" in err and "huge.txt" in err and err.count("\n") == 1
    summary = data.describe()
    assert summary["skipped_files"] == 1 and list(summary["skipped_reasons"].values()) == [1]
    assert summary["train_tokens"] + summary["val_tokens"] == 3000  # a.txt alone, character tokens
    with pytest.raises(GenlabError, match="over the .* cap per text file; split it"):
        prepare_text(str(folder / "huge.txt"))
