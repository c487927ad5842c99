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


# ---------------------------------------------------------------------------------------------------
# the tokenizer goes along: AutoTokenizer and pipeline("text-generation", DIR) work as genlab does

SAMPLE = "The module defines the following functions:\n\n    def f(x):\n        return x"
PROMPT = "The "


@pytest.fixture(scope="module", params=["char", "bpe"])
def tiny_text_run(request, tmp_path_factory, small_corpus):
    """A tiny GPT trained a few steps on real text, with a char or a bpe tokenizer."""
    out = tmp_path_factory.mktemp(f"run-{request.param}") / "run"
    extra = {"vocab_size": 300} if request.param == "bpe" else {}
    return api.train(str(small_corpus), family="gpt", out=str(out), tokenizer=request.param, n_layer=1, n_head=2,
                     n_embd=32, block_size=64, max_steps=20, eval_interval=20, quiet=True, **extra)


def test_hf_gpt2_export_writes_a_tokenizer_transformers_loads(tmp_path, tiny_text_run):
    out = api.export(tiny_text_run, tmp_path / "hf", format="hf-gpt2")
    ours = api.load(tiny_text_run, device="cpu").tokenizer
    theirs = transformers.AutoTokenizer.from_pretrained(out)
    ids = theirs(SAMPLE)["input_ids"]
    assert ids == ours.encode(SAMPLE).tolist()
    assert theirs.decode(ids) == ours.decode(ids) == SAMPLE
    assert len(theirs) == ours.vocab_size
    # genlab's text tokenizers have no end-of-text token: no made-up id may stop transformers' generation early
    config = transformers.AutoConfig.from_pretrained(out)
    assert config.bos_token_id is None and config.eos_token_id is None and config.pad_token_id is None
    assert (out / "genlab_tokenizer.json").is_file()


def test_hf_gpt2_export_generates_genlabs_greedy_text_in_a_pipeline(tmp_path, tiny_text_run):
    out = api.export(tiny_text_run, tmp_path / "hf", format="hf-gpt2")
    expected = api.load(tiny_text_run, device="cpu").generate(prompt=PROMPT, max_new_tokens=40, temperature=0)
    generate = transformers.pipeline("text-generation", model=str(out), device="cpu")
    got = generate(PROMPT, max_new_tokens=40, do_sample=False, return_full_text=False)[0]["generated_text"]
    assert got == expected and len(expected) > 0
