"""Music metrics: is it music, does it sound like the training tunes, is it new?

- loss per token (named by its split: `val_loss`, `train_loss`) and perplexity over the held-out tunes,
  each read from its start, beside a uniform model's ln(vocabulary);
- parse rate: the share of sampled tunes that music21 parses, that have at least 8 notes and that
  convert to MIDI (and read back); the same check on as many real held-out tunes gives the
  yardstick `real_parse_rate`;
- keeping time (music/meter.py says exactly how each is measured), on the same sampled tunes and, with
  the suffix `_real`, on as many held-out real tunes: for ABC `bars_right_share` (inner bars of the
  meter's length, music21 measuring; pickup and last bar excepted), `tunes_all_bars_right` (tunes with
  every inner bar right) and `music21_midi_share` (tunes music21 parses and writes as MIDI with its own
  writer); for event tunes, on a grid of sixteenths in bars of four quarters, `onset_grid_share`,
  `tunes_all_on_grid` and `notes_per_bar`; for both, `roundtrip_share` (genlab's notes -> genlab's MIDI
  -> music21's MIDI reader gives the same notes). Each tune is parsed in music21 once for all checks;
  `constraint` records whether the sampler's constraint was on (none: the sampler has none);
- distances between the samples' and the training tunes' distributions of pitch classes, scale
  degrees (pitch classes counted from the tune's tonic), note durations, melodic intervals and
  bars per tune: 1 - overlapping area (the total variation distance, 0 = same) and
  KL(train || samples), over 1,000 sampled tunes by default; a shuffled-token baseline (as many
  held-out tunes, their body tokens shuffled among them) shows what "no musical structure" scores,
  and the held-out tunes themselves (`_real`) what sampling noise alone gives;
- originality: the longest run of notes (pitch and length) a sample shares with any training
  tune, and the share of sampled 8-note n-grams that occur in the training tunes; the same for as
  many held-out tunes (`real_`).

`genlab eval` prints a summary of about fifteen lines (`music_summary`); metrics.json keeps every figure.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections import Counter
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from genlab.errors import GenlabError
from genlab.music.meter import (
    BarCheck,
    GridCheck,
    bar_figures,
    check_bars,
    check_grid,
    grid_figures,
    music21_midi,
    roundtrip,
)
from genlab.music.notes import Note
from genlab.music.tokenizers import BOS, EOS

MIN_NOTES = 8
NGRAM = 8
SAMPLE_BATCH = 250  # tunes sampled at once: bounds the KV cache's memory
INTERVAL_CLIP = 12


# ---------------------------------------------------------------------------------------------------
# Notes of token sequences (fast, no music21) and the check that needs music21
# ---------------------------------------------------------------------------------------------------


class TuneNotes(NamedTuple):
    pitches: list[int]  # MIDI numbers of the melody
    durations: list[Fraction]  # quarter notes
    bars: int
    tonic: int | None  # pitch class of the tune's key, None when unknown


def token_notes(tokenizer, tokens: list[str]) -> TuneNotes:
    """The melody, bars and key of a tune's tokens, read without music21."""
    if tokenizer.kind == "abc":
        from genlab.music.abc_notes import abc_notes

        n = abc_notes(tokens)
        return TuneNotes(n.pitches, n.durations, n.bars, n.tonic)
    notes = tokenizer.tokens_to_notes(tokens)
    melody = _top_line(notes)
    end = max((n.start + n.duration for n in notes), default=Fraction(0))
    return TuneNotes([n.pitch for n in melody], [n.duration for n in melody], int(math.ceil(end / 4)),
                     estimate_tonic([n.pitch for n in notes], [n.duration for n in notes]))


# Krumhansl and Kessler's key profiles (1982): how well each pitch class, counted from the tonic,
# fits a major and a minor key.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimate_tonic(pitches: list[int], durations: list[Fraction]) -> int | None:
    """The tonic pitch class of the key whose profile best correlates with the duration-weighted
    pitch classes (the Krumhansl-Schmuckler key finder); None for fewer than two pitch classes."""
    weights = np.zeros(12)
    np.add.at(weights, np.asarray(pitches, dtype=np.int64) % 12, np.asarray([float(d) for d in durations]))
    if np.count_nonzero(weights) < 2:
        return None
    best, tonic = -2.0, None
    for profile in (_MAJOR_PROFILE, _MINOR_PROFILE):
        for t in range(12):
            r = float(np.corrcoef(weights, np.roll(profile, t))[0, 1])
            if r > best:
                best, tonic = r, t
    return tonic


def _top_line(notes: list[Note]) -> list[Note]:
    """The highest note starting at each onset: the melody of a polyphonic piece."""
    top: dict[Fraction, Note] = {}
    for n in notes:
        if n.start not in top or n.pitch > top[n.start].pitch:
            top[n.start] = n
    return [top[s] for s in sorted(top)]


class TuneCheck(NamedTuple):
    """One tune through music21 once: playable (parse rate), its bars or grid, music21's MIDI, the round trip."""

    playable: bool
    reason: str  # why it is not playable ("" when it is)
    bars: BarCheck | None  # ABC tunes
    grid: GridCheck | None  # event tunes
    music21_midi: bool
    roundtrip: bool


def check_tune(model, tokens: list[str]) -> TuneCheck:
    """Parse a tune's tokens once (music21 for ABC) and run every check of the module docstring on it.

    Playable: parses, has >= 8 notes, and converts to MIDI that reads back with as many notes."""
    from genlab.music.convert import ConversionError, parse_abc, score_to_notes
    from genlab.music.sample import Tune

    bars = grid = None
    midi21 = False
    if model.tokenizer.kind == "abc":
        quiet = contextlib.redirect_stderr(io.StringIO())  # music21 prints warnings (e.g. "beam: WARNING") there
        try:
            with quiet:
                score = parse_abc(model.abc(Tune(list(tokens), seed=0, index=1)))
        except ConversionError as e:
            return TuneCheck(False, str(e), BarCheck(parsed=False), None, False, False)
        bars = check_bars(score)  # before score_to_notes, which edits the score's time signatures
        midi21 = music21_midi(score)
        try:
            with quiet:
                notes, qpm = score_to_notes(score)
        except Exception as e:  # as convert.abc_to_notes words it
            return TuneCheck(False, f"cannot turn it into notes: {type(e).__name__}: {str(e)[:100]}", bars, None,
                             midi21, False)
    else:
        notes, qpm = model.tokenizer.tokens_to_notes(tokens), 120.0
        grid = check_grid(notes)
    ok, reason = _playable(notes, qpm)
    return TuneCheck(ok, reason, bars, grid, midi21, roundtrip(notes, qpm))


def _playable(notes: list[Note], qpm: float) -> tuple[bool, str]:
    from genlab.music.convert import midi_to_notes, notes_to_midi

    if not notes:
        return False, "it has no notes"
    if len(notes) < MIN_NOTES:
        return False, f"only {len(notes)} notes"
    try:
        back, _, _ = midi_to_notes(notes_to_midi(notes, qpm))
    except Exception as e:  # any failure to write or read MIDI fails the check
        return False, f"MIDI: {type(e).__name__}"
    return (True, "") if len(back) == len(notes) else (False, "MIDI lost notes")


def time_figures(checks: list[TuneCheck], suffix: str = "") -> dict:
    """The keeping-time figures of checked tunes, each name followed by `suffix` (`_real` for real tunes)."""
    n = max(1, len(checks))
    if checks and checks[0].grid is not None:
        figures = grid_figures([c.grid for c in checks])
    else:
        figures = {**bar_figures([c.bars for c in checks]),
                   "music21_midi_share": round(sum(c.music21_midi for c in checks) / n, 4)}
    figures["roundtrip_share"] = round(sum(c.roundtrip for c in checks) / n, 4)
    return {name + suffix: value for name, value in figures.items()}


@torch.inference_mode()
def tune_loss(model, corpus, tunes: range, block_size: int, device, max_tokens: int | None = None,
              batch_size: int = 32) -> dict:
    """Loss per token of whole tunes, each read from its own first token, as sampling reads it.

    A tune longer than the context goes on in windows that keep half a context of what came
    before; every token is scored once. (Windows cut anywhere in the token stream, as for text,
    would score tokens without their tune's meter and key, which sampling never asks for.)
    """
    rows: list[np.ndarray] = []  # inputs, targets and input features of one window; -100: a target not scored here
    scored_total = 0
    for i in tunes:
        t = corpus.tune(i).astype(np.int64)
        f = corpus.tune_features(i)
        n, done = len(t) - 1, 0  # n targets: t[1:]
        while done < n and (max_tokens is None or scored_total < max_tokens):
            end = min(n, done + (block_size if done == 0 else block_size // 2))
            start = max(0, end - block_size)
            x = np.zeros(block_size, dtype=np.int64)
            y = np.full(block_size, -100, dtype=np.int64)
            x[: end - start] = t[start:end]
            y[done - start : end - start] = t[done + 1 : end + 1]
            features = np.zeros(block_size, dtype=np.int64)
            if f is not None:
                features[: end - start] = f[start:end]
            rows.append(np.stack([x, y, features]))
            scored_total += end - done
            done = end
    if not rows:
        raise GenlabError("no tune to evaluate; the split is empty")
    model.eval()
    total, count = 0.0, 0
    for b in range(0, len(rows), batch_size):
        chunk = torch.from_numpy(np.stack(rows[b : b + batch_size])).to(device)
        logits = model(chunk[:, 0], features=chunk[:, 2]) if corpus.features is not None else model(chunk[:, 0])
        y = chunk[:, 1]
        total += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100,
                                 reduction="sum").item()
        count += int((y != -100).sum())
    loss = total / count
    return {"loss": round(loss, 5), "perplexity": round(math.exp(loss), 4), "tokens": count}


# ---------------------------------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------------------------------


def features(tunes: list[TuneNotes]) -> dict[str, Counter]:
    pcs, degrees, durs, ints, bars = Counter(), Counter(), Counter(), Counter(), Counter()
    for pitches, durations, n_bars, tonic in tunes:
        pcs.update(p % 12 for p in pitches)
        if tonic is not None:
            degrees.update((p - tonic) % 12 for p in pitches)
        durs.update(str(d) for d in durations)
        ints.update(max(-INTERVAL_CLIP, min(INTERVAL_CLIP, b - a)) for a, b in zip(pitches, pitches[1:], strict=False))
        bars[min(n_bars, 64) // 4 * 4] += 1  # bars per tune in bins of 4
    return {"pitch_class": pcs, "scale_degree": degrees, "duration": durs, "interval": ints, "bars": bars}


def distances(p: Counter, q: Counter) -> tuple[float, float]:
    """1 - overlapping area of two histograms, and KL(p || q) with q smoothed so it stays finite."""
    keys = sorted(set(p) | set(q), key=str)
    if not keys or not sum(p.values()) or not sum(q.values()):
        return 1.0, float("inf")
    a = np.array([p.get(k, 0) for k in keys], dtype=np.float64)
    b = np.array([q.get(k, 0) for k in keys], dtype=np.float64)
    a, b = a / a.sum(), b / b.sum()
    overlap = np.minimum(a, b).sum()
    bs = (b + 1e-4) / (b + 1e-4).sum()
    kl = float(np.sum(np.where(a > 0, a * np.log(np.maximum(a, 1e-12) / bs), 0.0)))
    return round(float(1.0 - overlap), 5), round(kl, 5)


def shuffled_baseline(tunes: list[list[str]], seed: int = 0) -> list[list[str]]:
    """Each tune keeps its header and length; the body tokens of all tunes are shuffled among them."""
    rng = np.random.default_rng(seed)
    heads, bodies = [], []
    for t in tunes:
        body = [x for x in t if x not in (BOS, EOS)]
        k = sum(1 for x in body[:2] if x[:2] in ("M:", "K:"))
        heads.append(body[:k])
        bodies.append(body[k:])
    pool = [x for b in bodies for x in b]
    pool = [pool[i] for i in rng.permutation(len(pool))]
    out, pos = [], 0
    for h, b in zip(heads, bodies, strict=True):
        out.append([BOS, *h, *pool[pos : pos + len(b)], EOS])
        pos += len(b)
    return out


# ---------------------------------------------------------------------------------------------------
# Originality: n-gram hashing over note codes
# ---------------------------------------------------------------------------------------------------

_BASE = np.uint64(0x100000001B3)  # odd, so invertible modulo 2**64


def note_codes(pitches: list[int], durations: list[Fraction]) -> np.ndarray:
    """One integer per note: pitch and length (in 1/48 quarter)."""
    return np.array([p * 10_000 + int(round(float(d) * 48)) for p, d in zip(pitches, durations, strict=True)],
                    dtype=np.int64)


def _window_hashes(seqs: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n-note window inside each sequence, and the sequence each window belongs to."""
    hashes, owners = [], []
    for i, s in enumerate(seqs):
        if len(s) < n:
            continue
        w = np.lib.stride_tricks.sliding_window_view(s.astype(np.uint64), n)  # (windows, n)
        h = np.zeros(len(w), dtype=np.uint64)
        for j in range(n):
            h = h * _BASE + w[:, j] + np.uint64(1)
        hashes.append(h)
        owners.append(np.full(len(h), i))
    if not hashes:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(hashes), np.concatenate(owners)


def originality(samples: list[np.ndarray], training: list[np.ndarray], ngram: int = NGRAM) -> dict:
    """Longest note run shared with training (max and median over samples) and the share of copied n-grams."""
    with np.errstate(over="ignore"):
        train_grams = np.unique(_window_hashes(training, ngram)[0])
        grams, _ = _window_hashes(samples, ngram)
        copied = float(np.isin(grams, train_grams).mean()) if len(grams) else 0.0
        longest = np.zeros(len(samples), dtype=np.int64)
        n, hi = 1, max((len(s) for s in samples), default=0)
        while n <= hi:
            found = _shared(samples, training, n)
            if not found.any():
                break
            longest[found] = n
            n += 1 if n < 16 else max(1, n // 8)  # coarse past 16 notes: a copy that long is a copy
    return {"longest_copied_notes": int(longest.max(initial=0)),
            "median_longest_copied_notes": float(np.median(longest)) if len(longest) else 0.0,
            f"copied_{ngram}gram_share": round(copied, 4)}


def _shared(samples: list[np.ndarray], training: list[np.ndarray], n: int) -> np.ndarray:
    train = np.unique(_window_hashes(training, n)[0])
    grams, owners = _window_hashes(samples, n)
    found = np.zeros(len(samples), dtype=bool)
    found[np.unique(owners[np.isin(grams, train)])] = True
    return found


# ---------------------------------------------------------------------------------------------------
# The evaluation
# ---------------------------------------------------------------------------------------------------


def evaluate_music(m, data: str | None = None, *, split: str | None = None, max_tokens: int | None = None,
                   num_samples: int = 100, distribution_samples: int = 1000, max_new_tokens: int = 512,
                   temperature: float = 1.0, top_k: int | None = None, seed: int = 0,
                   constraint: bool | None = None) -> dict:
    """Evaluate a loaded music model (see the module docstring).

    The first `num_samples` sampled tunes (and as many held-out ones) are checked in music21 (parse rate,
    bars, MIDI, round trip) and measured for originality; the distribution distances use
    `distribution_samples` tunes (and as many held-out ones), since a tune's key sways its whole
    pitch-class count and 100 tunes leave the distances within sampling noise of each other.
    `constraint` (True/False) is passed to a sampler that has that control; None keeps its default.
    """
    from genlab.music.data import prepare_music
    from genlab.sampling.decode import inference_copy

    split = split or "val"
    if split not in ("val", "train", "all"):
        raise GenlabError(f"--split must be val, train or all, got {split!r}")
    if constraint is not None and "constraint" not in getattr(m, "controls", {}):
        raise GenlabError("this music sampler has no constraint control; evaluate without one")
    for flag, value in (("--num-samples", num_samples), ("--distribution-samples", distribution_samples)):
        if value < 1:
            raise GenlabError(f"{flag} must be at least 1, got {value}")
    source = data or m.config["data"]["source"]
    # a fine-tune's vocabulary is its parent's, not one built from the data: read the tunes in it
    given = m.tokenizer if m.config["train"].get("parent") else None
    corpus = prepare_music(source, m.tokenizer.kind, m.config["train"]["val_fraction"], quiet=True,
                           extensions=None if data else m.config["train"].get("extensions"), given=given)
    if m.tokenizer.kind == "abc" and corpus.tokenizer.vocab != m.tokenizer.vocab:
        raise GenlabError(f"{source} tokenizes into a vocabulary this model was not trained on; "
                          "evaluate it on its own training data")
    held = {"val": range(corpus.n_train, corpus.n_tunes), "train": range(corpus.n_train),
            "all": range(corpus.n_tunes)}[split]
    block = m.config["model"].get("block_size", 256)
    scored = tune_loss(inference_copy(m.model, m.precision), corpus, held, block, m.device,
                       max_tokens=max_tokens if max_tokens is not None else 100_000)
    vocab = int(m.config["model"]["vocab_size"])
    # the loss is named by its split (a train figure never reads as validation), beside a uniform model's ln(V)
    metrics: dict = {f"{split}_loss": scored.pop("loss"), **scored, "uniform_loss": round(math.log(vocab), 5)}

    # the sampler's own default unless asked: today's samplers have no constraint control to pass
    steer = {} if constraint is None else {"constraint": constraint}
    total = max(num_samples, distribution_samples)
    sampled = []  # in batches of SAMPLE_BATCH, the first with `seed` itself, as `genlab sample --seed` gives
    for batch, start in enumerate(range(0, total, SAMPLE_BATCH)):
        n = min(SAMPLE_BATCH, total - start)
        sampled += [t.tokens for t in m.tunes("", num_samples=n, max_new_tokens=max_new_tokens,
                                                 temperature=temperature, top_k=top_k, seed=seed + batch, **steer)]
    held_out = [m.tokenizer.tokens(corpus.tune(i)) for i in range(corpus.n_train, corpus.n_tunes)]
    checks = [check_tune(m, t) for t in sampled[:num_samples]]  # music21 parses each tune once, for every check
    real_checks = [check_tune(m, t) for t in held_out[:num_samples]]
    reasons = Counter(c.reason for c in checks if not c.playable)
    metrics.update({
        "num_samples": num_samples,
        "distribution_samples": distribution_samples,
        "constraint": constraint if constraint is not None else getattr(m, "controls", {}).get("constraint"),
        "parse_rate": round(sum(c.playable for c in checks) / max(1, len(checks)), 4),
        "real_parse_rate": round(sum(c.playable for c in real_checks) / max(1, len(real_checks)), 4),
        **time_figures(checks), **time_figures(real_checks, "_real"),
        "ended_share": round(sum(t[-1] == EOS for t in sampled) / max(1, len(sampled)), 4),
        "failure_reasons": dict(reasons.most_common(5)),
    })

    train_notes = [token_notes(m.tokenizer, m.tokenizer.tokens(corpus.tune(i))) for i in range(corpus.n_train)]
    every_sample_notes = [token_notes(m.tokenizer, t) for t in sampled]
    sample_notes = every_sample_notes[:distribution_samples]
    reference = held_out[:distribution_samples]
    base_notes = [token_notes(m.tokenizer, t) for t in shuffled_baseline(reference, seed)]
    ref_notes = [token_notes(m.tokenizer, t) for t in reference]
    f_train, f_sample = features(train_notes), features(sample_notes)
    f_base, f_ref = features(base_notes), features(ref_notes)
    for name in ("pitch_class", "scale_degree", "duration", "interval", "bars"):
        d, kl = distances(f_train[name], f_sample[name])
        metrics[f"{name}_distance"], metrics[f"{name}_kl"] = d, kl
        metrics[f"{name}_distance_shuffled"] = distances(f_train[name], f_base[name])[0]
        metrics[f"{name}_distance_real"] = distances(f_train[name], f_ref[name])[0]
    metrics["bars_per_tune"] = round(float(np.mean([t.bars for t in sample_notes])), 2)
    metrics["bars_per_tune_train"] = round(float(np.mean([t.bars for t in train_notes])), 2)
    train_codes = [note_codes(t.pitches, t.durations) for t in train_notes]
    metrics.update(originality([note_codes(t.pitches, t.durations) for t in every_sample_notes[:num_samples]],
                               train_codes))
    # real tunes side by side: held-out tunes share phrases with training ones too (folk tunes borrow)
    real = originality([note_codes(t.pitches, t.durations) for t in ref_notes[:num_samples]], train_codes)
    metrics.update({f"real_{k}": v for k, v in real.items()})
    metrics.update({"data": source, "split": split, "seed": seed, "temperature": temperature, "top_k": top_k,
                    "precision": m.precision})
    return metrics


DISTANCES = ("pitch_class", "scale_degree", "duration", "interval", "bars")
TIME_FIGURES = ("bars_right_share", "tunes_all_bars_right", "music21_midi_share", "onset_grid_share",
                "tunes_all_on_grid", "notes_per_bar", "roundtrip_share")


def music_summary(metrics: dict) -> str:
    """At most 15 lines (16 with genlab eval's header): what was sampled, then each headline figure with its
    direction and the real tunes' figure beside it (and, for the distances, shuffled tokens'); why samples were
    unplayable goes on the parse_rate line. Every other figure stays in metrics.json."""
    from genlab.modalities import figure_line, plain

    split = metrics.get("split", "val")
    loss_key = f"{split}_loss" if f"{split}_loss" in metrics else "val_loss"  # runs evaluated before the split
    top_k = metrics.get("top_k")
    constraint = metrics.get("constraint")
    lines = [f"tunes: {plain(metrics.get('num_samples'))} sampled (and as many real) for music21's checks and "
             f"originality, {plain(metrics.get('distribution_samples'))} for distributions; seed "
             f"{plain(metrics.get('seed'))}, "
             f"temperature {plain(metrics.get('temperature'))}, top-k {'off' if top_k is None else top_k}"
             + ("" if constraint is None else f", constraint {'on' if constraint else 'off'}")]

    def line(name: str, better: str, base: str = "") -> None:
        if name in metrics:
            lines.append(figure_line(name, metrics[name], f"{better}; {base}" if base else better))

    line(loss_key, "nats per token, lower is better", f"uniform model: {plain(metrics.get('uniform_loss'))}"
         if "uniform_loss" in metrics else "")
    why = "; ".join(f"{reason} ({n})" for reason, n in (metrics.get("failure_reasons") or {}).items())
    line("parse_rate", "higher is better", f"real tunes: {plain(metrics.get('real_parse_rate'))}"
         + (f"; unplayable samples: {why}" if why else ""))
    for name in TIME_FIGURES:  # ABC runs have the bar figures, event runs the grid ones
        better = "closer to real is better" if name == "notes_per_bar" else "higher is better"
        line(name, better, f"real tunes: {plain(metrics.get(name + '_real'))}")
    line("ended_share", "higher is better", "real tunes all end")
    for name in DISTANCES:
        key = f"{name}_distance"
        line(key, "0 = as training, lower is better", f"real tunes: {plain(metrics.get(key + '_real'))}, "
             f"shuffled: {plain(metrics.get(key + '_shuffled'))}")
    for name in ("longest_copied_notes", f"copied_{NGRAM}gram_share"):
        real = metrics.get(f"real_{name}")
        line(name, "lower is more original", "" if real is None else f"real tunes: {plain(real)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# The creativity dial (genlab report): temperature against parse rate, unique tunes and copied phrases
# ---------------------------------------------------------------------------------------------------

TEMPERATURES = (0.5, 0.7, 0.9, 1.0, 1.2, 1.5)
SWEEP_NEW_TOKENS = 512  # as evaluate_music samples: room for a whole folk tune
MUSIC_FIGURES = {
    "parse_rate": f"share of tunes that parse into at least {MIN_NOTES} notes and survive a MIDI round trip; higher "
                  "is better",
    "ended_share": "share of tunes that reached their end token; higher is better",
    "unique_tunes": "share of the samples that are not a repeat of another sample; higher is more varied",
    "distinct_4_notes": "unique 4-note runs (pitch and length) over all 4-note runs of the samples; higher is more "
                        "varied",
    f"copied_{NGRAM}gram_share": f"copy rate: the share of the samples' {NGRAM}-note runs found in a training tune; "
                                 "lower is more original",
    "longest_copied_notes": "the longest run of notes a sample shares with a training tune; lower is more original",
}


class MusicSweep:
    """A music model's creativity dial: the training tunes' notes, read once, then each point's tunes measured with
    this module's checks (check_tune, originality)."""

    def __init__(self, m):
        from genlab.music.data import prepare_music

        self.m = m
        self.train_codes: list[np.ndarray] | None = None
        self.held_out: list[list[str]] = []
        given = m.tokenizer if m.config["train"].get("parent") else None  # as evaluate_music reads a fine-tune's data
        try:
            corpus = prepare_music(m.config["data"]["source"], m.tokenizer.kind, m.config["train"]["val_fraction"],
                                   quiet=True, extensions=m.config["train"].get("extensions"), given=given)
        except (GenlabError, OSError, KeyError):  # data moved away: no copy rate and no real tunes then
            return
        tunes = [m.tokenizer.tokens(corpus.tune(i)) for i in range(corpus.n_tunes)]
        self.train_codes = [note_codes(*token_notes(m.tokenizer, t)[:2]) for t in tunes[: corpus.n_train]]
        self.held_out = tunes[corpus.n_train :]

    def figures(self, tunes: list[list[str]]) -> dict:
        checks = [check_tune(self.m, t) for t in tunes]
        codes = [note_codes(*token_notes(self.m.tokenizer, t)[:2]) for t in tunes]
        grams = [tuple(c[i : i + 4]) for c in codes for i in range(len(c) - 3)]
        copied = originality(codes, self.train_codes) if self.train_codes is not None else {}
        n = max(1, len(tunes))
        return {"quality": {"parse_rate": round(sum(c.playable for c in checks) / n, 4),
                            "ended_share": round(sum(t[-1] == EOS for t in tunes) / n, 4)},
                "diversity": {"unique_tunes": round(len({tuple(t) for t in tunes}) / n, 4),
                              "distinct_4_notes": round(len(set(grams)) / len(grams), 4) if grams else 0.0},
                "originality": {f"copied_{NGRAM}gram_share": copied.get(f"copied_{NGRAM}gram_share"),
                                "longest_copied_notes": copied.get("longest_copied_notes")}}

    def point(self, temperature: float, seed: int, n: int) -> dict:
        tunes = self.m.tunes("", num_samples=n, max_new_tokens=SWEEP_NEW_TOKENS, temperature=temperature, seed=seed)
        return self.figures([t.tokens for t in tunes])

    def reference(self, seed: int, n: int) -> dict | None:
        """The held-out tunes' figures: n of them, chosen by `seed`."""
        if not self.held_out:
            return None
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(self.held_out), min(n, len(self.held_out)), replace=False)
        return self.figures([self.held_out[i] for i in sorted(pick)])
