"""Music metrics against values worked out by hand."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from genlab.music.abc_notes import abc_notes, key_tonic
from genlab.music.evaluate import TuneNotes, distances, estimate_tonic, features, originality, shuffled_baseline
from genlab.music.tokenizers import BOS, EOS


def test_distance_is_one_minus_overlap_and_kl_is_smoothed():
    d, kl = distances(Counter({"a": 1, "b": 1}), Counter({"a": 3}))
    assert d == 0.5  # overlap: min(.5, 1) + min(.5, 0)
    # KL(p || q) with q smoothed by 1e-4: .5 ln(.5 / 1) + .5 ln(.5 / 1e-4), to within the smoothing
    assert kl == pytest.approx(0.5 * math.log(0.5) + 0.5 * math.log(0.5 / 1e-4), abs=1e-3)
    d, kl = distances(Counter({1: 2, 2: 6}), Counter({1: 1, 2: 3}))
    assert d == 0.0 and kl == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("token, tonic", [("K:Cmaj", 0), ("K:Dmaj", 2), ("K:Bbmin", 10), ("K:F#mix", 6),
                                          ("[K:Ebdor]", 3), ("K:none", None)])
def test_key_tonic(token, tonic):
    assert key_tonic(token) == tonic


def test_abc_notes_apply_the_key_and_keep_the_first_tonic():
    notes = abc_notes([BOS, "M:6/8", "K:Dmaj", "D", "F", "A", "|", "=F", "2", "[K:Gmaj]", "F", EOS])
    assert notes.pitches == [62, 66, 69, 65, 66]
    assert notes.durations == [Fraction(1, 2)] * 3 + [Fraction(1), Fraction(1, 2)]
    assert notes.tonic == 2


@pytest.mark.parametrize("shift", [0, 5, 9])
def test_key_finder_names_the_tonic_of_scales(shift):
    major = [60, 62, 64, 65, 67, 69, 71, 72, 67, 60]  # C major, with the tonic and dominant stressed
    harmonic_minor = [57, 59, 60, 62, 64, 65, 68, 69, 64, 57]  # A minor
    beats = [Fraction(1)] * 10
    assert estimate_tonic([p + shift for p in major], beats) == shift % 12
    assert estimate_tonic([p + shift for p in harmonic_minor], beats) == (9 + shift) % 12
    assert estimate_tonic([60, 72], beats[:2]) is None  # one pitch class says nothing about a key


def test_scale_degrees_count_from_the_tonic():
    tunes = [TuneNotes([62, 66, 69], [Fraction(1)] * 3, 1, 2), TuneNotes([60, 64], [Fraction(1)] * 2, 1, None)]
    f = features(tunes)
    assert f["pitch_class"] == Counter({2: 1, 6: 1, 9: 1, 0: 1, 4: 1})
    assert f["scale_degree"] == Counter({0: 1, 4: 1, 7: 1})  # the tune without a key is left out
    assert f["interval"] == Counter({4: 2, 3: 1})


def test_originality_finds_the_longest_shared_run_and_copied_ngrams():
    training = [np.array([5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9])]
    samples = [np.array([1, 2, 3, 4, 5, 6, 7, 8, 0, 0]), np.array([40, 41, 42, 43, 44, 45, 46, 47])]
    o = originality(samples, training)
    assert o["longest_copied_notes"] == 8
    assert o["median_longest_copied_notes"] == 4.0  # 8 and 0
    assert o["copied_8gram_share"] == pytest.approx(1 / 4, abs=1e-4)  # 1 of 3 windows, 0 of 1


def test_shuffled_baseline_keeps_headers_lengths_and_tokens():
    tunes = [[BOS, "M:4/4", "K:Gmaj", "G", "A", "B", "|", EOS], [BOS, "M:6/8", "K:Dmaj", "d", "e", EOS]]
    shuffled = shuffled_baseline(tunes, seed=1)
    assert [t[:3] for t in shuffled] == [t[:3] for t in tunes]
    assert [len(t) for t in shuffled] == [len(t) for t in tunes]
    assert sorted(x for t in shuffled for x in t[3:-1]) == sorted(x for t in tunes for x in t[3:-1])


def test_tune_loss_scores_every_token_once_from_the_tune_start():
    import torch

    from genlab.music.evaluate import tune_loss

    class Uniform(torch.nn.Module):  # every token equally likely: the loss is ln(vocab) whatever the windows
        def forward(self, idx):
            return torch.zeros(*idx.shape, 7)

    class Corpus:
        lengths = [5, 40, 3]  # a tune longer than two windows of 16

        def tune(self, i):
            return np.arange(self.lengths[i]) % 7

    class Successor(torch.nn.Module):  # knows that token t is followed by t + 1: no loss if windows line up
        def forward(self, idx):
            return 50.0 * torch.nn.functional.one_hot((idx + 1) % 7, 7).float()

    out = tune_loss(Uniform(), Corpus(), range(3), block_size=16, device="cpu")
    assert out["tokens"] == 4 + 39 + 2  # targets: every token after the first of each tune
    assert out["loss"] == pytest.approx(math.log(7), abs=1e-5)  # evaluate_music names it by split (val_loss)
    assert tune_loss(Successor(), Corpus(), range(3), block_size=16, device="cpu")["loss"] < 1e-6


def test_music_summary_is_short_plain_and_names_its_baselines():
    from genlab.music.evaluate import music_summary

    metrics = {"train_loss": 1.5, "uniform_loss": 4.2, "parse_rate": 0.5, "real_parse_rate": 1.0, "ended_share": 0.9,
               "failure_reasons": {"only 3 notes": 2}, "top_k": None, "split": "train", "num_samples": 4,
               "distribution_samples": 4, "seed": 0, "temperature": 1.0, "longest_copied_notes": 9,
               "real_longest_copied_notes": 5, "copied_8gram_share": 0.2, "real_copied_8gram_share": 0.1,
               **{f"{n}_distance{s}": 0.1 for n in ("pitch_class", "scale_degree", "duration", "interval", "bars")
                  for s in ("", "_real", "_shuffled")}}
    out = music_summary(metrics)
    assert len(out.splitlines()) <= 13
    assert "None" not in out and "{" not in out and "top-k off" in out and "only 3 notes (2)" in out
    assert out.splitlines()[1].startswith("train_loss: 1.5") and "uniform model: 4.2" in out
