"""The Modality contract and registry: what a model learns from and makes (text, images, music).

Families say how a model learns (genlab.families); modalities say what it learns from and makes.
Each modality is one folder (genlab/text, genlab/images, genlab/music) that holds its data and
preprocessing, its sampler, its evaluation and its file formats, and whose `__init__` defines its
Modality. The API, the CLI, the trainer and the server ask this registry and never branch on a
modality's name:

    modality = modality_for_training("music:folk", family)  # which wing reads this data
    data = modality.open_data("music:folk", cfg, block_size)  # batches, split, preprocessing to save
    sampler = modality.sampler(loaded_run)                   # generate, stream where it applies, write
    metrics = modality.evaluate(sampler, None, **options)

A new modality is a folder and one line in `registry()`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from genlab.errors import GenlabError


@dataclass
class LoadedRun:
    """A run directory's model with its weights in place, as `genlab.load` hands it to a modality."""

    model: Any  # the family's nn.Module, on `device`, in eval mode
    config: dict  # config.json
    run_dir: Path
    device: Any  # torch.device
    precision: str  # fp32, bf16 or int8: how sampling runs the model
    weights: Path  # the checkpoint file loaded (model.safetensors, or the best checkpoint's)
    preprocessing: Any = None  # what the modality read back from the run directory (a tokenizer), if anything


class Sampler:
    """A loaded run, ready to sample. Every modality's sampler offers the same calls:

    - `generate(**controls)`: outputs (texts, tunes, an image tensor), with `last_seed` and
      `last_controls` recorded for provenance;
    - `stream(**controls)`: pieces as they are made, where `streams(controls)` says it applies;
    - `write(outputs, out_dir, **write_options)`: files with provenance, their paths returned;
    - `show(outputs)`: the outputs as text for a terminal, and `summary(...)` of what `write` wrote.

    `controls` names the controls `genlab sample` passes (with its defaults), `write_options` the
    options `write` takes, and `default_out_dir` where outputs go when no folder is given (None:
    they are printed).
    """

    controls: ClassVar[dict[str, Any]] = {}
    write_options: ClassVar[dict[str, Any]] = {}
    default_out_dir: ClassVar[str | None] = None

    def __init__(self, run: LoadedRun):
        from genlab.safety.provenance import Provenance

        self.model, self.config, self.run_dir = run.model, run.config, Path(run.run_dir)
        self.device, self.precision = run.device, run.precision
        self.weights_path = Path(run.weights)
        self.provenance_source = Provenance(self.run_dir, self.config, self.weights_path)
        self.last_seed: int | None = None
        self.last_controls: dict = {}

    @property
    def modality(self) -> str:
        return self.config.get("data", {}).get("modality", "text")

    @property
    def checkpoint_sha256(self) -> str:
        return self.provenance_source.checkpoint_sha256

    def generate(self, **controls):
        raise NotImplementedError

    def streams(self, controls: dict) -> bool:
        return False

    def stream(self, **controls):
        raise GenlabError(f"{self.modality} models do not stream; use generate()")

    def write(self, outputs, out_dir: str | os.PathLike, **options) -> list[Path]:
        raise NotImplementedError

    def show(self, outputs) -> str:
        raise GenlabError(f"{self.modality} outputs cannot be shown as text; write them to a folder with -o DIR")

    def summary(self, outputs, paths: list[Path], out_dir: str | os.PathLike) -> str:
        return f"wrote {len(paths)} files to {out_dir}/"


class Modality:
    """What every modality offers; `genlab.modalities.registry()` holds one object of each."""

    name: ClassVar[str]
    # the families whose Family.batch_kind is this train on this modality's data
    batch_kind: ClassVar[str]
    # options its evaluate() takes beyond the data, and the precisions it evaluates in
    eval_options: ClassVar[tuple[str, ...]] = ()
    eval_precisions: ClassVar[tuple[str, ...]] = ("fp32", "bf16", "int8")

    def claims(self, source: str) -> bool:
        """Whether a dataset name or path holds this modality's data."""
        raise NotImplementedError

    def open_data(self, source: str, cfg, block_size: int | None):
        """The training data: batches, split, what the model takes from it, and preprocessing to save."""
        raise NotImplementedError

    def load_preprocessing(self, run_dir: Path, config: dict):
        """What sampling needs from the run directory besides the weights (a tokenizer), or None."""
        return None

    def sampler(self, run: LoadedRun) -> Sampler:
        """A loaded run as this modality's sampler."""
        raise NotImplementedError

    def evaluate(self, sampler: Sampler, data: str | None = None, **options) -> dict:
        """Metrics of a loaded model, on its own data or on `data`."""
        raise NotImplementedError

    def format_metrics(self, metrics: dict) -> str:
        """The metrics as `genlab eval` prints them."""
        return "\n".join(f"{k}: {v}" for k, v in metrics.items())

    def card_data(self, config: dict) -> list[str]:
        """Model-card lines about the data and its preprocessing."""
        raise NotImplementedError

    def card_usage(self, run_dir: Path) -> str:
        """A command that samples this run, for the model card."""
        raise NotImplementedError

    def check_evaluation(self, precision: str, options: dict[str, Any]) -> dict[str, Any]:
        """The given options this modality's evaluate() takes; any other given option is a one-line error
        naming the modalities that do take it."""
        if precision not in self.eval_precisions:
            takers = [m.name for m in registry().values() if precision in m.eval_precisions]
            raise GenlabError(f"--precision is for evaluating {' and '.join(takers)} models; "
                              f"leave it out for {self.name}")
        given = {k: v for k, v in options.items() if v is not None}
        for key in given:
            if key not in self.eval_options:
                takers = [m.name for m in registry().values() if key in m.eval_options]
                flag = "--" + key.replace("_", "-")
                if not takers:
                    raise GenlabError(f"{flag} is not an evaluation option; leave it out")
                raise GenlabError(f"{flag} is for {' and '.join(takers)} models; leave it out here")
        return given


@functools.cache
def registry() -> dict[str, Modality]:
    """Every modality, in the order sources are matched: text last, as it takes any file.

    Built on first use: each wing's Modality subclasses the class above, so the wings import this module."""
    from genlab.images import ImageModality
    from genlab.music import MusicModality
    from genlab.text import TextModality

    return {m.name: m for m in (ImageModality(), MusicModality(), TextModality())}


def get_modality(name: str) -> Modality:
    try:
        return registry()[name]
    except KeyError:
        raise GenlabError(f"unknown modality {name!r}; the run directory may come from a newer genlab") from None


def modality_of_source(source: str) -> Modality:
    """The modality whose data a dataset name or path holds."""
    return next(m for m in registry().values() if m.claims(source))


def modality_of_run(config: dict) -> Modality:
    """The modality a run was trained on (config.json's data.modality; runs from before it say text)."""
    return get_modality(config.get("data", {}).get("modality", "text"))


def modality_for_training(source: str, family) -> Modality:
    """The modality whose data `family` trains on from `source`.

    A source of another batch kind than the family's is read as the family's own modality where there
    is only one (its reader then says what is wrong with the source), else refused, naming the
    families that can model it."""
    from genlab.families import FAMILIES

    found = modality_of_source(source)
    if found.batch_kind == family.batch_kind:
        return found
    takers = [m for m in registry().values() if m.batch_kind == family.batch_kind]
    if len(takers) == 1:
        return takers[0]
    able = [f.name for f in FAMILIES.values() if f.batch_kind == found.batch_kind]
    choices = ", ".join(able[:-1]) + f" or {able[-1]}" if len(able) > 1 else able[0]
    raise GenlabError(f"{source} holds {found.name}, which the {family.name} family cannot model; "
                      f"train it with --family {choices}")
