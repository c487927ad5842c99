"""The operator's watermark in the server: every completion and tune is marked with one key, batched requests
still match the library draw for draw, provenance names the key's id only, and POST /v1/watermark/detect finds it."""

from __future__ import annotations

import threading

import httpx2 as httpx
import pytest

from tests.serve.conftest import Running

KEY = "operator-secret"


@pytest.fixture(scope="module")
def marking(models):
    from genlab.serve import create_app

    running = Running(create_app(models, watermark_key=KEY))
    yield running
    running.stop()


def test_batched_completions_carry_the_operators_mark(marking, models):
    prompts = [("The ", 1), ("def ", 2), ("import ", 3), ("In ", 4)]
    answers: dict[int, dict] = {}

    def ask(i: int) -> None:
        prompt, seed = prompts[i]
        answers[i] = httpx.post(marking.url + "/v1/completions", json={
            "model": "docs", "prompt": prompt, "max_tokens": 200, "seed": seed, "temperature": 1.0}, timeout=120).json()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (prompt, seed) in enumerate(prompts):
        choice = answers[i]["choices"][0]
        same = models["docs"].generate(prompt=prompt, max_new_tokens=200, seed=seed, temperature=1.0,
                                       watermark_key=KEY)
        assert choice["text"] == same  # the batcher applies the mark row by row, as the token loop does
        assert choice["provenance"]["watermark"]["key_id"] and KEY not in str(answers[i])
        found = httpx.post(marking.url + "/v1/watermark/detect", json={"model": "docs", "text": choice["text"]},
                           timeout=60).json()
        assert found["watermarked"] and found["z"] > 4, found
    cards = {m["id"]: m["genlab"]["watermarked"] for m in httpx.get(marking.url + "/v1/models").json()["data"]}
    assert cards == {"docs": True, "digits": False, "folk": True}


def test_tunes_are_marked_and_unmarked_text_is_not_found(marking, server):
    tune = httpx.post(marking.url + "/v1/music/generations", json={
        "model": "folk", "prompt": "M:6/8", "max_tokens": 300, "seed": 3, "temperature": 1.0,
        "formats": ["abc"]}, timeout=120).json()["data"][0]
    found = httpx.post(marking.url + "/v1/watermark/detect", json={"model": "folk", "text": tune["abc"]},
                       timeout=120).json()
    assert found["watermarked"], found
    plain = httpx.post(server.url + "/v1/completions", json={
        "model": "docs", "prompt": "The ", "max_tokens": 200, "seed": 1, "temperature": 1.0}, timeout=60).json()
    assert "watermark" not in plain["choices"][0]["provenance"] or not plain["choices"][0]["provenance"]["watermark"]
    found = httpx.post(marking.url + "/v1/watermark/detect", json={
        "model": "docs", "text": plain["choices"][0]["text"]}, timeout=60).json()
    assert not found["watermarked"] and found["z"] < 4
    refused = httpx.post(server.url + "/v1/watermark/detect", json={"model": "docs", "text": "x"}, timeout=10)
    assert refused.status_code == 400 and "--watermark-key" in refused.json()["error"]["message"]
    images = httpx.post(marking.url + "/v1/watermark/detect", json={"model": "digits", "text": "x"}, timeout=10)
    assert images.status_code == 400 and "watermark" in images.json()["error"]["message"]
