"""The blind arena: two outputs for one prompt, from two models or from two settings of one, shown as panes A and B
with nothing that names their source until the person votes. The vote goes into the feedback store as one
comparison (both outputs, their full controls with the seed, which one was on the left, the winner, the reason, the
rater and how long they looked), and only then are the sources revealed.

Which source lands in pane A is a coin flip from the arena's own generator (seeded for tests): people favour one
side (position bias), so each source must be on the left about half the time. The store keeps the sources in the
order they were asked for (output a: the first), and `left` says which of them the person saw on the left.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Side:
    """One source's output: its served model, the output itself, what the pane shows, and what made it."""

    served: Any
    output: Any
    blind: dict
    prompt: str
    seed: int | None
    controls: dict

    def kept(self) -> dict:
        """What the feedback writer needs to store this output (as /v1/feedback keeps outputs)."""
        return {"served": self.served, "output": self.output, "prompt": self.prompt, "seed": self.seed,
                "controls": self.controls}

    def reveal(self) -> dict:
        sampler = self.served.sampler
        return {"model": self.served.name, "seed": self.seed, "controls": self.controls,
                "provenance": sampler.provenance_source.record(self.seed, self.controls)}


@dataclass
class Battle:
    id: str
    api: str
    prompt: str
    first: Side  # the sources in the order asked for: the store's output a and b
    second: Side
    first_on_left: bool
    shown_at: float = field(default_factory=time.monotonic)
    voted: bool = False

    @property
    def panes(self) -> tuple[Side, Side]:
        """(pane A, pane B): A is the left one."""
        return (self.first, self.second) if self.first_on_left else (self.second, self.first)

    def shown(self) -> dict:
        """The battle as the page gets it: the two outputs and nothing else about them."""
        a, b = self.panes
        return {"id": self.id, "object": "arena.battle", "api": self.api, "prompt": self.prompt,
                "a": {"output": a.blind}, "b": {"output": b.blind}}

    def stored_winner(self, pane_winner: str) -> str:
        """A vote in pane terms (a: the left pane) as the store's winner (a: the first source)."""
        if pane_winner in ("tie", "both_bad") or self.first_on_left:
            return pane_winner
        return {"a": "b", "b": "a"}[pane_winner]


class Arena:
    """The battles waiting for a vote (the newest `keep`), and the coin that places their sources."""

    def __init__(self, seed: int | None = None, keep: int = 1024):
        self.coin = random.Random(seed)
        self.keep = keep
        self.battles: OrderedDict[str, Battle] = OrderedDict()

    def pick(self, names: list[str]) -> list[str]:
        """Two different models, at random, for a battle the person left to chance."""
        return self.coin.sample(sorted(names), 2)

    def open(self, api: str, prompt: str, first: Side, second: Side) -> Battle:
        battle = Battle("battle-" + secrets.token_hex(12), api, prompt, first, second,
                        first_on_left=self.coin.random() < 0.5)
        self.battles[battle.id] = battle
        while len(self.battles) > self.keep:
            self.battles.popitem(last=False)
        return battle
