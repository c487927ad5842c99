"""Continuous batching in the server: concurrent completions of one model decode together, each still exactly what
genlab.load's generate() makes for it alone, and a client that leaves frees its row at once."""

from __future__ import annotations

import json
import threading
import time

import httpx2 as httpx
import pytest

from genlab import api
from tests.serve.conftest import Running


@pytest.fixture(scope="module")
def batching(models):
    from genlab.serve import create_app

    running = Running(create_app({"docs": models["docs"]}))
    yield running
    running.stop()


REQUESTS = [{"prompt": p, "max_tokens": 40, "seed": seed, "temperature": temperature, "top_k": top_k, "stop": stop}
            for p, seed, temperature, top_k, stop in [
                ("The ", 1, 0.8, None, None), ("def ", 2, 1.0, 20, ["\n"]), ("import ", 3, 0.0, None, None),
                ("In ", 4, 1.3, 5, ["e", "a"]), ("", 5, 0.7, None, None), ("class A:", 6, 0.9, None, ["  "]),
                ("x = ", 7, 1.0, 40, None), ("# ", 8, 0.5, 3, None), ("Return ", 9, 1.0, None, None),
                ("for i in ", 10, 1.1, None, [")"]), ("if ", 11, 0.8, 8, None), ("The ", 12, 0.8, None, None)]]


def test_concurrent_requests_decode_together_and_match_the_library(batching, models):
    answers: dict[int, dict] = {}

    def ask(i: int) -> None:
        r = httpx.post(batching.url + "/v1/completions", json={"model": "docs", **REQUESTS[i]}, timeout=60)
        answers[i] = r.json()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(REQUESTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert httpx.get(batching.url + "/health").json()["models"]["docs"]["peak_batched"] > 1  # they shared steps
    for i, request in enumerate(REQUESTS):
        choice = answers[i]["choices"][0]
        same = models["docs"].generate(prompt=request["prompt"], max_new_tokens=40, seed=request["seed"],
                                       temperature=request["temperature"], top_k=request["top_k"],
                                       stop=request["stop"] or [])
        assert choice["text"] == same, request  # batched, each request still draws what it draws alone
        assert choice["finish_reason"] == models["docs"].endings()[0]["finish_reason"]
        assert answers[i]["usage"]["completion_tokens"] == models["docs"].last_completion_tokens[0]
        assert choice["provenance"]["seed"] == request["seed"]


def test_a_batched_stream_is_the_whole_completion_piece_by_piece(batching):
    body = {"model": "docs", "prompt": "def ", "max_tokens": 50, "seed": 21}
    whole = httpx.post(batching.url + "/v1/completions", json=body, timeout=60).json()["choices"][0]["text"]
    pieces = []
    with httpx.stream("POST", batching.url + "/v1/completions", json={**body, "stream": True}, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                pieces += [c["text"] for c in json.loads(line[6:])["choices"]]
    assert "".join(pieces) == whole and len(pieces) > 5


def test_several_prompts_in_one_request_join_the_batch(batching, models):
    out = httpx.post(batching.url + "/v1/completions", json={"model": "docs", "prompt": ["A", "B", "C"],
                                                             "max_tokens": 10, "seed": 4}, timeout=60).json()
    assert [c["text"] for c in out["choices"]] == [models["docs"].generate(prompt=p, max_new_tokens=10, seed=4)
                                                   for p in "ABC"]
    assert out["usage"]["prompt_tokens"] == 3 and out["usage"]["completion_tokens"] == 30


def test_a_client_that_leaves_frees_its_row(tmp_path):
    from genlab.serve import create_app, load_models

    run = api.train("text:pydocs", family="lstm", out=str(tmp_path / "lstm"), n_layer=1, n_embd=16, block_size=16,
                    max_steps=2, eval_interval=2, eval_batches=1, quiet=True)
    running = Running(create_app(load_models([run])))  # a recurrent model: any length joins the batch
    try:
        with httpx.stream("POST", running.url + "/v1/completions", timeout=60,
                          json={"model": "lstm", "prompt": "", "stream": True, "max_tokens": 100_000 // 60}) as r:
            for i, _ in enumerate(r.iter_lines()):
                if i > 5:
                    break
        health = httpx.get(running.url + "/health").json()["models"]["lstm"]
        assert health["peak_batched"] == 1  # it was decoding in the batch
        deadline = time.time() + 10
        while (health["batched"] or health["queue"]) and time.time() < deadline:
            time.sleep(0.05)
            health = httpx.get(running.url + "/health").json()["models"]["lstm"]
        assert health["batched"] == 0 and health["queue"] == 0
        r = httpx.post(running.url + "/v1/completions", json={"model": "lstm", "prompt": "x", "max_tokens": 3})
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
    finally:
        running.stop()
