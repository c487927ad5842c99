"""Fine-tuning: a run that starts from another run's weights and trains on on a narrow dataset, all weights or
a LoRA adapter (align/lora.py), and `merge`, which writes adapter-on-parent as a standalone run.

A fine-tune is an ordinary run of the one trainer (config.json, model card, metrics.jsonl, checkpoints, exact
--resume). It reads its data the parent's way (the parent's tokenizer, image size and classes) and records
its parent in config.json: `train.parent`, the parent's path relative to the run directory (so that a folder
of runs can move as one), and `train.parent_sha256`, the hash of the parent's weights file when the fine-tune
began. A LoRA run holds the adapter alone, so loading it needs the parent as it was: a parent that is
missing or whose weights changed since is a one-line error.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from genlab.align.lora import ADAPTER_WEIGHTS, AdapterWeights, LoraSettings, add_adapter, merge_adapter
from genlab.errors import GenlabError
from genlab.io import atomic_write_json, read_json
from genlab.training.checkpoint import FULL_WEIGHTS, load_model_tensors, model_tensors

# what a fine-tune changes from its parent's training settings unless flags say otherwise
FINETUNE_DEFAULTS: dict[str, Any] = {"max_steps": 300, "warmup_steps": 20, "eval_interval": 50}
FULL_LR_SHARE = 0.1  # all weights train at a tenth of the parent's peak rate: small steps keep what it knew
# the parent's settings that decide how data is read and the model built: a fine-tune keeps them
KEPT_FROM_PARENT = ("family", "tokenizer", "vocab_size", "image_size", "color", "preset", "grad_accum",
                    "precision", "compile")


def weights_file(run_dir: Path, config: dict) -> Path:
    """The file that holds what a run trained: model.safetensors, or a LoRA run's adapter."""
    lora = (config.get("train") or {}).get("lora")
    return Path(run_dir) / (ADAPTER_WEIGHTS if lora else "model.safetensors")


def weights_layout(lora: dict | None):
    """How a run's checkpoints hold its weights: all of them, or the LoRA adapter alone."""
    return AdapterWeights() if lora else FULL_WEIGHTS


@dataclass
class ParentRun:
    """The run a fine-tune starts from, checked: its config, modality, preprocessing and weights' hash."""

    run_dir: Path
    config: dict
    family: Any
    modality: Any
    preprocessing: Any
    sha256: str

    @classmethod
    def open(cls, path: str | os.PathLike, expected_sha256: str | None = None, child: Path | None = None
             ) -> ParentRun:
        from genlab.families import get_family
        from genlab.modalities import modality_of_run
        from genlab.safety.provenance import file_sha256

        run_dir = Path(path)
        whose = f"{child} was fine-tuned from {run_dir}, which" if child else f"{run_dir}"
        if not (run_dir / "config.json").is_file():
            raise GenlabError(f"{whose} is missing (no config.json there); put the parent run back at that path, "
                              "or load a merged run (genlab merge)")
        config = read_json(run_dir / "config.json")
        weights = weights_file(run_dir, config)
        if not weights.is_file():
            raise GenlabError(f"{whose} has no {weights.name}: it never reached a checkpoint; train it further")
        sha256 = file_sha256(weights)
        if expected_sha256 is not None and sha256 != expected_sha256:
            raise GenlabError(f"{whose} has changed since (sha256 of {weights.name} {sha256[:12]}…, recorded "
                              f"{expected_sha256[:12]}…): the adapter was trained on the old weights; restore them, "
                              "or fine-tune the new ones again")
        modality = modality_of_run(config)
        return cls(run_dir, config, get_family(config["family"]), modality,
                   modality.load_preprocessing(run_dir, config), sha256)

    def model(self) -> nn.Module:
        """The parent's model on the CPU, with its weights (a LoRA parent's merged in)."""
        return run_model(self.run_dir, self.config)


def relative_path(target: Path, start: Path) -> str:
    return os.path.relpath(Path(target).resolve(), Path(start).resolve())


def parent_of(run_dir: Path, config: dict) -> ParentRun:
    """The parent of a fine-tuned run, checked against the hash recorded when the fine-tune began."""
    train = config["train"]
    return ParentRun.open(Path(run_dir) / train["parent"], train.get("parent_sha256"), child=Path(run_dir))


def run_model(run_dir: Path, config: dict, folder: Path | None = None) -> nn.Module:
    """A run's model on the CPU with the weights in `folder` (default: the run's newest): its own, or for a LoRA
    run its parent's with the adapter merged in (W + (alpha / r) B A), which samples as fast as any model."""
    from genlab.families import get_family

    run_dir = Path(run_dir)
    family = get_family(config["family"])
    folder = Path(folder or run_dir)
    lora = config["train"].get("lora")
    if not lora:
        model = family.build(family.saved_config(config["model"]))
        if is_reward_run(config["train"].get("objective")):
            model = family.reward_model(model)
        load_model_tensors(model, folder / "model.safetensors")
        return model
    model = adapter_model(family, parent_of(run_dir, config).model(), lora)
    AdapterWeights().load(model, folder)
    model = merge_adapter(model)
    family.adopt_weights(model)
    return model


def is_reward_run(objective: dict | None) -> bool:
    return bool(objective) and objective.get("method") == "reward"


def learns_from_pairs(objective: dict | None) -> bool:
    """Whether a run trains on preference pairs (DPO, a reward model) rather than on its modality's data."""
    return bool(objective) and objective.get("method") in ("dpo", "reward")


def is_aligned(objective: dict | None) -> bool:
    """Whether a run was aligned (DPO, best-of-n) or is a reward model: what it trained on is not its domain."""
    return bool(objective) and objective.get("method") in ("dpo", "reward", "best-of-n")


def held_out_source(run_dir: Path, config: dict) -> str | None:
    """For an aligned run (on preference pairs, or best-of-n's kept samples), the data whose held-out split
    measures it: its first ancestor's that was not aligned. None for any other run: its own data does."""
    run_dir = start = Path(run_dir)
    while is_aligned(config["train"].get("objective")):
        parent = run_dir / config["train"]["parent"]
        if not (parent / "config.json").is_file():
            raise GenlabError(f"{run_dir} was aligned from {parent}, which is missing, and its held-out data is "
                              "that run's; give the data to measure it on: genlab eval RUN --data DATA")
        run_dir, config = parent, read_json(parent / "config.json")
    return None if run_dir == start else config["data"]["source"]


def adapter_model(family, parent_model: nn.Module, lora: dict) -> nn.Module:
    """The parent's model ready for its adapter: as fine-tuning starts it, with fresh LoRA layers."""
    family.begin_finetune(parent_model)
    return add_adapter(family, parent_model, LoraSettings(**lora))


class FineTune:
    """What the trainer asks of a run that starts from another (TrainConfig.parent): the modality and
    preprocessing to read its data with, the model to train and how checkpoints hold it, and its lineage.

    A new fine-tune reads the parent; a resumed one reads its own tokenizer (the parent's, saved when it
    began) and needs the parent again only for a LoRA adapter, checked against the recorded hash."""

    def __init__(self, cfg, run_dir: Path, resuming: bool):
        from genlab.modalities import modality_of_run

        self.cfg, self.run_dir, self.resuming = cfg, Path(run_dir), resuming
        self.parent = None
        if resuming and not cfg.lora and not cfg.objective:
            config = read_json(self.run_dir / "config.json")
            self.modality = modality_of_run(config)
            self.preprocessing = self.modality.load_preprocessing(self.run_dir, config)
        else:
            self.parent = ParentRun.open(self.run_dir / cfg.parent, cfg.parent_sha256, child=self.run_dir)
            cfg.parent_sha256 = self.parent.sha256
            self.modality, self.preprocessing = self.parent.modality, self.parent.preprocessing
        self.weights = weights_layout(cfg.lora)

    def open_data(self, block_size: int | None):
        """The data to train on, read the parent's way: the modality's, or for alignment preference pairs
        (kept in the run, so a resume reads the same ones) scored once by the frozen parent."""
        cfg = self.cfg
        if cfg.chat and not self.modality.takes_chat:
            raise GenlabError(f"--chat is for text models; {self.parent.run_dir if self.parent else self.run_dir} is a "
                              f"{self.modality.name} model")
        if not learns_from_pairs(cfg.objective):  # best-of-n: its kept outputs are ordinary data
            return self.modality.open_data(cfg.data, cfg, block_size, self.preprocessing)
        from genlab.align.dpo import PAIRS_FILE, open_preferences

        pairs_from = self.run_dir / PAIRS_FILE if self.resuming else cfg.data
        data = open_preferences(self.parent.run_dir, cfg.data, pairs_from, block_size, cfg.val_fraction,
                                reference=cfg.objective["method"] == "dpo")  # a reward model needs no reference
        cfg.objective = {**cfg.objective, "preferences_sha256": data.content_hash}
        return data

    def family(self, family):
        """The family as this run trains it: under DPO its loss is DPO's; a reward model's is Bradley-Terry's."""
        if not learns_from_pairs(self.cfg.objective):
            return family
        from genlab.align.dpo import PreferenceObjective
        from genlab.align.reward import RewardObjective

        if self.cfg.objective["method"] == "reward":
            return RewardObjective(family)
        return PreferenceObjective(family, self.cfg.objective["beta"])

    def model(self, family, model_config) -> nn.Module:
        """The model to train: the parent's (its weights, or on resume fresh ones that the checkpoint fills),
        with a fresh LoRA adapter when only one trains. The data read the parent's way must give its model."""
        from dataclasses import asdict

        if self.parent is None:
            return family.build(model_config)  # resuming all weights: the checkpoint holds them
        if is_reward_run(self.cfg.objective):
            backbone = self.parent.model()
            family.begin_finetune(backbone)  # from the weights the parent samples with
            return family.reward_model(backbone)  # the parent's backbone, a fresh head
        parent = self.parent
        if parent.family is not getattr(family, "family", family):
            raise GenlabError(f"{parent.run_dir} is a {parent.family.name} model; a fine-tune keeps its family")
        saved = asdict(parent.family.saved_config(parent.config["model"]))
        differs = [k for k, v in asdict(model_config).items() if saved.get(k) != v]
        if self.cfg.chat and differs == ["vocab_size"] and model_config.vocab_size > saved["vocab_size"]:
            model = grow_vocabulary(parent.model(), family.build(model_config))  # the chat template's new tokens
            family.begin_finetune(model)
            return model
        if differs:
            k = differs[0]
            raise GenlabError(f"{self.cfg.data} gives {k} {getattr(model_config, k)} but {parent.run_dir} was "
                              f"built with {saved.get(k)}; fine-tune on data of the same kind")
        model = parent.model()
        if self.cfg.lora:
            return adapter_model(family, model, self.cfg.lora)
        family.begin_finetune(model)
        return model

    def record(self) -> dict:
        """config.json's top-level `parent` entry (lineage for genlab info and the model card)."""
        objective = {"objective": self.cfg.objective} if self.cfg.objective else {}
        return {"path": self.cfg.parent, "weights_sha256": self.cfg.parent_sha256,
                "method": "lora" if self.cfg.lora else "full", **objective}


def grow_vocabulary(parent: nn.Module, model: nn.Module) -> nn.Module:
    """`model` (a larger vocabulary, otherwise the parent's shape) with the parent's weights: every tensor indexed
    by token (embeddings, output rows, their biases) keeps the parent's rows, and each new token starts at the
    mean of the old ones (Hewitt 2021: new embeddings near the average change the model's outputs least)."""
    own, theirs = model.state_dict(), parent.state_dict()
    for name, old in theirs.items():
        new = own[name]
        if new.shape == old.shape:
            new.copy_(old)
        elif new.shape[1:] == old.shape[1:] and new.shape[0] > old.shape[0]:
            new[: old.shape[0]] = old
            new[old.shape[0] :] = old.float().mean(0).to(old.dtype)
        else:
            raise GenlabError(f"{name} is {tuple(old.shape)} in the parent and {tuple(new.shape)} here; only the "
                              "vocabulary can grow")
    return model


def finetune_settings(parent_dir: Path, data: str, out: Path, *, lora_rank: int | None = None,
                      lora_alpha: float | None = None, lora_targets: str | None = None,
                      lora_dropout: float | None = None, **settings: Any) -> dict[str, Any]:
    """The flat settings of a fine-tune: the parent's training settings, FINETUNE_DEFAULTS, then the flags.
    What decides how data is read and the model built stays the parent's (KEPT_FROM_PARENT)."""
    parent = ParentRun.open(parent_dir)
    train = dict(parent.config["train"])
    kept = [k for k in settings if k in KEPT_FROM_PARENT or k in parent.family.data_keys]
    if kept:
        raise GenlabError(f"--{kept[0].replace('_', '-')} is the parent's ({train.get(kept[0])!r}) and stays so in "
                          "a fine-tune; leave it out")
    lora = None
    if lora_rank is not None or lora_targets is not None or lora_alpha is not None:
        given = {"rank": lora_rank, "alpha": lora_alpha, "targets": lora_targets, "dropout": lora_dropout}
        defaults = LoraSettings()
        lora = {k: v if v is not None else getattr(defaults, k) for k, v in given.items()}
        if lora_alpha is None and lora_rank is not None:
            lora["alpha"] = 2.0 * lora_rank  # peft's examples: alpha twice the rank
        LoraSettings(**lora).check()
    elif lora_dropout is not None:
        raise GenlabError("--lora-dropout is for LoRA fine-tuning; add --lora-rank R, or leave it out")
    # LoRA's few fresh weights start at zero and take the parent's rate, as a chat fine-tune does (a new format and
    # new tokens to learn: a tenth of the rate learned them far more slowly in bench/chat.py); all weights take a
    # tenth of it
    lr = train.get("lr", 1e-3) * (1.0 if lora or settings.get("chat") else FULL_LR_SHARE)
    values = {**{k: train[k] for k in KEPT_FROM_PARENT if k in train},
              "batch_size": train.get("batch_size"), "weight_decay": train.get("weight_decay"),
              "grad_clip": train.get("grad_clip"), "beta1": train.get("beta1"), "beta2": train.get("beta2"),
              "eval_batches": train.get("eval_batches"), "val_fraction": train.get("val_fraction"),
              "seed": train.get("seed"), "lr": lr, "min_lr": lr / 10, **FINETUNE_DEFAULTS}
    values = {k: v for k, v in values.items() if v is not None}
    if settings.get("max_minutes") is not None and "max_steps" not in settings:
        from genlab.training.config import UNTIL_TIME_RUNS_OUT

        values["max_steps"] = UNTIL_TIME_RUNS_OUT
    if "lr" in settings and "min_lr" not in settings:
        values["min_lr"] = settings["lr"] / 10
    values.update({k: v for k, v in parent.config["model"].items() if k not in parent.family.data_keys})
    values.update(settings)
    values.update(data=data, out=str(out), parent=relative_path(parent_dir, out), lora=lora)
    return values


def default_out(parent_dir: Path, data: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", Path(data).name if ":" not in data else data).strip("-")
    return Path(f"{Path(parent_dir)}-ft-{slug or 'data'}")


def merge(run_dir: Path, out: Path) -> Path:
    """Write `run_dir` (a LoRA fine-tune) as a standalone run: the adapter merged into the parent's weights,
    config.json without LoRA, the tokenizer and a model card. Its outputs equal adapter-on-parent."""
    from genlab.io import atomic_directory, save_tensors
    from genlab.safety.card import write_model_card
    from genlab.safety.provenance import file_sha256

    run_dir, out = Path(run_dir), Path(out)
    config = read_json(run_dir / "config.json")
    if not (config.get("train") or {}).get("lora"):
        raise GenlabError(f"{run_dir} holds all its weights already (it is no LoRA fine-tune); nothing to merge")
    if out.exists():
        raise GenlabError(f"{out} already exists; choose another --out")
    parent = parent_of(run_dir, config)
    model = run_model(run_dir, config)
    merged = {**config, "train": {**config["train"], "lora": None, "parent": relative_path(parent.run_dir, out)},
              "merged_from": {"path": relative_path(run_dir, out),
                              "adapter_sha256": file_sha256(run_dir / ADAPTER_WEIGHTS),
                              "lora": config["train"]["lora"]},
              "parent": {"path": relative_path(parent.run_dir, out), "weights_sha256": parent.sha256,
                         "method": "lora, merged"}}
    merged["n_params"] = sum(p.numel() for p in model.parameters())
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(out) as tmp:
        save_tensors(tmp / "model.safetensors", model_tensors(model))
        for name in os.listdir(run_dir):
            if (run_dir / name).is_file() and not name.startswith(".") and name not in (
                    "config.json", "README.md", "trainer_state.json", "adapter_config.json", ADAPTER_WEIGHTS):
                shutil.copyfile(run_dir / name, tmp / name)  # tokenizer.json, metrics.jsonl, metrics.json
        atomic_write_json(tmp / "config.json", merged)
    write_model_card(out)
    return out
