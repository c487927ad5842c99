"""genlab's Python API. The CLI and the HTTP server call these functions and nothing else.

    import genlab
    run = genlab.train("text:pydocs", family="gpt", max_steps=500)
    m = genlab.load(run)
    print(m.generate(prompt="The ", max_new_tokens=200, temperature=0.8, seed=1))

Nothing here branches on a family's or a modality's name: families (genlab.families) say how a model
learns, modalities (genlab.modalities) what it learns from, how it samples and how it is measured.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, read_json

RunPath = str | os.PathLike


def preset_settings(family, name: str) -> dict[str, Any]:
    """The model settings of one of a family's sizes (`--preset`), or a one-line error naming the sizes."""
    if name not in family.presets:
        raise GenlabError(f"unknown preset {name!r} for the {family.name} family; choose one of: "
                          f"{', '.join(family.presets)}")
    return family.presets[name]


def presets(vocab_size: int = 96, image_size: int = 16, channels: int = 1) -> list[dict[str, Any]]:
    """Every family's sizes by name with their parameter counts: token models at `vocab_size` tokens, image
    models at `image_size` pixels and `channels` (the counts of a real run depend on its data)."""
    from genlab import preflight
    from genlab.families import FAMILIES

    data = {"vocab_size": vocab_size, "image_size": image_size, "channels": channels}
    rows = []
    for family in FAMILIES.values():
        fields = {f.name for f in dataclasses.fields(family.config_class)}
        for name, settings in family.presets.items():
            config = family.make_config({**{k: v for k, v in data.items() if k in fields}, **settings})
            model = preflight.meta_model(family, config)  # shapes only: nothing is allocated
            rows.append({"family": family.name, "preset": name, "settings": settings,
                         "parameters": sum(p.numel() for p in model.parameters())})
    return rows


def train(data: str | None = None, *, config: str | None = None, resume: RunPath | None = None,
          quiet: bool = False, **settings: Any) -> Path:
    """Train a model on `data` with settings (`family`, `max_steps`, `n_layer`, ...) or a config file;
    or continue a run with `resume=RUN` (then only max_steps / max_minutes / intervals may change)."""
    from genlab.families import get_family
    from genlab.safety.card import write_model_card
    from genlab.training.config import UNTIL_TIME_RUNS_OUT, make_train_config, read_config_file
    from genlab.training.trainer import train as run_training

    settings = {k: v for k, v in settings.items() if v is not None}
    if resume is not None:
        if data is not None or config is not None:
            raise GenlabError("--resume continues a run with its own data and settings; drop DATA and --config")
        return run_training(resume=resume, overrides=settings, quiet=quiet, on_checkpoint=write_model_card)
    file_values = read_config_file(config) if config else {}
    values = {**file_values, **settings}
    if data is not None:
        values["data"] = data
    if "data" not in values:
        raise GenlabError("no training data given; name a dataset (e.g. text:pydocs) or a path to text")
    family = get_family(values.get("family", "gpt"))
    if values.get("preset") is not None:  # a size by name, under whatever a flag or the config file says
        for key, value in preset_settings(family, values["preset"]).items():
            values.setdefault(key, value)
    if values.get("max_minutes") is not None and "max_steps" not in values:
        values["max_steps"] = UNTIL_TIME_RUNS_OUT  # time alone is the limit
    for key, value in family.train_defaults.items():  # e.g. images train in batches of 128
        values.setdefault(key, value)
    model_keys = {f.name for f in dataclasses.fields(family.config_class)} - family.data_keys
    file_keys = frozenset(k for k in file_values if k not in settings)
    return run_training(make_train_config(values, model_keys, config, file_keys), quiet=quiet,
                        on_checkpoint=write_model_card)


def finetune(run: RunPath, data: str | None = None, *, out: RunPath | None = None, resume: RunPath | None = None,
             lora_rank: int | None = None, lora_alpha: float | None = None, lora_targets: str | None = None,
             lora_dropout: float | None = None, quiet: bool = False, **settings: Any) -> Path:
    """Train on from a trained run on a narrow dataset `data`, all weights or (with lora_rank) a LoRA adapter
    (peft), into a new run `out` that records its parent; or continue a fine-tune with `resume=RUN2`.

    The data is read the parent's way (its tokenizer, image size and classes). Settings start from the
    parent's training settings with a short schedule (align.finetune.FINETUNE_DEFAULTS) and a tenth of its
    learning rate for all weights (the parent's rate for LoRA); flags override them."""
    from genlab.align.finetune import default_out, finetune_settings

    settings = {k: v for k, v in settings.items() if v is not None}
    if resume is not None:
        return train(resume=resume, quiet=quiet, **settings)
    if data is None:
        raise GenlabError("no data to fine-tune on; give a dataset name or a path after the run")
    parent_dir = Path(run)
    _run_config(parent_dir)
    out_dir = Path(out) if out is not None else default_out(parent_dir, data)
    if out_dir.resolve() == parent_dir.resolve():
        raise GenlabError(f"--out {out_dir} is the parent run itself; a fine-tune writes a new run: choose another")
    values = finetune_settings(parent_dir, data, out_dir, lora_rank=lora_rank, lora_alpha=lora_alpha,
                               lora_targets=lora_targets, lora_dropout=lora_dropout, **settings)
    return _train_from_parent(values, quiet)


def _train_from_parent(values: dict[str, Any], quiet: bool) -> Path:
    """Train the run that finetune, align and reward describe as flat settings (align.finetune.finetune_settings)."""
    from genlab.families import get_family
    from genlab.safety.card import write_model_card
    from genlab.training.config import make_train_config
    from genlab.training.trainer import train as run_training

    family = get_family(values["family"])
    model_keys = {f.name for f in dataclasses.fields(family.config_class)} - family.data_keys
    return run_training(make_train_config(values, model_keys), quiet=quiet, on_checkpoint=write_model_card)


def merge(run: RunPath, *, out: RunPath) -> Path:
    """Write a LoRA fine-tune as a standalone run: its adapter merged into the parent's weights (outputs equal
    adapter-on-parent), so it loads without the parent."""
    from genlab.align.finetune import merge as merge_run

    _run_config(Path(run))
    return merge_run(Path(run), Path(out))


def align(run: RunPath, preferences: RunPath | None = None, *, method: str = "dpo", beta: float = 0.1,
          reward: RunPath | None = None, n: int = 8, prompts: list[str] | None = None, num_prompts: int = 64,
          sampling: dict | None = None, out: RunPath | None = None, resume: RunPath | None = None,
          lora_rank: int | None = None, lora_alpha: float | None = None, lora_targets: str | None = None,
          lora_dropout: float | None = None, quiet: bool = False, **settings: Any) -> Path:
    """Align a run with people's preferences, into a new run that records its parent and how it was aligned;
    or continue one with `resume=RUN2`. All weights, or (lora_rank) a LoRA adapter.

    method "dpo": Direct Preference Optimization against a frozen copy of the run, on the pairs a feedback
    store holds for it (genlab rate) or a TRL JSONL file; the run keeps the pairs (preferences.jsonl) and
    records beta and their hash. method "best-of-n": `n` samples for each of `prompts` (or `num_prompts`
    empty ones), with the `sampling` controls; the `reward` model's best of each is kept (in RUN2/best-of-n/)
    and the run fine-tuned on them."""
    from genlab.align.finetune import default_out, finetune_settings, relative_path

    settings = {k: v for k, v in settings.items() if v is not None}
    if resume is not None:
        return train(resume=resume, quiet=quiet, **settings)
    if method not in ("dpo", "best-of-n"):
        raise GenlabError(f"--method must be dpo or best-of-n, got {method!r}")
    parent_dir = Path(run)
    config = _run_config(parent_dir)
    out_dir = Path(out) if out is not None else default_out(parent_dir, method)
    lora = dict(lora_rank=lora_rank, lora_alpha=lora_alpha, lora_targets=lora_targets, lora_dropout=lora_dropout)
    if method == "dpo":
        if not beta > 0:
            raise GenlabError(f"--beta must be positive, got {beta}")
        if preferences is None:
            raise GenlabError("no preferences given; pass --preferences STORE (genlab rate fills one) or a TRL "
                              ".jsonl")
        values = finetune_settings(parent_dir, str(preferences), out_dir, **lora, **settings)
        values["objective"] = {"method": method, "beta": beta}
    else:
        from genlab.align.bestofn import keep_best, write_best
        from genlab.align.reward import RewardScorer
        from genlab.safety.provenance import file_sha256

        if reward is None:
            raise GenlabError("--method best-of-n needs a reward model: --reward RM (genlab reward RUN "
                              "--preferences STORE --out RM)")
        if n < 2:
            raise GenlabError(f"--n must be 2 or more (the best of n samples), got {n}")
        if (out_dir / "trainer_state.json").exists():
            raise GenlabError(f"{out_dir} already holds a run; choose another --out")
        scorer = RewardScorer(reward)
        scorer.check_fits(parent_dir, config)
        m = load(parent_dir)
        chosen = keep_best(m, scorer, prompts or [""] * num_prompts, n, **(sampling or {}))
        folder = write_best(m, chosen, out_dir)
        values = finetune_settings(parent_dir, str(folder), out_dir, **lora, **settings)
        values["objective"] = {"method": method, "n": n, "prompts": len(chosen["prompts"]),
                               "reward": relative_path(Path(reward), out_dir),
                               "reward_sha256": file_sha256(Path(reward) / "model.safetensors"),
                               "mean_reward": round(chosen["mean_reward"], 5),
                               "kept_reward": round(chosen["kept_reward"], 5)}
    return _train_from_parent(values, quiet)


def reward(run: RunPath, preferences: RunPath | None = None, *, out: RunPath | None = None,
           resume: RunPath | None = None, quiet: bool = False, **settings: Any) -> Path:
    """Train a reward model: a scalar head on `run`'s backbone (both trained, the backbone starting from run),
    with the Bradley-Terry loss on the pairs a feedback store holds for the run, or a TRL file. Its held-out
    pairwise accuracy goes into RM/metrics.json (key "preferences val") and is returned with the run by
    `reward_accuracy(RM)`."""
    from genlab.align.finetune import default_out, finetune_settings

    settings = {k: v for k, v in settings.items() if v is not None}
    if resume is not None:
        out_dir = train(resume=resume, quiet=quiet, **settings)
    else:
        if preferences is None:
            raise GenlabError("no preferences given; pass --preferences STORE (genlab rate fills one) or a TRL .jsonl")
        parent_dir = Path(run)
        _run_config(parent_dir)
        out_dir = Path(out) if out is not None else default_out(parent_dir, "reward")
        values = finetune_settings(parent_dir, str(preferences), out_dir, **settings)
        values["objective"] = {"method": "reward"}
        out_dir = _train_from_parent(values, quiet)
    reward_accuracy(out_dir)
    return out_dir


def reward_accuracy(rm: RunPath) -> dict:
    """A reward model's pairwise accuracy on its held-out pairs (measured, and kept in RM/metrics.json)."""
    from genlab.align.reward import measure_reward_model

    return measure_reward_model(Path(rm))


def rate(run: RunPath, prompts: list[str] | None = None, *, store: RunPath = "feedback.sqlite", judge=None,
         rater: str | None = None, seed: int = 0, **controls: Any) -> dict:
    """Show two samples of `run` per prompt (different seeds, random sides) to `judge(prompt, left, right)`
    (default: ask in the terminal) and keep each choice in the feedback store. Returns the counts."""
    from genlab.align.rate import rate as rate_samples
    from genlab.align.rate import terminal_judge
    from genlab.align.store import FeedbackStore

    m = load(run)
    with FeedbackStore(store) as kept:
        return rate_samples(m, prompts or [""], kept, judge or terminal_judge(), rater=rater, seed=seed,
                            **{k: v for k, v in controls.items() if v is not None})


def feedback_export(store: RunPath, out: RunPath, *, format: str = "trl", model: str | None = None) -> int:
    """Write the store's preference pairs (ties and both-bad left out) as JSONL: TRL's prompt/chosen/rejected or
    OpenAI's preference fine-tuning format. Returns the rows written."""
    from genlab.align.store import FeedbackStore, export_preferences

    with FeedbackStore(store, create=False, readonly=True) as kept:
        return export_preferences(kept, out, format=format, **({"model": model} if model else {}))


def leaderboard(store: RunPath, *, bootstrap: int = 1000, seed: int = 0, modality: str | None = None) -> list[dict]:
    """The models of a feedback store ranked from its pairwise votes, as Chatbot Arena ranks them: Bradley-Terry
    ratings (mean 1000; 400 points are 10:1 odds) with 95% bootstrap intervals, games, wins and ties, best first.
    Two outputs of one model (genlab rate's pairs) rank nothing and are left out. See genlab.align.leaderboard."""
    from genlab.align.leaderboard import clean_battles, store_battles
    from genlab.align.leaderboard import leaderboard as rank_models
    from genlab.align.store import FeedbackStore

    path = Path(store).expanduser()
    if not path.exists():
        raise GenlabError(f"no feedback store at {path}; vote between models in the studio's arena first (or give "
                          "the store's path with --store)")
    with FeedbackStore(path, create=False, readonly=True) as kept:
        battles = clean_battles(store_battles(kept, modality))
    if not battles:
        which = f" of {modality} outputs" if modality else ""
        raise GenlabError(f"{path} has no votes between two different models{which} (genlab rate compares two "
                          "samples of one run, which ranks nothing); vote between models in the studio's arena first")
    return rank_models(battles, bootstrap=bootstrap, seed=seed)


def feedback_import(store: RunPath, file: RunPath, *, model: str = "imported") -> int:
    """Add the pairs of a TRL preference JSONL file to the store, all in one transaction. Returns the count."""
    from genlab.align.store import FeedbackStore, import_preferences

    with FeedbackStore(store) as kept:
        return import_preferences(kept, file, model=model)


def load(run: RunPath, *, checkpoint: str = "last", device: str = "auto", precision: str = "fp32",
         content_filter: str | os.PathLike | None = None):
    """Load a run directory for sampling: its modality's sampler, with generate(), write() and, for text,
    stream(). `checkpoint`: last or best; `precision`: fp32, bf16 or int8 (token models on CPU);
    `content_filter`: a TOML file, "default" or "off" (None: the run's own content_filter.toml where it has one,
    else the built-in list)."""
    from genlab import preflight
    from genlab.align.finetune import run_model, weights_file
    from genlab.families import get_family
    from genlab.modalities import LoadedRun, modality_of_run
    from genlab.runtime import pick_device
    from genlab.training.checkpoint import read_trainer_state

    run_dir = Path(run)
    config = _run_config(run_dir)
    if ((config.get("train") or {}).get("objective") or {}).get("method") == "reward":
        raise GenlabError(f"{run_dir} is a reward model: it scores outputs and makes none; sample its parent "
                          f"({config['train'].get('parent')}) instead")
    modality = modality_of_run(config)
    family = get_family(config.get("family", "?"))
    model_config = family.saved_config(config["model"])
    if checkpoint == "last":
        folder = run_dir
    elif checkpoint == "best":
        folder = run_dir / "checkpoints" / str(read_trainer_state(run_dir).get("best_checkpoint"))
    else:
        raise GenlabError(f"--checkpoint must be last or best, got {checkpoint!r}")
    weights = weights_file(folder, config)  # a LoRA run's adapter goes onto its parent (genlab finetune)
    if not weights.exists():
        raise GenlabError(f"{weights} is missing: the run never reached a checkpoint; train it further")
    if precision not in ("fp32", "bf16", "int8"):
        raise GenlabError(f"--precision must be fp32, bf16 or int8, got {precision!r}")
    dev = pick_device(device)
    # everything that can be checked is checked before the model is allocated
    preprocessing = modality.load_preprocessing(run_dir, config)
    preflight.check_vocabulary(preprocessing, model_config, run_dir)
    shapes_only = preflight.meta_model(family, model_config)
    preflight.check_memory(shapes_only, dev, preflight.LOAD_COPIES, "loading")
    if weights.name == "model.safetensors":
        preflight.check_weights(shapes_only, weights)
    screen = run_filter(run_dir, content_filter)
    model = run_model(run_dir, config, folder)
    model.to(dev).eval()
    return modality.sampler(LoadedRun(model, config, run_dir, dev, precision, weights, preprocessing, screen))


def run_filter(run_dir: Path, setting: str | os.PathLike | None = None):
    """The content filter a run samples through: `setting` (a TOML file, "default", "off"), else the run's own
    content_filter.toml, else the built-in list."""
    from genlab.safety.content_filter import load_filter

    if setting is None and (run_dir / "content_filter.toml").is_file():
        setting = run_dir / "content_filter.toml"
    return load_filter(setting)


def sample(run: RunPath, prompt: str = "", **controls: Any):
    """Load a run and sample from it: one text, tune or PIL image, or a list of them when num_samples > 1 (see
    the modality's sampler)."""
    m = load(run)
    if prompt:
        controls["prompt"] = prompt
    return m.generate(**controls)


def describe(path: RunPath):
    """A tune, a captioned image or a text file in words and facts (a genlab.modalities.Description)."""
    from genlab.modalities import describe_file

    return describe_file(path)


def prompt_from(model, path: RunPath):
    """What of a file's description a loaded model (api.load) can take as its prompt: a Translation with the
    prompt, and in words what carried over and what did not."""
    from genlab.modalities import get_modality

    return get_modality(model.modality).prompt_from(describe(path), model)


def evaluate(run: RunPath, data: str | None = None, *, split: str | None = None, block_size: int | None = None,
             max_tokens: int | None = None, device: str = "auto", precision: str = "fp32", **sampling: Any) -> dict:
    """Measure a run on its own held-out data (or on `data`) and keep the figures in RUN/metrics.json, under
    their own key ("val", "train", "DATA SPLIT", see genlab.modalities.evaluation_key); return them.

    Text: validation loss, perplexity and bits per character (split, block_size, max_tokens); `precision`
    (fp32, bf16 or int8) scores the model as sampling at that precision runs it. Images: Fréchet distance,
    KID, precision/recall, label accuracy and memorisation of generated samples (num_samples, seed and
    sampling controls; see genlab.images.evaluate). Music: loss per token, then sampled tunes against real
    ones (split, max_tokens, num_samples, distribution_samples, seed, temperature, top_k, max_new_tokens;
    see genlab.music.evaluate). An option the run's modality does not take is a one-line error.
    """
    from genlab.align.finetune import held_out_source
    from genlab.io import run_lock
    from genlab.modalities import evaluation_key, modality_of_run, read_evaluations
    from genlab.safety.card import write_model_card

    run_dir = Path(run)
    # a writer: figures measured while a training rewrites the weights would describe neither model
    with run_lock(run_dir, purpose="eval", hint="wait for it to finish, then evaluate again"):
        config = _run_config(run_dir)
        modality = modality_of_run(config)
        # before any work: a wrong flag is one line
        options = modality.check_evaluation(precision, dict(split=split, block_size=block_size,
                                                            max_tokens=max_tokens, **sampling))
        # an aligned run is measured on its parent's held-out data, not on the pairs it learned from
        source = data or held_out_source(run_dir, config)
        metrics = modality.evaluate(load(run_dir, device=device, precision=precision), source, **options)
        # each evaluation under its own key, so a train split or another dataset never replaces the val figures
        evaluations = read_evaluations(run_dir, config)
        evaluations[evaluation_key(config, data, str(metrics.get("split") or "val"), precision)] = metrics
        atomic_write_json(run_dir / "metrics.json", evaluations)
        write_model_card(run_dir)  # passes through the lock this thread holds
    return metrics


def format_metrics(run: RunPath, metrics: dict) -> str:
    """One evaluation as `genlab eval` prints it: a line naming its data, split and metrics.json key, then
    `name: value` per figure with whether higher or lower is better and its baseline."""
    from genlab.modalities import describe_evaluation

    return describe_evaluation(_run_config(Path(run)), metrics)


def export(run: RunPath, out: RunPath, *, format: str = "hf-gpt2") -> Path:
    """Write a run in another tool's format (hf-gpt2: a transformers GPT-2 directory)."""
    from genlab.exporting import export as do_export

    return do_export(load(run, device="cpu"), format, Path(out))


def import_run(src: RunPath, *, out: RunPath, format: str = "hf-gpt2") -> Path:
    """Make a genlab run from weights made elsewhere (hf-gpt2: a transformers GPT-2 directory with
    model.safetensors and its tokenizer), the reverse of export. The run samples and evaluates on given
    text; it has no optimizer state or training data, so it cannot be resumed."""
    from genlab.importing import import_run as do_import

    return do_import(src, out, format)


def card(run: RunPath) -> Path:
    """Rewrite RUN/README.md, the run's model card, from what the run holds now; its path."""
    from genlab.safety.card import write_model_card

    run_dir = Path(run)
    _run_config(run_dir)
    write_model_card(run_dir)
    return run_dir / "README.md"


def report(run: RunPath, out: RunPath = "report.html", **options: Any) -> Path:
    """One self-contained HTML page about a run: loss curves, a gallery, its evaluations and the creativity dial
    swept (seed, sweep, num_samples, device, quiet); its path."""
    from genlab.safety.report import build_report

    return build_report(run, out, **options)


def detect(path: RunPath, *, key: str | None = None, run: RunPath | None = None, gamma: float | None = None,
           threshold: float | None = None, calibrate: bool = True, text: str | None = None):
    """Whether a file carries a watermark: genlab's invisible mark in an image (.png, .jpg), or the green-list
    mark of `key` in a text or ABC tune as `run`'s tokenizer reads it (`text`: the text itself, instead of the
    file's). Its result has .watermarked and .summary()."""
    from genlab.safety.image_watermark import IMAGE_SUFFIXES, detect_file

    path = Path(path)
    if text is None and path.suffix.lower() in IMAGE_SUFFIXES:
        return detect_file(path)
    if key is None or run is None:
        raise GenlabError("a text or tune is tested for the watermark of a key, as a run's tokenizer reads it: "
                          "give --key KEY --run RUN")
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise GenlabError(f"cannot read {path} as UTF-8 text ({e}); give a text file") from None
        if gamma is None:
            gamma = _recorded_gamma(path)
    return load(run).detect_watermark(text, key, gamma=gamma, threshold=threshold, calibrate=calibrate)


def _recorded_gamma(path: Path) -> float | None:
    """The gamma a genlab text or tune was marked with, from its provenance, if it carries one."""
    from genlab.safety.provenance import inspect_file

    try:
        return float(inspect_file(path).record["watermark"]["gamma"])
    except (GenlabError, OSError, KeyError, TypeError, ValueError):
        return None


def inspect(path: RunPath):
    """The provenance a file genlab wrote carries, and whether its content still matches it
    (genlab.safety.provenance.Inspection: .record, .status, .summary())."""
    from genlab.safety.provenance import inspect_file

    return inspect_file(path)


def list_runs(dir: RunPath = "runs") -> list[dict]:
    """The run directories in `dir` and one folder below it, newest first, as dicts (name, family, modality,
    data, params, disk_bytes, step, best_val_loss, modified, error); a broken one is listed with its error."""
    from genlab.runs import list_runs as find_runs

    return find_runs(dir)


def info(run: RunPath) -> dict:
    """A run directory as plain data: its config, figures, lineage, files and the commands that use it."""
    from genlab.runs import run_info

    return run_info(run)


def launch(argv: list[str], **distributed: Any) -> int:
    """Run `genlab ARGV` under torchrun (nproc_per_node, nnodes, node_rank, master_addr, master_port,
    max_restarts); return torchrun's exit code. Inside torchrun already, `under_torchrun()` is true."""
    from genlab.training.distributed import launch as run_torchrun

    return run_torchrun(argv, **distributed)


def under_torchrun() -> bool:
    from genlab.training.distributed import under_torchrun as inside

    return inside()


def demo(out: str = "runs/demo", minutes: float = 1.5) -> None:
    """Train small text, music and image models on built-in data and show what they make."""
    from genlab.demo import demo as run_demo

    run_demo(out=out, minutes=minutes)


def _run_config(run_dir: Path) -> dict:
    if not run_dir.exists():
        raise GenlabError(f"run directory {run_dir} does not exist; train one with: genlab train DATA --out {run_dir}")
    if not (run_dir / "config.json").is_file():
        raise GenlabError(f"{run_dir} is not a genlab run directory (no config.json); check the path")
    return read_json(run_dir / "config.json")
