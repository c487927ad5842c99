"""Model cards (Mitchell et al. 2019, "Model Cards for Model Reporting"), written into every run.

The API's verbs write it (train at every checkpoint, evaluate after measuring); the run's modality
describes its data and how to sample it.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from genlab.io import atomic_write_text, read_json, run_lock
from genlab.modalities import OWN_EVALUATION, describe_evaluation, modality_of_run, plain, read_evaluations


def write_model_card(run_dir: Path) -> None:
    """Write RUN/README.md under the run's lock. Called by train() at each checkpoint and by evaluate(), it
    passes through the lock its caller holds in this thread; on its own, it is refused while another process
    writes the run."""
    run_dir = Path(run_dir)
    with run_lock(run_dir, purpose="card", hint="wait for it to finish; it writes the card itself"):
        _write_card(run_dir)


def _write_card(run_dir: Path) -> None:
    config = read_json(run_dir / "config.json")
    state = read_json(run_dir / "trainer_state.json") if (run_dir / "trainer_state.json").exists() else {}
    evals = read_evaluations(run_dir, config)
    own = evals.get(OWN_EVALUATION)
    train, model, data = config["train"], config["model"], config.get("data", {})
    modality = modality_of_run(config)
    best = state.get("best_val_loss")
    imported = _imported(config)
    params = f"{config.get('n_params', 0) / 1e6:.2f}M parameters"
    lines = ["---", yaml.safe_dump(front_matter(run_dir, config, own), sort_keys=False, default_flow_style=None,
                                   allow_unicode=True, width=1000).rstrip(), "---", "", f"# {run_dir.name}", ""]
    generates = modality.card_generates(config)
    if imported is None:
        licence, name = _licence(config)
        lines += [
            f"A `{config['family']}` model trained with genlab {config.get('genlab_version', '')}: {params}. It "
            f"generates {generates}.",
            "",
            "## Training data",
            "",
            f"- source: `{data.get('source')}` (sha256 of its content `{str(data.get('content_sha256', ''))[:16]}…`)",
            *modality.card_data(config),
            f"- licence: {name or licence}" + (" (the licence of your own data applies to the model: set it in the "
                                               "front matter)" if licence == "unknown" else ""),
            "",
            *_lineage(config),
            "## Training",
            "",
            f"- steps: {state.get('step', 0)} of {train['max_steps']}, batch {train['batch_size']}, "
            f"lr {train['lr']} (warmup {train['warmup_steps']}, cosine to {train['min_lr']}), seed {train['seed']}",
            f"- model: {plain(model)}",
            f"- compute: {_compute(config, state)}",
            f"- best validation loss: {best:.4f}" if best is not None else "- best validation loss: not evaluated yet",
            "",
        ]
    else:
        source, fmt = imported
        tokenizer = config.get("tokenizer")
        lines += [
            f"A `{config['family']}` model whose weights were imported into genlab {config.get('genlab_version', '')} "
            f"from `{source}` ({_FORMATS.get(fmt, fmt)}): {params}. It was not trained with "
            f"genlab. It generates {generates}.",
            "",
            "## Training data and training",
            "",
            "- not known to genlab: the weights were trained elsewhere; see the card of their source. genlab holds "
            "none of their training data, so the run has no validation split of its own and cannot be resumed.",
            *([f"- tokenizer: {plain(tokenizer.get('kind'))} with {plain(tokenizer.get('vocab_size'))} tokens "
               "(imported with the weights)"] if isinstance(tokenizer, dict) else []),
            f"- model: {plain(model)}",
            "",
        ]
    if evals:
        lines += ["## Evaluation", "", *_evaluation(config, evals, run_dir, imported is not None), ""]
    lines += [
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        "## Limitations",
        "",
        modality.card_limitations,
        "",
        "## Bias",
        "",
        *modality.card_bias(config, own),
        "",
        "## Watermark and provenance",
        "",
        PROVENANCE,
        "",
        modality.card_watermark,
        "",
        "## How to use",
        "",
        "```",
        modality.card_usage(run_dir),
        "```",
        "",
    ]
    atomic_write_text(run_dir / "README.md", "\n".join(lines))


INTENDED_USE = (
    "Learning how generative models work, experiments, and drafts in the manner of the training data, reviewed by a "
    "person before use. Not for work that must be true or fair to people (news, advice, decisions about anyone), "
    "and not for passing machine-made work off as human.")
PROVENANCE = (
    "Every output genlab writes says that it is AI-generated and carries its provenance (model, checkpoint sha256, "
    "seed, controls, time and the sha256 of its content): a JSON file beside each text, a PNG text chunk, an ABC "
    "comment, a MIDI text event, a WAV INFO comment, and in each HTTP response. `genlab inspect FILE` prints it "
    "and says whether the file was altered since. Provenance is removed by a re-save or a screenshot, so its "
    "absence proves nothing.")


def front_matter(run_dir: Path, config: dict, own: dict | None) -> dict:
    """The card's YAML metadata, as the Hugging Face Hub reads it: library, licence, datasets, tags, the base
    model of a fine-tune, and the run's own evaluation as a model-index."""
    modality = modality_of_run(config)
    source = str(config.get("data", {}).get("source") or config.get("imported_from") or "unknown")
    licence, name = _licence(config)
    meta: dict = {"library_name": "genlab", "license": licence}
    if name:
        meta["license_name"] = name
    if not _imported(config):  # a built-in name, or the name of the user's file or folder (not its whole path)
        meta["datasets"] = [source if ":" in source and not Path(source).exists() else Path(source).name]
    meta["tags"] = ["genlab", config["family"], modality.name, "ai-generated-content"]
    if modality.pipeline_tag:
        meta["pipeline_tag"] = modality.pipeline_tag
    parent = config.get("parent")
    if isinstance(parent, dict) and parent.get("path"):
        meta["base_model"] = Path(str(parent["path"])).name  # the parent run's name, as a Hub id names a model
    figures = [(k, own[k]) for k in modality.card_metrics if own and _number(own.get(k))]
    if figures:
        task = modality.pipeline_tag or f"{modality.name}-generation"
        meta["model-index"] = [{"name": run_dir.name, "results": [{
            "task": {"type": task},
            "dataset": {"name": str(own.get("data") or source), "type": str(own.get("data") or source),
                        "split": str(own.get("split") or "validation")},
            "metrics": [{"type": k, "value": v, "name": k.replace("_", " ")} for k, v in figures]}]}]
    return meta


def _licence(config: dict) -> tuple[str, str | None]:
    """The training data's licence as a Hub licence id (or "other" and its name); "unknown" for a user's data."""
    source = str(config.get("data", {}).get("source"))
    return modality_of_run(config).data_licenses.get(source, ("unknown", None))


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _compute(config: dict, state: dict) -> str:
    """Where and how long it trained: device, precision, processes, wall time."""
    hardware = config.get("hardware") or {}
    device = hardware.get("device") or config["train"].get("device")
    name = f" ({hardware['name']}" + (f", {hardware['threads']} threads)" if hardware.get("threads") else ")") \
        if hardware.get("name") else ""
    world = (config.get("distributed") or {}).get("world_size", 1)
    seconds = float(state.get("elapsed_s") or 0)
    took = f"{seconds / 60:.1f} minutes" if seconds >= 90 else f"{seconds:.0f} s"
    return (f"{device}{name}, precision {config['train'].get('precision')}, "
            f"{world} process{'es' if world > 1 else ''}, {took} of training")


def _lineage(config: dict) -> list[str]:
    """The fine-tuning section: which run it started from, how, and what an adapter needs to load."""
    parent = config.get("parent")
    if not isinstance(parent, dict):
        return []
    lora = config.get("train", {}).get("lora") or (config.get("merged_from") or {}).get("lora")
    how = {"full": "all weights trained on", "lora": "a LoRA adapter trained (the parent's weights frozen)",
           "lora, merged": "a LoRA adapter trained, then merged into the parent's weights"}
    lines = ["## Fine-tuned from", "",
             f"- parent run: `{parent.get('path')}` (sha256 of its weights "
             f"`{str(parent.get('weights_sha256'))[:16]}…`)",
             f"- method: {how.get(parent.get('method'), parent.get('method'))}"]
    if lora:
        lines.append(f"- LoRA: rank {lora.get('rank')}, alpha {lora.get('alpha')}, dropout {lora.get('dropout')}, "
                     f"layers matching `{lora.get('targets') or 'the family default'}`")
    if parent.get("method") == "lora":
        lines.append("- this folder holds the adapter alone (peft's adapter_config.json and adapter_model.safetensors);"
                     " it loads onto the parent at that path, unchanged; `genlab merge` writes a standalone copy")
    return [*lines, ""]


# what an import format is, in words; a format not named here is shown by its name
_FORMATS = {"hf-gpt2": "format hf-gpt2: a transformers GPT-2 directory"}


def _imported(config: dict) -> tuple[str, str] | None:
    """Where an imported run's weights came from and in which format (written by `genlab import`); None for a
    run genlab trained."""
    if not config.get("imported_from"):
        return None
    return str(config["imported_from"]), str(config.get("imported_format", "hf-gpt2"))


def _evaluation(config: dict, evals: dict[str, dict], run_dir: Path, imported: bool = False) -> list[str]:
    """The run's own validation figures (never whichever evaluation ran last), and which others metrics.json
    holds. An imported run has no data of its own: it is measured on text given to `genlab eval`."""
    own = evals.get(OWN_EVALUATION)
    if own is None and imported:
        lines = [f"Imported: it has no validation split of its own; measure it on given data with "
                 f"`genlab eval {run_dir} DATA`."]
    elif own is None:
        lines = [f"Not yet measured on its own validation split: `genlab eval {run_dir}`."]
    else:
        lines = ["On its own held-out validation split, as `genlab eval` measured it:", "", "```text",
                 describe_evaluation(config, own), "```"]
    others = [k for k in evals if k != OWN_EVALUATION]
    if others:
        lines += ["", f"metrics.json {'holds' if own is None else 'also holds'}: {', '.join(others)}."]
    return lines
