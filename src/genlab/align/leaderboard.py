"""A leaderboard of models from people's pairwise votes, computed the way LMSYS Chatbot Arena computes its own.

A battle is one vote between an output of model A and one of model B: the winner is a, b, a tie or both bad. The
Bradley-Terry model gives each model a rating R with

    P(A beats B) = 1 / (1 + 10^((R_B - R_A) / 400))

(400 points are 10:1 odds), fitted by maximum likelihood with a tie counted as half a win for each side (Arena's
outcome 0.5). The ratings are 400·β + 1000, β the Bradley-Terry coefficients in base 10.

Anchoring: only differences of β are identified, so we fix the mean rating at 1000. Arena's fit (logistic
regression or L-BFGS started from zero) lands on that same mean-zero solution, and then shifts everything so that
one reference model of theirs (mixtral-8x7b-instruct-v0.1) reads 1114: a workbench has no such model, so our
ratings stay at mean 1000 and only their differences mean anything.

Unbeaten models: a model that won (or lost) every game has no finite maximum-likelihood rating; the likelihood keeps
growing as it runs off. A tiny ridge penalty on β (a Gaussian prior of std 1/sqrt(RIDGE) in β, 40,000 rating points)
keeps it finite, highest (lowest) and growing only with the log of its games, while moving an ordinary fit by about
0.01 / games points (3 wins to 1: 0.002 points off 400·log10 3). Models in groups never compared with each other,
not even through other models, are not on one scale at all: that is an error, not a leaderboard.

Confidence intervals: the 2.5th and 97.5th percentiles of the ratings refitted on `bootstrap` resamples of the
battles (with replacement, as many as there are). A resample is drawn as multinomial counts over the distinct (pair,
outcome) rows, and all resamples are fitted at once by a batched Newton's method warm-started from the full fit: 10k
battles x 1000 resamples of ten models take about 0.05 s (sixty models: about 1 s). Rank, as Arena: 1 + the number
of models whose lower bound is above this model's upper bound, so models whose intervals overlap share a rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from genlab.errors import GenlabError

SCALE, BASE, INIT_RATING = 400.0, 10.0, 1000.0
LN_BASE = math.log(BASE)
RIDGE = 1e-4  # a Gaussian prior on β of std 100 (40,000 rating points): finite ratings for unbeaten models
MAX_NEWTON_STEPS = 200
MAX_STEP = 1.0  # largest move of one β in one Newton step (400 points): no wild overshoot from a flat start
TOLERANCE = 1e-10  # in β; the fit stops when no β moves more than this
WINNERS = ("a", "b", "tie", "both_bad")
_SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}  # what model A scored


def clean_battles(battles: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The battles checked, with both_bad turned into a tie (both lost equally, which says nothing about which is
    better) and comparisons between two outputs of one model left out (they rank nothing)."""
    kept = []
    for battle in battles:
        if not (isinstance(battle, tuple | list) and len(battle) == 3 and all(isinstance(x, str) for x in battle)):
            raise GenlabError(f"a battle must be (model_a, model_b, winner) strings, not {battle!r}")
        model_a, model_b, winner = battle
        if winner not in WINNERS:
            raise GenlabError(f"battle {tuple(battle)!r}: the winner must be one of {', '.join(WINNERS)}")
        if model_a != model_b:
            kept.append((model_a, model_b, "tie" if winner == "both_bad" else winner))
    return kept


class _Tally:
    """The battles as counts: the models, each pair of models that met (first < second by index), and the distinct
    (pair, outcome) rows with how often each happened, sorted by pair."""

    def __init__(self, battles: list[tuple[str, str, str]]) -> None:
        self.models = sorted({m for a, b, _ in battles for m in (a, b)})
        index = {m: k for k, m in enumerate(self.models)}
        a = np.array([index[x] for x, _, _ in battles], dtype=np.int64)
        b = np.array([index[y] for _, y, _ in battles], dtype=np.int64)
        score = np.array([_SCORE[w] for _, _, w in battles])
        first, second = np.minimum(a, b), np.maximum(a, b)
        score = np.where(a == first, score, 1.0 - score)  # what the pair's first model scored
        m = len(self.models)
        pair_keys, pair = np.unique(first * m + second, return_inverse=True)
        self.first, self.second = pair_keys // m, pair_keys % m
        # rows: pair * 3 + (0 lost, 1 tie, 2 won), so that np.unique sorts them by pair
        row_keys, self.row_counts = np.unique(pair * 3 + np.rint(score * 2).astype(np.int64), return_counts=True)
        self.row_pair, self.row_score = row_keys // 3, (row_keys % 3) / 2.0
        self.pair_starts = np.flatnonzero(np.r_[True, np.diff(self.row_pair) > 0])

    def wins_and_games(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pair, the first model's score (wins + ties/2) and the games, for each row of counts (B, rows)."""
        games = np.add.reduceat(counts, self.pair_starts, axis=1).astype(np.float64)
        wins = np.add.reduceat(counts * self.row_score, self.pair_starts, axis=1)
        return wins, games

    def check_connected(self) -> None:
        """Refuse models that were never compared with the others, not even through other models."""
        group = list(range(len(self.models)))

        def root(k: int) -> int:
            while group[k] != k:
                group[k] = group[group[k]]
                k = group[k]
            return k

        for i, j in zip(self.first.tolist(), self.second.tolist(), strict=True):
            group[root(i)] = root(j)
        groups: dict[int, list[str]] = {}
        for k, model in enumerate(self.models):
            groups.setdefault(root(k), []).append(model)
        if len(groups) > 1:
            shown = " and ".join("{" + ", ".join(g[:3]) + (", ..." if len(g) > 3 else "") + "}"
                                 for g in list(groups.values())[:3])
            raise GenlabError(f"the models fall into {len(groups)} groups never compared with each other ({shown}"
                              f"{', ...' if len(groups) > 3 else ''}), so their ratings are not on one scale; "
                              "vote between models of different groups, or rank each group on its own")


def _fit(wins: np.ndarray, games: np.ndarray, first: np.ndarray, second: np.ndarray, n_models: int,
         start: np.ndarray | None = None) -> np.ndarray:
    """β (B, models) maximising each row's penalised Bradley-Terry log-likelihood, by Newton's method on all rows
    at once. wins and games are (B, pairs): the first model's score and the games of each pair."""
    B = len(wins)
    beta = np.zeros((B, n_models)) if start is None else np.array(np.broadcast_to(start, (B, n_models)))
    incidence = np.zeros((len(first), n_models))  # +1 for the pair's first model, -1 for its second
    incidence[np.arange(len(first)), first] = 1.0
    incidence[np.arange(len(first)), second] = -1.0
    diagonal = np.arange(n_models)
    for _ in range(MAX_NEWTON_STEPS):
        p = 0.5 * (1.0 + np.tanh(0.5 * LN_BASE * (beta[:, first] - beta[:, second])))  # P(first beats second)
        grad = (LN_BASE * (games * p - wins)) @ incidence + RIDGE * beta  # of the negative log-likelihood
        curvature = LN_BASE**2 * games * p * (1.0 - p)
        hessian = np.zeros((B, n_models, n_models))
        hessian[:, first, second] = -curvature
        hessian[:, second, first] = -curvature
        hessian[:, diagonal, diagonal] = curvature @ np.abs(incidence) + RIDGE  # the ridge makes it positive definite
        step = np.linalg.solve(hessian, grad[..., None])[..., 0]
        biggest = np.abs(step).max(axis=1, keepdims=True)
        beta -= step / np.maximum(1.0, biggest / MAX_STEP)
        if biggest.max() < TOLERANCE:
            break
    return beta


def _ratings(beta: np.ndarray) -> np.ndarray:
    """β as ratings anchored at mean 1000 (exactly: the ridge already centres a connected fit)."""
    return SCALE * (beta - beta.mean(axis=-1, keepdims=True)) + INIT_RATING


def bradley_terry(battles: Iterable[tuple[str, str, str]]) -> dict[str, float]:
    """Each model's Bradley-Terry rating from (model_a, model_b, winner) battles, winner a, b, tie or both_bad,
    fitted by maximum likelihood as Chatbot Arena does; mean 1000, 400 points = 10:1 odds. See the module doc."""
    battles = clean_battles(battles)
    if not battles:
        return {}
    tally = _Tally(battles)
    tally.check_connected()
    wins, games = tally.wins_and_games(tally.row_counts[None, :])
    ratings = _ratings(_fit(wins, games, tally.first, tally.second, len(tally.models)))[0]
    return dict(zip(tally.models, ratings.tolist(), strict=True))


def leaderboard(battles: Iterable[tuple[str, str, str]], bootstrap: int = 1000, seed: int = 0) -> list[dict]:
    """One row per model, best first: rank, model, rating (the fit on all battles), lower and upper (its 95%
    bootstrap interval over `bootstrap` resamples, None for bootstrap=0), games, wins, ties and losses. Rank is 1 +
    the number of models whose interval lies wholly above this one (with bootstrap=0: above its rating)."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise GenlabError(f"bootstrap must be a whole number of resamples, 0 or more (e.g. 1000), not {bootstrap!r}")
    battles = clean_battles(battles)
    if not battles:
        return []
    tally = _Tally(battles)
    tally.check_connected()
    n_models = len(tally.models)
    wins, games = tally.wins_and_games(tally.row_counts[None, :])
    beta = _fit(wins, games, tally.first, tally.second, n_models)
    rating = _ratings(beta)[0]
    if bootstrap:
        # resampling the battles with replacement = multinomial counts over the distinct rows
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(len(battles), tally.row_counts / len(battles), size=bootstrap)
        wins, games = tally.wins_and_games(counts)
        resampled = _ratings(_fit(wins, games, tally.first, tally.second, n_models, start=beta[0]))
        lower, upper = np.percentile(resampled, [2.5, 97.5], axis=0)
        rank = 1 + (lower[None, :] > upper[:, None]).sum(axis=1)
    else:
        lower = upper = None
        rank = 1 + (rating[None, :] > rating[:, None]).sum(axis=1)

    record = {m: {"games": 0, "wins": 0, "ties": 0, "losses": 0} for m in tally.models}
    for a, b, winner in battles:
        for model, side in ((a, "a"), (b, "b")):
            r = record[model]
            r["games"] += 1
            r["ties" if winner == "tie" else "wins" if winner == side else "losses"] += 1
    rows = [{"rank": int(rank[k]), "model": model, "rating": float(rating[k]),
             "lower": None if lower is None else float(lower[k]), "upper": None if upper is None else float(upper[k]),
             **record[model]} for k, model in enumerate(tally.models)]
    return sorted(rows, key=lambda row: (-row["rating"], row["model"]))


def store_battles(store, modality: str | None = None) -> list[tuple[str, str, str]]:
    """The battles of a FeedbackStore, oldest first: (model of output a, model of output b, winner), every winner
    kept as stored (both_bad included); with modality, only the comparisons of that modality's outputs."""
    return [(row["model_a"], row["model_b"], row["winner"]) for row in store.comparisons(modality=modality)]
