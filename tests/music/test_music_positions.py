"""The room left in the bar beside each ABC token (music/positions.py): counted as the meter constraint counts,
bar lines put back where a transcriber left them out, and models that read it sample exactly as they score."""

from __future__ import annotations

import pytest
import torch

from genlab.families.gpt import GPT, GPTConfig
from genlab.families.lstm import LSTM, LSTMConfig
from genlab.music.meter import check_bars
from genlab.music.positions import ROOM_GRID, ROOM_IDS, ROOM_NONE, ROOM_OVER, BarRoom, complete_bar_lines
from genlab.music.tokenizers import AbcTokenizer, tokens_to_abc
from genlab.sampling.logits import SamplingSettings, choose, process_logits
from genlab.sampling.tokens import sample_tokens


def room(eighths) -> int:
    return 2 + round(eighths * ROOM_GRID)


def rooms(tokens: list[str]) -> list[int]:
    tokenizer = AbcTokenizer.build([tokens])
    return BarRoom(tokenizer.vocab).ids(tokenizer.ids(tokens)).tolist()


def test_the_room_counts_durations_broken_rhythms_tuplets_chords_and_bar_lines():
    tokens = "<s> M:6/8 K:Dmaj A 2 B | A > B c (3 d e f | [ A c ] 3 z 3 | d 4 e 2 f </s>".split()
    got = dict(enumerate(rooms(tokens)))
    assert got[0] == ROOM_NONE  # <s>: no meter yet
    assert got[1] == got[2] == room(6)  # from the meter on, a whole bar to fill
    assert [got[i] for i in (3, 4, 5, 6)] == [room(5), room(4), room(3), room(6)]  # A, its 2, B, the bar line
    assert [got[i] for i in (7, 8, 9, 10)] == [room(5), room(4.5), room(4), room(3)]  # A, >, B (a half), c
    assert [got[i] for i in (11, 12, 13, 14)] == [room(3), room(3 - 2 / 3), room(3 - 4 / 3), room(1)]  # the triplet
    assert got[15] == room(6)
    # a chord counts once, from its [; then its 3, a rest and the rest's 3
    assert [got[i] for i in range(16, 23)] == [room(5), room(5), room(5), room(5), room(3), room(2), room(0)]
    assert got[23] == room(6) and got[24] == room(5) and got[25] == room(2)  # |, d, its 4
    assert got[27] == room(0) and got[28] == ROOM_OVER  # e 2 fills the bar, f overflows it
    assert got[29] == ROOM_NONE  # </s>
    assert max(got.values()) < ROOM_IDS


def test_free_meter_has_no_room():
    assert set(rooms("<s> M:none K:Cmaj A B c d | e </s>".split())) == {ROOM_NONE}


def test_bar_lines_left_out_at_phrase_ends_are_put_back():
    essen = "<s> M:2/4 K:Gmaj A 2 d 2 c 2 B 2 | A 4 G 2 F 2 E 4 </s>".split()  # two bars in each written bar
    fixed, added = complete_bar_lines(essen)
    assert added == 4
    assert " ".join(fixed) == "<s> M:2/4 K:Gmaj A 2 d 2 | c 2 B 2 | A 4 | G 2 F 2 | E 4 |] </s>"  # and the final one
    check = check_bars(tokens_to_abc(fixed))
    assert check.all_right and check.inner == 3


@pytest.mark.parametrize("tune", [
    "<s> M:2/4 K:Gmaj A 3 B 2 c 3 | d 4 |] </s>",  # overflows between notes: no place for a bar line
    "<s> M:2/4 K:Gmaj A 2 B 2 - B 2 c 2 | d 4 |] </s>",  # full at a tie: the bar line goes after it
    "<s> M:2/4 K:Gmaj A 2 B > c d 2 | e 4 |] </s>",  # full in mid broken pair? no: B > c is 1.5 + 0.5
    "<s> M:3/4 K:Gmaj [ A c e ] 6 [ B d ] 6 | c 6 |] </s>",  # a chord's notes are never split
])
def test_bar_lines_go_back_only_between_whole_notes(tune):
    tokens = tune.split()
    fixed, added = complete_bar_lines(tokens)
    assert [t for t in fixed if t != "|"] == [t for t in tokens if t != "|"]  # only bar lines are added
    assert fixed[-2:] == ["|]", "</s>"]  # these end on a bar line already
    if "3 B 2 c 3" in tune:
        assert added == 0
    for i, t in enumerate(fixed):
        if t == "|" and i + 1 < len(fixed):
            assert fixed[i + 1] not in ("2", "-", ">", "]") and fixed[i - 1] not in ("[", ">")


def reference_with_features(model, prompt, vocab, s, generator):
    """Full recompute every step, feeding the room ids of the whole sequence: what the token loop must equal."""
    seq = prompt[None].repeat(s.num_samples, 1)
    counter = BarRoom(vocab)
    f = counter.start(prompt.tolist(), s.num_samples)
    out = []
    for _ in range(s.max_new_tokens):
        logits = model(seq, features=f)[:, -1]
        token = choose(process_logits(logits, s, None), s, generator)
        out.append(token)
        seq = torch.cat([seq, token[:, None]], dim=1)
        f = torch.cat([f, counter.advance(token)[:, None]], dim=1)
    return torch.stack(out, dim=1)


VOCAB = ["<s>", "</s>", "M:3/4", "M:6/8", "K:Dmaj", "A", "B", "c", "2", "/2", "|", ">", "(3"]


@pytest.mark.parametrize("make", [
    lambda: GPT(GPTConfig(vocab_size=len(VOCAB), block_size=64, n_layer=2, n_head=2, n_embd=32,
                          feature_vocab_size=ROOM_IDS)),
    lambda: LSTM(LSTMConfig(vocab_size=len(VOCAB), n_layer=2, n_embd=32, feature_vocab_size=ROOM_IDS)),
], ids=["gpt", "lstm"])
def test_a_model_that_reads_the_room_samples_as_it_scores(make):
    torch.manual_seed(0)
    model = make().eval()
    prompt = torch.tensor([0, 2, 4, 5])  # <s> M:3/4 K:Dmaj A
    s = SamplingSettings(max_new_tokens=30, temperature=1.0, num_samples=3)
    with torch.inference_mode():
        want = reference_with_features(model, prompt, VOCAB, s, torch.Generator().manual_seed(3))
        got = torch.stack(list(sample_tokens(model, prompt, s, torch.Generator().manual_seed(3),
                                             features=BarRoom(VOCAB))), dim=1)
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match="feature id beside each token"):
        model(prompt[None])  # without its second input the model refuses instead of guessing


def test_sampling_with_the_room_goes_on_past_the_context():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(VOCAB), block_size=16, n_layer=1, n_head=1, n_embd=16,
                          feature_vocab_size=ROOM_IDS)).eval()
    s = SamplingSettings(max_new_tokens=50, temperature=1.0, num_samples=2)
    steps = list(sample_tokens(model, torch.tensor([0, 2, 4]), s, torch.Generator().manual_seed(0),
                               features=BarRoom(VOCAB)))
    assert len(steps) == 50  # three windows of 16: each refill carries the room ids of the tokens it keeps


def test_the_room_changes_what_the_model_predicts():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(VOCAB), block_size=16, n_layer=1, n_head=1, n_embd=16,
                          feature_vocab_size=ROOM_IDS)).eval()
    idx = torch.tensor([[0, 2, 4, 5]])
    with torch.inference_mode():
        a = model(idx, features=torch.tensor([[0, 0, room(6), room(5)]]))
        b = model(idx, features=torch.tensor([[0, 0, room(6), room(0)]]))
        step = model.decode_step(idx[:, -1:], _prefilled(model, idx[:, :3], [[0, 0, room(6)]]),
                                 features=torch.tensor([[room(0)]]))
    assert not torch.allclose(a[:, -1], b[:, -1])
    torch.testing.assert_close(step[:, -1], b[:, -1], atol=1e-5, rtol=1e-5)


def _prefilled(model, idx, features):
    cache = model.new_cache(idx.size(0))
    model(idx, cache, features=torch.tensor(features))
    return cache


def test_gpt2_export_refuses_a_model_that_reads_the_room(tmp_path, capsys):
    from genlab import api
    from genlab.cli import main

    (tmp_path / "tunes").mkdir()
    tune = "X:{i}\nT:t\nM:2/4\nL:1/8\nK:G\nGA|B2 BA|G2 GA|B2 d2|e4|]\n"
    (tmp_path / "tunes" / "t.abc").write_text("\n".join(tune.format(i=i) for i in range(20)))
    run = api.train(str(tmp_path / "tunes"), family="gpt", out=str(tmp_path / "run"), n_layer=1, n_head=1, n_embd=16,
                    block_size=16, max_steps=2, eval_interval=2, quiet=True)
    capsys.readouterr()  # what training said about the folder
    assert main(["export", str(run), str(tmp_path / "hf"), "--format", "hf-gpt2"]) == 2
    err = capsys.readouterr().err
    assert "the room left in the bar" in err and err.count("\n") == 1
