"""Music benchmark: the README's training command for each family on music:folk, then measured side by side.

folk-rnn (Sturm et al. 2016) trained a 3-layer, 512-unit LSTM on ~23,000 ABC transcriptions for hours; we
run what a new user runs, `genlab train music:folk --family FAMILY --max-minutes 15` with every other
setting at its default, and report like for like: validation loss per token, the share of 100 sampled
tunes that parse in music21, have >= 8 notes and convert to MIDI (against the same check on 100 held-out
real tunes), whether they keep time (music/meter.py: `bars_right_share`, inner bars of the meter's length;
`tunes_all_bars_right`; `music21_midi_share`, music21's own MIDI export succeeding; each beside its `_real`
figure on as many held-out tunes), distribution distances (with a shuffled-token baseline) and originality.

    python bench/music.py --minutes 15 [--families gpt,lstm] [--samples 100] [--distribution-samples 1000]

Each trained model is evaluated unconstrained (`--no-constraint`) and constrained (the default; columns
`FAMILY+c`), and its sampling speed is timed both ways through the sampler's token loop, 16 tunes for 256
steps, in decoded tokens per second (medians of 7 runs taken in turn): `constraint_speed_ratio` is
constrained over unconstrained once the constraint has sampled before (it has met most of its states and
cached their masks), `_cold` the same for a new constraint (what one `genlab sample` pays). The JSON
keeps the constrained figures as `constrained_*`. The bars: parse_rate >= 0.85 * real_parse_rate;
pitch_class_distance < the shuffled baseline's; unconstrained, tunes_all_bars_right >= 0.6; constrained,
tunes_all_bars_right >= 0.95 and music21_midi_share >= music21_midi_share_real; constraint_speed_ratio >= 0.85.
The last line is one JSON object of the figures.

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
import time
from pathlib import Path

import torch

from genlab import api
from genlab.io import read_json
from genlab.music.evaluate import evaluate_music
from genlab.sampling.logits import SamplingSettings
from genlab.sampling.tokens import sample_tokens

TIME = ("bars_right_share", "tunes_all_bars_right", "music21_midi_share")
SPEED_TUNES, SPEED_STEPS = 16, 256


def sampling_speed(m, seed: int, runs: int = 7) -> dict[str, float]:
    """Decoding speed, in tokens per second, of SPEED_TUNES tunes at once through the music sampler's token loop
    for SPEED_STEPS steps (past a tune's end too, so every run times the same work): unconstrained, constrained
    `warm` (a constraint that has sampled before has cached the masks of the states it met) and `cold` (a new
    one, as in one `genlab sample`). The three are timed in turn, `runs` times, and each keeps its median, so
    that the machine's drift falls on all of them alike."""
    from genlab.music.constraints import music_constraint

    model = m.decoder(SPEED_TUNES)  # the decoding copy the sampler uses, built (and timed) once
    prompt = torch.tensor([m.tokenizer.bos])
    settings = SamplingSettings(max_new_tokens=SPEED_STEPS, temperature=1.0, num_samples=SPEED_TUNES)
    warm = music_constraint(m.tokenizer)

    def seconds(rule) -> float:
        start = time.perf_counter()
        for _ in sample_tokens(model, prompt, settings, torch.Generator().manual_seed(seed), rule, m.bar_room):
            pass
        return time.perf_counter() - start

    seconds(warm)  # the warm constraint meets the states of this seed's tunes once
    times: dict[str, list[float]] = {"unconstrained": [], "warm": [], "cold": []}
    for _ in range(runs):
        times["unconstrained"].append(seconds(None))
        times["warm"].append(seconds(warm))
        times["cold"].append(seconds(music_constraint(m.tokenizer)))
    return {k: SPEED_TUNES * SPEED_STEPS / sorted(v)[len(v) // 2] for k, v in times.items()}


def bench_family(family: str, minutes: float, workdir: Path, samples: int, distribution_samples: int,
                 seed: int) -> dict[bool, dict]:
    """Train one family as the README says, then evaluate it in each constraint mode: {constrained: figures}."""
    run = api.train("music:folk", family=family, out=str(workdir / family), max_minutes=minutes, quiet=True)
    config = read_json(run / "config.json")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    trained_steps = max(r.get("step", 0) for r in rows)
    step_ms = sorted(r["ms_per_step"] for r in rows if "ms_per_step" in r)
    m = api.load(run)
    speed = sampling_speed(m, seed)
    out = {}
    for constraint in (False, True):
        metrics = evaluate_music(m, num_samples=samples, distribution_samples=distribution_samples,
                                 temperature=1.0, seed=seed, constraint=constraint)
        # the bar's ratio: sampled tunes that parse against held-out real ones (evaluate_music gives both rates)
        real = metrics["real_parse_rate"]
        parse_ratio = round(metrics["parse_rate"] / real, 4) if real else None
        out[constraint] = {"family": family, "params": config["n_params"], "steps": trained_steps,
                           "ms_per_step": round(step_ms[len(step_ms) // 2], 1), **metrics,
                           "parse_ratio": parse_ratio,
                           "tokens_per_s": round(speed["warm" if constraint else "unconstrained"], 1),
                           "tokens_per_s_cold": round(speed["cold" if constraint else "unconstrained"], 1),
                           "constraint_speed_ratio": round(speed["warm"] / speed["unconstrained"], 3),
                           "constraint_speed_ratio_cold": round(speed["cold"] / speed["unconstrained"], 3)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=15.0, help="training budget per family (--max-minutes)")
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
    cols = ["params", "steps", "ms_per_step", "val_loss", "parse_rate", "real_parse_rate", "parse_ratio",
            *(k for t in TIME for k in (t, t + "_real")), "roundtrip_share", "ended_share", "tokens_per_s",
            "tokens_per_s_cold", "constraint_speed_ratio", "constraint_speed_ratio_cold", "pitch_class_distance",
            "pitch_class_distance_shuffled", "pitch_class_distance_real", "scale_degree_distance",
            "scale_degree_distance_shuffled",
            "scale_degree_distance_real", "duration_distance", "duration_distance_shuffled", "interval_distance",
            "interval_distance_shuffled", "interval_distance_real", "bars_distance", "bars_per_tune",
            "longest_copied_notes", "copied_8gram_share"]
    columns = {f + ("+c" if constrained else ""): r for f, modes in results.items() for constrained, r in modes.items()}
    print(f"{'':32}" + "".join(f"{name:>12}" for name in columns))
    for c in cols:
        print(f"{c:32}" + "".join(f"{str(r.get(c)):>12}" for r in columns.values()))
    best_family = min(results, key=lambda f: results[f][False]["val_loss"])
    best, constrained = results[best_family][False], results[best_family][True]
    summary = {
        "minutes": a.minutes, "best_family": best_family, "samples": a.samples,
        "distribution_samples": a.distribution_samples,
        **{k: best[k] for k in ("parse_rate", "real_parse_rate", "parse_ratio", "val_loss", "pitch_class_distance",
                                "pitch_class_distance_shuffled", "pitch_class_distance_real", "scale_degree_distance",
                                "scale_degree_distance_shuffled", "interval_distance", "interval_distance_real",
                                "longest_copied_notes", "copied_8gram_share")},
        **{k: best[k] for t in TIME for k in (t, t + "_real")},  # unconstrained, and real held-out tunes
        **{f"constrained_{t}": constrained[t] for t in (*TIME, "parse_rate", "ended_share")},
        "ended_share": best["ended_share"],
        "tokens_per_s": best["tokens_per_s"], "constrained_tokens_per_s": constrained["tokens_per_s"],
        "constraint_speed_ratio": best["constraint_speed_ratio"],
        "constraint_speed_ratio_cold": best["constraint_speed_ratio_cold"],
        "parse_bar_met": best["parse_rate"] >= 0.85 * best["real_parse_rate"],
        "pitch_bar_met": best["pitch_class_distance"] < best["pitch_class_distance_shuffled"],
        "tonal_pitch_bar_met": best["scale_degree_distance"] < best["scale_degree_distance_shuffled"],
        "time_bar_met": best["tunes_all_bars_right"] >= 0.6,
        "constrained_time_bar_met": (constrained["tunes_all_bars_right"] >= 0.95
                                     and constrained["music21_midi_share"] >= constrained["music21_midi_share_real"]),
        "constraint_speed_bar_met": best["constraint_speed_ratio"] >= 0.85,
        "families": {name: {c: r.get(c) for c in cols} for name, r in columns.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
