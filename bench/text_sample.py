"""Sampling speed: genlab's KV-cache sampler against transformers' generate on identical weights.

Both models are the same GPT (genlab's, exported with `write_hf_gpt2` and loaded as GPT2LMHeadModel),
both sample 256 new tokens at temperature 0.8, top-k 40, at batch 1 and 8, at nanoGPT's small CPU size
(n_layer 4, n_embd 128) and at its shakespeare size (n_layer 6, n_embd 384). The models use GPT-2's
tanh GELU, as the issue's peer figures did (transformers runs it as five separate ops, `--activation
gelu` compares with the exact GELU, one op on both sides). Batch-1 decoding must read every weight
once per token, so the memory read bandwidth, measured here, bounds it. Batch 1 also runs with bf16 and
int8 weights (`--precision`), which read a half and a quarter of the bytes.

    python bench/text_sample.py [--repeats 5] [--activation gelu_tanh|gelu]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from genlab.exporting import write_hf_gpt2
from genlab.families.gpt import GPT, GPTConfig
from genlab.sampling.decode import decoding_model
from genlab.sampling.logits import SamplingSettings
from genlab.sampling.tokens import sample_tokens

SIZES = {"small": dict(n_layer=4, n_head=4, n_embd=128), "medium": dict(n_layer=6, n_head=6, n_embd=384)}
NEW_TOKENS, VOCAB, BLOCK = 256, 65, 512


def read_bandwidth_gbs() -> float:
    """Bytes per second of a streaming read (a sum over 512 MB), best of 5."""
    x = torch.ones(128 * 1024 * 1024, dtype=torch.float32)
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        x.sum()
        best = max(best, x.numel() * 4 / (time.perf_counter() - t0))
    return best / 1e9


def time_genlab(model, batch: int) -> float:
    s = SamplingSettings(max_new_tokens=NEW_TOKENS, temperature=0.8, top_k=40, num_samples=batch, seed=0)
    prompt = torch.tensor([0])
    t0 = time.perf_counter()
    n = 0
    for _ in sample_tokens(model, prompt, s, torch.Generator().manual_seed(0)):
        n += 1
    assert n == NEW_TOKENS
    return batch * NEW_TOKENS / (time.perf_counter() - t0)


def time_transformers(hf, batch: int) -> float:
    ids = torch.zeros(batch, 1, dtype=torch.long)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=0.8, top_k=40,
                          max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, pad_token_id=0)
    assert out.shape[1] == NEW_TOKENS + 1
    return batch * NEW_TOKENS / (time.perf_counter() - t0)


def best_of(fn, repeats: int, *args) -> float:
    fn(*args)  # warm up allocator and kernels
    return max(fn(*args) for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--activation", default="gelu_tanh", choices=["gelu_tanh", "gelu"],
                    help="the models' GELU: GPT-2's tanh approximation (the issue's peer figures) or exact")
    args = ap.parse_args()
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    bandwidth = read_bandwidth_gbs()
    figures: dict = {"activation": args.activation, "read_bandwidth_gbs": round(bandwidth, 2)}
    rows = []
    for size, dims in SIZES.items():
        model = GPT(GPTConfig(vocab_size=VOCAB, block_size=BLOCK, activation=args.activation, **dims)).eval()
        with tempfile.TemporaryDirectory() as tmp:
            hf = GPT2LMHeadModel.from_pretrained(write_hf_gpt2(model, Path(tmp)), attn_implementation="sdpa").eval()
        weight_bytes = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "wpe" not in n)
        limit = bandwidth * 1e9 / weight_bytes
        figures[f"{size}_weight_mb"] = round(weight_bytes / 1e6, 2)
        figures[f"{size}_bandwidth_limit_tok_s"] = round(limit)
        for batch in (1, 8):
            decoder = decoding_model(model, batch)  # what genlab.load(...).generate uses (chosen by measurement)
            ours = best_of(time_genlab, args.repeats, decoder, batch)
            theirs = best_of(time_transformers, args.repeats, hf, batch)
            key = f"{size}_b{batch}"
            figures.update({f"{key}_genlab_tok_s": round(ours), f"{key}_transformers_tok_s": round(theirs),
                            f"{key}_ratio": round(ours / theirs, 2)})
            rows.append((size, batch, ours, theirs, ours / theirs, ours / limit if batch == 1 else None))
        for precision in ("bf16", "int8"):  # fewer bytes per weight; quality cost: bench/text_train.py
            reduced = best_of(time_genlab, args.repeats, decoding_model(model, 1, precision), 1)
            figures[f"{size}_b1_genlab_{precision}_tok_s"] = round(reduced)
            rows.append((f"{size} {precision}", 1, reduced, None, None, None))

    print(f"read bandwidth {bandwidth:.1f} GB/s; batch-1 limit = bandwidth / fp32 weight bytes; {args.activation}",
          file=sys.stderr)
    print(f"{'size':<14}{'batch':>6}{'genlab tok/s':>14}{'hf tok/s':>10}{'ratio':>8}{'of limit':>10}")
    for size, batch, ours, theirs, ratio, share in rows:
        hf = "-" if theirs is None else f"{theirs:,.0f}"
        times = "-" if ratio is None else f"{ratio:.2f}"
        print(f"{size:<14}{batch:>6}{ours:>14,.0f}{hf:>10}{times:>8}{'' if share is None else f'{share:.0%}':>10}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
