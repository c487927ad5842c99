"""`genlab demo`: train a small GPT on Python's documentation for a couple of minutes, then sample."""

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
              batch_size=16, lr=2e-3, min_lr=2e-4, warmup_steps=100, max_steps=5000, eval_interval=500,
              max_minutes=minutes, lr_decay_steps=int(minutes * 60 * 30))
    metrics = api.evaluate(run)
    print(f"\nvalidation: loss {metrics['val_loss']:.3f} nats/char, {metrics['bits_per_char']:.3f} bits/char")
    m = api.load(run)
    for prompt in ("The ", "A list is "):
        text = m.generate(prompt=prompt, max_new_tokens=300, temperature=0.8, top_k=40, seed=1)
        print(f"\n--- prompt {prompt!r} ---\n{prompt}{text}")
