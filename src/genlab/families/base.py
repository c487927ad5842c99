"""The contract between a model family and the rest of genlab.

A family is a config dataclass, an nn.Module built from it, and the loss of a batch. The trainer,
CLI and sampler only talk to this interface and never branch on a family's name (minGPT's trainer
"has nothing to do with GPT"). A family whose training is not "one loss, one optimizer" (a GAN)
overrides `make_optimizers` and `train_step`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.training.config import check_types


class Family:
    name: ClassVar[str]
    config_class: ClassVar[type]
    # what a batch holds: "tokens" = (inputs, targets) id windows, or (inputs, targets, input features) where the
    # data gives a second input per token; later modalities add their own
    batch_kind: ClassVar[str] = "tokens"
    # model settings that come from the data (data.model_settings()), never from flags
    data_keys: ClassVar[set[str]] = {"vocab_size", "feature_vocab_size"}
    # training settings this family starts from unless a flag or config file says otherwise
    train_defaults: ClassVar[dict[str, Any]] = {}
    # model sizes by name (`--preset tiny|small|base`): settings that flags and config files override
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # whether train_step can split a batch into micro-batches and add up their gradients (--grad-accum)
    accumulates: ClassVar[bool] = True
    # the layers `genlab finetune --lora-rank` adapts unless --lora-targets names others: a regular expression
    # matched against whole module names (nn.Linear, nn.Embedding, nn.Conv2d) or weight names (an LSTM's)
    lora_targets: ClassVar[str | None] = None

    def make_config(self, values: dict[str, Any]):
        """Build the config from a dict, refusing unknown keys by name and values of the wrong type (checked
        against the config's annotations, so `n_layer = "four"` is one line, not a TypeError deep in a layer)."""
        fields = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise GenlabError(
                f"unknown {self.name} setting(s): {', '.join(unknown)}; known ones are: {', '.join(sorted(fields))}"
            )
        return self.config_class(**check_types(self.config_class, values))

    def saved_config(self, saved: dict[str, Any]):
        """The config of a saved run (config.json's "model"); a family fills in settings added since."""
        return self.make_config(saved)

    def build(self, config) -> nn.Module:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        raise NotImplementedError

    def begin_finetune(self, model: nn.Module) -> None:
        """Prepare a trained model to be fine-tuned; a family that samples from averaged weights starts from those."""

    def adopt_weights(self, model: nn.Module) -> None:
        """The weights were set outside training (a LoRA adapter merged in): make what derives from them agree."""

    def reward_model(self, backbone: nn.Module) -> nn.Module:
        """A scalar head on a trained model (genlab reward): the model that scores this family's outputs."""
        raise GenlabError(f"the {self.name} family has no reward model yet; train one on a gpt, lstm or diffusion "
                          "model")

    def make_optimizers(self, model: nn.Module, lr: float, weight_decay: float, betas, fused: bool):
        """One AdamW over all parameters; decay only matrices (nanoGPT's grouping)."""
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return {"model": torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)}

    def wrap_for_ddp(self, model: nn.Module, wrap) -> nn.Module:
        """The module train_step runs on under DistributedDataParallel: `wrap(model)`. A family whose step
        calls sub-models one at a time (a GAN) wraps each of them instead."""
        return wrap(model)

    def train_step(self, model: nn.Module, batch, optimizers: dict, step_context) -> dict[str, float]:
        """One gradient step: loss, backward (per micro-batch, gradients adding up), clip, update. Returns the
        figures to log; the loss is the batch's mean, as one pass over the whole batch would give it."""
        (opt,) = optimizers.values()
        parts = step_context.grad_accum
        loss = 0.0
        for micro_batch in step_context.micro_batches(model, batch):
            with step_context.autocast():
                part = self.loss(model, micro_batch) / parts
            part.backward()
            loss += part.detach()
        grad_norm = step_context.clip(model.parameters())
        opt.step()
        opt.zero_grad(set_to_none=True)
        return {"loss": loss, "grad_norm": grad_norm}


def feature_ids(features: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor:
    """The feature ids a token model built with feature_vocab_size needs, checked against the token ids' shape."""
    if features is None or features.shape != idx.shape:
        raise ValueError(f"this model reads a feature id beside each token: pass features of shape {tuple(idx.shape)}")
    return features


class LanguageModelFamily(Family):
    """A family whose model maps token ids (B, T), and the data's feature ids beside them where it gives
    them, to next-token logits (B, T, vocab)."""

    batch_kind = "tokens"

    def reward_model(self, backbone: nn.Module) -> nn.Module:
        from genlab.align.reward import RewardModel

        return RewardModel(backbone)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        x, y, *features = batch
        logits = model(x, features=features[0]) if features else model(x)
        return nn.functional.cross_entropy(logits.view(-1, logits.size(-1)).float(), y.reshape(-1))


def core(model: nn.Module) -> nn.Module:
    """The family's own module inside a DistributedDataParallel or torch.compile wrapper: its attributes
    (config, ema, sub-networks) are read there, while the forward pass goes through the wrapper."""
    while True:
        if hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model
