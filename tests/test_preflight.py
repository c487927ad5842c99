"""Checks before work: a wrong or oversized run is one line in a moment, before anything is allocated."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from genlab import api
from genlab.cli import main
from genlab.errors import GenlabError


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_corpus):
    out = tmp_path_factory.mktemp("preflight") / "run"
    return api.train(str(small_corpus), family="gpt", out=str(out), n_layer=1, n_head=2, n_embd=32, block_size=32,
                     max_steps=2, eval_interval=2, eval_batches=1, quiet=True)


def edited_copy(run, tmp_path, **model):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["model"].update(model)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def test_an_oversized_config_is_refused_at_once_with_the_figures(run, tmp_path, capsys):
    copy = edited_copy(run, tmp_path, n_layer=200, n_embd=20_000, n_head=4)
    t0 = time.perf_counter()
    assert main(["sample", str(copy)]) == 2
    err = capsys.readouterr().err
    assert time.perf_counter() - t0 < 5 and "needs about" in err and "GB" in err and err.count("\n") == 1


def test_an_oversized_model_is_refused_before_training(small_corpus, tmp_path, capsys):
    t0 = time.perf_counter()
    assert main(["train", str(small_corpus), "--n-layer", "200", "--n-embd", "20000", "--n-head", "4",
                 "--block-size", "32", "--out", str(tmp_path / "big")]) == 2
    err = capsys.readouterr().err
    assert time.perf_counter() - t0 < 30 and "training this model" in err and "needs about" in err


def test_missing_weights_of_a_huge_config_are_found_before_building_it(run, tmp_path):
    copy = edited_copy(run, tmp_path, n_embd=40_000, n_head=4)
    (copy / "model.safetensors").unlink()
    t0 = time.perf_counter()
    with pytest.raises(GenlabError, match="missing"):
        api.load(copy)
    assert time.perf_counter() - t0 < 2


def test_weights_of_another_shape_name_the_tensor(run, tmp_path):
    copy = edited_copy(run, tmp_path, n_embd=64)
    with pytest.raises(GenlabError, match=r"tensor transformer\.\S+ has shape \[[\d, ]+\] but config.json "
                                          r"implies \[[\d, ]+\]; config.json and the weights come from different"):
        api.load(copy)


def test_a_tokenizer_smaller_than_the_vocabulary_is_one_line(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    tokenizer = json.loads((copy / "tokenizer.json").read_text())
    tokenizer["chars"] = tokenizer["chars"][:-3]
    (copy / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(GenlabError, match="tokens but the model in config.json has"):
        api.load(copy)
