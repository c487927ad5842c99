"""Direct Preference Optimization (Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is
Secretly a Reward Model"), for the token families.

For a prompt x with a preferred completion y_w and a dispreferred one y_l, DPO fits the policy pi to the pairs
with the loss

    -log sigmoid(beta * [(log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))])

where ref is a frozen copy of the model before alignment and beta sets how far pi may move from it. The
implicit reward of a completion is beta * (log pi(y|x) - log ref(y|x)). The reference never changes, so its
log-probabilities are computed once, when the data is opened (as TRL's precompute_ref_log_probs does), and
the trainer runs DPO as it runs any family: PreferenceObjective is the family's loss replaced by DPO's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError

IGNORE = -100  # target id of the prompt and padding positions: not scored
PAIRS_FILE = "preferences.jsonl"  # the pairs a run learned from, kept in it (TRL's format)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The mean DPO loss of a batch of summed log-probabilities (B,), and its figures: the implicit rewards'
    accuracy (chosen above rejected) and mean margin."""
    chosen_reward = beta * (policy_chosen - ref_chosen)  # (B,)
    rejected_reward = beta * (policy_rejected - ref_rejected)
    margin = chosen_reward - rejected_reward
    loss = -F.logsigmoid(margin).mean()
    return loss, {"reward_accuracy": (margin > 0).float().mean().detach(), "reward_margin": margin.mean().detach()}


def sequence_logps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, features: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """log p(targets) summed over the scored positions (y != IGNORE) of each row: (N, T) -> (N,)."""
    logits = model(x, features=features) if features is not None else model(x)  # (N, T, vocab)
    logp = torch.log_softmax(logits.float(), dim=-1)
    mask = y != IGNORE
    picked = logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (N, T)
    return (picked * mask).sum(-1)


def pair_logps(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen and rejected log-probabilities (B,) of a PreferenceData batch: ids (B, 2, T+1), targets (B, 2, T),
    features (B, 2, T+1, or T+1 = 0 without), ..."""
    ids, y, features = batch[0], batch[1], batch[2]
    B, _, T = y.shape
    x = ids[..., :-1].reshape(2 * B, T)  # each position predicts the next token
    f = features[..., :-1].reshape(2 * B, T) if features.numel() else None
    logps = sequence_logps(model, x, y.reshape(2 * B, T), f).view(B, 2)
    return logps[:, 0], logps[:, 1]


def read_pairs(source: str | Path, run_dir: Path, sha256: str) -> list[dict]:
    """The (prompt, chosen, rejected) pairs to learn from: a TRL JSONL file, or the pairs a feedback store holds
    for the run whose weights hash to `sha256` (a pair of another model is another model's opinion)."""
    from genlab.align.store import FeedbackStore, read_preference_file

    path = Path(source)
    if path.suffix in (".jsonl", ".json"):
        pairs = read_preference_file(path)
    else:
        with FeedbackStore(path, create=False, readonly=True) as store:
            pairs = store.preference_pairs(checkpoint_sha256=sha256)
            if not pairs:
                others = [m for m in store.models() if m["pairs"]]
                if not others:
                    raise GenlabError(f"{path} holds no preference pairs yet (ties and both-bad do not count); rate "
                                      f"samples first with: genlab rate {run_dir} --store {path}")
                shown = ", ".join(f"{m['model']} ({m['pairs']})" for m in others[:3])
                raise GenlabError(f"{path} holds no pairs rated on {run_dir} (weights {sha256[:12]}…), only on other "
                                  f"models: {shown}; rate this one with: genlab rate {run_dir} --store {path}")
            pairs = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs]
    if not pairs:
        raise GenlabError(f"{path} holds no preference pairs; give a file or store with some")
    return pairs


def open_preferences(parent_dir: Path, source: str, pairs_from: str | Path, block_size: int, val_fraction: float,
                     reference: bool) -> PreferencePairs:
    """The pairs of `pairs_from` (a store, a TRL file, or a run's own preferences.jsonl) read as the parent run
    reads its outputs (its modality's sampler says how); with `reference`, scored once by the frozen parent (DPO)."""
    from genlab import api

    parent = api.load(parent_dir, device="cpu")  # the parent as it samples: its tokens, its model
    pairs = read_pairs(pairs_from, parent_dir, parent.checkpoint_sha256)
    return parent.preference_data(pairs, source, parent.model if reference else None, block_size, val_fraction)


def pairs_sha256(pairs: list[dict]) -> str:
    return hashlib.sha256("".join(json.dumps(p, sort_keys=True) + "\n" for p in pairs).encode()).hexdigest()


class PreferencePairs:
    """What preference pairs as the trainer's data share, whatever a pair holds: the split (the last
    `val_fraction` of the pairs, at least one, held out), batches of pairs, what the run keeps of them, and
    `content_hash`, of the pairs as given (a subclass whose pairs name files hashes what the files hold). A
    subclass gives `_rows(index)`: the tensors of those pairs, each (n, 2, ...) with the chosen output in row
    0 and the rejected one in row 1."""

    unit = "pair"
    items = "pairs"

    def __init__(self, pairs: list[dict], source: str, parent_config: dict, parent_dir: Path, val_fraction: float):
        self.pairs, self.source, self.parent_dir = pairs, source, Path(parent_dir)
        self.parent_config = parent_config
        self.n_val = max(1, round(len(pairs) * val_fraction)) if len(pairs) > 1 else 0
        self.n_train = len(pairs) - self.n_val
        self.content_hash = pairs_sha256(pairs)

    def _rows(self, index) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def model_settings(self) -> dict:
        from genlab.families import get_family

        keys = get_family(self.parent_config["family"]).data_keys
        return {k: v for k, v in self.parent_config["model"].items() if k in keys}

    def batch(self, split: str, batch_size: int, generator: torch.Generator):
        lo, hi = (0, self.n_train) if split == "train" or not self.n_val else (self.n_train, len(self.pairs))
        return self._rows(lo + torch.randint(hi - lo, (batch_size,), generator=generator))

    def items_in(self, batch) -> int:
        return batch[0].shape[0]

    @property
    def train_items(self) -> int:
        return self.n_train

    def describe(self) -> dict:
        return {"modality": self.parent_config.get("data", {}).get("modality", "text"), "source": self.source,
                "kind": "preferences", "content_sha256": self.content_hash, "train_pairs": self.n_train,
                "val_pairs": self.n_val}

    def preprocessing(self) -> dict:
        """The parent's preprocessing entries of config.json (its tokenizer, its image size): the run reads its
        data as the parent did."""
        from genlab.runs import LINEAGE_KEYS, TRAINER_KEYS

        return {k: v for k, v in self.parent_config.items() if k not in TRAINER_KEYS and k not in LINEAGE_KEYS}

    def save(self, run_dir: Path) -> None:
        from genlab.io import atomic_write_text

        if (self.parent_dir / "tokenizer.json").is_file():
            shutil.copyfile(self.parent_dir / "tokenizer.json", Path(run_dir) / "tokenizer.json")
        atomic_write_text(Path(run_dir) / PAIRS_FILE, "".join(json.dumps(p, ensure_ascii=False) + "\n"
                                                             for p in self.pairs))


class PreferenceData(PreferencePairs):
    """Preference pairs of token outputs: batches of (ids, targets, features, ref_logps), each (B, 2, ...).
    `ids` holds the last block_size + 1 tokens of prompt and completion (the completion's end is kept),
    `targets` the next token where it is the completion's (prompt and padding unscored). With a `reference`
    model its log-probabilities are computed once (DPO)."""

    def __init__(self, pairs: list[dict], source: str, sampler, reference: nn.Module | None, block_size: int,
                 val_fraction: float, parent_dir: Path):
        super().__init__(pairs, source, sampler.config, parent_dir, val_fraction)
        rows = [[sampler.preference_tokens(p["prompt"], p[side]) for side in ("chosen", "rejected")] for p in pairs]
        T = min(block_size, max(len(ids) for pair in rows for ids, _, _ in pair) - 1)
        ids_ = np.zeros((len(rows), 2, T + 1), dtype=np.int64)
        y = np.full((len(rows), 2, T), IGNORE, dtype=np.int64)
        feats = np.zeros((len(rows), 2, T + 1), dtype=np.int64)
        has_features = False
        for i, pair in enumerate(rows):
            for j, (ids, n_prompt, features) in enumerate(pair):
                ids = np.asarray(ids)
                start = max(0, len(ids) - (T + 1))  # the last T + 1 tokens
                n = len(ids) - start
                ids_[i, j, :n] = ids[start:]
                scored = np.arange(start + 1, len(ids)) >= n_prompt  # the completion's tokens are scored
                y[i, j, : n - 1] = np.where(scored, ids[start + 1 :], IGNORE)
                if features is not None:
                    feats[i, j, :n], has_features = np.asarray(features)[start:], True
        self.ids, self.y = torch.from_numpy(ids_), torch.from_numpy(y)
        self.features = torch.from_numpy(feats) if has_features else torch.zeros(len(rows), 2, 0, dtype=torch.long)
        if not (self.y != IGNORE).any(-1).all():
            raise GenlabError(f"{source}: a pair has an empty completion after truncation to {T} tokens; drop it")
        self.ref = torch.zeros(len(rows), 2)
        if reference is not None:
            with torch.inference_mode():
                ref = [torch.stack(pair_logps(reference.eval(), self._rows(slice(i, i + 64))), dim=1)
                       for i in range(0, len(rows), 64)]
            self.ref = torch.cat(ref)  # (N, 2): the frozen reference's log-probabilities

    def _rows(self, index) -> tuple[torch.Tensor, ...]:
        return self.ids[index], self.y[index], self.features[index], self.ref[index]


class Objective:
    """A token family trained on preference pairs with another loss: everything but `loss` is the family's,
    and its one-loss training step runs with this loss."""

    def __init__(self, family):
        self.family = family

    def __getattr__(self, name):
        return getattr(self.family, name)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        raise NotImplementedError

    def train_step(self, model: nn.Module, batch, optimizers: dict, step_context) -> dict:
        from genlab.families.base import Family

        return Family.train_step(self, model, batch, optimizers, step_context)


class PreferenceObjective(Objective):
    """DPO's loss in place of the family's."""

    def __init__(self, family, beta: float):
        super().__init__(family)
        self.beta = beta

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        chosen, rejected = pair_logps(model, batch)
        ref = batch[3]
        return dpo_loss(chosen, rejected, ref[:, 0], ref[:, 1], self.beta)[0]
