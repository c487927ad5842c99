"""Distributed data parallel scaling: tokens/s with 1 and 2 processes (torchrun, gloo on CPU, nccl on GPU).

nanoGPT's small shakespeare-char config (n_layer 4, n_head 4, n_embd 128, block 64, batch 12 per process),
trained through `genlab train --nproc-per-node N`. One process may use every core through intra-op
threads; under torchrun each process gets one thread (OMP_NUM_THREADS=1). On a 2-core machine the
two set-ups use the same silicon, so expect a modest figure; on GPUs each process has its own device.

    python bench/ddp.py [--steps 300] [--data ../shared/data/tinyshakespeare/input.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"
MODEL = ["--family", "gpt", "--n-layer", "4", "--n-head", "4", "--n-embd", "128", "--block-size", "64",
         "--batch-size", "12", "--lr", "1e-3", "--warmup-steps", "100", "--log-interval", "1", "--quiet"]


def tokens_per_second(data: str, out: Path, steps: int, nproc: int | None, threads: int | None = None) -> float:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "genlab", "train", data, *MODEL, "--max-steps", str(steps),
           "--eval-interval", str(steps), "--eval-batches", "2", "--out", str(out)]
    if nproc:
        cmd += ["--nproc-per-node", str(nproc)]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tok_per_s"] for r in rows if "tok_per_s" in r][10:]  # global tokens per second, after warm-up
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    if not Path(args.data).is_file():
        print(f"skipped: {args.data} not found", file=sys.stderr)
        print(json.dumps({"skipped": True}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        one = tokens_per_second(args.data, Path(tmp) / "one", args.steps, None)
        one_thread = tokens_per_second(args.data, Path(tmp) / "one1", args.steps, None, threads=1)
        two = tokens_per_second(args.data, Path(tmp) / "two", args.steps, 2)
    print(f"{'set-up':<40}{'tokens/s':>10}{'vs 1 process':>14}")
    print(f"{'1 process, all cores (intra-op threads)':<40}{one:>10,.0f}{1.0:>14.2f}")
    print(f"{'1 process, 1 thread':<40}{one_thread:>10,.0f}{one_thread / one:>14.2f}")
    print(f"{'2 processes (torchrun, 1 thread each)':<40}{two:>10,.0f}{two / one:>14.2f}")
    print(f"scaling efficiency 2 processes vs 1 (all cores): {two / (2 * one):.0%}; "
          f"vs 1 thread per process: {two / (2 * one_thread):.0%}")
    print(json.dumps({"tokens_per_s_1proc": round(one), "tokens_per_s_1proc_1thread": round(one_thread),
                      "tokens_per_s_2proc": round(two), "speedup_2proc": round(two / one, 3),
                      "scaling_efficiency": round(two / (2 * one), 3),
                      "scaling_efficiency_per_thread": round(two / (2 * one_thread), 3)}))


if __name__ == "__main__":
    main()
