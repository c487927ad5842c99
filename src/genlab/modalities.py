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

FLAG_NAMES = {"constraint": "no-constraint"}  # controls whose command-line flag is not simply their name


def flag_name(control: str) -> str:
    """A sampling control as genlab sample spells it: max_new_tokens -> --max-new-tokens."""
    return "--" + FLAG_NAMES.get(control, control.replace("_", "-"))


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
    content_filter: Any = None  # the ContentFilter its prompts and words go through (safety/content_filter.py)


class Sampler:
    """A loaded run, ready to sample. Every modality's sampler offers the same calls:

    - `generate(**controls)`: one output (a str, a Tune, a PIL image) or, when num_samples > 1, a list
      of them, with `last_seed` and `last_controls` recorded for provenance;
    - `stream(**controls)`: pieces as they are made, where `streams(controls)` says it applies;
    - `write(outputs, out_dir, **write_options)`: files with provenance, their paths returned;
    - `show(outputs)`: the outputs as text for a terminal, and `summary(...)` of what `write` wrote.

    `controls` names the controls `genlab sample` passes (with its defaults), `write_options` the
    options `write` takes, and `default_out_dir` where outputs go when no folder is given (None:
    they are printed).
    """

    controls: ClassVar[dict[str, Any]] = {}
    serves: ClassVar[str | None] = None  # the HTTP API of genlab serve that makes these outputs
    write_options: ClassVar[dict[str, Any]] = {}
    default_out_dir: ClassVar[str | None] = None

    def __init__(self, run: LoadedRun):
        from genlab.safety.provenance import Provenance

        self.model, self.config, self.run_dir = run.model, run.config, Path(run.run_dir)
        self.device, self.precision = run.device, run.precision
        self.weights_path = Path(run.weights)
        self.provenance_source = Provenance(self.run_dir, self.config, self.weights_path)
        self.content_filter = run.content_filter  # None: off
        self.last_seed: int | None = None
        self.last_controls: dict = {}

    def screen_prompt(self, prompt: str) -> None:
        """Refuse a prompt the content filter blocks: ContentFiltered, a GenlabError (the CLI's one line and exit
        2, the server's 400 of type content_filter)."""
        if self.content_filter is not None and prompt:
            self.content_filter.check_prompt(prompt)

    @property
    def modality(self) -> str:
        return self.config.get("data", {}).get("modality", "text")

    @property
    def checkpoint_sha256(self) -> str:
        return self.provenance_source.checkpoint_sha256

    def generate(self, **controls):
        raise NotImplementedError

    def check_controls(self, given) -> None:
        """A one-line error for a control this sampler does not take (a text control given to an image model)."""
        for key in given:
            if key not in self.controls:
                takes = ", ".join(flag_name(k) for k in self.controls)
                raise GenlabError(f"{flag_name(key)} is not a control of {self.modality} models; leave it out "
                                  f"(their controls: {takes})")

    def streams(self, controls: dict) -> bool:
        return False

    def preference_tokens(self, prompt: str, completion: str) -> tuple[list[int], int, list[int] | None]:
        """A rated output as the model reads it, for DPO: the token ids of prompt and completion, how many of
        them are the prompt's, and the feature ids beside them (None for a model without)."""
        raise GenlabError(f"{self.modality} models are not aligned with DPO yet; align a text model")

    def preference_data(self, pairs: list[dict], source: str, reference, block_size: int, val_fraction: float):
        """Rated pairs of this model's outputs as training data (align/dpo.py): token ids, read with
        preference_tokens, and with a `reference` model (DPO) its log-probabilities."""
        from genlab.align.dpo import PreferenceData

        return PreferenceData(pairs, source, self, reference, block_size, val_fraction, self.run_dir)

    def record_output(self, output, folder: Path) -> dict:
        """How the feedback store keeps an output: {"content": text} inline, or {"file": path} for what is
        written as a file into `folder`."""
        return {"content": self.content(output)}

    def write_for_training(self, outputs: list, prompts: list[str], folder: Path) -> None:
        """Outputs as files this modality's reader takes back as training data (best-of-n fine-tunes on them)."""
        raise GenlabError(f"{self.modality} outputs cannot be trained on again yet; use a text or ABC music model")

    def http_output(self, output) -> dict:
        """One output as genlab serve's JSON answer carries it (text, base64 files), with its provenance."""
        raise GenlabError(f"{self.modality} models are not served over HTTP yet")

    def batch(self, max_rows: int):
        """Continuous batching of this model's requests for genlab serve (genlab.text.sample.TextBatch's
        contract), or None: its requests run one at a time."""
        return None

    def detect_watermark(self, text: str, key: str, **options):
        raise GenlabError(f"{self.modality} outputs carry no green-list watermark; detect it in text from a text "
                          "model")

    @property
    def prompt_choices(self) -> list[str] | None:
        """The prompts this model takes, where they are a closed set (a conditional image model's classes; []: no
        prompt at all); None where any text is a prompt."""
        return None

    def blind_output(self, output) -> dict:
        """One output as the arena shows it before the vote: its content, with nothing that names its model."""
        raise GenlabError(f"{self.modality} models cannot take part in the arena yet")

    def content(self, output) -> str:
        """An output as the feedback store keeps it inline (text; ABC for tunes)."""
        raise GenlabError(f"{self.modality} outputs are not rated in the terminal yet; rate a text model")

    def stream(self, **controls):
        raise GenlabError(f"{self.modality} models do not stream; use generate()")

    def write(self, outputs, out_dir: str | os.PathLike, **options) -> list[Path]:
        raise NotImplementedError

    def show(self, outputs) -> str:
        raise GenlabError(f"{self.modality} outputs cannot be shown as text; write them to a folder with -o DIR")

    def summary(self, outputs, paths: list[Path], out_dir: str | os.PathLike) -> str:
        return f"wrote {len(paths)} files to {out_dir}/"

    # -- genlab report: the gallery and the creativity dial ---------------------------------------------------

    gallery_size: ClassVar[int] = 4  # outputs the report's gallery shows

    def gallery_html(self, outputs) -> str:
        """Outputs of generate() as an HTML fragment for genlab report: escaped text, files inlined as data: URIs
        (the report is one self-contained file), each with its provenance; no headings, no script."""
        raise GenlabError(f"{self.modality} outputs cannot be shown in a report yet")

    def creativity_dial(self) -> Dial | None:
        """The control that trades realism for novelty (temperature, guidance), the values a report sweeps and what
        each point measures; None where this model has none."""
        return None

    def sweep_point(self, value: float, seed: int, n: int) -> dict[str, dict[str, float | None]]:
        """n outputs made with the dial at `value` from `seed`, measured: {"quality": {figure: value, ...},
        "diversity": {...}, "originality": {...}}, the first figure of each axis its headline (None: it could not
        be measured here, e.g. no training data to compare with)."""
        raise GenlabError(f"{self.modality} models have no creativity dial to sweep")

    def sweep_reference(self, seed: int, n: int) -> dict[str, dict[str, float | None]] | None:
        """sweep_point's figures for n held-out real outputs: what a model that made real data would score. None
        where there is no held-out data to read."""
        return None


@dataclass
class Description:
    """What a file holds, in words and in facts (genlab describe): the text another modality's model can take
    as its prompt, through that modality's prompt_from."""

    path: str
    modality: str  # the modality that described it
    text: str
    facts: dict


@dataclass
class Translation:
    """A description turned into a prompt one model can take, and in words what carried over and what did not."""

    prompt: str
    carried: str
    dropped: str


class Modality:
    """What every modality offers; `genlab.modalities.registry()` holds one object of each."""

    name: ClassVar[str]
    # the built-in datasets it names (`text:pydocs`), for `genlab train --help` and unknown-name errors
    datasets: ClassVar[tuple[str, ...]] = ()
    # the file extensions its folders hold; None: any (text reads what --extensions names)
    file_extensions: ClassVar[tuple[str, ...] | None] = None
    # the families whose Family.batch_kind is this train on this modality's data
    batch_kind: ClassVar[str]
    # options its evaluate() takes beyond the data, and the precisions it evaluates in
    eval_options: ClassVar[tuple[str, ...]] = ()
    eval_precisions: ClassVar[tuple[str, ...]] = ("fp32", "bf16", "int8")
    # the model card's "Intended use and limitations" paragraph
    card_limitations: ClassVar[str] = (
        "A small model for learning, experiments and generating drafts like its training data. It reproduces "
        "the style, errors and biases of that data and can copy from it. Its outputs are machine-generated and "
        "should be labelled as such.")
    # the model card's front matter: Hugging Face's pipeline tag (None: no tag fits), the evaluation figures its
    # model-index lists, and the licence of each built-in dataset (an Hub licence id, or "other" and its name)
    # whether its data can be conversations for a chat fine-tune (genlab finetune --chat)
    takes_chat: ClassVar[bool] = False
    pipeline_tag: ClassVar[str | None] = None
    card_metrics: ClassVar[tuple[str, ...]] = ()
    data_licenses: ClassVar[dict[str, tuple[str, str | None]]] = {}
    # the model card's watermark paragraph: what marks this modality's outputs can carry, and their limits
    card_watermark: ClassVar[str] = "Its outputs carry no watermark; rely on their provenance."

    def claims(self, source: str) -> bool:
        """Whether a dataset name or path holds this modality's data."""
        raise NotImplementedError

    def open_data(self, source: str, cfg, block_size: int | None, preprocessing=None):
        """The training data: batches, split, what the model takes from it, and preprocessing to save. With
        `preprocessing` (a parent run's, from load_preprocessing) the data is read the parent's way (its
        tokenizer, its image size and classes), for fine-tuning; what the parent cannot read is one line."""
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
        """One evaluation's figures as `genlab eval` prints them and the model card shows them: one line per
        figure, `name: value`, then whether higher or lower is better and what to compare it with (real data,
        a uniform model, shuffled data). Plain words and numbers only, never a Python repr; the full detail
        stays in metrics.json. `evaluation_header` adds the data and split above it."""
        return "\n".join(figure_line(k, v) for k, v in metrics.items()
                         if k not in ("data", "split", "precision") and not isinstance(v, dict | list))

    def card_data(self, config: dict) -> list[str]:
        """Model-card lines about the data and its preprocessing."""
        raise NotImplementedError

    def card_usage(self, run_dir: Path) -> str:
        """A command that samples this run, for the model card."""
        raise NotImplementedError

    def card_generates(self, config: dict) -> str:
        """The model card's first sentence: what this run makes."""
        return f"{self.name} like its training data"

    def card_bias(self, config: dict, evaluation: dict | None) -> list[str]:
        """The model card's bias section, from the run's own evaluation where it measured any."""
        return ["- it learned whatever its training data over- or under-represents, and its samples repeat it; "
                "the data has no labels to measure that balance against"]

    # the files genlab describe reads as this modality's (the lower-case suffixes)
    describes: ClassVar[tuple[str, ...]] = ()

    def describe_file(self, path: Path) -> Description:
        """A file of one of `describes` in words and facts."""
        raise NotImplementedError

    def prompt_from(self, description: Description, sampler: Sampler) -> Translation:
        """A description (of a file of any modality) as a prompt this modality's model can take; what cannot
        carry over is said in `dropped`, and a description with nothing to carry is a one-line error."""
        if description.modality == self.name or description.modality == "text":
            return Translation(description.text, "the whole description", "nothing")
        raise GenlabError(f"a {self.name} model takes no prompt from a {description.modality} file; give it text "
                          "(--prompt) or a file of its own kind")

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


# ---------------------------------------------------------------------------------------------------
# Evaluations: how metrics.json keeps them and how they read
# ---------------------------------------------------------------------------------------------------

# metrics.json maps a key per evaluation to its figures. The key is the split ("val", "train", "all") for
# the run's own data, "DATA SPLIT" for another dataset ("text:pystdlib val"), with the precision appended
# when it is not fp32 ("val int8"). "val", the run's own validation split at fp32, is the one the model
# card shows; evaluating anything else never replaces it.
OWN_EVALUATION = "val"


def evaluation_key(config: dict, data: str | None, split: str, precision: str = "fp32") -> str:
    """The metrics.json key of an evaluation of a run on `data` (None: its own) at `split` and `precision`."""
    own = data is None or data == config.get("data", {}).get("source")
    return " ".join([*([] if own else [data]), split, *([] if precision == "fp32" else [precision])])


def _evaluation_of(metrics: dict) -> tuple[str | None, str, str]:
    """data, split and precision as an evaluation records them ("precision" of images is a figure, not this)."""
    precision = metrics.get("precision")
    return metrics.get("data"), str(metrics.get("split") or "val"), precision if isinstance(precision, str) else "fp32"


def read_evaluations(run_dir: str | os.PathLike, config: dict) -> dict[str, dict]:
    """RUN/metrics.json as {key: figures}; {} when there is none.

    Runs from before evaluations were kept apart hold one flat evaluation: it is filed under the key its own
    data, split and precision give (the run's own validation split when it does not say)."""
    from genlab.io import read_json

    path = Path(run_dir) / "metrics.json"
    raw = read_json(path) if path.is_file() else {}
    if raw and not all(isinstance(v, dict) for v in raw.values()):
        return {evaluation_key(config, *_evaluation_of(raw)): raw}
    return raw


def evaluation_header(config: dict, metrics: dict) -> str:
    """The line above an evaluation's figures: the data and split it measured, and its metrics.json key."""
    data, split, precision = _evaluation_of(metrics)
    own = data is None or data == config.get("data", {}).get("source")
    shown = data or config.get("data", {}).get("source")
    whose = " (the run's own)" if own else ""
    prec = f"  precision: {precision}" if isinstance(metrics.get("precision"), str) else ""
    return (f"data: {shown}{whose}  split: {split}{prec}  "
            f"(metrics.json key \"{evaluation_key(config, data, split, precision)}\")")


def describe_evaluation(config: dict, metrics: dict) -> str:
    """An evaluation as `genlab eval` prints it and the model card shows it: the header, then the run's
    modality's figures."""
    return evaluation_header(config, metrics) + "\n" + modality_of_run(config).format_metrics(metrics)


def plain(value: Any) -> str:
    """A value as a person reads it: no None, no brackets or quotes."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) or "none"
    return str(value)


def figure_line(name: str, value: Any, note: str = "") -> str:
    """`name: value`, then (in a column) whether higher or lower is better and the baseline to compare with."""
    left = f"{name}: {plain(value)}"
    return f"{left:<30}  {note}" if note else left


@functools.cache
def registry() -> dict[str, Modality]:
    """Every modality, in the order sources are matched: text last, as it takes any file.

    Built on first use: each wing's Modality subclasses the class above, so the wings import this module."""
    from genlab.images import ImageModality
    from genlab.music import MusicModality
    from genlab.text import TextModality

    return {m.name: m for m in (ImageModality(), MusicModality(), TextModality())}


def describe_file(path: str | os.PathLike) -> Description:
    """A file in words, by the modality whose `describes` holds its suffix (genlab describe, --prompt-from)."""
    path = Path(path)
    reader = next((m for m in registry().values() if path.suffix.lower() in m.describes), None)
    if reader is None:
        known = ", ".join(f"{' '.join(m.describes)} ({m.name})" for m in registry().values() if m.describes)
        raise GenlabError(f"genlab cannot describe a {path.suffix or 'suffix-less'} file ({path.name}); it reads "
                          f"{known}")
    if not path.is_file():
        raise GenlabError(f"{path} does not exist; give the path of a file to describe")
    return reader.describe_file(path)


def get_modality(name: str) -> Modality:
    try:
        return registry()[name]
    except KeyError:
        raise GenlabError(f"unknown modality {name!r}; the run directory may come from a newer genlab") from None


def builtin_datasets() -> list[str]:
    """Every built-in dataset of every modality, in registry order. Cheap: the wings' __init__ import no torch."""
    return [name for m in registry().values() for name in m.datasets]


def unknown_dataset(source: str) -> GenlabError:
    """The one-line error for a source that is neither a built-in dataset nor an existing path."""
    names = ", ".join(builtin_datasets())
    if ":" in source.split("/")[0] and not Path(source).expanduser().exists():  # a name, e.g. text:nope
        return GenlabError(f"unknown dataset {source!r}; the built-in datasets are: {names}; "
                           "or give a path to a file or folder")
    return GenlabError(f"dataset {source!r} is neither a built-in name ({names}) nor an existing path")


def modality_of_source(source: str) -> Modality:
    """The modality whose data a dataset name or path holds."""
    return next(m for m in registry().values() if m.claims(source))


def modality_of_run(config: dict) -> Modality:
    """The modality a run was trained on (config.json's data.modality; runs from before it say text)."""
    return get_modality(config.get("data", {}).get("modality", "text"))


def modality_for_training(source: str, family, extensions: str | None = None) -> Modality:
    """The modality whose data `family` trains on from `source`; for a folder with `--extensions`, the first
    whose files those are (`--extensions py` on a folder of tunes and code means the code).

    A source of another batch kind than the family's is read as the family's own modality where there
    is only one (its reader then says what is wrong with the source), else refused, naming the
    families that can model it."""
    from genlab.families import FAMILIES

    found = modality_of_source(source)
    if extensions and Path(source).expanduser().is_dir():
        chosen = {"." + e.strip().lower().lstrip("*").lstrip(".") for e in extensions.split(",") if e.strip()}
        found = next((m for m in registry().values()
                      if m.file_extensions is None or chosen <= set(m.file_extensions)), found)
    if found.batch_kind == family.batch_kind:
        return found
    takers = [m for m in registry().values() if m.batch_kind == family.batch_kind]
    if len(takers) == 1:
        return takers[0]
    able = [f.name for f in FAMILIES.values() if f.batch_kind == found.batch_kind]
    choices = ", ".join(able[:-1]) + f" or {able[-1]}" if len(able) > 1 else able[0]
    raise GenlabError(f"{source} holds {found.name}, which the {family.name} family cannot model; "
                      f"train it with --family {choices}")


@dataclass(frozen=True)
class Dial:
    """A sampler's creativity dial, as genlab report sweeps it (Sampler.creativity_dial)."""

    control: str  # the generate() control it turns, e.g. temperature, guidance; or, see `about`, the report's own
    values: tuple[float, ...]  # what a report sweeps by default
    samples: int  # outputs per value by default: enough for the figures to mean something, few enough to be quick
    figures: dict[str, str]  # every figure sweep_point reports -> what it measures and which way is better
    about: str  # one sentence: what turning it up does
    lower_is_better: tuple[str, ...] = ()  # the figures of `figures` that are better low (a distance, a copy rate)
