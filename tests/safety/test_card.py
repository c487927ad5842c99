"""Model cards as the Hugging Face Hub reads them: huggingface_hub's own parser takes the front matter (licence,
datasets, tags, base model, the evaluation as a model-index), and the body has every section the issue names,
the class balance of an image model measured against its training set."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from genlab import api
from genlab.cli import main

SECTIONS = ("## Training data", "## Training", "## Evaluation", "## Intended use", "## Limitations", "## Bias",
            "## Watermark and provenance", "## How to use")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """An unconditional VAE on the digits, evaluated: its samples' class balance is measured."""
    run = api.train("images:digits", family="vae", out=str(tmp_path_factory.mktemp("card") / "digits"),
                    image_size=8, batch_size=32, max_steps=30, eval_interval=30, eval_batches=1, seed=0, quiet=True)
    api.evaluate(run, num_samples=200)
    return run


def test_the_hub_parses_the_card_and_its_evaluation(digits):
    card = ModelCard.load(digits / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "genlab" and data["license"] == "cc-by-4.0"
    assert data["datasets"] == ["images:digits"] and data["pipeline_tag"] == "unconditional-image-generation"
    assert {"genlab", "vae", "images", "ai-generated-content"} <= set(data["tags"])
    metrics = json.loads((digits / "metrics.json").read_text())["val"]
    found = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert found["frechet_distance"] == metrics["frechet_distance"] and found["recall"] == metrics["recall"]
    assert all(r.dataset_name == "images:digits" and r.task_type == "unconditional-image-generation"
               for r in card.data.eval_results)
    for section in SECTIONS:
        assert f"\n{section}\n" in card.text, section


def test_the_card_measures_class_balance_against_the_training_set(digits):
    balance = json.loads((digits / "metrics.json").read_text())["val"]["class_balance"]
    assert abs(sum(balance["train"].values()) - 1) < 1e-3 and abs(sum(balance["samples"].values()) - 1) < 1e-3
    assert 0.0 <= balance["total_variation"] <= 1.0
    assert all(abs(share - 0.1) < 0.02 for share in balance["train"].values())  # the digits are balanced
    bias = (digits / "README.md").read_text().split("## Bias", 1)[1].split("\n## ", 1)[0]
    assert f"total variation distance {balance['total_variation']:.3f}" in bias
    assert "| 3 |" in bias and f"{balance['train']['3']:.1%}" in bias
    compute = next(line for line in (digits / "README.md").read_text().splitlines() if line.startswith("- compute:"))
    assert "cpu" in compute and "precision" in compute and "of training" in compute


def test_genlab_card_rewrites_it_and_a_fine_tune_names_its_base(digits, tmp_path, capsys):
    (digits / "README.md").unlink()
    assert main(["card", str(digits)]) == 0 and "wrote" in capsys.readouterr().out
    assert ModelCard.load(digits / "README.md").data.license == "cc-by-4.0"
    tuned = api.finetune(digits, "images:digits", out=tmp_path / "tuned", max_steps=2, eval_interval=2,
                         eval_batches=1, quiet=True)
    data = ModelCard.load(tuned / "README.md").data.to_dict()
    assert data["base_model"] == "digits" and "## Fine-tuned from" in (tuned / "README.md").read_text()
    assert main(["card", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
