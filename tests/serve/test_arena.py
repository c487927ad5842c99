"""The blind arena over a real socket: nothing names a side before the vote, the vote lands in the store as a
comparison with its reason, sides are a fair coin, and the leaderboard reads the votes back."""

from __future__ import annotations

import base64
import json

import httpx2 as httpx
import pytest

from genlab.align.store import FeedbackStore
from genlab.serve.studio import png_text


@pytest.fixture(scope="module")
def http(arena):
    with httpx.Client(base_url=arena.url, timeout=60) as client:
        yield client


def battle(http, **body) -> dict:
    r = http.post("/v1/arena/battles", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_battle_names_no_model_until_the_vote(http, arena):
    shown = http.post("/v1/arena/battles", json={"prompt": "The ", "controls": {"max_tokens": 8, "seed": 3}})
    assert shown.status_code == 200
    for secret in ("docs", "other", "checkpoint", "provenance", str(arena.runs["docs"])):
        assert secret not in shown.text  # the random pair, their checkpoints, the run folders: none of it shows
    assert set(shown.json()) == {"id", "object", "api", "prompt", "a", "b"}
    assert shown.json()["a"] == {"output": {"text": shown.json()["a"]["output"]["text"]}}
    battle_id = shown.json()["id"]
    texts = [shown.json()[pane]["output"]["text"] for pane in "ab"]

    r = http.post(f"/v1/arena/battles/{battle_id}/vote", json={"winner": "a", "reason": "reads better",
                                                              "rater": "ann"})
    assert r.status_code == 200, r.text
    reveal = r.json()
    assert {reveal["a"]["model"], reveal["b"]["model"]} == {"docs", "other"}
    assert reveal["a"]["seed"] == reveal["b"]["seed"] == 3 and reveal["a"]["controls"]["max_new_tokens"] == 8
    assert reveal["a"]["provenance"]["ai_generated"] and reveal["a"]["provenance"]["model"] == reveal["a"]["model"]

    with FeedbackStore(arena.store, create=False, readonly=True) as store:
        row = store.comparisons()[-1]
        pairs = store.preference_pairs()
    assert row["comparison_id"] == reveal["comparison_id"] and row["reason"] == "reads better"
    assert row["rater"] == "ann" and row["latency_s"] > 0
    left_model = row["model_a"] if row["left"] == "a" else row["model_b"]
    assert left_model == str(arena.runs[reveal["a"]["model"]])  # pane A was the left one, as stored
    winner_model = row["model_a"] if row["winner"] == "a" else row["model_b"]
    assert winner_model == left_model  # the vote for pane A is a win for its model
    assert pairs[-1]["chosen"] == texts[0] and pairs[-1]["rejected"] == texts[1]  # genlab align reads it as such

    again = http.post(f"/v1/arena/battles/{battle_id}/vote", json={"winner": "b"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_voted"
    assert http.post("/v1/arena/battles/battle-nope/vote", json={"winner": "a"}).status_code == 404


def test_each_model_is_on_the_left_about_half_the_time(http):
    left = {"docs": 0, "other": 0}
    for round_ in range(200):
        shown = battle(http, models=["docs", "other"], controls={"max_tokens": 1, "seed": round_})
        reveal = http.post(f"/v1/arena/battles/{shown['id']}/vote", json={"winner": "tie"}).json()
        left[reveal["a"]["model"]] += 1
    assert 80 <= left["docs"] <= 120, left  # 40-60% of 200 seeded rounds


def test_two_settings_of_one_model(http):
    shown = battle(http, models=["docs", "docs"], controls={"max_tokens": 6, "temperature": 0.2},
                   controls_b={"max_tokens": 6, "temperature": 1.5})
    reveal = http.post(f"/v1/arena/battles/{shown['id']}/vote", json={"winner": "both_bad"}).json()
    assert {reveal["a"]["controls"]["temperature"], reveal["b"]["controls"]["temperature"]} == {0.2, 1.5}
    assert reveal["a"]["seed"] == reveal["b"]["seed"]  # one seed for both: only the settings differ


def test_image_and_music_battles_show_files_without_their_source(http, arena):
    shown = battle(http, api="images", models=["digits", "digits"], controls={"steps": 2}, controls_b={"steps": 3})
    for pane in "ab":
        png = base64.b64decode(shown[pane]["output"]["b64_json"])
        assert png.startswith(b"\x89PNG") and png_text(png) == {}  # no text chunk: nothing names the model
    reveal = http.post(f"/v1/arena/battles/{shown['id']}/vote", json={"winner": "b"}).json()
    assert {reveal["a"]["controls"]["steps"], reveal["b"]["controls"]["steps"]} == {2, 3}

    shown = battle(http, api="music", models=["folk", "folk"], controls={"max_tokens": 40, "temperature": 0.5},
                   controls_b={"max_tokens": 40, "temperature": 1.0})
    for pane in "ab":
        out = shown[pane]["output"]
        assert "folk" not in json.dumps(out) and "AI-generated" not in (out["abc"] or "")  # no provenance comment
        if out["wav_b64"] is not None:
            assert b"genlab" not in base64.b64decode(out["wav_b64"])
    assert http.post(f"/v1/arena/battles/{shown['id']}/vote", json={"winner": "a"}).status_code == 200


@pytest.mark.parametrize("body, status, param", [
    ({"controls": {"temperature": -1}}, 400, "controls.temperature"),
    ({"controls": {"n": 2}}, 400, "controls.n"),
    ({"controls": {"model": "docs"}}, 400, "controls.model"),
    ({"controls": {"max_tokens": 10**9}}, 400, "max_tokens"),
    ({"models": ["docs", "nope"]}, 404, "model"),
    ({"models": ["docs", "docs"]}, 400, "controls_b"),
    ({"models": ["docs", "digits"]}, 400, "model"),
    ({"api": "images"}, 400, "models"),
    ({"models": ["docs"]}, 400, "models"),
    ({"controls": {"bogus": 1}}, 400, "controls.bogus"),
])
def test_bad_battles_are_client_errors(http, body, status, param):
    r = http.post("/v1/arena/battles", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


def test_the_leaderboard_reads_the_votes(http, arena):
    battles = arena.app.state.arena.battles
    for _ in range(8):  # the person always picks docs, wherever the coin put it
        shown = battle(http, models=["docs", "other"], controls={"max_tokens": 1})
        docs_pane = "a" if battles[shown["id"]].panes[0].served.name == "docs" else "b"
        assert http.post(f"/v1/arena/battles/{shown['id']}/vote", json={"winner": docs_pane}).status_code == 200
    board = http.get("/v1/leaderboard", params={"modality": "text"}).json()["data"]
    assert [row["model"] for row in board] == ["docs", "other"] and board[0]["wins"] >= 8
    assert all(row["lower"] <= row["rating"] <= row["upper"] for row in board)
    assert http.get("/v1/leaderboard", params={"modality": "images"}).json()["data"] == []  # image votes: one model


def test_a_genlab_png_gives_back_its_settings(http):
    image = http.post("/v1/images/generations", json={"model": "digits", "prompt": "3", "steps": 2, "seed": 5}).json()
    png = base64.b64decode(image["data"][0]["b64_json"])
    r = http.post("/v1/studio/png-info", content=png, headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    settings = r.json()["settings"]
    assert settings["seed"] == 5 and settings["controls"]["steps"] == 2 and settings["model"] == "digits"
    assert r.json()["text"]["Software"].startswith("genlab")

    bad = http.post("/v1/studio/png-info", content=b"GIF89a...", headers={"content-type": "image/png"})
    assert bad.status_code == 400 and "not a PNG" in bad.json()["error"]["message"]
    damaged = png[:40] + bytes([png[40] ^ 0xFF]) + png[41:]
    assert http.post("/v1/studio/png-info", content=damaged).status_code == 400
    assert http.post("/v1/studio/png-info", content=png[:60]).status_code == 400  # cut short
    plain = base64.b64decode(battle(http, api="images", models=["digits", "digits"], controls={"steps": 2},
                                    controls_b={"steps": 3})["a"]["output"]["b64_json"])
    none = http.post("/v1/studio/png-info", content=plain)
    assert none.status_code == 400 and "no genlab settings" in none.json()["error"]["message"]
    chunked = http.post("/v1/studio/png-info", content=iter([png]))  # a body of unknown length is refused
    assert chunked.status_code == 411
    big = http.post("/v1/studio/png-info", content=b"\x89PNG\r\n\x1a\n" + bytes(2 << 20))
    assert big.status_code == 413


def test_the_studio_page_is_served(http):
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert http.get("/studio/nope.js").status_code == 404
    for sneaky in ("/studio/../app.py", "/studio/..%2fapp.py", "/studio/%2e%2e/__init__.py", "/studio//etc/passwd"):
        r = http.get(sneaky)
        assert r.status_code == 404 and "import" not in r.text and "root:" not in r.text  # nothing outside the folder
