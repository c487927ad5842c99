"""Training settings: defaults in code, overrides from a TOML/YAML file and from flags.

Unknown keys are refused by name. Model settings (n_layer, n_embd, ...) sit beside the training
settings in the same flat namespace and are routed to the family's config.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import numbers
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError

UNTIL_TIME_RUNS_OUT = 10**9  # max_steps when only --max-minutes is given: the trainer plans the steps that fit


@dataclass
class TrainConfig:
    data: str = "text:pydocs"
    family: str = "gpt"
    preset: str | None = None  # the family's model size by name (tiny, small, base), if one was asked for
    out: str | None = None
    tokenizer: str = "char"
    vocab_size: int | None = None
    val_fraction: float = 0.1
    image_size: int | None = None  # images: side in pixels (default 16 for digits, 28 for MNIST, 32 for folders)
    color: str = "auto"  # images: auto | grey | rgb
    augment: str | None = None  # images: comma-separated flip, shift
    exclude_labels: str | None = None  # images: class names left out of the data (the model keeps their labels)
    allow_uncaptioned: bool = False  # captioned images: an image without a caption trains as the empty caption
    extensions: str | None = None  # folder sources: comma-separated file extensions to read (default: the modality's)
    batch_size: int = 12
    window: int | None = None  # token models: tokens per training window (default: the model's block_size)
    grad_accum: int = 1  # micro-batches per optimizer step: the step sees batch_size * grad_accum sequences
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    max_steps: int = 2000
    lr_decay_steps: int | None = None  # cosine horizon; defaults to max_steps when the run starts
    max_minutes: float | None = None
    # with max_minutes: how max_steps and the cosine horizon were planned to fit, from the measured step time
    time_plan: dict[str, Any] | None = None
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
    # fine-tuning (genlab finetune): the run whose weights this one starts from, the sha256 of its weights file
    # when it began, and LoRA's settings (genlab.align.lora.LoraSettings) when only an adapter trains
    parent: str | None = None
    parent_sha256: str | None = None
    lora: dict[str, Any] | None = None
    # chat (genlab finetune --chat): the data is conversations, rendered by a chat template whose turn markers join
    # the vocabulary, and the loss counts the assistant's tokens only (genlab.text.chat)
    chat: bool = False
    # code (text): the share of training windows cut into prefix, suffix and middle and trained in that order
    # between sentinel tokens, so the model can fill in the middle (StarCoder's and Code Llama's FIM)
    fim_rate: float | None = None
    # text-to-music: each ABC tune is read after a description of it from its own header ("a jig in G major"), so
    # that genlab sample --prompt can describe the tune wanted (genlab.music.describe)
    descriptions: bool = False
    # alignment (genlab align): what replaces the family's loss, e.g. {"method": "dpo", "beta": 0.1}, with the
    # sha256 of the preference pairs once they are read
    objective: dict[str, Any] | None = None
    model: dict[str, Any] = field(default_factory=dict)  # family settings: n_layer, n_head, n_embd, ...

    def validate(self) -> None:
        from genlab.families import get_family

        # a TrainConfig built in Python skips the file and flag parsers: check the types first, so that the
        # comparisons below never meet a string
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        for name, value in check_types(TrainConfig, own).items():
            setattr(self, name, value)
        if self.window is not None and self.window <= 0:
            raise GenlabError(f"--window must be positive, got {self.window}")
        positive = ["batch_size", "grad_accum", "max_steps", "eval_interval", "eval_batches", "log_interval"]
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
        if self.grad_accum > 1 and not get_family(self.family).accumulates:
            raise GenlabError(f"the {self.family} family cannot split its training step into micro-batches; leave "
                              "out --grad-accum and lower --batch-size instead")
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
        if self.fim_rate is not None and not 0 < self.fim_rate <= 1:
            raise GenlabError(f"--fim-rate is the share of windows trained for fill-in-the-middle, in (0, 1]; got "
                              f"{self.fim_rate}")
        if self.chat and self.parent is None:
            raise GenlabError("--chat teaches a trained text model to answer: genlab finetune BASE DATA --chat")
        if self.chat and self.lora:
            raise GenlabError("--chat adds the chat template's turn markers to the vocabulary and trains all weights; "
                              "leave out --lora-rank")
        if self.grad_clip < 0:
            raise GenlabError(f"--grad-clip must be 0 (off) or positive, got {self.grad_clip}")


TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}
PLANNED_KEYS = {"time_plan", "parent_sha256"}  # written by the trainer into config.json, never set by a user


def check_types(cls: type, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """`values` checked against the annotations of the dataclass `cls`, by key; keys it lacks pass through.

    A value of the wrong type is one line that names the key, the type wanted, `where` it was found and the
    default. Integers are widened to float where a float is wanted, nothing else is converted: `max_steps:
    1.5` or `n_layer = "four"` is refused, not rounded or parsed.
    """
    hints = _field_types(cls)
    checked = {}
    for key, value in values.items():
        if key not in hints:
            checked[key] = value
            continue
        fits, converted = _fit(hints[key], value)
        if not fits:
            default = _default_of(cls, key)
            shown = f" (default {json.dumps(default)})" if default is not None else ""
            raise GenlabError(f"{key} must be {_describe(hints[key])}, got {value!r}{where}{shown}")
        checked[key] = converted
    return checked


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """Field name -> type of a dataclass (get_type_hints resolves `from __future__ import annotations`)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}  # fields only: no ClassVar


def _default_of(cls: type, key: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == key and f.default is not dataclasses.MISSING:
            return f.default
    return None


def _fit(hint: Any, value: Any) -> tuple[bool, Any]:
    """Whether `value` has the type `hint`, and the value as the config keeps it."""
    if hint is Any:
        return True, value
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            fits, converted = _fit(arg, value)
            if fits:
                return True, converted
        return False, value
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:  # bool is an int to Python, but `n_layer = true` is a mistake
        fits = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return fits, int(value) if fits else value
    if hint is float:
        fits = isinstance(value, numbers.Real) and not isinstance(value, bool)
        return fits, float(value) if fits else value
    origin = typing.get_origin(hint) or hint
    return (isinstance(value, origin) if isinstance(origin, type) else True), value


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        wanted = " or ".join(_describe(a) for a in args if a is not type(None))
        return wanted + (" (or null, for the default)" if type(None) in args else "")
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a table"}
    origin = typing.get_origin(hint) or hint
    return names.get(origin, getattr(origin, "__name__", str(hint)))


@functools.cache
def _yaml_loader() -> type:
    """PyYAML's safe loader, reading `1e-3` as the number YAML 1.2 says it is (YAML 1.1 wants `1.0e-3`)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    exponent = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", exponent, list("-+0123456789."))
    return Loader


def read_config_file(path: str) -> dict[str, Any]:
    """Read a TOML or YAML file of settings into a flat dict ([model] tables are flattened).

    Every mistake in the file is one line naming the file: its syntax, its shape, and any value of the
    wrong type for a setting of that name."""
    p = Path(path)
    if not p.is_file():
        raise GenlabError(f"config file {path} does not exist")
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise GenlabError(f"config file {path} must end in .toml, .yaml or .yml")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise GenlabError(
            f"config file {path} is not UTF-8 text (bad byte at offset {e.start}); save it as UTF-8"
        ) from None
    if suffix == ".toml":
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise GenlabError(f"config file {path} is not valid: {str(e).splitlines()[0]}") from None
    else:
        import yaml

        try:
            values = yaml.load(text, Loader=_yaml_loader()) or {}  # a SafeLoader: no Python objects
        except yaml.YAMLError as e:
            raise GenlabError(f"config file {path} is not valid: {_yaml_problem(e)}; fix the file there") from None
    if not isinstance(values, dict):
        raise GenlabError(f"config file {path} must hold a table of settings")
    model = values.get("model") or {}
    if not isinstance(model, dict):
        raise GenlabError(f"config file {path}: model must be a table of model settings ([model] in TOML, "
                          f"model: with indented settings in YAML), got {model!r}")
    names = [k for k in (*values, *model) if not isinstance(k, str)]
    if names:
        raise GenlabError(f"config file {path}: setting names must be words, got {names[0]!r}")
    flat = {k.replace("-", "_"): v for k, v in values.items() if k != "model"}
    for k, v in model.items():
        flat[k.replace("-", "_")] = v
    return _check_file_values(flat, path)


def _yaml_problem(e: Exception) -> str:
    """A YAML error in one line: the problem and where (PyYAML's own message spans several lines)."""
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def _check_file_values(flat: dict[str, Any], path: str) -> dict[str, Any]:
    """The file's values with their types checked, so that a mistake names the file it is in. A model
    setting is checked against every family that has one of that name (the family may come from a flag)."""
    from genlab.families import FAMILIES

    where = f" in config file {path}"
    family = flat.get("family", TrainConfig.family)
    named = FAMILIES.get(family) if isinstance(family, str) else None  # the file's family speaks first
    families = [f for f in (named, *FAMILIES.values()) if f is not None]
    checked = {}
    for key, value in flat.items():
        if key in TRAIN_KEYS:
            checked[key] = check_types(TrainConfig, {key: value}, where)[key]
            continue
        classes = [f.config_class for f in families if key in _field_types(f.config_class)]
        checked[key] = value
        errors = []
        for cls in classes:
            try:
                checked[key] = check_types(cls, {key: value}, where)[key]
                break
            except GenlabError as e:
                errors.append(e)
        else:
            if errors:
                raise errors[0]
    return checked


def make_train_config(values: dict[str, Any], model_keys: set[str], from_file: str | None = None,
                      file_keys: frozenset[str] = frozenset()) -> TrainConfig:
    """Split a flat dict into training and model settings, refusing keys neither knows, and checking the
    type of each value against its field (the family's config for model settings). An unknown key is named
    as the user gave it: a flag (`--n-head`), or a setting of the config file `from_file` for `file_keys`."""
    from genlab.families import get_family

    settable = TRAIN_KEYS - PLANNED_KEYS
    unknown = sorted(k for k in values if k not in settable and k not in model_keys)
    if unknown:
        family = values.get("family", TrainConfig.family)
        models = ", ".join(_flag(k) for k in sorted(model_keys))
        flags = [k for k in unknown if k not in file_keys]
        if flags:
            raise GenlabError(f"{', '.join(map(_flag, flags))} {'is' if len(flags) == 1 else 'are'} not for the "
                              f"{family} family; its model flags are {models} (see genlab train --help)")
        raise GenlabError(f"config file {from_file}: unknown setting(s) {', '.join(unknown)}; the {family} family's "
                          f"model settings are {', '.join(sorted(model_keys))}, and the training settings are "
                          f"{', '.join(sorted(settable))}")
    train = check_types(TrainConfig, {k: v for k, v in values.items() if k in TRAIN_KEYS})
    model = {k: v for k, v in values.items() if k in model_keys and k not in TRAIN_KEYS}
    model = check_types(get_family(train.get("family", TrainConfig.family)).config_class, model)
    return TrainConfig(**train, model=model)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def saved_train_config(values: Any, path: Path, written_by: str | None = None) -> TrainConfig:
    """The training settings saved in a run's config.json ("train"), checked as a config file is: an unknown
    key (from another genlab version, or an edit) or a value of the wrong type is one line naming the file."""
    if not isinstance(values, dict) or not isinstance(values.get("model", {}), dict):
        raise GenlabError(f"{path} has no table of training settings under \"train\"; restore the file from a "
                          "copy, or start a new run")
    unknown = sorted(k for k in values if k not in TRAIN_KEYS and k != "model")
    if unknown:
        by = f" (written by genlab {written_by})" if written_by else ""
        raise GenlabError(
            f"{path}{by} holds unknown training setting(s) {', '.join(map(str, unknown))} under \"train\"; "
            "resume with the genlab version that wrote it, or remove those keys from the file"
        )
    train = check_types(TrainConfig, {k: v for k, v in values.items() if k != "model"}, f" in {path}")
    return TrainConfig(**train, model=dict(values.get("model", {})))
