"""`genlab demo`: train a small GPT on Python's documentation for a couple of minutes, then sample;
then a small GPT on folk tunes, written as .abc, .mid and .wav; then a class-conditional diffusion
model on handwritten digits, written as a grid of PNGs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from genlab import api


def demo(out: str = "runs/demo", minutes: float = 2.0) -> None:
    run = Path(out)
    if (run / "config.json").exists():
        shutil.rmtree(run / "checkpoints", ignore_errors=True)
        for f in run.iterdir():
            if f.is_file():
                f.unlink()
    print(f"genlab demo: training a character-level GPT on text:pydocs for {minutes:g} minutes", file=sys.stderr)
    api.train("text:pydocs", family="gpt", out=str(run), n_layer=4, n_head=4, n_embd=128, block_size=128,
              batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=100, eval_interval=500,
              max_minutes=minutes)  # the trainer plans the schedule for the steps that fit
    metrics = api.evaluate(run)
    print(f"\nvalidation: loss {metrics['val_loss']:.3f} nats/char, {metrics['bits_per_char']:.3f} bits/char")
    m = api.load(run)
    for prompt in ("The ", "A list is "):
        text = m.generate(prompt=prompt, max_new_tokens=300, temperature=0.8, top_k=40, seed=1)
        print(f"\n--- prompt {prompt!r} ---\n{prompt}{text}")
    # the three parts together stay within ~5 minutes on 2 cores
    demo_music(f"{out}-music", minutes=min(minutes, 1.0))
    demo_images(f"{out}-images", minutes=min(minutes, 1.25))


def demo_music(out: str, minutes: float = 1.5) -> list[Path]:
    """Train a small GPT on music21's folk tunes (ABC in musical units), then write tunes as .abc/.mid/.wav."""
    run = Path(out)
    if (run / "config.json").exists():
        shutil.rmtree(run, ignore_errors=True)
    print(f"\ngenlab demo: training a GPT on music:folk tunes for {minutes:g} minutes", file=sys.stderr)
    api.train("music:folk", family="gpt", out=str(run), n_layer=4, n_head=4, n_embd=128, block_size=256,
              batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=50, eval_interval=250, max_minutes=minutes)
    m = api.load(run)
    tunes = m.generate("M:6/8 K:Dmaj", num_samples=4, temperature=0.8, seed=1)
    paths = m.write(tunes, run / "tunes")
    good = next((t for t in tunes if not t.error), tunes[0])
    print(f"\n--- a tune (prompt 'M:6/8 K:Dmaj') ---\n{m.abc(good)}")
    print(f"wrote {len(paths)} files to {run / 'tunes'}: {', '.join(p.name for p in paths[:3])}, ...")
    return paths


def demo_images(out: str, minutes: float = 1.5) -> list[Path]:
    """Train a conditional diffusion model on scikit-learn's digits, then write a grid: a row per digit."""
    run = Path(out)
    if (run / "config.json").exists():
        shutil.rmtree(run, ignore_errors=True)
    print(f"\ngenlab demo: training a conditional diffusion model on images:digits for {minutes:g} minutes",
          file=sys.stderr)
    api.train("images:digits", family="diffusion", conditional=True, out=str(run), eval_interval=500,
              max_minutes=minutes)
    m = api.load(run)
    images = m.generate(num_samples=40, seed=1)  # labels 0..9 in turn: four of each digit
    paths = m.write(images, run / "samples")
    print(f"wrote {paths[0]} (a grid of 40 digits, 0-9 in turn; {paths[1].name} to view) and {len(paths) - 2} "
          "single images")
    return paths
