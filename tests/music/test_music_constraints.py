"""Constrained music sampling: the ABC meter constraint never lets an inner bar be short or overfull (bar
lengths measured by music21, not by genlab), it agrees with music21 on real tunes, a tiny constrained model
writes tunes music21 exports to MIDI, the events constraint keeps notes well formed, and the CLI switch."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import warnings
from fractions import Fraction

import music21
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from genlab import api
from genlab.cli import main
from genlab.music.constraints import AbcMeterConstraint, EventConstraint
from genlab.music.data import prepare_music
from genlab.music.tokenizers import BOS, EOS, EventTokenizer, tokens_to_abc
from genlab.sampling.logits import SamplingSettings
from genlab.sampling.tokens import sample_tokens

METERS = ("M:2/4", "M:3/4", "M:4/4", "M:6/8", "M:9/8", "M:12/8", "M:2/2")
# how often a random walk picks each kind of allowed token, so that walks meet every rule
WEIGHTS = {"|": 3, "note": 6, "rest": 1, "dur": 3, "tuplet": 0.5, "broken": 0.7, "-": 0.3, "[": 0.4, "]": 3, "bar": 2,
           "ending": 0.3, "inline_key": 0.3, EOS: 0.1}
REAL_TUNES = 500
# Real tunes the lenient constraint rejects although music21 measures every inner bar right, by reason.
# Each is a rhythm the constraint does not model, rare in the corpus:
KNOWN_QUIRKS = {
    "(3 A > G": "broken rhythm inside a tuplet: the constraint allows > and < between plain notes only",
    "- <": "broken rhythm after a tie (B- < c)",
    "> -": "a tie after a broken-rhythm sign (d > -)",
}


@pytest.fixture(scope="module")
def folk():
    return prepare_music("music:folk", quiet=True)


@pytest.fixture(scope="module")
def constraint(folk):
    return AbcMeterConstraint(folk.tokenizer)


def walk(c: AbcMeterConstraint, tok, meter: str, seed: int, length: int = 100) -> list[str]:
    """A tune of random allowed tokens after `<s> meter K:Dmaj`."""
    rng = random.Random(seed)
    ids = [tok.bos, tok.index[meter], tok.index["K:Dmaj"]]
    c.start(ids, 1)
    for n in range(3 * length):  # past `length`, the walk heads for the end
        allowed = c.allowed()[0].nonzero().flatten().tolist()
        late = n > length
        kinds: dict[str, list[int]] = {}
        for t in allowed:
            if late or len(allowed) == 1 or not (t == tok.eos or c.move(c.states[0], t).must_end):
                kind = "|" if t == tok.index["|"] else c.kinds[t][0]
                kinds.setdefault(kind, []).append(t)  # early on, no token that ends the tune
        names = list(kinds)
        weights = [WEIGHTS.get(k, 1) * (50 if late and k in (EOS, "bar", "|", "]") else 1) for k in names]
        kind = rng.choices(names, weights)[0] if any(weights) else rng.choice(names)
        t = rng.choice(kinds[kind])  # a kind of token first, then one of that kind
        ids.append(t)
        c.advance(torch.tensor([t]))
        if t == tok.eos:
            return tok.tokens(ids)
    raise AssertionError(f"the walk did not end: {' '.join(tok.tokens(ids))}")


def music21_midi(abc: str, path) -> None:
    """Export through music21's own MIDI writer (it expands repeats, and raises on malformed ones)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        music21.converter.parse(abc, format="abc").write("midi", fp=str(path))


def music21_bars(tokens: list[str]) -> tuple[list[Fraction], list[Fraction]]:
    """Each measure's length as music21 reads the tune, and the bar length of the meter in force there, in
    quarter notes. Inline meters count where the tune writes them (music21 also re-meters an overfull bar)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = music21.converter.parse(tokens_to_abc(tokens), format="abc")
    part = score.parts[0] if score.parts else score
    written = {t.strip("[]")[2:] for t in tokens if t.startswith(("M:", "[M:"))}
    lengths, meters, meter = [], [], None
    for m in part.getElementsByClass(music21.stream.Measure):
        ts = m.timeSignature
        if ts is not None and (meter is None or ts.ratioString in written):
            meter = Fraction(ts.barDuration.quarterLength)
        lengths.append(Fraction(m.duration.quarterLength))
        meters.append(meter)
    return lengths, meters


def inner_bars_right(tokens: list[str]) -> bool | None:
    """Whether every bar but the first (a pickup) and the last is as long as its meter; None: no measures."""
    lengths, meters = music21_bars(tokens)
    if not lengths:
        return None
    return all(a == b for a, b in zip(lengths[1:-1], meters[1:-1], strict=True))


# ----------------------------------------------------------------------------------------------- the ABC meter


@pytest.mark.parametrize("meter", METERS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_random_allowed_tunes_have_every_inner_bar_right_and_export_to_midi(folk, constraint, meter, seed, tmp_path):
    tokens = walk(constraint, folk.tokenizer, meter, seed)
    music21_midi(tokens_to_abc(tokens), tmp_path / "tune.mid")
    assume(tokens.count("|") >= 2)  # music21 reads measures only where a tune has two plain bar lines
    lengths, meters = music21_bars(tokens)
    assert lengths, tokens
    bar = meters[0]
    assert all(m == bar for m in meters), ("music21 re-metered an overfull bar", tokens)
    assert 0 < lengths[0] <= bar and 0 < lengths[-1] <= bar, tokens  # a pickup, a last bar
    assert all(x == bar for x in lengths[1:-1]), ([str(x) for x in lengths], " ".join(tokens))


def test_random_walks_meet_pickups_tuplets_broken_rhythms_chords_rests_and_repeats(folk, constraint):
    seen = {"pickup": 0, "(3": 0, ">": 0, "<": 0, "[": 0, "z": 0, "|:": 0, ":|": 0, EOS: 0}
    for seed in range(30):
        tokens = walk(constraint, folk.tokenizer, "M:6/8", seed)
        for t in seen:
            seen[t] += t in tokens[3:]
        if seed < 10:
            lengths, meters = music21_bars(tokens)
            seen["pickup"] += bool(lengths) and lengths[0] < meters[0]
    assert all(seen.values()), seen


def test_header_repeats_and_the_end(folk, constraint):
    tok = folk.tokenizer

    def ok(text: str) -> bool:
        state = constraint.initial()
        for t in text.split():
            state = constraint.step(state, tok.index[t])
            if state is None:
                return False
        return True

    assert ok("<s> M:6/8 K:Dmaj A | d 2 d e 2 e | f 3 f 3 |] </s>")
    assert not ok("<s> K:Dmaj")  # a meter first
    assert not ok("<s> M:6/8 A")  # then a key
    assert not ok("<s> M:6/8 K:Dmaj A | d 2 d e 2 | f 3 f 3 |")  # a short inner bar
    assert not ok("<s> M:6/8 K:Dmaj A | d 2 d e 2 e f")  # an overfull bar
    assert not ok("<s> M:6/8 K:Dmaj d 2 d e 2 e </s>")  # no closing bar line
    assert not ok("<s> M:6/8 K:Dmaj |: d 2 d e 2 e | </s>")  # an open repeat
    assert ok("<s> M:6/8 K:Dmaj |: d 2 d e 2 e :| f 3 f 3 |] </s>")
    assert not ok("<s> M:6/8 K:Dmaj d 2 d e 2 e :| f 3 f 3 :|")  # the second :| has no |:
    assert ok("<s> M:6/8 K:Dmaj d 2 d e 2 e :| |: f 3 f 3 :| </s>")
    assert ok("<s> M:6/8 K:Dmaj A | d 2 d e 2 e | d 2 d e 2 :| </s>")  # a short last bar ends the tune
    assert ok("<s> M:6/8 K:Dmaj |: d 2 d e 2 e | [1 f 3 f 3 :| [2 g 3 g 3 |] </s>")
    assert ok("<s> M:6/8 K:Dmaj |: d 2 d e 2 e |1 f 3 f 3 :|2 g 3 g 3 |] </s>")
    assert not ok("<s> M:6/8 K:Dmaj |: d 2 d e 2 e |1 f 3 f 3 :| g")  # the second ending must follow
    assert not ok("<s> M:6/8 K:Dmaj d 2 d e 2 e :|2")  # a second ending without a first
    assert not ok("<s> M:6/8 K:Dmaj A | d 2 d e 2 e | d 2 d e 2 :| A")
    assert ok("<s> M:6/8 K:Dmaj (3 A B c d e [ d f ] 2 | A > B c z 3 |]")
    assert ok("<s> M:none K:Dmaj A B c d e f g | A |] </s>")  # free meter: any bar length
    assert ok("<s> M:6/8 K:Dmaj d 2 d e 2 e | [K:Gmaj] d 2 d e 2 e |] </s>")
    assert not ok("<s> M:6/8 K:Dmaj d 2 d e 2 e | [K:Gmaj] [K:Dmaj]")  # one inline key, at a bar start
    assert not ok("<s> M:6/8 K:Dmaj d 2 d [K:Gmaj]")
    assert not ok("<s> M:6/8 K:Dmaj d 2 d e 2 e | [M:3/4]")  # the header's meter holds


def test_real_tunes_are_accepted_exactly_when_music21_measures_their_bars_right(folk, pytestconfig):
    """500 real tunes, read leniently (a bar line left out at a line or tune end, as music21 reads it): the
    constraint accepts a tune exactly when music21 measures every inner bar right. The rest are tunes whose
    transcription has a short or overfull bar (mostly a pickup's complement before a repeat sign), which the
    constraint rightly refuses; a disagreement must be one of KNOWN_QUIRKS."""
    tok = folk.tokenizer
    lenient = AbcMeterConstraint(tok, lenient=True)
    tunes = [tok.tokens(folk.tune(i)) for i in range(REAL_TUNES)]
    key = "genlab/music21-bars/" + hashlib.sha256("\n".join(map(" ".join, tunes)).encode()).hexdigest()[:16]
    cache = getattr(pytestconfig, "cache", None)  # absent under -p no:cacheprovider
    verdicts = cache.get(key, None) if cache is not None else None
    if verdicts is None:  # music21 reads ~30 tunes/s: measured once, then kept in pytest's cache
        verdicts = [inner_bars_right(t) if t[1] != "M:none" else None for t in tunes]
        if cache is not None:
            cache.set(key, verdicts)
    disagree, accepted = [], 0
    for tokens, right in zip(tunes, verdicts, strict=True):
        state = lenient.initial()
        for t in tokens:
            state = lenient.step(state, tok.index[t])
            if state is None:
                break
        accepted += state is not None
        if right is not None and (state is not None) != right:
            disagree.append(" ".join(tokens))
    unexplained = [t for t in disagree if not any(q in t for q in KNOWN_QUIRKS)]
    assert not unexplained, unexplained[:3]
    assert len(disagree) <= REAL_TUNES // 100
    assert accepted >= REAL_TUNES * 0.6


@pytest.fixture(scope="module")
def tiny_folk_run(tmp_path_factory, folk):
    out = tmp_path_factory.mktemp("runs") / "folk"
    api.train("music:folk", family="gpt", n_layer=1, n_head=2, n_embd=32, block_size=64, max_steps=30,
              batch_size=8, eval_interval=30, eval_batches=1, precision="fp32", seed=1, quiet=True, out=str(out))
    return out


def test_a_tiny_constrained_model_writes_tunes_music21_exports_to_midi(tiny_folk_run, tmp_path):
    out = tmp_path
    m = api.load(tiny_folk_run)
    tunes = m.generate("", num_samples=6, max_new_tokens=300, temperature=1.0, seed=0)
    tunes += m.generate("M:6/8 K:Dmaj", num_samples=4, max_new_tokens=300, temperature=1.0, seed=1)
    ended = [t for t in tunes if t.tokens[-1] == EOS]  # one cut at max_new_tokens may stop inside a repeat
    assert len(ended) >= len(tunes) // 2
    for tune in ended:
        assert inner_bars_right(tune.tokens) in (True, None), tune.text
        music21_midi(m.abc(tune), out / f"tune-{tune.seed}-{tune.index}.mid")
    raw = m.generate("M:6/8 K:Dmaj", num_samples=2, max_new_tokens=40, seed=1, constraint=False)
    assert m.last_controls["constraint"] is False and len(raw) == 2


def test_cli_no_constraint_for_music_and_refused_for_text(tiny_folk_run, tmp_path, small_corpus, capsys):
    done = subprocess.run([sys.executable, "-m", "genlab", "sample", str(tiny_folk_run), "--no-constraint", "--prompt",
                           "M:6/8 K:Dmaj", "--max-new-tokens", "30", "--seed", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--- tune 1 ---" in done.stdout and "M:6/8" in done.stdout
    text_run = tmp_path / "text"
    api.train(str(small_corpus), n_layer=1, n_head=2, n_embd=32, block_size=32, max_steps=1, eval_interval=1,
              eval_batches=1, precision="fp32", quiet=True, out=str(text_run))
    capsys.readouterr()
    assert main(["sample", str(text_run), "--no-constraint"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genlab: error: --no-constraint is not a control of text models") and "\n" not in err


# ----------------------------------------------------------------------------------------------- events


def test_event_constraint_rules():
    tok = EventTokenizer()
    c = EventConstraint(tok, max_hold=24, max_voices=2)
    c.start(tok.ids([BOS]).tolist(), 1)

    def allowed(name: str) -> bool:
        return bool(c.allowed()[0, tok.index[name]])

    def play(*names: str) -> None:
        for name in names:
            assert allowed(name), name
            c.advance(torch.tensor([tok.index[name]]))

    assert allowed(EOS) and not allowed("OFF:60") and allowed("ON:60")
    play("VEL:4", "ON:60")
    assert not allowed(EOS) and not allowed("ON:60") and allowed("OFF:60") and not allowed("OFF:61")
    play("SHIFT:12", "ON:64")
    assert not allowed("ON:67")  # two voices at most
    assert allowed("SHIFT:12") and not allowed("SHIFT:13")  # ON:60 has sounded 12 of its 24 steps
    play("SHIFT:12", "OFF:60")
    assert not allowed("SHIFT:13") and allowed("SHIFT:12")  # ON:64 has sounded 12
    play("OFF:64", EOS)
    assert c.allowed()[0].nonzero().flatten().tolist() == [tok.eos]  # done: only the end again


def test_event_sampling_is_well_formed_with_a_random_model():
    tok = EventTokenizer()

    class Random(torch.nn.Module):
        max_context = None
        config = type("Config", (), {"vocab_size": tok.vocab_size})()

        def new_cache(self, batch, max_len):
            return None

        def forward(self, idx, cache):
            g = torch.Generator().manual_seed(int(idx.sum()))
            return torch.randn(idx.size(0), idx.size(1), tok.vocab_size, generator=g) * 3

    c = EventConstraint(tok, max_hold=48, max_voices=4)
    s = SamplingSettings(max_new_tokens=300, num_samples=4)
    steps = torch.stack(list(sample_tokens(Random(), torch.tensor([tok.bos]), s, torch.Generator().manual_seed(0),
                                           c)), dim=1)
    for row in steps.tolist():
        sounding: dict[int, int] = {}
        for name in tok.tokens(row):
            kind, _, value = name.partition(":")
            if name == EOS:
                assert not sounding
                break
            if kind == "ON":
                assert int(value) not in sounding and len(sounding) < 4
                sounding[int(value)] = 0
            elif kind == "OFF":
                assert sounding.pop(int(value)) <= 48
            elif kind == "SHIFT":
                sounding = {p: t + int(value) for p, t in sounding.items()}
                assert all(t <= 48 for t in sounding.values())

