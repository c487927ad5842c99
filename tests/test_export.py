"""Parity with a reference nobody here wrote: our GPT exported to transformers' GPT-2 gives the same logits."""

import pytest
import torch

from genlab import api

transformers = pytest.importorskip("transformers")


def test_hf_gpt2_export_has_identical_logits(tmp_path, small_corpus):
    run = api.train(str(small_corpus), family="gpt", out=str(tmp_path / "run"), n_layer=2, n_head=4, n_embd=64,
                    block_size=48, max_steps=30, eval_interval=30, quiet=True)
    out = api.export(run, tmp_path / "hf", format="hf-gpt2")
    ours = api.load(run).model
    theirs = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    idx = torch.randint(0, ours.config.vocab_size, (3, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ours(idx)
        got = theirs(idx).logits
    assert (got - expected).abs().max().item() < 1e-4
