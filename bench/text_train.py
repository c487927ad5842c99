"""Training speed and quality: nanoGPT's CPU recipe on tiny-shakespeare through genlab's own trainer.

nanoGPT (n_layer 4, n_head 4, n_embd 128, block 64, batch 12, lr 1e-3, warmup 100, cosine to 1e-4 over
2000 iterations, dropout 0, char level, last 10% for validation) reached val loss 1.886 at a median
25.7 ms/iteration on this machine kind. We run the same recipe and print the ratio, the share of the
fp32 matmul peak measured in this run (model FLOPs = 6 x parameters per token), then nanoGPT's
shakespeare size (n_layer 6, n_head 6, n_embd 384, block 256, batch 12) for 200 iterations in fp32
and in bf16 autocast.

    python bench/text_train.py [--iters 2000] [--large-iters 200] [--data ../shared/data/tinyshakespeare/input.txt]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from genlab import api

NANOGPT_MS, NANOGPT_VAL = 25.7, 1.886
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"
RECIPE = dict(family="gpt", tokenizer="char", n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12,
              lr=1e-3, min_lr=1e-4, warmup_steps=100, dropout=0.0, weight_decay=0.1, beta2=0.99, grad_clip=1.0,
              eval_batches=20, log_interval=1, seed=1337)
LARGE = {**RECIPE, "n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256}


def matmul_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def run(data: str, out: Path, steps: int, precision: str, settings: dict) -> dict:
    t0 = time.perf_counter()
    run_dir = api.train(data, out=str(out), max_steps=steps, eval_interval=steps, precision=precision, quiet=True,
                        **settings)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    ms = [r["ms_per_step"] for r in rows if "ms_per_step" in r][5:]  # skip warm-up steps
    val = [r["val_loss"] for r in rows if "val_loss" in r][-1]
    config = json.loads((run_dir / "config.json").read_text())
    n_params = config["n_params"] - config["model"]["block_size"] * config["model"]["n_embd"]  # without wpe
    median = statistics.median(ms)
    tokens_per_s = settings["batch_size"] * settings["block_size"] / (median / 1000)
    return {"median_ms": median, "tokens_per_s": tokens_per_s, "val_loss": val, "wall_s": wall,
            "model_gflops": 6 * n_params * tokens_per_s / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--large-iters", type=int, default=200)
    args = ap.parse_args()
    if not Path(args.data).is_file():
        print(f"skipped: {args.data} not found (tiny-shakespeare lives in ../shared/data)", file=sys.stderr)
        print(json.dumps({"skipped": True}))
        return
    peak32, peak16 = matmul_peak_gflops(torch.float32), matmul_peak_gflops(torch.bfloat16)
    with tempfile.TemporaryDirectory() as tmp:
        small = run(args.data, Path(tmp) / "small", args.iters, "fp32", RECIPE)
        large32 = run(args.data, Path(tmp) / "large32", args.large_iters, "fp32", LARGE)
        large16 = run(args.data, Path(tmp) / "large16", args.large_iters, "bf16", LARGE)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"matmul peak (2048^2, this run): fp32 {peak32:,.0f} GFLOP/s, bf16 {peak16:,.0f} GFLOP/s")
    print(f"{'run':<28}{'ms/iter':>9}{'tok/s':>10}{'% peak':>8}{'val loss':>10}{'wall s':>8}")
    for name, r, peak in [(f"small fp32 x{args.iters}", small, peak32), (f"large fp32 x{args.large_iters}",
                                                                         large32, peak32),
                          (f"large bf16 x{args.large_iters}", large16, peak16)]:
        print(f"{name:<28}{r['median_ms']:>9.1f}{r['tokens_per_s']:>10,.0f}{r['model_gflops'] / peak:>8.1%}"
              f"{r['val_loss']:>10.4f}{r['wall_s']:>8.1f}")
    print(f"nanoGPT small: {NANOGPT_MS} ms/iter, val {NANOGPT_VAL}; genlab/nanoGPT time ratio "
          f"{small['median_ms'] / NANOGPT_MS:.2f} (lower is faster); peak memory {peak_mb:,.0f} MB")
    print(f"bars: small val <= 1.90: {small['val_loss'] <= 1.90}; small ms <= {NANOGPT_MS}: "
          f"{small['median_ms'] <= NANOGPT_MS}; large bf16 <= 330 ms: {large16['median_ms'] <= 330}; "
          f"bf16 val within 1% of fp32: {abs(large16['val_loss'] / large32['val_loss'] - 1) <= 0.01}")
    print(json.dumps({
        "matmul_peak_fp32_gflops": round(peak32), "matmul_peak_bf16_gflops": round(peak16),
        "small_median_ms": round(small["median_ms"], 2), "small_tokens_per_s": round(small["tokens_per_s"]),
        "small_peak_share": round(small["model_gflops"] / peak32, 3), "small_val_loss": round(small["val_loss"], 4),
        "small_wall_s": round(small["wall_s"], 1), "nanogpt_ms": NANOGPT_MS,
        "small_time_ratio_vs_nanogpt": round(small["median_ms"] / NANOGPT_MS, 3),
        "large_fp32_median_ms": round(large32["median_ms"], 1), "large_bf16_median_ms": round(large16["median_ms"], 1),
        "large_fp32_val_loss": round(large32["val_loss"], 4), "large_bf16_val_loss": round(large16["val_loss"], 4),
        "peak_memory_mb": round(peak_mb),
    }))


if __name__ == "__main__":
    main()
