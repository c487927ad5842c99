"""The leaderboard: Bradley-Terry ratings as Chatbot Arena fits them, checked against known strengths, a closed form
and scikit-learn; ties, both-bad, same-model votes, unbeaten models; the store's battles and `genlab leaderboard`."""

import json
import math
import time

import numpy as np
import pytest

from genlab import api
from genlab.align.leaderboard import bradley_terry, leaderboard, store_battles
from genlab.align.store import FeedbackStore
from genlab.cli import main
from genlab.errors import GenlabError
from tests.user_errors import user_error

TRUE = {"m800": 800.0, "m900": 900.0, "m1000": 1000.0, "m1100": 1100.0, "m1200": 1200.0}  # mean 1000, as ours


def _arena(true: dict[str, float], n: int, seed: int, tie_rate: float = 0.1) -> list[tuple[str, str, str]]:
    """Votes drawn from the Bradley-Terry probabilities, with ties that keep A's expected score at P(A beats B)
    (a tie is half a win, so the remaining wins come at (p - tie/2) / (1 - tie))."""
    rng = np.random.default_rng(seed)
    names = list(true)
    battles = []
    for _ in range(n):
        i, j = rng.choice(len(names), size=2, replace=False)
        p = 1 / (1 + 10 ** ((true[names[j]] - true[names[i]]) / 400))
        u = rng.random()
        winner = "tie" if u < tie_rate else "a" if u < tie_rate + (p - tie_rate / 2) else "b"
        battles.append((names[i], names[j], winner))
    return battles


def test_known_strengths_come_back_inside_their_intervals():
    battles = _arena(TRUE, 4000, seed=0)
    assert sum(w == "tie" for *_, w in battles) > 300
    rows = leaderboard(battles, bootstrap=1000, seed=0)
    assert [r["model"] for r in rows] == sorted(TRUE, key=TRUE.get, reverse=True)  # best first, true order
    assert np.mean([r["rating"] for r in rows]) == pytest.approx(1000.0)  # both anchored at mean 1000
    for r in rows:
        assert r["lower"] <= TRUE[r["model"]] <= r["upper"], r
        assert r["lower"] <= r["rating"] <= r["upper"]
        assert r["games"] == r["wins"] + r["ties"] + r["losses"]
    # 100 points apart with ~1600 games each: every interval is clear of the next, so the ranks are 1..5
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert sum(r["games"] for r in rows) == 2 * len(battles)


def test_overlapping_intervals_share_a_rank():
    battles = _arena({"x": 1000.0, "y": 1005.0, "z": 1300.0}, 600, seed=1)
    rows = leaderboard(battles, bootstrap=500, seed=0)
    assert rows[0]["model"] == "z" and rows[0]["rank"] == 1
    assert [r["rank"] for r in rows[1:]] == [2, 2]  # x and y cannot be told apart
    for r in rows:  # Arena's rule, restated
        assert r["rank"] == 1 + sum(o["lower"] > r["upper"] for o in rows)


def test_two_models_match_the_closed_form():
    # R_A - R_B = 400 log10(w / l), a tie being half a win for each side
    ratings = bradley_terry([("A", "B", "a")] * 30 + [("A", "B", "b")] * 10)
    assert ratings["A"] - ratings["B"] == pytest.approx(400 * math.log10(3), abs=0.01)
    assert (ratings["A"] + ratings["B"]) / 2 == pytest.approx(1000.0)
    ratings = bradley_terry([("A", "B", "a")] * 30 + [("B", "A", "a")] * 10 + [("B", "A", "tie")] * 10)
    assert ratings["A"] - ratings["B"] == pytest.approx(400 * math.log10(35 / 15), abs=0.01)


def test_fit_matches_arena_logistic_regression():
    """Arena's own computation (compute_mle_elo): an unpenalised logistic regression on the ±ln 10 design matrix,
    one row per ordered pair, wins counted twice and ties once in each direction."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    battles = _arena({"p": 950.0, "q": 1000.0, "r": 1020.0, "s": 1150.0}, 300, seed=3, tie_rate=0.2)
    battles += [("p", "s", "both_bad")] * 3
    models = sorted({m for a, b, _ in battles for m in (a, b)})
    k = {m: i for i, m in enumerate(models)}
    weight = np.zeros((len(models), len(models)))  # weight[i, j]: how often i beat j (ties: half each way, doubled)
    for a, b, w in battles:
        if w == "a":
            weight[k[a], k[b]] += 2
        elif w == "b":
            weight[k[b], k[a]] += 2
        else:
            weight[k[a], k[b]] += 1
            weight[k[b], k[a]] += 1
    X, y, sample_weight = [], [], []
    for i in range(len(models)):
        for j in range(len(models)):
            if i != j and weight[i, j] + weight[j, i] > 0:
                row = np.zeros(len(models))
                row[i], row[j] = math.log(10), -math.log(10)
                X += [row, row]
                y += [1.0, 0.0]
                sample_weight += [weight[i, j], weight[j, i]]
    # C=inf: no penalty (scikit-learn 1.8 deprecated Arena's penalty=None for it)
    lr = linear_model.LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-12, max_iter=10_000)
    lr.fit(np.array(X), np.array(y), sample_weight=np.array(sample_weight))
    expected = 400 * (lr.coef_[0] - lr.coef_[0].mean()) + 1000
    ratings = bradley_terry(battles)
    assert [ratings[m] for m in models] == pytest.approx(expected.tolist(), abs=0.05)


def test_ties_both_bad_and_same_model_votes():
    # 3 wins and 2 ties score as 4 wins and 1 loss: half a win for each side of a tie
    others = [("B", "C", "a"), ("C", "B", "b")]
    with_ties = bradley_terry([("A", "B", "a")] * 3 + [("B", "A", "tie")] * 2 + others + [("C", "A", "tie")] * 2)
    halves = bradley_terry([("A", "B", "a")] * 4 + [("B", "A", "a")] + others + [("C", "A", "a"), ("A", "C", "a")])
    assert with_ties == pytest.approx(halves, abs=1e-6)
    assert bradley_terry([("A", "B", "tie")] * 4) == pytest.approx({"A": 1000.0, "B": 1000.0})
    mixed = [("A", "B", "a")] * 5 + [("B", "C", "a")] * 3 + [("A", "C", "b")]
    assert bradley_terry(mixed + [("A", "C", "both_bad")] * 2) == bradley_terry(mixed + [("A", "C", "tie")] * 2)
    # two outputs of one model say nothing about it: left out, and a model seen only so is not on the board
    assert bradley_terry(mixed + [("A", "A", "a"), ("C", "C", "b"), ("Z", "Z", "tie")]) == bradley_terry(mixed)
    rows = leaderboard(mixed + [("A", "A", "a")], bootstrap=10)
    assert {r["model"]: r["games"] for r in rows} == {"A": 6, "B": 8, "C": 4}
    assert bradley_terry([("A", "A", "a")]) == {} and leaderboard([], bootstrap=10) == []


def test_an_unbeaten_model_gets_a_finite_highest_rating():
    battles = [("A", "B", "a")] * 10 + [("C", "A", "b")] * 10 + [("B", "C", "a"), ("C", "B", "a")]
    ratings = bradley_terry(battles)
    assert all(math.isfinite(r) for r in ratings.values())
    assert max(ratings, key=ratings.get) == "A"
    # the ridge keeps it finite, and it grows only with the log of the games won: more wins, a little higher
    more = bradley_terry(battles + [("A", "B", "a")] * 90)
    assert ratings["A"] < more["A"] < ratings["A"] + 1000
    rows = leaderboard(battles + [("B", "D", "b")] * 5, bootstrap=200)  # D never lost either
    assert all(math.isfinite(r[key]) for r in rows for key in ("rating", "lower", "upper"))
    assert {rows[0]["model"], rows[1]["model"]} == {"A", "D"}
    assert bradley_terry([("A", "B", "b")] * 5)["A"] < 1000  # never won: finite, lowest


def test_refusals():
    with pytest.raises(GenlabError, match="never compared with each other"):
        bradley_terry([("A", "B", "a"), ("C", "D", "b")])
    with pytest.raises(GenlabError, match="winner must be one of"):
        bradley_terry([("A", "B", "left")])
    with pytest.raises(GenlabError, match="model_a, model_b, winner"):
        bradley_terry([("A", "B")])
    with pytest.raises(GenlabError, match="bootstrap must be"):
        leaderboard([("A", "B", "a")], bootstrap=-1)


def test_bootstrap_is_seeded_and_fast():
    battles = _arena(TRUE, 10_000, seed=2)
    start = time.perf_counter()
    rows = leaderboard(battles, bootstrap=1000, seed=7)
    assert time.perf_counter() - start < 3.0  # about 0.05 s on one core
    assert rows == leaderboard(battles, bootstrap=1000, seed=7)
    assert rows != leaderboard(battles, bootstrap=1000, seed=8)
    no_intervals = leaderboard(battles, bootstrap=0)
    assert [r["rating"] for r in no_intervals] == [r["rating"] for r in rows]
    assert [r["rank"] for r in no_intervals] == [1, 2, 3, 4, 5] and no_intervals[0]["lower"] is None


# -- the store and the command line -----------------------------------------------------------------------------


def _output(model, modality="text"):
    return {"model": model, "checkpoint_sha256": model[-1] * 64, "modality": modality, "content": f"by {model}"}


def _fill(path, battles, modality="text"):
    with FeedbackStore(path) as store:
        for k, (a, b, winner) in enumerate(battles):
            store.record_comparison(output_a=_output(a, modality), output_b=_output(b, modality), prompt=f"p{k}",
                                    left="ab"[k % 2], winner=winner)


def test_store_battles(tmp_path):
    path = tmp_path / "feedback.sqlite"
    _fill(path, [("runs/a", "runs/b", "a"), ("runs/b", "runs/a", "both_bad"), ("runs/a", "runs/a", "b")])
    _fill(path, [("runs/img1", "runs/img2", "b")], modality="images")
    with FeedbackStore(path, create=False, readonly=True) as store:
        rows = store.comparisons()
        assert rows[1] == {"comparison_id": 2, "winner": "both_bad", "left": "b", "rater": None, "reason": None,
                           "latency_s": None, "model_a": "runs/b", "checkpoint_a": "b" * 64, "model_b": "runs/a",
                           "checkpoint_b": "a" * 64, "modality": "text"}
        assert store_battles(store, "text") == [("runs/a", "runs/b", "a"), ("runs/b", "runs/a", "both_bad"),
                                                ("runs/a", "runs/a", "b")]
        assert store_battles(store, "images") == [("runs/img1", "runs/img2", "b")]
        assert len(store_battles(store)) == 4 and store_battles(store, "music") == []
    # text and image models never met: all of them are refused, each modality ranks
    with pytest.raises(GenlabError, match="never compared"):
        api.leaderboard(path, bootstrap=0)
    assert [r["model"] for r in api.leaderboard(path, bootstrap=0, modality="images")] == ["runs/img2", "runs/img1"]


def test_cli_table_and_json(tmp_path, capsys):
    path = tmp_path / "feedback.sqlite"
    _fill(path, _arena({"runs/small": 900.0, "runs/big": 1100.0, "runs/mid": 1000.0}, 120, seed=4))
    assert main(["leaderboard", "--store", str(path), "--bootstrap", "200"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RANK", "MODEL", "RATING", "95%", "CI", "GAMES", "WINS", "TIES", "WIN", "RATE"]
    assert lines[1].split()[1] == "runs/big" and len(lines) == 4
    assert " to " in lines[1] and lines[1].endswith("%")

    assert main(["leaderboard", "--store", str(path), "--json", "--seed", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == api.leaderboard(path, seed=3)
    assert {r["model"] for r in rows} == {"runs/small", "runs/mid", "runs/big"}
    assert set(rows[0]) == {"rank", "model", "rating", "lower", "upper", "games", "wins", "ties", "losses"}


def test_cli_errors(tmp_path, capsys):
    missing = tmp_path / "nothing.sqlite"
    assert "no feedback store at" in user_error(capsys, "leaderboard", "--store", missing)
    assert not missing.exists()  # a reader never makes an empty store
    same = tmp_path / "same.sqlite"
    _fill(same, [("runs/a", "runs/a", "a")] * 3)  # what genlab rate collects: two samples of one run
    err = user_error(capsys, "leaderboard", "--store", same)
    assert "no votes between two different models" in err and "arena" in err
    apart = tmp_path / "apart.sqlite"
    _fill(apart, [("runs/a", "runs/b", "a"), ("runs/c", "runs/d", "tie")])
    assert "never compared with each other" in user_error(capsys, "leaderboard", "--store", apart)
    assert "bootstrap must be" in user_error(capsys, "leaderboard", "--store", apart, "--bootstrap", "-5")
