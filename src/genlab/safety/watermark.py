"""The green-list watermark of Kirchenbauer et al. 2023 ("A Watermark for Large Language Models"), for token models.

At each step the previous token, hashed with a secret key, picks a "green" fraction gamma of the vocabulary, and
delta is added to the green tokens' logits before sampling: the text leans green, which nobody can see without the
key. Detection counts green tokens and asks how unlikely that many would be by chance: z = (green - p T) /
sqrt(T p (1 - p)) over T scored tokens.

Two refinements matter for small vocabularies (a character model has about a hundred tokens):
- Each (previous token, token) pair is scored once (the reference implementation's ignore_repeated_ngrams): with a
  hundred tokens, a pair is always green or always red for a key, and human text repeats its common pairs ("th",
  "e ") so often that their colour alone would move z by several points.
- The chance rate p is calibrated for the key on human text (`calibrate`): the pairs people write are not uniform,
  so for one key the green share of human pairs is not exactly gamma. Without a reference, p is gamma.

The green list of a previous token is the gamma * V tokens with the smallest hashes of (key, previous, token) -
a splitmix64 mix, the same on every machine - kept once computed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from genlab.errors import GenlabError

THRESHOLD = 4.0  # z above which a text is called watermarked (the paper's choice: ~3e-5 false positives)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


class GreenList:
    """The watermark of one key over a vocabulary of `vocab_size` tokens: a logits processor while sampling,
    `score` when detecting."""

    def __init__(self, key: str, vocab_size: int, gamma: float = 0.25, delta: float = 2.0):
        if not isinstance(key, str) or not key:
            raise GenlabError("a watermark needs a non-empty key (--watermark-key SECRET)")
        if not 0 < gamma < 1:
            raise GenlabError(f"--watermark-gamma is the green share of the vocabulary, between 0 and 1; got {gamma}")
        if not math.isfinite(delta) or delta < 0:
            raise GenlabError(f"--watermark-delta is added to green logits, 0 or more; got {delta}")
        self.vocab_size, self.gamma, self.delta = vocab_size, float(gamma), float(delta)
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        self.key_id = "wm-" + digest[:4].hex()  # names the key in provenance without giving it away
        self._seed = np.uint64(int.from_bytes(digest[8:16], "little"))
        self.size = max(1, round(gamma * vocab_size))  # green tokens per previous token
        self._rows: dict[int, np.ndarray] = {}
        self._masks: dict[tuple[int, str], torch.Tensor] = {}

    def about(self) -> dict:
        """What provenance records of it: never the key."""
        return {"key_id": self.key_id, "gamma": self.gamma, "delta": self.delta, "scheme": "kirchenbauer-2023"}

    def green(self, prev: int) -> np.ndarray:
        """The green tokens after `prev`, as a boolean mask over the vocabulary."""
        row = self._rows.get(prev)
        if row is None:
            with np.errstate(over="ignore"):
                tokens = np.arange(self.vocab_size, dtype=np.uint64)
                h = _mix(_mix(self._seed ^ np.uint64(prev) * np.uint64(0x9E3779B97F4A7C15)) ^ tokens)
            row = np.zeros(self.vocab_size, dtype=bool)
            row[np.argsort(h, kind="stable")[: self.size]] = True
            self._rows[prev] = row
        return row

    def __call__(self, logits: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """The logits (B, V) with delta added to each row's green tokens; `prev` (B,) the tokens before."""
        masks = []
        for p in prev.tolist():
            key = (p, str(logits.device))
            if key not in self._masks:
                self._masks[key] = torch.from_numpy(self.green(p)).to(logits.device)
            masks.append(self._masks[key])
        V = min(logits.size(-1), self.vocab_size)
        out = logits.float().clone()
        out[:, :V] += self.delta * torch.stack(masks)[:, :V].to(out.dtype)
        return out

    def pairs(self, ids: Sequence[int]) -> list[tuple[int, int]]:
        """The distinct (previous, token) pairs of a text, in order: what is scored."""
        seen, out = set(), []
        for pair in zip(ids[:-1], ids[1:], strict=False):
            if pair not in seen:
                seen.add(pair)
                out.append(pair)
        return out

    def green_count(self, ids: Sequence[int]) -> tuple[int, int]:
        """(green pairs, scored pairs) of a text's token ids."""
        pairs = self.pairs(ids)
        return sum(bool(self.green(p)[t]) for p, t in pairs if 0 <= t < self.vocab_size), len(pairs)

    def calibrate(self, human_ids: Sequence[int], window: int = 200, windows: int = 400) -> float:
        """The green share of distinct pairs in human text for this key: the chance rate `score` tests against.
        Measured over `windows` windows of `window` tokens spread through `human_ids`."""
        n = len(human_ids)
        if n < window + 1:
            raise GenlabError(f"calibrating a watermark key needs at least {window + 1} tokens of human text; "
                              f"got {n}")
        starts = np.linspace(0, n - window - 1, num=min(windows, n - window), dtype=int)
        green = scored = 0
        for s in starts:
            g, t = self.green_count(human_ids[s : s + window])
            green, scored = green + g, scored + t
        return green / scored


@dataclass
class Detection:
    z: float
    green: int
    scored: int
    rate: float  # the chance rate tested against (gamma, or the key's calibrated human rate)
    threshold: float

    @property
    def watermarked(self) -> bool:
        return self.z > self.threshold

    def summary(self) -> str:
        return (f"z-score {self.z:.2f}, green {self.green} of {self.scored} scored token pairs (chance: "
                f"{self.rate:.3f}), watermarked: {'yes' if self.watermarked else 'no'} (threshold z = "
                f"{self.threshold:g})")


def score(ids: Sequence[int], green_list: GreenList, rate: float | None = None,
          threshold: float = THRESHOLD) -> Detection:
    """How strongly the token ids `ids` carry `green_list`'s watermark."""
    p = green_list.gamma if rate is None else rate
    green, scored = green_list.green_count(list(ids))
    z = (green - p * scored) / math.sqrt(scored * p * (1 - p)) if scored else 0.0
    return Detection(z, green, scored, p, threshold)


class TokenWatermarking:
    """Marking and detection for a token model's sampler (text, ABC music), mixed into its Sampler.

    The wing says how a piece of its content becomes token ids (`watermark_ids`) and where its human reference
    is (`human_ids`: the run's own training data); this class does the rest, one green list per key over the
    model's vocabulary, the chance rate calibrated per key on that reference and kept."""

    watermark_controls = {"watermark_key": None, "watermark_gamma": 0.25, "watermark_delta": 2.0}

    def watermark_ids(self, content: str) -> list[int]:
        raise NotImplementedError

    def human_ids(self) -> list[int]:
        """The run's training data as token ids; a GenlabError or OSError where it cannot be read here."""
        raise NotImplementedError

    def watermark(self, key: str | None, gamma: float | None = None, delta: float | None = None) -> GreenList | None:
        """The green-list watermark of `key` over this model's vocabulary (None: no key, no watermark)."""
        if key is None:
            return None
        gamma = self.watermark_controls["watermark_gamma"] if gamma is None else gamma
        delta = self.watermark_controls["watermark_delta"] if delta is None else delta
        return GreenList(key, self.model.config.vocab_size, gamma, delta)

    def detect_watermark(self, content: str, key: str, gamma: float | None = None, threshold: float | None = None,
                         calibrate: bool = True) -> Detection:
        """How strongly `content` carries the watermark of `key`. With `calibrate`, the chance rate is the key's
        green share on this run's own training data (human work), which for a small vocabulary can sit well away
        from gamma; where that data cannot be read, gamma."""
        mark = self.watermark(key, gamma)
        rate = self.human_rate(mark) if calibrate else None
        return score(self.watermark_ids(content), mark, rate, THRESHOLD if threshold is None else threshold)

    def human_rate(self, mark: GreenList) -> float | None:
        """`mark`'s green share on this run's training data (kept per key), or None where it cannot be read."""
        import sys

        rates = self.__dict__.setdefault("_human_rates", {})
        if (mark.key_id, mark.gamma) not in rates:
            if "_human_ids" not in self.__dict__:
                try:
                    self._human_ids = self.human_ids()  # read once for every key
                except (GenlabError, OSError, KeyError):
                    print("genlab: note: this run's training data cannot be read here; testing against gamma, "
                          "uncalibrated", file=sys.stderr)
                    return None
            rates[mark.key_id, mark.gamma] = mark.calibrate(self._human_ids)
        return rates[mark.key_id, mark.gamma]
