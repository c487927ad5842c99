"""Both music tokenizers are reversible on real tunes from music21's corpus."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.errors import GenlabError
from genlab.music.tokenizers import (
    AbcError,
    AbcTokenizer,
    EventTokenizer,
    Note,
    abc_to_tokens,
    split_tunes,
    tokens_to_abc,
)


def corpus_tunes(collection: str, limit: int) -> list[str]:
    import music21

    root = Path(music21.__file__).parent / "corpus" / collection
    tunes = []
    for f in sorted(root.rglob("*.abc")):
        tunes += split_tunes(f.read_text(encoding="latin-1"))
        if len(tunes) >= limit:
            break
    return tunes[:limit]


@pytest.mark.parametrize("collection", ["essenFolksong", "oneills1850", "airdsAirs", "ryansMammoth"])
def test_abc_round_trip_on_real_tunes(collection):
    read = 0
    for tune in corpus_tunes(collection, 60):
        try:
            tokens = abc_to_tokens(tune)
        except AbcError:
            continue  # counted and reported by the corpus loader
        read += 1
        assert tokens[0] == "<s>" and tokens[1].startswith("M:") and tokens[2].startswith("K:")
        assert abc_to_tokens(tokens_to_abc(tokens)) == tokens
    assert read >= 50


def test_abc_units_and_unit_length_normalisation():
    tune = "X:1\nT:x\nM:2/4\nL:1/16\nK:D\n|:A2B2 (3cde d4|\"Am\"{g}f>e d2:|\n"
    tokens = abc_to_tokens(tune)
    # L:1/16 becomes L:1/8: A2 -> A, c -> c/2; chord symbols and grace notes are dropped
    assert tokens == ["<s>", "M:2/4", "K:Dmaj", "|:", "A", "B", "(3", "c", "/2", "d", "/2", "e", "/2", "d", "2", "|",
                      "f", "/2", ">", "e", "/2", "d", ":|", "</s>"]


def test_abc_tokenizer_saves_and_encodes_prompts(tmp_path):
    tunes = [abc_to_tokens(t) for t in corpus_tunes("oneills1850", 30)]
    tok = AbcTokenizer.build(tunes)
    tok.save(tmp_path / "tok.json")
    back = AbcTokenizer.load(tmp_path / "tok.json")
    assert back.vocab == tok.vocab
    assert back.tokens(back.ids(tunes[0])) == tunes[0]
    assert back.tokens(back.encode_prompt("M:6/8 K:Dmaj")) == ["<s>", "M:6/8", "K:Dmaj"]
    assert back.tokens(back.encode_prompt("M:6/8 K:Dmaj | A2 d")) == ["<s>", "M:6/8", "K:Dmaj", "|", "A", "2", "d"]
    for bad in ("hello world", "M:6/8 K:Hmaj", "M:6/8 K:C#lyd"):
        with pytest.raises(GenlabError, match="prompt"):
            back.encode_prompt(bad)


def test_event_round_trip_on_a_bach_chorale():
    from music21 import corpus

    from genlab.music.convert import score_to_notes

    notes, _ = score_to_notes(corpus.parse("bach/bwv66.6"))
    tok = EventTokenizer()
    tokens = tok.notes_to_tokens(notes)
    assert len(notes) > 100
    again = tok.tokens_to_notes(tokens)
    assert tok.notes_to_tokens(again) == tokens  # tokens -> notes -> tokens
    # voices meeting on one pitch (a unison) become one MIDI note; every onset survives
    assert {(n.pitch, n.start) for n in again} == {(n.pitch, n.start) for n in notes}


def test_event_prompt_and_transposition():
    from genlab.music.data import _transpose_windows

    tok = EventTokenizer()
    assert tok.tokens(tok.encode_prompt("VEL:5 ON:60 SHIFT:12 OFF:60"))[1:] == ["VEL:5", "ON:60", "SHIFT:12", "OFF:60"]
    with pytest.raises(GenlabError, match="not event tokens"):
        tok.encode_prompt("M:6/8 K:Dmaj")
    notes = [Note(60 + i % 5, Fraction(i, 2), Fraction(1, 2)) for i in range(20)]
    ids = torch.as_tensor(tok.ids(tok.notes_to_tokens(notes)))[None].repeat(8, 1)
    x, y = _transpose_windows(ids[:, :-1], ids[:, 1:], tok, torch.Generator().manual_seed(0))
    shifts = set()
    for row in x:
        moved = tok.tokens_to_notes(tok.tokens(row.numpy()))
        shifts.add(moved[0].pitch - 60)
        assert [n.pitch - moved[0].pitch for n in moved] == [n.pitch - 60 for n in notes[: len(moved)]]
    assert len(shifts) > 1
    assert np.array_equal(x[:, 1:].numpy(), y[:, :-1].numpy())
