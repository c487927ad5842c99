"""genlab's Python API. The CLI and the HTTP server call these functions and nothing else.

    import genlab
    run = genlab.train("text:pydocs", family="gpt", max_steps=500)
    m = genlab.load(run)
    print(m.generate(prompt="The ", max_new_tokens=200, temperature=0.8, seed=1))
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, read_json

RunPath = str | os.PathLike


def train(data: str | None = None, *, config: str | None = None, resume: RunPath | None = None,
          quiet: bool = False, **settings: Any) -> Path:
    """Train a model on `data` with settings (`family`, `max_steps`, `n_layer`, ...) or a config file;
    or continue a run with `resume=RUN` (then only max_steps / max_minutes / intervals may change)."""
    from genlab.families import get_family
    from genlab.training.config import make_train_config, read_config_file
    from genlab.training.trainer import train as run_training

    settings = {k: v for k, v in settings.items() if v is not None}
    if resume is not None:
        if data is not None or config is not None:
            raise GenlabError("--resume continues a run with its own data and settings; drop DATA and --config")
        return run_training(resume=resume, overrides=settings, quiet=quiet)
    values = read_config_file(config) if config else {}
    values.update(settings)
    if data is not None:
        values["data"] = data
    if "data" not in values:
        raise GenlabError("no training data given; name a dataset (e.g. text:pydocs) or a path to text")
    family = get_family(values.get("family", "gpt"))
    for key, value in family.train_defaults.items():  # e.g. images train in batches of 128
        values.setdefault(key, value)
    model_keys = {f.name for f in dataclasses.fields(family.config_class)} - family.data_keys
    return run_training(make_train_config(values, model_keys), quiet=quiet)


def load(run: RunPath, *, checkpoint: str = "last", device: str = "auto", precision: str = "fp32"):
    """Load a run directory for sampling: returns a model object with generate() and stream()."""
    from genlab.data import load_preprocessing
    from genlab.families import get_family
    from genlab.runtime import pick_device
    from genlab.sampling.text import TextModel
    from genlab.training.checkpoint import load_model_tensors, read_trainer_state

    run_dir = Path(run)
    if not run_dir.exists():
        raise GenlabError(f"run directory {run_dir} does not exist; train one with: genlab train DATA --out {run_dir}")
    if not (run_dir / "config.json").is_file():
        raise GenlabError(f"{run_dir} is not a genlab run directory (no config.json); check the path")
    config = read_json(run_dir / "config.json")
    family = get_family(config.get("family", "?"))
    model = family.build(family.saved_config(config["model"]))
    if checkpoint == "last":
        weights = run_dir / "model.safetensors"
    elif checkpoint == "best":
        best = read_trainer_state(run_dir).get("best_checkpoint")
        weights = run_dir / "checkpoints" / str(best) / "model.safetensors"
    else:
        raise GenlabError(f"--checkpoint must be last or best, got {checkpoint!r}")
    if not weights.exists():
        raise GenlabError(f"{weights} is missing: the run never reached a checkpoint; train it further")
    load_model_tensors(model, weights)
    dev = pick_device(device)
    if precision not in ("fp32", "bf16", "int8"):
        raise GenlabError(f"--precision must be fp32, bf16 or int8, got {precision!r}")
    model.to(dev).eval()
    if config.get("data", {}).get("modality") == "images":
        if precision == "int8":
            raise GenlabError("--precision int8 is for decoding text and music; use fp32 or bf16 for images")
        from genlab.sampling.images import ImageModel

        return ImageModel(model, config, run_dir, dev, weights, precision)
    tokenizer = load_preprocessing(run_dir, config)
    if config.get("data", {}).get("modality") == "music":
        from genlab.sampling.music import MusicModel

        return MusicModel(model, tokenizer, config, run_dir, dev, precision)
    return TextModel(model, tokenizer, config, run_dir, dev, precision)


def sample(run: RunPath, prompt: str = "", **controls: Any) -> str | list[str]:
    """Load a run and sample from it (see TextModel.generate, or ImageModel.generate for image runs)."""
    if _modality(run) == "images":
        return load(run).generate(**controls)
    return load(run).generate(prompt=prompt, **controls)


def evaluate(run: RunPath, data: str | None = None, *, split: str = "val", block_size: int | None = None,
             max_tokens: int | None = None, device: str = "auto", precision: str = "fp32", **sampling: Any) -> dict:
    """Validation loss, perplexity and bits per character; saved to RUN/metrics.json. `precision`
    (fp32, bf16 or int8) scores the model as sampling at that precision runs it: its quality cost.
    For an image model: Fréchet distance, KID, precision/recall, label accuracy and memorisation of
    generated samples (sampling: num_samples, seed and sampling controls; see evaluation.images).
    For a music model: loss per token, then sampled tunes against real ones (sampling: num_samples,
    distribution_samples, seed, temperature, top_k, max_new_tokens; see evaluation.music)."""
    music_only = ("temperature", "top_k", "max_new_tokens", "distribution_samples")

    def refuse_music_flags() -> None:
        if given := [k for k in music_only if sampling.get(k) is not None]:
            raise GenlabError(f"--{given[0].replace('_', '-')} is for music models, whose evaluation samples "
                              "tunes; leave it out here")

    if _modality(run) == "images":
        from genlab.evaluation.images import evaluate_run

        refuse_music_flags()
        if precision != "fp32":
            raise GenlabError("--precision is for evaluating text and music models; leave it out for images")
        return evaluate_run(run, data, device=device, **sampling)
    from genlab.data.text import prepare_text, read_text_source
    from genlab.evaluation.text import text_metrics
    from genlab.sampling.decode import inference_copy

    m = load(run, device=device, precision=precision)
    if getattr(m, "modality", None) == "music":  # loss per token, then sampled tunes against real ones
        from genlab.evaluation.music import evaluate_music

        options = {k: v for k, v in sampling.items() if k in ("num_samples", "seed", *music_only) and v is not None}
        return evaluate_music(m, data, split=split, max_tokens=max_tokens, **options)
    refuse_music_flags()
    trained = m.model.max_context
    if block_size is not None:
        if block_size <= 0:
            raise GenlabError(f"--block-size must be positive, got {block_size}")
        if trained is not None and block_size > trained:
            raise GenlabError(
                f"--block-size {block_size} is over the {trained} this model was trained with; use {trained} or less"
            )
    block = block_size or m.config["model"]["block_size"]
    if split not in ("val", "train", "all"):
        raise GenlabError(f"--split must be val, train or all, got {split!r}")
    source = data or m.config["data"]["source"]
    val_fraction = m.config["train"]["val_fraction"]
    text = read_text_source(source)
    if hashlib.sha256(text.encode("utf-8")).hexdigest() == m.config["data"].get("content_sha256"):
        # the training corpus itself: its tokens are already cached on disk
        corpus = prepare_text(source, m.tokenizer.kind, m.config["train"].get("vocab_size"), val_fraction, text=text)
        ids = np.asarray(corpus.tokens)
    else:
        ids = m.tokenizer.encode(text)
    cut = int(len(ids) * (1 - val_fraction))
    tokens = {"val": ids[cut:], "train": ids[:cut], "all": ids}[split]
    metrics = text_metrics(inference_copy(m.model, precision), m.tokenizer, tokens, block, m.device,
                           max_tokens=max_tokens)
    metrics = {**metrics, "data": source, "split": split, "block_size": block, "precision": precision}
    atomic_write_json(Path(run) / "metrics.json", metrics)
    from genlab.safety.card import write_model_card

    write_model_card(Path(run))
    return metrics


def _modality(run: RunPath) -> str:
    config_path = Path(run) / "config.json"
    if not config_path.is_file():
        return "text"  # load() says what is wrong with the path
    return read_json(config_path).get("data", {}).get("modality", "text")


def export(run: RunPath, out: RunPath, *, format: str = "hf-gpt2") -> Path:
    """Write a run in another tool's format (hf-gpt2: a transformers GPT-2 directory)."""
    from genlab.exporting import export as do_export

    return do_export(load(run, device="cpu"), format, Path(out))

