"""Music benchmark: gpt and lstm trained on music:folk for the same CPU budget, then measured side by side.

folk-rnn (Sturm et al. 2016) trained a 3-layer, 512-unit LSTM on ~23,000 ABC transcriptions; we
train smaller models on music21's ~12,600 folk tunes for a fixed wall-clock budget each and
report, like for like: validation loss per token, the share of 100 sampled tunes that parse in
music21, have >= 8 notes and convert to MIDI (against the same check on 100 held-out real
tunes), whether they keep time (music/meter.py: `bars_right_share`, inner bars of the meter's length;
`tunes_all_bars_right`; `music21_midi_share`, music21's own MIDI export succeeding; each beside its
`_real` figure on as many held-out tunes), distribution distances (with a shuffled-token baseline)
and originality.

    python bench/music.py --minutes 15 [--families gpt,lstm] [--samples 100] [--distribution-samples 1000]

Each trained model is evaluated unconstrained (`constraint` off) and, where the music sampler has a
`constraint` control, constrained too (columns `FAMILY+c`); the JSON keeps the constrained figures as
`constrained_*`. The bars: parse_rate >= 0.85 * real_parse_rate; pitch_class_distance < the shuffled
baseline's; unconstrained, tunes_all_bars_right >= 0.6; constrained, tunes_all_bars_right >= 0.95 and
music21_midi_share >= music21_midi_share_real. The last line is one JSON object of the figures.

The distributions are compared over 1,000 sampled tunes (--distribution-samples) against as many
held-out real tunes, and the shuffled baseline is those held-out tunes with their body tokens
shuffled among them (each keeps its M: and K: header and its length). ABC spells notes relative to
the key, so the shuffle moves pitch classes only where a note lands in a tune of another key: it
keeps most of the real tunes' absolute pitch-class counts, and beating it asks the samples to come
close to real tunes. A tune's key sways all its notes, so at 100 tunes the samples, the baseline and
real tunes all lie within sampling noise of each other (0.03-0.05 each); at 1,000 they separate.
The bench also prints pitch classes counted from each tune's tonic (scale degrees, the tonal
profile), where structure shows plainly: the shuffle scatters notes across keys, a model that
writes in its key does not.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from genlab import api
from genlab.io import read_json
from genlab.music.evaluate import evaluate_music
from genlab.music.sample import MusicModel

TIME = ("bars_right_share", "tunes_all_bars_right", "music21_midi_share")

MODELS = {
    "gpt": dict(n_layer=4, n_head=4, n_embd=128, block_size=256, batch_size=16, lr=2e-3, min_lr=2e-4),
    "lstm": dict(n_layer=2, n_embd=256, block_size=128, batch_size=32, lr=3e-3, min_lr=3e-4),
}


def ms_per_step(family: str, settings: dict, workdir: Path) -> float:
    """Time a few steps, so that the cosine schedule ends exactly when the budget does."""
    run = api.train("music:folk", family=family, out=str(workdir / f"probe-{family}"), max_steps=15,
                    eval_interval=1000, log_interval=1, warmup_steps=0, quiet=True, **settings)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    times = sorted(r["ms_per_step"] for r in rows if "ms_per_step" in r)[2:-2]
    return sum(times) / len(times)


def constraint_modes() -> list[bool | None]:
    """Unconstrained always (None: a sampler without the control samples unconstrained), constrained where the
    music sampler has a `constraint` control."""
    return [False, True] if "constraint" in MusicModel.controls else [None]


def bench_family(family: str, minutes: float, workdir: Path, samples: int, distribution_samples: int,
                 seed: int) -> dict[bool, dict]:
    """Train one family, then evaluate it in each constraint mode: {constrained: figures}."""
    settings = MODELS[family]
    ms = ms_per_step(family, settings, workdir)
    steps = max(100, int(minutes * 60_000 / (ms * 1.1)))  # 10% for evaluations and checkpoints
    run = api.train("music:folk", family=family, out=str(workdir / family), max_steps=steps * 2,
                    lr_decay_steps=steps, warmup_steps=min(200, steps // 10), eval_interval=max(200, steps // 6),
                    max_minutes=minutes, quiet=True, seed=seed, **settings)
    trained_steps = max(json.loads(x).get("step", 0) for x in (run / "metrics.jsonl").read_text().splitlines())
    m = api.load(run)
    n_params = read_json(run / "config.json")["n_params"]
    out = {}
    for constraint in constraint_modes():
        metrics = evaluate_music(m, num_samples=samples, distribution_samples=distribution_samples,
                                 temperature=1.0, seed=seed, constraint=constraint)
        # the bar's ratio: sampled tunes that parse against held-out real ones (evaluate_music gives both rates)
        real = metrics["real_parse_rate"]
        parse_ratio = round(metrics["parse_rate"] / real, 4) if real else None
        out[bool(constraint)] = {"family": family, "params": n_params, "steps": trained_steps,
                                 "ms_per_step": round(ms, 1), **metrics, "parse_ratio": parse_ratio}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=15.0, help="training budget per family")
    p.add_argument("--families", default="gpt,lstm")
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--distribution-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", help="keep the runs in this folder")
    a = p.parse_args()
    workdir = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="genlab-bench-music-"))
    results: dict[str, dict[bool, dict]] = {}
    try:
        for family in a.families.split(","):
            print(f"training {family} on music:folk for {a.minutes:g} minutes ...", file=sys.stderr, flush=True)
            results[family] = bench_family(family, a.minutes, workdir, a.samples, a.distribution_samples, a.seed)
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    cols = ["params", "steps", "val_loss", "parse_rate", "real_parse_rate", "parse_ratio",
            *(k for t in TIME for k in (t, t + "_real")), "roundtrip_share", "pitch_class_distance",
            "pitch_class_distance_shuffled", "pitch_class_distance_real", "scale_degree_distance",
            "scale_degree_distance_shuffled", "scale_degree_distance_real", "duration_distance",
            "duration_distance_shuffled", "interval_distance", "interval_distance_shuffled", "bars_distance",
            "bars_per_tune", "longest_copied_notes", "copied_8gram_share"]
    columns = {f + ("+c" if constrained else ""): r for f, modes in results.items() for constrained, r in modes.items()}
    print(f"{'':32}" + "".join(f"{name:>12}" for name in columns))
    for c in cols:
        print(f"{c:32}" + "".join(f"{str(r.get(c)):>12}" for r in columns.values()))
    best_family = min(results, key=lambda f: results[f][False]["val_loss"])
    best, constrained = results[best_family][False], results[best_family].get(True)
    summary = {
        "minutes": a.minutes, "best_family": best_family, "samples": a.samples,
        "distribution_samples": a.distribution_samples,
        **{k: best[k] for k in ("parse_rate", "real_parse_rate", "parse_ratio", "val_loss", "pitch_class_distance",
                                "pitch_class_distance_shuffled", "pitch_class_distance_real", "scale_degree_distance",
                                "scale_degree_distance_shuffled", "longest_copied_notes", "copied_8gram_share")},
        **{k: best[k] for t in TIME for k in (t, t + "_real")},  # unconstrained, and real held-out tunes
        **{f"constrained_{t}": constrained[t] if constrained else None for t in (*TIME, "parse_rate")},
        "parse_bar_met": best["parse_rate"] >= 0.85 * best["real_parse_rate"],
        "pitch_bar_met": best["pitch_class_distance"] < best["pitch_class_distance_shuffled"],
        "tonal_pitch_bar_met": best["scale_degree_distance"] < best["scale_degree_distance_shuffled"],
        "time_bar_met": best["tunes_all_bars_right"] >= 0.6,
        "constrained_time_bar_met": None if constrained is None else (
            constrained["tunes_all_bars_right"] >= 0.95
            and constrained["music21_midi_share"] >= constrained["music21_midi_share_real"]),
        "families": {name: {c: r.get(c) for c in cols} for name, r in columns.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
