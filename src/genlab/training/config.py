"""Training settings: defaults in code, overrides from a TOML/YAML file and from flags.

Unknown keys are refused by name. Model settings (n_layer, n_embd, ...) sit beside the training
settings in the same flat namespace and are routed to the family's config.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError


@dataclass
class TrainConfig:
    data: str = "text:pydocs"
    family: str = "gpt"
    out: str | None = None
    tokenizer: str = "char"
    vocab_size: int | None = None
    val_fraction: float = 0.1
    image_size: int | None = None  # images: side in pixels (default 16 for digits, 28 for MNIST, 32 for folders)
    color: str = "auto"  # images: auto | grey | rgb
    augment: str | None = None  # images: comma-separated flip, shift
    batch_size: int = 12
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    max_steps: int = 2000
    lr_decay_steps: int | None = None  # cosine horizon; defaults to max_steps when the run starts
    max_minutes: float | None = None
    eval_interval: int = 250
    eval_batches: int = 20
    log_interval: int = 10
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    seed: int = 1337
    precision: str = "auto"  # auto | fp32 | bf16
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False
    model: dict[str, Any] = field(default_factory=dict)  # family settings: n_layer, n_head, n_embd, ...

    def validate(self) -> None:
        positive = ["batch_size", "max_steps", "eval_interval", "eval_batches", "log_interval"]
        for name in positive:
            if getattr(self, name) <= 0:
                raise GenlabError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise GenlabError(f"--warmup-steps must be 0 or more, got {self.warmup_steps}")
        if not self.lr > 0:
            raise GenlabError(f"--lr must be positive, got {self.lr}")
        if not 0 <= self.min_lr <= self.lr:
            raise GenlabError(f"--min-lr must be between 0 and --lr ({self.lr}), got {self.min_lr}")
        if not 0 < self.val_fraction < 1:
            raise GenlabError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise GenlabError(f"--max-minutes must be positive, got {self.max_minutes}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise GenlabError(f"--precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise GenlabError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        dropout = self.model.get("dropout", 0.0)
        if not 0 <= dropout < 1:
            raise GenlabError(f"--dropout must be in [0, 1), got {dropout}")
        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            if name in self.model and self.model[name] <= 0:
                raise GenlabError(f"--{name.replace('_', '-')} must be positive, got {self.model[name]}")
        if self.grad_clip < 0:
            raise GenlabError(f"--grad-clip must be 0 (off) or positive, got {self.grad_clip}")


TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}


def read_config_file(path: str) -> dict[str, Any]:
    """Read a TOML or YAML file of settings into a flat dict ([model] tables are flattened)."""
    p = Path(path)
    if not p.is_file():
        raise GenlabError(f"config file {path} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".toml":
            values = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            raise GenlabError(f"config file {path} must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, ValueError) as e:
        raise GenlabError(f"config file {path} is not valid: {str(e).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise GenlabError(f"config file {path} must hold a table of settings")
    flat = {k.replace("-", "_"): v for k, v in values.items() if k != "model"}
    for k, v in (values.get("model") or {}).items():
        flat[k.replace("-", "_")] = v
    return flat


def make_train_config(values: dict[str, Any], model_keys: set[str]) -> TrainConfig:
    """Split a flat dict into training and model settings, refusing keys neither knows."""
    unknown = sorted(k for k in values if k not in TRAIN_KEYS and k not in model_keys)
    if unknown:
        raise GenlabError(
            f"unknown setting(s): {', '.join(unknown)}; training settings are {', '.join(sorted(TRAIN_KEYS))} "
            f"and model settings are {', '.join(sorted(model_keys))}"
        )
    train = {k: v for k, v in values.items() if k in TRAIN_KEYS}
    model = {k: v for k, v in values.items() if k in model_keys and k not in TRAIN_KEYS}
    return TrainConfig(**train, model=model)
