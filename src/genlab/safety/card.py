"""Model cards (Mitchell et al. 2019, "Model Cards for Model Reporting"), written into every run.

The API's verbs write it (train at every checkpoint, evaluate after measuring); the run's modality
describes its data and how to sample it.
"""

from __future__ import annotations

from pathlib import Path

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
    train, model, data = config["train"], config["model"], config.get("data", {})
    modality = modality_of_run(config)
    best = state.get("best_val_loss")
    imported = _imported(config)
    params = f"{config.get('n_params', 0) / 1e6:.2f}M parameters"
    lines = [
        "---",
        "library_name: genlab",
        f"tags: [genlab, {config['family']}, {modality.name}, ai-generated-content]",
        "---",
        "",
        f"# {run_dir.name}",
        "",
    ]
    if imported is None:
        lines += [
            f"A `{config['family']}` model trained with genlab {config.get('genlab_version', '')}: {params}.",
            "",
            "## Training data",
            "",
            f"- source: `{data.get('source')}` (sha256 of its content `{str(data.get('content_sha256', ''))[:16]}…`)",
            *modality.card_data(config),
            "",
            *_lineage(config),
            "## Training",
            "",
            f"- steps: {state.get('step', 0)} of {train['max_steps']}, batch {train['batch_size']}, "
            f"lr {train['lr']} (warmup {train['warmup_steps']}, cosine to {train['min_lr']}), seed {train['seed']}",
            f"- model: {plain(model)}",
            f"- best validation loss: {best:.4f}" if best is not None else "- best validation loss: not evaluated yet",
            "",
        ]
    else:
        source, fmt = imported
        tokenizer = config.get("tokenizer")
        lines += [
            f"A `{config['family']}` model whose weights were imported into genlab {config.get('genlab_version', '')} "
            f"from `{source}` ({_FORMATS.get(fmt, fmt)}): {params}. It was not trained with "
            "genlab.",
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
        "## Intended use and limitations",
        "",
        modality.card_limitations,
        "",
        "## How to use",
        "",
        "```",
        modality.card_usage(run_dir),
        "```",
        "",
    ]
    atomic_write_text(run_dir / "README.md", "\n".join(lines))


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
