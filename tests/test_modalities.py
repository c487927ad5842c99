"""The Modality contract, one run per registered modality through the very same calls (as diffusers'
SchedulerCommonTest does for schedulers): open a tiny source, train two steps, load, sample with a seed,
write with provenance, evaluate. A new modality fails here until it has a tiny case below."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from genlab import api
from genlab.errors import GenlabError
from genlab.modalities import Sampler, modality_of_source, registry
from genlab.safety.provenance import read_provenance

TUNE = "X:{i}\nT:t\nM:6/8\nL:1/8\nK:D\n|:A|dfa afd|gfe dcB|AFA dFA|BGE E2A|dfa afd|gfe dcB|AFA Bcd|edc d2:|\n"


@dataclass
class Case:
    source: str
    family: str
    settings: dict = field(default_factory=dict)
    controls: dict = field(default_factory=dict)
    eval_options: dict = field(default_factory=dict)


def text_case(tmp: Path, small_corpus: Path) -> Case:
    return Case(str(small_corpus), "gpt", dict(n_layer=1, n_head=2, n_embd=32, block_size=32),
                dict(prompt="The ", max_new_tokens=12), dict(max_tokens=2000))


def images_case(tmp: Path, small_corpus: Path) -> Case:
    return Case("images:digits", "vae", dict(image_size=8, batch_size=32), {}, dict(num_samples=40))


def music_case(tmp: Path, small_corpus: Path) -> Case:
    folder = tmp / "tunes"
    folder.mkdir()
    (folder / "tunes.abc").write_text("\n".join(TUNE.format(i=i) for i in range(12)))
    return Case(str(folder), "gpt", dict(n_layer=1, n_head=2, n_embd=32, block_size=32),
                dict(prompt="M:6/8 K:Dmaj", max_new_tokens=24),
                dict(num_samples=2, distribution_samples=2, max_new_tokens=24, max_tokens=500))


CASES = {"text": text_case, "images": images_case, "music": music_case}


def same(a, b) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_every_registered_modality_has_a_case():
    assert set(registry()) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_modality_contract(name, tmp_path, small_corpus):
    case = CASES[name](tmp_path, small_corpus)
    modality = registry()[name]
    assert modality_of_source(case.source) is modality

    run = api.train(case.source, family=case.family, out=str(tmp_path / "run"), max_steps=2, eval_interval=2,
                    eval_batches=1, warmup_steps=0, seed=0, quiet=True, **case.settings)
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["modality"] == name
    assert f"tags: [genlab, {case.family}, {name}," in (run / "README.md").read_text()  # the card, per checkpoint

    m = api.load(run)
    assert isinstance(m, Sampler) and m.modality == name
    assert set(case.controls) <= set(m.controls)  # the sampler declares every control the case uses
    controls = {**m.controls, **case.controls, "seed": 7, "num_samples": 2}
    outputs = m.generate(**controls)
    assert m.last_seed == 7 and same(outputs, m.generate(**controls))  # a seed gives the same outputs
    if m.streams(controls):
        assert "".join(m.stream(**{**controls, "num_samples": 1})) == m.generate(**{**controls, "num_samples": 1})

    paths = m.write(outputs, tmp_path / "out")
    assert paths and all(p.is_file() for p in paths)
    assert m.summary(outputs, paths, tmp_path / "out")
    for p in paths:
        record = read_provenance(p)
        assert record["ai_generated"] is True and record["model"] == "run" and record["seed"] == 7
        assert record["checkpoint"] == "model.safetensors" and len(record["checkpoint_sha256"]) == 64

    metrics = api.evaluate(run, **case.eval_options)
    assert json.loads((run / "metrics.json").read_text())["val"] == json.loads(json.dumps(metrics))
    assert "## Evaluation" in (run / "README.md").read_text()
    first_key = next(iter(metrics))
    assert first_key in api.format_metrics(run, metrics)
    with pytest.raises(GenlabError, match="--no-such-option is not an evaluation option"):
        api.evaluate(run, no_such_option=1)


def test_a_family_refuses_another_batch_kind_by_naming_the_families_that_can(tmp_path):
    with pytest.raises(GenlabError, match="images:digits holds images, which the gpt family cannot model; "
                                          "train it with --family vae, gan or diffusion"):
        api.train("images:digits", family="gpt", out=str(tmp_path / "x"), max_steps=1, quiet=True)


def test_provenance_names_the_checkpoint_sampled(tmp_path, small_corpus):
    run = api.train(str(small_corpus), family="lstm", out=str(tmp_path / "run"), n_layer=1, n_embd=16,
                    block_size=16, max_steps=4, eval_interval=2, eval_batches=1, seed=0, quiet=True)
    best = json.loads((run / "trainer_state.json").read_text())["best_checkpoint"]
    m = api.load(run, checkpoint="best")
    texts = m.generate(max_new_tokens=5, seed=1, num_samples=2)
    (path, _) = m.write(texts, tmp_path / "out")
    record = read_provenance(path)
    assert record["checkpoint"] == f"checkpoints/{best}/model.safetensors"
    assert path.read_text() == texts[0] and record["index"] == 1
