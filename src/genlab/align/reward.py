"""Reward models: a scalar head on a family's backbone, trained on preference pairs with the Bradley-Terry loss
(Bradley & Terry 1952; as in Ouyang et al. 2022, "Training language models to follow instructions with human
feedback"):

    -log sigmoid(r(x, y_chosen) - r(x, y_rejected))

so that sigmoid(r_a - r_b) is the probability that a person prefers a to b. The backbone starts from the
run being rated (its knowledge of the data is what the head reads); each family says which reward model it
takes (Family.reward_model). On a token model the head reads the mean of the final hidden states over the
output's own tokens (the prompt's left out), so that what a sample holds anywhere counts (transformers'
sequence classifiers read the last token; on our small models that measured no better); on a diffusion model
it reads the U-Net's features of the clean image. A reward run is a run like any other, whose family's loss
is this one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlab.align.dpo import IGNORE, Objective


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean Bradley-Terry loss of rewards (B,) and the share of pairs ranked right."""
    return -F.logsigmoid(chosen - rejected).mean(), (chosen > rejected).float().mean()


class RewardHead(nn.Module):
    """A backbone and a linear head from `width` features to one reward, starting near zero. A subclass says
    what the head reads (forward), and how a preference batch (pair_inputs) and outputs (inputs_for) become
    forward's inputs."""

    def __init__(self, backbone: nn.Module, width: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(width, 1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    @property
    def config(self):
        return self.backbone.config


class RewardModel(RewardHead):
    """backbone.body(ids) (B, T, C) -> the mean over each row's output tokens -> a linear head -> a reward (B,)."""

    def __init__(self, backbone: nn.Module):
        super().__init__(backbone, backbone.config.n_embd)

    def forward(self, ids: torch.Tensor, output: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T) and `output` (B, T), true at the output's own tokens -> rewards (B,)."""
        hidden = self.backbone.body(ids, features=features) if features is not None else self.backbone.body(ids)
        weights = output.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, C)
        return self.head(pooled).squeeze(-1).float()

    @staticmethod
    def pair_inputs(batch) -> tuple:
        """forward's inputs for the 2B rows of a PreferenceData batch (ids, targets, features, ...): the output's
        tokens are those the targets score."""
        ids, y, features = batch[0], batch[1], batch[2]
        B, _, L = ids.shape
        output = torch.cat([torch.zeros_like(y[..., :1], dtype=torch.bool), y != IGNORE], dim=-1)  # (B, 2, L)
        return ids.reshape(2 * B, L), output.reshape(2 * B, L), features.reshape(2 * B, L) if features.numel() else None

    def inputs_for(self, reader, prompt: str, outputs: list) -> tuple:
        """forward's inputs for outputs of `prompt` (texts, or what the reader's generate() returned), read into
        tokens by `reader`, the backbone's sampler; the last max_context tokens of each, so its end stays."""
        rows = [reader.preference_tokens(prompt, o if isinstance(o, str) else reader.content(o)) for o in outputs]
        L = max(len(ids) for ids, _, _ in rows)
        L = min(self.backbone.max_context or L, L)
        ids = torch.zeros(len(rows), L, dtype=torch.long)
        output = torch.zeros(len(rows), L, dtype=torch.bool)
        features = torch.zeros(len(rows), L, dtype=torch.long)
        for i, (row, n_prompt, f) in enumerate(rows):
            start = max(0, len(row) - L)
            n = len(row) - start
            ids[i, :n] = torch.as_tensor(row[start:])
            output[i, :n] = torch.arange(start, len(row)) >= n_prompt
            if f is not None:
                features[i, :n] = torch.as_tensor(f[start:])
        return ids, output, features if any(f is not None for _, _, f in rows) else None


class ImageRewardModel(RewardHead):
    """backbone.features(images) (B, D), what an image model sees in a picture -> a linear head -> a reward (B,).
    The prompt of an image is its class at most, and the image shows it, so only the image is read."""

    def __init__(self, backbone: nn.Module):
        super().__init__(backbone, backbone.feature_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) in [-1, 1] -> rewards (B,)."""
        return self.head(self.backbone.features(images)).squeeze(-1).float()

    @staticmethod
    def pair_inputs(batch) -> tuple:
        """forward's input for the 2B images of an image preference batch (images (B, 2, C, H, W),)."""
        images = batch[0]
        return (images.reshape(-1, *images.shape[2:]),)

    def inputs_for(self, reader, prompt: str, outputs: list) -> tuple:
        """forward's input for images (PIL images, or files) read the way the backbone saw its data."""
        return (torch.stack([reader.read_image(o) for o in outputs]),)


def pair_rewards(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards (B,) of the chosen and rejected rows of a preference batch. The inputs come from the reward model
    itself (under a DDP wrapper: the module inside it) and the forward pass goes through `model`."""
    from genlab.families.base import core

    rewards = model(*core(model).pair_inputs(batch)).view(-1, 2)
    return rewards[:, 0], rewards[:, 1]


class RewardObjective(Objective):
    """A token family whose model is a RewardModel on its module, trained with the Bradley-Terry loss."""

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        return bradley_terry_loss(*pair_rewards(model, batch))[0]


@torch.no_grad()
def pairwise_accuracy(model: RewardModel, data, split: str = "val") -> dict:
    """The share of a split's pairs that the reward model ranks as people did, and its mean loss."""
    model.eval()
    lo, hi = (data.n_train, len(data.pairs)) if split == "val" and data.n_val else (0, data.n_train)
    rows = data._rows(slice(lo, hi))
    chosen, rejected = pair_rewards(model, rows)
    loss, accuracy = bradley_terry_loss(chosen, rejected)
    return {"pairwise_accuracy": round(accuracy.item(), 4), "bradley_terry_loss": round(loss.item(), 5),
            "pairs": hi - lo, "split": split}


def measure_reward_model(rm_dir) -> dict:
    """Score a reward run's held-out pairs (its preferences.jsonl, read as it trained on them) and keep the
    figures in RM/metrics.json under "preferences val"."""
    from pathlib import Path

    from genlab.align.dpo import PAIRS_FILE, open_preferences
    from genlab.align.finetune import parent_of, run_model
    from genlab.io import atomic_write_json, read_json
    from genlab.modalities import read_evaluations

    rm_dir = Path(rm_dir)
    config = read_json(rm_dir / "config.json")
    train = config["train"]
    block = train.get("window") or config["model"].get("block_size", 256)  # as the trainer read the pairs
    data = open_preferences(parent_of(rm_dir, config).run_dir, train["data"], rm_dir / PAIRS_FILE, block,
                            train["val_fraction"], reference=False)
    figures = pairwise_accuracy(run_model(rm_dir, config), data, "val")
    evaluations = read_evaluations(rm_dir, config)
    evaluations["preferences val"] = figures
    atomic_write_json(rm_dir / "metrics.json", evaluations)
    return figures


class RewardScorer:
    """A trained reward model, ready to score outputs of its modality: `score(prompt, contents) -> rewards`.
    It reads outputs into tokens with its own tokenizer (its parent's), through its modality's sampler."""

    def __init__(self, rm_dir):
        from pathlib import Path

        from genlab.align.finetune import is_reward_run, run_model
        from genlab.errors import GenlabError
        from genlab.io import read_json
        from genlab.modalities import LoadedRun, modality_of_run

        rm_dir = Path(rm_dir)
        if not (rm_dir / "config.json").is_file():
            raise GenlabError(f"reward model {rm_dir} does not exist; train one with: genlab reward RUN "
                              "--preferences STORE --out RM")
        self.config = read_json(rm_dir / "config.json")
        if not is_reward_run((self.config.get("train") or {}).get("objective")):
            raise GenlabError(f"{rm_dir} is not a reward model; train one with: genlab reward RUN --preferences "
                              f"STORE --out RM")
        self.run_dir, self.family = rm_dir, self.config["family"]
        modality = modality_of_run(self.config)
        self.modality = modality.name
        self.model = run_model(rm_dir, self.config).eval()
        weights = rm_dir / "model.safetensors"
        preprocessing = modality.load_preprocessing(rm_dir, self.config)
        self.reader = modality.sampler(LoadedRun(self.model.backbone, self.config, rm_dir, torch.device("cpu"), "fp32",
                                                 weights, preprocessing))

    def check_fits(self, run_dir, config: dict) -> None:
        """A reward model scores outputs of its own family and modality only."""
        from genlab.errors import GenlabError
        from genlab.modalities import modality_of_run

        family, modality = config.get("family"), modality_of_run(config).name
        if (family, modality) != (self.family, self.modality):
            raise GenlabError(f"{self.run_dir} is a reward model on a {self.family} {self.modality} backbone and "
                              f"{run_dir} is a {family} {modality} model; train a reward model on it with: genlab "
                              f"reward {run_dir} --preferences STORE --out RM")

    @torch.no_grad()
    def score(self, prompt: str, outputs: list) -> list[float]:
        """The reward of each output of `prompt`: texts, or what the model's generate() returned."""
        return self.model(*self.model.inputs_for(self.reader, prompt, outputs)).tolist()
