"""The HTTP API as its users reach it: the official openai package (and plain httpx) against a running server."""

from __future__ import annotations

import base64
import io
import json
import threading

import httpx2 as httpx
import openai
import pytest

from genlab.align.store import FeedbackStore
from tests.serve.conftest import Running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_models_are_listed_with_what_they_serve(client):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {"docs", "digits", "folk"}
    assert models["digits"].model_extra["genlab"]["endpoint"] == "/v1/images/generations"
    assert models["digits"].model_extra["genlab"]["classes"] == [str(i) for i in range(10)]  # its prompts
    assert models["docs"].model_extra["genlab"]["classes"] is None  # any text
    assert models["docs"].owned_by == "genlab" and client.models.retrieve("folk").id == "folk"


def test_completions_match_the_library_and_count_their_tokens(client, models):
    out = client.completions.create(model="docs", prompt="The ", max_tokens=12, n=2, seed=7)
    assert len(out.choices) == 2 and out.object == "text_completion"
    assert out.usage.completion_tokens == 24 and out.usage.prompt_tokens == 4
    assert {c.finish_reason for c in out.choices} == {"length"}
    same = models["docs"].generate(prompt="The ", max_new_tokens=12, num_samples=2, seed=7)
    assert [c.text for c in out.choices] == same  # the server samples exactly what genlab.load does
    provenance = out.choices[0].model_extra["provenance"]
    assert provenance["ai_generated"] and provenance["seed"] == 7 and provenance["model"] == "docs"
    assert out.choices[0].model_extra["output_id"] != out.choices[1].model_extra["output_id"]
    many = client.completions.create(model="docs", prompt=["A", "B", "C"], max_tokens=3, seed=1)
    assert [c.index for c in many.choices] == [0, 1, 2]


def test_a_stop_string_ends_a_completion(client):
    text = client.completions.create(model="docs", prompt="The ", max_tokens=40, seed=3).choices[0].text
    stop = text[5:7]
    out = client.completions.create(model="docs", prompt="The ", max_tokens=40, seed=3, stop=[stop]).choices[0]
    assert out.finish_reason == "stop" and out.text == text[: text.index(stop)]


def test_streaming_gives_the_same_text_piece_by_piece(client):
    whole = client.completions.create(model="docs", prompt="In ", max_tokens=30, seed=11).choices[0].text
    chunks = list(client.completions.create(model="docs", prompt="In ", max_tokens=30, seed=11, stream=True,
                                            stream_options={"include_usage": True}))
    pieces = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(pieces) == whole and len(pieces) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 30


def test_images_come_back_as_pngs_with_their_provenance(client):
    from PIL import Image

    out = client.images.generate(model="digits", prompt="3", n=2, size="8x8", response_format="b64_json",
                                 extra_body={"steps": 2, "seed": 5})
    assert len(out.data) == 2
    image = Image.open(io.BytesIO(base64.b64decode(out.data[0].b64_json)))
    assert image.size == (8, 8) and json.loads(image.text["genlab"])["seed"] == 5
    assert out.data[0].model_extra["label"] == "3"
    with pytest.raises(openai.BadRequestError, match="8x8"):
        client.images.generate(model="digits", prompt="", size="1024x1024")
    with pytest.raises(openai.BadRequestError, match="b64_json"):
        client.images.generate(model="digits", prompt="", response_format="url")


def test_music_comes_back_as_abc_and_midi(server):
    import mido

    r = httpx.post(server.url + "/v1/music/generations", json={"model": "folk", "prompt": "M:6/8 K:Dmaj", "n": 2,
                                                                "max_tokens": 40, "seed": 2, "formats": ["abc", "mid"]})
    assert r.status_code == 200, r.text
    tunes = r.json()["data"]
    assert len(tunes) == 2 and all(t["abc"].startswith("X:") for t in tunes)
    for t in tunes:
        if t["error"] is None:
            assert mido.MidiFile(file=io.BytesIO(base64.b64decode(t["mid_b64"]))).length > 0
        assert t["wav_b64"] is None and t["provenance"]["seed"] == 2


@pytest.mark.parametrize("call, status, param", [
    (lambda c: c.completions.create(model="nope", prompt="x"), 404, "model"),
    (lambda c: c.completions.create(model="digits", prompt="x"), 400, "model"),
    (lambda c: c.completions.create(model="docs", prompt="x", max_tokens=-1), 400, "max_tokens"),
    (lambda c: c.completions.create(model="docs", prompt="x", max_tokens=10**6), 400, "max_tokens"),
    (lambda c: c.completions.create(model="docs", prompt="x", n=1000), 400, "n"),
    (lambda c: c.completions.create(model="docs", prompt="x", echo=True), 400, "echo"),
    (lambda c: c.completions.create(model="docs", prompt="x", extra_body={"temprature": 1}), 400, "temprature"),
    (lambda c: c.completions.create(model="docs", prompt="x", temperature=-1), 400, "temperature"),
    (lambda c: c.completions.create(model="docs", prompt="x" * 5000), 400, "prompt"),
    (lambda c: c.completions.create(model="docs", prompt="\u4e2d"), 400, "prompt"),
    (lambda c: c.completions.create(model="docs", prompt=[]), 400, "prompt"),
    (lambda c: c.images.generate(model="digits", prompt="", n=10**4), 400, "n"),
    (lambda c: c.images.generate(model="digits", prompt="", extra_body={"steps": 0}), 400, "steps"),
])
def test_client_mistakes_are_openai_errors(client, call, status, param):
    with pytest.raises(openai.APIStatusError) as e:
        call(client)
    assert e.value.status_code == status
    error = e.value.body
    assert error["param"] == param and error["message"] and error["type"]


def test_bodies_that_are_not_requests(server):
    assert httpx.post(server.url + "/v1/completions", content=b"{not json", headers={
        "content-type": "application/json"}).status_code == 400
    big = httpx.post(server.url + "/v1/completions", content=b" " * (2 << 20),
                     headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"
    assert httpx.get(server.url + "/v1/nothing").json()["error"]["type"] == "not_found_error"


def test_feedback_lands_in_the_store(client, server):
    out = client.completions.create(model="docs", prompt="The ", max_tokens=8, n=2, seed=1)
    a, b = (c.model_extra["output_id"] for c in out.choices)
    r = httpx.post(server.url + "/v1/feedback", json={"output_a": a, "output_b": b, "winner": "b", "left": "b",
                                                       "rater": "ada", "latency_s": 1.5})
    assert r.status_code == 200, r.text
    assert httpx.post(server.url + "/v1/feedback", json={"output_id": a, "thumbs": 1}).status_code == 200
    images = client.images.generate(model="digits", prompt="7", n=2, extra_body={"steps": 2})
    ia, ib = (d.model_extra["output_id"] for d in images.data)
    assert httpx.post(server.url + "/v1/feedback", json={"output_a": ia, "output_b": ib, "winner": "a"}
                      ).status_code == 200
    with FeedbackStore(server.store, create=False, readonly=True) as store:
        pairs = store.preference_pairs()
        assert store.counts()["ratings"] >= 1
    text_pair = next(p for p in pairs if p["chosen_modality"] == "text")
    assert text_pair["chosen"] == out.choices[1].text and text_pair["chosen_controls"]["seed"] == 1
    image_pair = next(p for p in pairs if p["chosen_modality"] == "images")
    assert image_pair["chosen"].endswith(".png")
    unknown = httpx.post(server.url + "/v1/feedback", json={"output_id": "out-nope", "score": 3})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "output_id"
    assert httpx.post(server.url + "/v1/feedback", json={"output_id": a, "score": 9}).status_code == 400


def test_32_concurrent_clients_are_all_answered(server):
    statuses, texts = [], []

    def one(i: int) -> None:
        r = httpx.post(server.url + "/v1/completions", json={"model": "docs", "prompt": "The ", "max_tokens": 16,
                                                              "seed": i}, timeout=120)
        statuses.append(r.status_code)
        texts.append(r.json()["choices"][0]["text"] if r.status_code == 200 else None)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 32 and len(set(texts)) > 1


def test_a_full_queue_answers_429_with_retry_after(models):
    from genlab.serve import Limits, create_app

    running = Running(create_app(models, limits=Limits(max_queue=1, max_batch=1)))
    try:
        statuses, waits = [], []

        def one() -> None:
            r = httpx.post(running.url + "/v1/completions", json={"model": "docs", "prompt": "", "max_tokens": 200},
                           timeout=120)
            statuses.append(r.status_code)
            waits.append(r.headers.get("retry-after"))

        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 429 in statuses and 200 in statuses and set(statuses) <= {200, 429}
        assert all(w == "1" for s, w in zip(statuses, waits, strict=True) if s == 429)
    finally:
        running.stop()


def test_a_client_that_leaves_mid_stream_frees_the_model(server):
    with httpx.stream("POST", server.url + "/v1/completions", json={"model": "docs", "prompt": "", "stream": True,
                                                                    "max_tokens": 2000}, timeout=60) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i > 5:
                break
    r = httpx.post(server.url + "/v1/completions", json={"model": "docs", "prompt": "x", "max_tokens": 4}, timeout=30)
    assert r.status_code == 200
    assert httpx.get(server.url + "/health").json()["models"]["docs"]["queue"] == 0


def test_an_api_key_is_required_when_set(models):
    from genlab.serve import create_app

    running = Running(create_app(models, api_key="s3cret"))
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=running.url + "/v1", api_key="wrong", max_retries=0).models.list()
        assert httpx.get(running.url + "/v1/models").status_code == 401
        ok = openai.OpenAI(base_url=running.url + "/v1", api_key="s3cret", max_retries=0)
        assert len(ok.models.list().data) == 3
        assert httpx.get(running.url + "/health").status_code == 200
    finally:
        running.stop()


def test_metrics_in_prometheus_format(server, client):
    from prometheus_client.parser import text_string_to_metric_families

    client.completions.create(model="docs", prompt="x", max_tokens=5)
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(server.url + "/metrics").text)}
    assert {"genlab_requests", "genlab_request_seconds", "genlab_queue_depth", "genlab_tokens_generated"} <= set(
        families)
    done = [s for s in families["genlab_requests"].samples if s.labels.get("route") == "/v1/completions"]
    assert done and sum(s.value for s in done if s.name.endswith("_total")) >= 1
