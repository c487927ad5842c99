"""Model cards (Mitchell et al. 2019, "Model Cards for Model Reporting"), written into every run.

The API's verbs write it (train at every checkpoint, evaluate after measuring); the run's modality
describes its data and how to sample it.
"""

from __future__ import annotations

import json
from pathlib import Path

from genlab.io import atomic_write_text, read_json, run_lock
from genlab.modalities import modality_of_run


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
    evals = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
    train, model, data = config["train"], config["model"], config.get("data", {})
    modality = modality_of_run(config)
    best = state.get("best_val_loss")
    lines = [
        "---",
        "library_name: genlab",
        f"tags: [genlab, {config['family']}, {modality.name}, ai-generated-content]",
        "---",
        "",
        f"# {run_dir.name}",
        "",
        f"A `{config['family']}` model trained with genlab {config.get('genlab_version', '')}: "
        f"{config.get('n_params', 0) / 1e6:.2f}M parameters.",
        "",
        "## Training data",
        "",
        f"- source: `{data.get('source')}` (sha256 of its content `{str(data.get('content_sha256', ''))[:16]}…`)",
        *modality.card_data(config),
        "",
        "## Training",
        "",
        f"- steps: {state.get('step', 0)} of {train['max_steps']}, batch {train['batch_size']}, "
        f"lr {train['lr']} (warmup {train['warmup_steps']}, cosine to {train['min_lr']}), seed {train['seed']}",
        f"- model: `{json.dumps(model)}`",
        f"- best validation loss: {best:.4f}" if best is not None else "- best validation loss: not evaluated yet",
        "",
    ]
    if evals:
        lines += ["## Evaluation", ""] + [f"- {k}: {v}" for k, v in evals.items()] + [""]
    lines += [
        "## Intended use and limitations",
        "",
        "A small model for learning, experiments and generating drafts like its training data. It reproduces "
        "the style, errors and biases of that data, can copy passages from it, and states falsehoods "
        "fluently. Its outputs are machine-generated and should be labelled as such.",
        "",
        "## How to use",
        "",
        "```",
        modality.card_usage(run_dir),
        "```",
        "",
    ]
    atomic_write_text(run_dir / "README.md", "\n".join(lines))
