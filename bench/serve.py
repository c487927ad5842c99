"""Serving throughput: genlab serve with continuous batching against the same server answering one request at a
time (`--max-batch 1`), in the same run, on the same model.

The model is the small tiny-shakespeare model (nanoGPT's CPU size: 4 layers, 128 wide, here with a 256-token
context so a prompt and 64 new tokens fit), trained briefly on ../shared/data/tinyshakespeare (speed does not
depend on how well it writes). Each server runs in its own process, as `genlab serve` runs; clients are threads
that each send completions (a line of Shakespeare as the prompt, 64 new tokens, temperature 0.8, top-k 40, its own
seed) one after another over a kept-alive connection, at concurrency 1, 8 and 32. Then the concurrency-32 runs
again with one core kept busy by another process (a laptop is rarely idle).

    python bench/serve.py [--requests-per-client 4] [--data ../shared/data/tinyshakespeare/input.txt]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"
NEW_TOKENS = 64
LEVELS = (1, 8, 32)


def train_model(data: Path, out: Path) -> Path:
    from genlab import api

    return Path(api.train(str(data), family="gpt", out=str(out), n_layer=4, n_head=4, n_embd=128, block_size=256,
                          max_steps=60, eval_interval=60, eval_batches=1, batch_size=12, seed=0, quiet=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(run: Path, max_batch: int):
    """`genlab serve RUN --max-batch N` in its own process, until the block ends."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        process = subprocess.Popen([sys.executable, "-m", "genlab", "serve", str(run), "--name", "bench", "--port",
                                    str(port), "--max-batch", str(max_batch), "--store", f"{tmp}/feedback.sqlite"],
                                   stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 120
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                if process.poll() is not None or time.time() > deadline:
                    raise SystemExit("genlab serve did not start")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(10)


def load(url: str, prompts: list[str], clients: int, per_client: int) -> dict:
    """`clients` threads each sending `per_client` completions back to back: requests/s and latency percentiles."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as http:
            for j in range(per_client):
                i = k * per_client + j
                body = {"model": "bench", "prompt": prompts[i % len(prompts)], "max_tokens": NEW_TOKENS,
                        "temperature": 0.8, "top_k": 40, "seed": i}
                t0 = time.perf_counter()
                r = http.post("/v1/completions", json=body)
                elapsed = time.perf_counter() - t0
                with lock:
                    if r.status_code != 200 or r.json()["usage"]["completion_tokens"] != NEW_TOKENS:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    ms = sorted(x * 1000 for x in latencies)
    return {"rps": len(ms) / wall, "p50_ms": statistics.median(ms), "p99_ms": ms[min(len(ms) - 1,
                                                                                      round(0.99 * (len(ms) - 1)))],
            "tokens_per_s": len(ms) * NEW_TOKENS / wall}


@contextlib.contextmanager
def busy_core():
    """Another process spinning on one core for as long as the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-client", type=int, default=4)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"skipped: {args.data} not found (tiny-shakespeare lives in ../shared/data)")
    lines = [x.strip() for x in args.data.read_text(encoding="utf-8").splitlines() if 16 <= len(x.strip()) <= 60]
    prompts = lines[:: max(1, len(lines) // 512)]

    results: dict[tuple[str, int, bool], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("training the bench model (4 layers, 128 wide, 256-token context) on tiny-shakespeare ...",
              file=sys.stderr)
        run = train_model(args.data, Path(tmp) / "shakespeare")
        for mode, max_batch in (("batched", 32), ("one at a time", 1)):
            with server(run, max_batch) as url:
                load(url, prompts, 4, 2)  # warm-up: the first requests pick and build the decoding paths
                for clients in LEVELS:
                    per_client = args.requests_per_client * (4 if clients == 1 else 1)
                    results[mode, clients, False] = load(url, prompts, clients, per_client)
                    print(f"  {mode:>13}, {clients:>2} clients: {results[mode, clients, False]['rps']:.2f} "
                          "requests/s", file=sys.stderr)
                with busy_core():
                    results[mode, 32, True] = load(url, prompts, 32, args.requests_per_client)

    print(f"\ngenlab serve, {NEW_TOKENS}-token completions, 4-layer 128-wide GPT, {os.cpu_count()} cores")
    print(f"{'clients':>8} {'mode':>14} {'requests/s':>11} {'tokens/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'batched / one at a time':>24}")
    for clients, busy in [(c, False) for c in LEVELS] + [(32, True)]:
        for mode in ("batched", "one at a time"):
            r = results[mode, clients, busy]
            ratio = r["rps"] / results["one at a time", clients, busy]["rps"]
            label = f"{clients}{' +busy' if busy else ''}"
            print(f"{label:>8} {mode:>14} {r['rps']:>11.2f} {r['tokens_per_s']:>9.0f} {r['p50_ms']:>8.0f} "
                  f"{r['p99_ms']:>8.0f} {ratio if mode == 'batched' else 1.0:>23.2f}x")
    quiet32, busy32 = results["batched", 32, False], results["batched", 32, True]
    print(f"\nwith one core busy, batched serving keeps {busy32['rps'] / quiet32['rps']:.0%} of its quiet throughput")
    figures = {}
    for clients in LEVELS:
        figures[f"rps_c{clients}"] = round(results["batched", clients, False]["rps"], 3)
        figures[f"rps_c{clients}_unbatched"] = round(results["one at a time", clients, False]["rps"], 3)
        figures[f"p50_ms_c{clients}"] = round(results["batched", clients, False]["p50_ms"], 1)
        figures[f"p99_ms_c{clients}"] = round(results["batched", clients, False]["p99_ms"], 1)
    figures["p99_ms_c32_unbatched"] = round(results["one at a time", 32, False]["p99_ms"], 1)
    figures["speedup_c32"] = round(figures["rps_c32"] / figures["rps_c32_unbatched"], 2)
    figures["rps_c32_busy"] = round(busy32["rps"], 3)
    figures["rps_c32_busy_unbatched"] = round(results["one at a time", 32, True]["rps"], 3)
    figures["busy_kept_c32"] = round(busy32["rps"] / quiet32["rps"], 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
