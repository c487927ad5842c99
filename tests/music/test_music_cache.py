"""Music token caches heal themselves; tunes are bounded (silences, tune length) with counted cuts."""

from __future__ import annotations

import collections
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from cache_breaks import put_id, rewrite, truncate

from genlab.errors import GenlabError
from genlab.music.convert import midi_to_notes, notes_to_midi
from genlab.music.data import CACHE_VERSION, open_music, prepare_music
from genlab.music.notes import Note
from genlab.music.tokenizers import (
    BOS,
    EOS,
    MAX_ABC_TOKENS,
    MAX_EVENT_TOKENS,
    MAX_SILENCE,
    STEPS_PER_QUARTER,
    AbcTokenizer,
    EventTokenizer,
    abc_to_tokens,
    cap_abc_tune,
    load_music_tokenizer,
)

TUNES = [
    "X:{i}\nT:t\nM:6/8\nL:1/8\nK:D\n|:A|dfa afd|gfe dcB|AFA dFA|BGE E2A|dfa afd|gfe dcB|AFA Bcd|edc d2:|\n",
    "X:{i}\nT:t\nM:2/4\nL:1/8\nK:G\nGA|B2 BA|G2 GA|B2 d2|e4|d2 BA|G2 E2|D2 EF|G4|]\n",
    "X:{i}\nT:t\nM:3/4\nL:1/8\nK:Ador\nE2|A2 A2 Bc|d2 c2 B2|A2 G2 E2|G4 E2|A2 A2 Bc|d2 e2 d2|c2 B2 G2|A4|]\n",
]
SHORTENED = f"silences longer than {MAX_SILENCE // (4 * STEPS_PER_QUARTER)} bars shortened"


@pytest.fixture
def abc_folder(tmp_path) -> Path:
    folder = tmp_path / "tunes"
    folder.mkdir()
    (folder / "tunes.abc").write_text("\n".join(TUNES[i % 3].format(i=i) for i in range(12)))
    return folder


def _only_folder(cache: Path) -> Path:
    [folder] = [p for p in (cache / "music").iterdir() if not p.name.startswith(".")]
    return folder


def _id_beyond_vocabulary(folder: Path) -> None:
    put_id(folder, 5, 1000)


BREAKS = {
    "truncated tokens.bin": (lambda f: truncate(f / "tokens.bin"), "tokens.bin has"),
    "truncated starts.npy": (lambda f: truncate(f / "starts.npy"), "starts.npy"),
    "empty meta.json": (lambda f: rewrite(f / "meta.json", b""), "meta.json is empty or not valid JSON"),
    "no meta.json": (lambda f: (f / "meta.json").unlink(), "no meta.json"),
    "id beyond the vocabulary": (_id_beyond_vocabulary, "holds id 1000"),
    "truncated tokenizer.json": (lambda f: truncate(f / "tokenizer.json"), "tokenizer.json"),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_broken_music_cache_is_rebuilt_with_one_line(cache, abc_folder, capsys, case):
    fresh = prepare_music(str(abc_folder))
    tokens, starts = np.array(fresh.tokens), np.array(fresh.starts)
    del fresh
    folder = _only_folder(cache)
    assert folder.name.startswith(f"v{CACHE_VERSION}-")
    breaking, reason = BREAKS[case]
    breaking(folder)
    capsys.readouterr()
    again = prepare_music(str(abc_folder))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(folder) in err and reason in err and "building it again" in err, err
    assert np.array_equal(np.asarray(again.tokens), tokens) and np.array_equal(again.starts, starts)
    assert isinstance(again.tokenizer, AbcTokenizer) and again.n_tunes == 12
    prepare_music(str(abc_folder))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kind", ["abc", "events"])
def test_corrupt_run_tokenizer_is_one_line(tmp_path, kind):
    tok = AbcTokenizer.build([abc_to_tokens(TUNES[0].format(i=1))]) if kind == "abc" else EventTokenizer()
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    assert load_music_tokenizer(kind, path).vocab_size == tok.vocab_size
    for broken in (path.read_bytes()[:15], b"", b'{"kind": "abc"}', b'{"kind": "events"}'):
        path.write_bytes(broken)
        with pytest.raises(GenlabError) as e:
            load_music_tokenizer(kind, path)
        message = str(e.value)
        assert "\n" not in message and str(path) in message and "truncated or corrupt" in message, message


def test_midi_with_a_huge_gap_is_bounded_and_counted(tmp_path, cache):
    gap = 10**6  # quarter notes of silence: ~250,000 SHIFT tokens before the cap
    notes = [Note(60, Fraction(0), Fraction(1)), Note(64, Fraction(gap), Fraction(1)),
             Note(67, Fraction(gap + 1), Fraction(1))]
    data = notes_to_midi(notes)
    read, _, _ = midi_to_notes(data)
    tok = EventTokenizer()
    cuts: collections.Counter = collections.Counter()
    tokens = tok.notes_to_tokens(read, cuts)
    assert len(tokens) < 20 and cuts == {SHORTENED: 1}
    back = tok.tokens_to_notes(tokens)
    assert [n.start for n in back] == [0, 1 + MAX_SILENCE // STEPS_PER_QUARTER, 2 + MAX_SILENCE // STEPS_PER_QUARTER]
    assert tok.notes_to_tokens(back) == tokens  # already within the cap: nothing more to cut

    folder = tmp_path / "midi"
    folder.mkdir()
    for i in range(3):
        (folder / f"gap{i}.mid").write_bytes(data)
    music = open_music(str(folder), block_size=4)
    summary = music.describe()
    assert summary["cuts"] == {SHORTENED: 3}
    assert len(music.corpus.tokens) == 3 * len(tokens)


def test_event_tune_is_cut_at_the_token_cap():
    tok = EventTokenizer()
    cuts: collections.Counter = collections.Counter()
    held = tok.notes_to_tokens([Note(60, Fraction(0), Fraction(10**6))], cuts)  # one note held for days
    assert len(held) == MAX_EVENT_TOKENS and held[-1] == EOS and cuts == {f"tunes cut at {MAX_EVENT_TOKENS} tokens": 1}
    notes = [Note(60 + i % 7, Fraction(i, 2), Fraction(1, 2)) for i in range(30)]
    full = tok.notes_to_tokens(notes)
    cuts.clear()
    assert tok.notes_to_tokens(notes, cuts, max_tokens=len(full)) == full and not cuts  # exactly at the cap
    cut = tok.notes_to_tokens(notes, cuts, max_tokens=len(full) - 1)
    assert cut == full[: len(full) - 2] + [EOS] and cuts == {f"tunes cut at {len(full) - 1} tokens": 1}


def test_abc_tune_is_cut_after_a_whole_bar(tmp_path, cache):
    long_tune = "X:1\nT:run-on\nM:4/4\nL:1/8\nK:D\n" + "|A B c d e f g a " * 600 + "|]\n"
    tokens = abc_to_tokens(long_tune)
    assert len(tokens) > MAX_ABC_TOKENS
    cut, was_cut = cap_abc_tune(tokens)
    assert was_cut and len(cut) <= MAX_ABC_TOKENS and cut[:3] == [BOS, "M:4/4", "K:Dmaj"]
    assert cut[-2] == "|" and cut[-1] == EOS
    assert cap_abc_tune(tokens[:100] + [EOS]) == (tokens[:100] + [EOS], False)

    folder = tmp_path / "abc"
    folder.mkdir()
    (folder / "tunes.abc").write_text("\n".join(TUNES[i % 3].format(i=i) for i in range(4)) + "\n" + long_tune)
    summary = open_music(str(folder), block_size=8).describe()
    assert summary["cuts"] == {f"tunes cut at {MAX_ABC_TOKENS} tokens": 1}
    assert summary["train_tokens"] + summary["val_tokens"] < MAX_ABC_TOKENS + 4 * 100
