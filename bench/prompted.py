"""Benchmark prompted generation: does a text-to-image model draw what its caption says?

    python bench/prompted.py [--minutes 14] [--num 500] [--steps 25] [--run RUN] [--out runs/bench-prompted]

Trains a captioned diffusion model on images:digit-scenes for a wall-clock budget (or takes --run), then
samples one image for each of `--num` held-out captions of two splits: scenes whose digit pairs training has
seen (new scans, positions and phrasings; half in a layout training never shows) and scenes holding a digit
pair training never shows together. A sample matches when every digit the caption names is where the caption
puts it, of its size, on its background, as a classifier trained on real scans reads each region
(genlab.images.scenes.layout_match); the same check on the real held-out scenes bounds what a perfect model
scores. Guidance 0 (the caption ignored) is the chance line. Fréchet distance is in the feature space
`genlab eval` uses, against real held-out scenes, with real-against-real beside it.

Text-to-music: trains a GPT on music:folk with --descriptions for --music-minutes (or takes --music-run), then
samples one tune for each of `--music-num` prompts, the descriptions of held-out tunes as the training data
phrased them ("a jig in G major", "a tune in 6/8 in D major"). A tune agrees when the key (tonic and mode) and
the meter it carries, as music21 reads its K: and M:, are the prompt's (`music_agreement`), and, stricter, when
music21's key analysis of its notes has the prompt's tonic and major/minor (`music_agreement_analysed`, beside
the rate of real tunes against their own headers: the analysis's ceiling). The chance baseline is the same
model with no description (the prompt-dropout branch), judged against the same prompts
(`music_agreement_unconditioned`). Parse rate is genlab eval's: music21 parses it, 8 notes or more, MIDI reads back.

    python bench/prompted.py --only music [--music-minutes 10] [--music-num 200] [--music-run RUN]

Prints a readable table, then, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# measured: OpenMP spin-waiting on a shared 2-core machine slows steps 3-8x (see genlab/runtime.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from genlab import api  # noqa: E402
from genlab.errors import GenlabError  # noqa: E402
from genlab.images.data import DIGIT_SCENES, to_pixels  # noqa: E402
from genlab.images.evaluate import cached_classifier, image_metrics, open_run_data, real_baselines  # noqa: E402
from genlab.images.scenes import build_scenes, digit_classifier, layout_match, parse_caption  # noqa: E402
from genlab.music.describe import (  # noqa: E402
    DESCRIPTION_TOKEN,
    agreement,
    agreement_rates,
    analysed_facts,
    corpus_agreement,
    parse_description,
)

GUIDANCES = (0.0, 1.0, 3.0, 5.0)


def say(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def matches(images: torch.Tensor | np.ndarray, prompts: list[str], classify) -> np.ndarray:
    """Per image: does it show what its prompt says."""
    pixels = to_pixels(images.cpu()).numpy()[..., 0] if isinstance(images, torch.Tensor) else images
    return np.array([layout_match(img, parse_caption(p), classify) for img, p in zip(pixels, prompts, strict=True)])


def sample(m, prompts: list[str], guidance: float, steps: int, seed: int) -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    images = m.generate(num_samples=len(prompts), prompt=prompts, guidance=guidance, steps=steps, seed=seed,
                        sampler="ddim", output_type="pt")
    return images, time.perf_counter() - t0


def trained(run: str | None, out: Path, what: str, data: str, minutes: float, **settings) -> tuple[str, float | None]:
    """The given run, or one trained on `data` for `minutes` into `out`, and its training wall time (None if given)."""
    if run is not None:
        return run, None
    say(f"training {what} on {data} for {minutes} minutes -> {out}")
    t0 = time.perf_counter()
    api.train(data, max_minutes=minutes, out=str(out), seed=0, quiet=True, **settings)
    return str(out), time.perf_counter() - t0


def image_bench(args) -> dict:
    run, train_s = trained(args.run, Path(args.out) / "scenes", "a captioned diffusion model", "images:digit-scenes",
                           args.minutes, family="diffusion", captions=True, width=args.width,
                           batch_size=args.batch_size, eval_interval=500, snr_gamma=args.snr_gamma,
                           coords=args.coords or None)
    m = api.load(run)
    if not m.captioned:
        raise SystemExit(f"{run} was not trained with --captions")

    scenes = build_scenes(DIGIT_SCENES["train"], DIGIT_SCENES["val"])  # what images:digit-scenes holds out
    classify = digit_classifier()
    splits = {"seen": scenes.val, "unseen": scenes.val_unseen_pairs}
    rows, figures = [], {}
    for name, split in splits.items():
        n = min(args.num, len(split))
        prompts = [split.caption(i) for i in range(n)]
        novel = split.novel_layout[:n]
        real = matches(split.images[:n], prompts, classify)  # the bound: real scenes under the same check
        rows.append((name, "real scenes", float(real.mean()), float(real[~novel].mean()), float(real[novel].mean()),
                     None))
        for guidance in GUIDANCES:
            images, seconds = sample(m, prompts, guidance, args.steps, seed=1)
            ok = matches(images, prompts, classify)
            rows.append((name, f"guidance {guidance:g}", float(ok.mean()), float(ok[~novel].mean()),
                         float(ok[novel].mean()), n / seconds))
            figures[(name, guidance)] = (float(ok.mean()), images, prompts)
            say(f"  {name} guidance {guidance:g}: {ok.mean():.3f} ({n / seconds:.1f} images/s)")

    best = max(GUIDANCES, key=lambda g: figures[("seen", g)][0])
    data = open_run_data(m.config)
    features, _ = cached_classifier(data, Path(m.run_dir) / "cache")
    quality = image_metrics(figures[("seen", best)][1], None, data, features)
    reference = real_baselines(data, features, min(args.num, len(scenes.val)))

    model = m.config["model"]
    print(f"\ntext-to-image on images:digit-scenes ({model.get('width')} channels, "
          f"{sum(p.numel() for p in m.model.parameters()) / 1e6:.2f}M parameters, {args.steps} DDIM steps, "
          f"snr_gamma {model.get('snr_gamma', 0)}, coords {model.get('coords', False)})")
    print(f"{'split':8} {'sampled with':14} {'match':>7} {'seen layouts':>13} {'held-out layout':>16} {'images/s':>9}")
    for name, how, share, seen_layout, novel_layout, speed in rows:
        rate = "" if speed is None else f"{speed:9.1f}"
        print(f"{name:8} {how:14} {share:7.3f} {seen_layout:13.3f} {novel_layout:16.3f} {rate:>9}")
    print(f"Fréchet distance at guidance {best:g}: {quality['frechet_distance']:.3f} "
          f"(real held-out against real training: {reference.get('real_frechet_distance')})")
    steps = (m.config.get("train", {}).get("time_plan") or {}).get("max_steps") or m.config.get("train", {}).get(
        "max_steps")
    if train_s is not None:
        print(f"training: {train_s / 60:.1f} min wall ({steps} steps)")
    seen, unseen = figures[("seen", best)][0], figures[("unseen", best)][0]
    print(f"aim: seen-pair match >= 0.80 at the best guidance: {seen:.3f} "
          f"({'met' if seen >= 0.8 else 'not met'}); unseen pairs {unseen:.3f} against "
          f"{figures[('unseen', 0.0)][0]:.3f} at guidance 0")
    return {"image_match_seen": round(seen, 4), "image_match_unseen": round(unseen, 4), "best_guidance": best,
            **{f"image_match_{name}_g{g:g}": round(figures[(name, g)][0], 4) for name in splits for g in GUIDANCES},
            "image_match_real_seen": round(rows[0][2], 4),
            "frechet_distance": quality["frechet_distance"],
            "real_frechet_distance": reference.get("real_frechet_distance"),
            "image_train_minutes": None if train_s is None else round(train_s / 60, 2),
            "images_per_s": round(rows[-1][5], 2), "image_steps": args.steps, "image_num": args.num}


def held_out_descriptions(m, n: int) -> list[str]:
    """The descriptions of the first `n` described held-out tunes, in the words the model read them."""
    from genlab.music.data import prepare_music

    corpus = prepare_music(m.config["data"]["source"], given=m.tokenizer, quiet=True)
    out = []
    for i in range(corpus.n_train, corpus.n_tunes):
        words = [t[len(DESCRIPTION_TOKEN):] for t in corpus.tokenizer.tokens(corpus.tune(i)[1:40])
                 if t.startswith(DESCRIPTION_TOKEN)]
        if words:
            out.append(" ".join(words).replace(" ,", ","))
        if len(out) == n:
            break
    return out


def judge(m, tunes, prompts: list[str]) -> tuple[list[dict], list[bool]]:
    """Per tune: agreement with its prompt (every entry False where music21 cannot read it), and parse rate."""
    import contextlib
    import io

    from genlab.music.convert import ConversionError
    from genlab.music.evaluate import check_tune

    results, playable = [], []
    for tune, prompt in zip(tunes, prompts, strict=True):
        wanted = parse_description(prompt)
        playable.append(check_tune(m, tune.tokens).playable)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                facts = analysed_facts(m.abc(tune))
        except (ConversionError, GenlabError):
            facts = None
        if facts is None:
            results.append({k: False for k in ("key_written", "meter", "key_and_meter_written",
                                               "key_and_meter_analysed", "key_analysed", "mode_written")})
        else:
            results.append(agreement(wanted, facts))
    return results, playable


def music_bench(args) -> dict:
    run, train_s = trained(args.music_run, Path(args.out) / "folk", "a GPT with --descriptions", "music:folk",
                           args.music_minutes, family="gpt", tokenizer="abc", descriptions=True)
    m = api.load(run)
    if not getattr(m.tokenizer, "described", False):
        raise SystemExit(f"{run} was not trained with --descriptions")
    prompts = held_out_descriptions(m, args.music_num)
    controls = dict(temperature=args.temperature, max_new_tokens=512)
    t0 = time.perf_counter()
    by_prompt: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        by_prompt.setdefault(p, []).append(i)
    tunes: list = [None] * len(prompts)
    for k, (p, where) in enumerate(by_prompt.items()):  # one batch per distinct prompt
        drawn = m.tunes(p, num_samples=len(where), seed=100 + k, **controls)
        for i, tune in zip(where, drawn, strict=True):
            tunes[i] = tune
    sample_s = time.perf_counter() - t0
    free = m.tunes("", num_samples=len(prompts), seed=7, **controls)  # the chance baseline
    say(f"  sampled {len(prompts)} prompted and {len(free)} unprompted tunes; judging them with music21")
    cond, cond_ok = judge(m, tunes, prompts)
    base, base_ok = judge(m, free, prompts)
    rc, rb = agreement_rates(cond), agreement_rates(base)
    real = corpus_agreement("music:folk", n=min(200, len(prompts)))
    keys = ("key_written", "mode_written", "meter", "key_and_meter_written", "key_analysed", "key_and_meter_analysed")
    print(f"\ntext-to-music on music:folk ({len(prompts)} held-out descriptions, temperature {args.temperature}; "
          f"{len(by_prompt)} distinct prompts)")
    print(f"{'agreement with the prompt':28} {'described':>10} {'no description':>15} {'real tunes':>11}")
    for k in keys:
        print(f"{k:28} {rc.get(k, 0):10.3f} {rb.get(k, 0):15.3f} {real.get(k, float('nan')):11.3f}")
    print(f"{'parse rate':28} {np.mean(cond_ok):10.3f} {np.mean(base_ok):15.3f}")
    print(f"sampling: {len(prompts) / sample_s:.2f} tunes/s" + (f"; training: {train_s / 60:.1f} min wall"
                                                                 if train_s is not None else ""))
    agree = rc.get("key_and_meter_written", 0.0)
    print(f"aim: key-and-meter agreement >= 0.80: {agree:.3f} ({'met' if agree >= 0.8 else 'not met'}) against "
          f"{rb.get('key_and_meter_written', 0.0):.3f} without a description")
    return {"music_agreement": agree, "music_agreement_unconditioned": rb.get("key_and_meter_written", 0.0),
            "music_agreement_analysed": rc.get("key_and_meter_analysed", 0.0),
            "music_agreement_analysed_unconditioned": rb.get("key_and_meter_analysed", 0.0),
            "music_agreement_analysed_real": real.get("key_and_meter_analysed"),
            "music_key_agreement": rc.get("key_written", 0.0), "music_meter_agreement": rc.get("meter", 0.0),
            "music_parse_rate": round(float(np.mean(cond_ok)), 4),
            "music_parse_rate_unconditioned": round(float(np.mean(base_ok)), 4),
            "music_train_minutes": None if train_s is None else round(train_s / 60, 2),
            "tunes_per_s": round(len(prompts) / sample_s, 3), "music_num": len(prompts)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["images", "music", "both"], default="both")
    p.add_argument("--minutes", type=float, default=14.0, help="image training budget (the aim: at most 15)")
    p.add_argument("--num", type=int, default=500, help="held-out captions per split")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps per sample")
    p.add_argument("--width", type=int, default=16, help="U-Net channels at full resolution")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--snr-gamma", type=float, default=5.0, help="Min-SNR loss weighting (0 = plain MSE)")
    p.add_argument("--coords", action=argparse.BooleanOptionalAction, default=True, help="CoordConv channels")
    p.add_argument("--run", help="measure this trained image run instead of training one")
    p.add_argument("--music-minutes", type=float, default=10.0, help="music training budget")
    p.add_argument("--music-num", type=int, default=200, help="held-out descriptions to prompt with")
    p.add_argument("--music-run", help="measure this trained music run instead of training one")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--out", default="runs/bench-prompted")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    nulls = {"image_match_seen": None, "image_match_unseen": None, "music_agreement": None,
             "music_agreement_unconditioned": None}
    result = dict(nulls)
    if args.only in ("images", "both"):
        result |= image_bench(args)
    if args.only in ("music", "both"):
        result |= music_bench(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
