"""The text watermark measured: how often it is found, how often it is imagined, what it costs, and what survives.

On the tiny-shakespeare bench model (4 layers, 128 wide, character tokens, trained briefly on
../shared/data/tinyshakespeare), sampling at temperature 1.0, top-k off, across `--keys` keys:
- false positives: unwatermarked samples of 200 tokens, and windows of 200 characters of Shakespeare itself,
  scored for every key (z above the threshold counts);
- true positives: watermarked samples scored on their first 50, 100 and 200 tokens, and on 200 tokens after 10, 20
  and 30% of them were replaced by random tokens (an edit the marker cannot undo);
- the perplexity cost: the model's own perplexity of watermarked samples over that of unwatermarked ones.

    python bench/watermark.py [--keys 20] [--plain 1000] [--marked-per-key 10] [--delta 2.0] [--gamma 0.25]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"
LENGTH = 200


def train_model(data: Path, out: Path) -> Path:
    from genlab import api

    return Path(api.train(str(data), family="gpt", out=str(out), n_layer=4, n_head=4, n_embd=128, block_size=256,
                          max_steps=600, eval_interval=600, eval_batches=4, batch_size=32, seed=0, quiet=True))


def sample_ids(m, n: int, seed: int, key: str | None, args) -> list[list[int]]:
    """n samples of LENGTH tokens (as token ids), in batches, from a newline."""
    out = []
    for start in range(0, n, 50):
        texts = m.generate(prompt="\n", max_new_tokens=LENGTH, num_samples=min(50, n - start), seed=seed + start,
                           temperature=1.0, watermark_key=key, watermark_gamma=args.gamma,
                           watermark_delta=args.delta)
        out += [m.known_tokens(t) for t in ([texts] if isinstance(texts, str) else texts)]
    return out


@torch.inference_mode()
def perplexity(m, samples: list[list[int]]) -> float:
    """The model's perplexity of the samples' tokens (each after a newline), unwatermarked."""
    start = m.known_tokens("\n")
    nll, count = 0.0, 0
    for ids in samples:
        x = torch.tensor([start + ids], device=m.device)
        logits = m.model(x[:, :-1], m.model.new_cache(1, x.size(1)))
        nll += torch.nn.functional.cross_entropy(logits[0].float(), x[0, 1:], reduction="sum").item()
        count += x.size(1) - 1
    return math.exp(nll / count)


def z_of(mark, ids: list[int], rate: float) -> float:
    green, scored = mark.green_count(ids)
    return (green - rate * scored) / math.sqrt(scored * rate * (1 - rate)) if scored else 0.0


def main() -> None:
    from genlab import api
    from genlab.safety.watermark import THRESHOLD

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--plain", type=int, default=1000, help="unwatermarked samples (each scored for every key)")
    parser.add_argument("--marked-per-key", type=int, default=10)
    parser.add_argument("--gamma", type=float, default=0.25)
    parser.add_argument("--delta", type=float, default=2.0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"skipped: {args.data} not found (tiny-shakespeare lives in ../shared/data)")

    with tempfile.TemporaryDirectory() as tmp:
        print("training the bench model on tiny-shakespeare ...", file=sys.stderr)
        m = api.load(train_model(args.data, Path(tmp) / "shakespeare"))
        keys = [f"bench-key-{k}" for k in range(args.keys)]
        marks = [m.watermark(k, args.gamma, args.delta) for k in keys]
        rates = [m.human_rate(mark) for mark in marks]  # each key's green share on the training text
        plain = sample_ids(m, args.plain, seed=1, key=None, args=args)
        human_ids = m.known_tokens(args.data.read_text(encoding="utf-8"))
        starts = np.linspace(0, len(human_ids) - LENGTH - 1, num=args.plain, dtype=int)
        human = [human_ids[s : s + LENGTH] for s in starts]
        rng = np.random.default_rng(0)
        vocab = m.model.config.vocab_size

        fp_samples = fp_human = total = 0
        uncalibrated_fp = 0
        mean_z_by_key, mean_z_uncalibrated = [], []
        found = {50: 0, 100: 0, 200: 0, "sub10": 0, "sub20": 0, "sub30": 0}
        marked_all = []
        for k, (key, mark, rate) in enumerate(zip(keys, marks, rates, strict=True)):
            zs = [z_of(mark, ids, rate) for ids in plain]
            raw = [z_of(mark, ids, args.gamma) for ids in plain]
            fp_samples += sum(z > THRESHOLD for z in zs)
            uncalibrated_fp += sum(z > THRESHOLD for z in raw)
            fp_human += sum(z_of(mark, ids, rate) > THRESHOLD for ids in human)
            total += len(plain)
            mean_z_by_key.append(float(np.mean(zs)))
            mean_z_uncalibrated.append(float(np.mean(raw)))
            marked = sample_ids(m, args.marked_per_key, seed=10_000 + 100 * k, key=key, args=args)
            marked_all += marked
            for ids in marked:
                for n in (50, 100, 200):
                    found[n] += z_of(mark, ids[:n], rate) > THRESHOLD
                for share in (10, 20, 30):
                    edited = list(ids)
                    for i in rng.choice(len(edited), size=len(edited) * share // 100, replace=False):
                        edited[i] = int(rng.integers(vocab))
                    found[f"sub{share}"] += z_of(mark, edited, rate) > THRESHOLD
            print(f"  key {k + 1}/{len(keys)}: mean z of unwatermarked samples {mean_z_by_key[-1]:+.2f} "
                  f"(uncalibrated {mean_z_uncalibrated[-1]:+.2f})", file=sys.stderr)
        n_marked = len(marked_all)
        ppl_plain, ppl_marked = perplexity(m, plain[:200]), perplexity(m, marked_all[:200])

    figures = {"tpr_50": found[50] / n_marked, "tpr_100": found[100] / n_marked, "tpr_200": found[200] / n_marked,
               "fpr": fp_samples / total, "fpr_human": fp_human / total, "fpr_uncalibrated": uncalibrated_fp / total,
               "ppl_plain": ppl_plain, "ppl_marked": ppl_marked, "ppl_cost": ppl_marked / ppl_plain - 1,
               "tpr_200_sub10": found["sub10"] / n_marked, "tpr_200_sub20": found["sub20"] / n_marked,
               "tpr_200_sub30": found["sub30"] / n_marked,
               "mean_z_range": [min(mean_z_by_key), max(mean_z_by_key)],
               "mean_z_range_uncalibrated": [min(mean_z_uncalibrated), max(mean_z_uncalibrated)]}
    print(f"\ngreen-list watermark, gamma {args.gamma}, delta {args.delta}, threshold z = {THRESHOLD:g}, "
          f"{len(keys)} keys, character model on tiny-shakespeare")
    print(f"{'measure':<52} {'value':>10}")
    rows = [("detected, first 50 tokens", figures["tpr_50"]), ("detected, first 100 tokens", figures["tpr_100"]),
            ("detected, 200 tokens", figures["tpr_200"]),
            ("detected, 200 tokens, 10% replaced", figures["tpr_200_sub10"]),
            ("detected, 200 tokens, 20% replaced", figures["tpr_200_sub20"]),
            ("detected, 200 tokens, 30% replaced", figures["tpr_200_sub30"]),
            (f"false positives, {args.plain} unwatermarked samples x {len(keys)} keys", figures["fpr"]),
            ("false positives, same, uncalibrated (chance = gamma)", figures["fpr_uncalibrated"]),
            (f"false positives, {args.plain} windows of Shakespeare x {len(keys)} keys", figures["fpr_human"])]
    for name, value in rows:
        print(f"{name:<52} {value:>10.3f}")
    print(f"{'perplexity, unwatermarked -> watermarked':<52} {ppl_plain:>5.2f} -> {ppl_marked:.2f} "
          f"({figures['ppl_cost']:+.1%})")
    lo, hi = figures["mean_z_range"]
    ulo, uhi = figures["mean_z_range_uncalibrated"]
    print(f"mean z of unwatermarked samples per key: {lo:+.2f} .. {hi:+.2f} calibrated, {ulo:+.2f} .. {uhi:+.2f} "
          "against gamma")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else [round(x, 3) for x in v] if isinstance(v, list)
                      else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
