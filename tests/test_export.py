"""Parity with a reference nobody here wrote: our GPT exported to transformers' GPT-2 gives the same logits."""

import pytest
import torch

from genlab import api

transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh"])
def test_hf_gpt2_export_has_identical_logits(tmp_path, small_corpus, activation):
    run = api.train(str(small_corpus), family="gpt", out=str(tmp_path / "run"), n_layer=2, n_head=4, n_embd=64,
                    block_size=48, max_steps=30, eval_interval=30, activation=activation, quiet=True)
    out = api.export(run, tmp_path / "hf", format="hf-gpt2")
    ours = api.load(run).model
    theirs = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    idx = torch.randint(0, ours.config.vocab_size, (3, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ours(idx)
        got = theirs(idx).logits
    assert (got - expected).abs().max().item() < 1e-4


def test_runs_saved_before_the_activation_setting_keep_gpt2s_gelu():
    from genlab.errors import GenlabError
    from genlab.families.gpt import GPTFamily

    family = GPTFamily()
    assert family.make_config({}).activation == "gelu"
    assert family.saved_config({"n_layer": 2}).activation == "gelu_tanh"
    assert family.saved_config({"activation": "gelu"}).activation == "gelu"
    with pytest.raises(GenlabError, match="--activation must be gelu or gelu_tanh"):
        family.make_config({"activation": "relu"})
