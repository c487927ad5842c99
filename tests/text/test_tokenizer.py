import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genlab.errors import GenlabError
from genlab.text.tokenizer import BPETokenizer, CharTokenizer

CORPUS = "The quick brown fox jumps over the lazy dog.\n\tdef f(x): return x ** 2  # ünïcödé €\n" * 20


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(CORPUS, vocab_size=400)


@given(st.text(alphabet=sorted(set(CORPUS)), max_size=200))
@settings(max_examples=200, deadline=None)
def test_char_round_trip(text):
    tok = CharTokenizer.train(CORPUS)
    ids = tok.encode(text)
    assert ids.dtype == np.int64 and len(ids) == len(text)
    assert tok.decode(ids) == text


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_bpe_round_trip_any_text(bpe, text):
    # byte-level BPE has no unknown characters: any string, emoji and control characters included
    assert bpe.decode(bpe.encode(text)) == text


def test_bpe_compresses_and_saves(tmp_path, bpe):
    ids = bpe.encode(CORPUS)
    assert len(ids) < len(CORPUS) / 2  # merges learned from the corpus pay off on it
    bpe.save(tmp_path / "tok.json")
    again = BPETokenizer.load(tmp_path / "tok.json")
    assert again.encode(CORPUS).tolist() == ids.tolist()


def test_char_unknown_character_is_a_clear_error():
    tok = CharTokenizer.train("abc")
    with pytest.raises(GenlabError, match="never saw"):
        tok.encode("abz")


def test_bpe_too_small_vocab():
    with pytest.raises(GenlabError, match="vocab-size"):
        BPETokenizer.train(CORPUS, vocab_size=100)


@given(st.text(alphabet=sorted(set(CORPUS)), max_size=200))
@settings(max_examples=100, deadline=None)
def test_char_to_hf_gives_the_same_ids(text):
    # what `genlab export --format hf-gpt2` writes as tokenizer.json for transformers
    tok = CharTokenizer.train(CORPUS)
    hf = tok.to_hf()
    assert hf.encode(text).ids == tok.encode(text).tolist()
    assert hf.decode(tok.encode(text).tolist()) == text


@given(st.text(max_size=200))
@settings(max_examples=100, deadline=None)
def test_bpe_to_hf_gives_the_same_ids(bpe, text):
    assert bpe.to_hf().encode(text, add_special_tokens=False).ids == bpe.encode(text).tolist()


def test_hf_tokenizer_saves_loads_and_cannot_be_trained(tmp_path, bpe):
    from genlab.text.tokenizer import HFTokenizer, load_tokenizer

    tok = HFTokenizer(bpe.to_hf())
    tok.save(tmp_path / "tok.json")
    again = load_tokenizer("hf", tmp_path / "tok.json")
    assert again.vocab_size == bpe.vocab_size
    assert again.encode(CORPUS).tolist() == bpe.encode(CORPUS).tolist()
    assert again.decode(again.encode(CORPUS)) == CORPUS
    with pytest.raises(GenlabError, match="genlab import"):
        HFTokenizer.train(CORPUS)
