"""LoRA adapters on genlab's own models, through peft (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
Language Models").

A LoRA layer keeps the trained weight W frozen and learns W + (alpha / r) B A, with A (r, in) and B (out, r)
and B starting at zero, so fine-tuning begins exactly at the parent model. peft wraps our nn.Linear,
nn.Embedding and nn.Conv2d layers by module name; the LSTM's gate matrices live inside nn.LSTM, which no
peft layer replaces, so those are adapted by parameter name (peft's `target_parameters`, a low-rank
parametrization of the weight tensor).

A run trained this way stores only the adapter, in peft's own layout (adapter_config.json +
adapter_model.safetensors, keys `base_model.model.<name>.lora_A.weight`): `PeftModel.from_pretrained(parent,
RUN)` reads it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.io import load_tensors, save_tensors

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
LAYERS = (nn.Linear, nn.Embedding, nn.Conv2d)  # what peft wraps by module name


@dataclass
class LoraSettings:
    rank: int = 8
    alpha: float = 16.0
    targets: str | None = None  # a regular expression of layer names; None: the family's lora_targets
    dropout: float = 0.0

    def check(self) -> None:
        if self.rank <= 0:
            raise GenlabError(f"--lora-rank must be positive, got {self.rank}")
        if not self.alpha > 0:
            raise GenlabError(f"--lora-alpha must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise GenlabError(f"--lora-dropout must be in [0, 1), got {self.dropout}")
        if self.targets is not None:
            try:
                re.compile(self.targets)
            except re.error as e:
                raise GenlabError(f"--lora-targets {self.targets!r} is not a regular expression ({e})") from None


def adaptable_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """The layers peft can wrap (by module name) and the weight matrices of other modules it can adapt by
    parameter name (an LSTM's), in the model's order."""
    layers = [name for name, m in model.named_modules() if isinstance(m, LAYERS)]
    matrices = [f"{name}.{p}" for name, m in model.named_modules() if not isinstance(m, LAYERS)
                for p, t in m.named_parameters(recurse=False) if t.dim() == 2]
    return layers, matrices


def choose_targets(family, model: nn.Module, pattern: str | None) -> tuple[list[str], list[str]]:
    """The layers and matrices whose full name matches `pattern` (or the family's default), refusing a
    pattern that matches nothing and weights shared by two layers (tied)."""
    pattern = pattern or family.lora_targets
    if pattern is None:
        raise GenlabError(f"the {family.name} family has no default LoRA layers; name them with --lora-targets "
                          "PATTERN, or fine-tune all weights (leave out --lora-rank)")
    layers, matrices = adaptable_names(model)
    rx = re.compile(pattern)
    chosen = [n for n in layers if rx.fullmatch(n)], [n for n in matrices if rx.fullmatch(n)]
    if not chosen[0] and not chosen[1]:
        shown = ", ".join((layers + matrices)[:8])
        raise GenlabError(f"--lora-targets {pattern!r} matches no layer of this {family.name} model; its layers "
                          f"are named like: {shown} (a regular expression matched against the whole name)")
    _refuse_tied(model, chosen[0])
    return chosen


def _refuse_tied(model: nn.Module, layers: list[str]) -> None:
    """A LoRA on a layer whose weight another layer shares (an embedding tied to the output head) would
    change both once merged but only one before: outputs would differ after `genlab merge`."""
    modules = dict(model.named_modules())
    owners: dict[int, list[str]] = {}
    for name, m in modules.items():
        w = getattr(m, "weight", None)
        if isinstance(m, LAYERS) and isinstance(w, torch.Tensor):
            owners.setdefault(id(w), []).append(name)
    for name in layers:
        shared = owners[id(modules[name].weight)]
        if len(shared) > 1:
            other = next(n for n in shared if n != name)
            raise GenlabError(f"{name} shares its weight with {other} (tied); a LoRA on it would change both "
                              "layers once merged; leave it out of --lora-targets")


def add_adapter(family, model: nn.Module, settings: LoraSettings) -> nn.Module:
    """`model` with fresh LoRA layers (B = 0: the outputs are the model's) as peft's PeftModel; only they train."""
    from peft import LoraConfig, get_peft_model

    settings.check()
    layers, matrices = choose_targets(family, model, settings.targets)
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=layers, target_parameters=matrices or None)
    return get_peft_model(model, config)


def merge_adapter(model: nn.Module) -> nn.Module:
    """The family's own module with W + (alpha / r) B A written into each adapted weight, the adapter gone."""
    return model.merge_and_unload()


class AdapterWeights:
    """The checkpoint layout of a LoRA run: the adapter alone, as peft saves it; the parent holds the rest."""

    files = (ADAPTER_WEIGHTS, ADAPTER_CONFIG)

    def save(self, model: nn.Module, folder: Path) -> None:
        from peft import get_peft_model_state_dict

        save_tensors(folder / ADAPTER_WEIGHTS, get_peft_model_state_dict(model), metadata={"format": "pt"})
        model.peft_config["default"].save_pretrained(str(folder))

    def load(self, model: nn.Module, folder: Path) -> None:
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        path = Path(folder) / ADAPTER_WEIGHTS
        tensors = load_tensors(path)
        expected = set(get_peft_model_state_dict(model))  # the names this adapter's layers save under
        if set(tensors) != expected:
            extra, missing = sorted(set(tensors) - expected), sorted(expected - set(tensors))
            raise GenlabError(f"{path} does not fit the adapter its config.json describes (unexpected "
                              f"{extra[:2]}, missing {missing[:2]}); the run directory is mixed up")
        try:
            set_peft_model_state_dict(model, tensors)
        except RuntimeError as e:  # a shape that differs from the layer's
            detail = next((s.strip() for s in str(e).splitlines() if "size mismatch" in s), str(e)[:160])
            raise GenlabError(f"{path} does not fit its parent model ({detail[:160]})") from None

