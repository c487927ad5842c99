"""`genlab import`: a transformers GPT-2 directory becomes a genlab run that samples and scores as the original.

Everything is built here (tiny genlab runs, tiny GPT-2s made by transformers itself, tokenizers trained by
the `tokenizers` library): nothing is downloaded.
"""

import json

import pytest
import torch

from genlab import api
from genlab.cli import main
from genlab.errors import GenlabError

transformers = pytest.importorskip("transformers")

PROMPT = "The "
EOT = "<|endoftext|>"


def _logits(model, idx: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(idx)


@pytest.fixture(scope="module", params=["char", "bpe"])
def exported(request, tmp_path_factory, small_corpus):
    """A tiny genlab run (char or bpe) and its hf-gpt2 export."""
    root = tmp_path_factory.mktemp(f"roundtrip-{request.param}")
    extra = {"vocab_size": 300} if request.param == "bpe" else {}
    run = api.train(str(small_corpus), family="gpt", out=str(root / "run"), tokenizer=request.param, n_layer=1,
                    n_head=2, n_embd=32, block_size=64, max_steps=20, eval_interval=20, quiet=True, **extra)
    return run, api.export(run, root / "hf", format="hf-gpt2")


def test_round_trip_gives_the_same_run_back(tmp_path, exported):
    run, hf = exported
    again = api.import_run(hf, out=tmp_path / "imported")
    original, imported = api.load(run, device="cpu"), api.load(again, device="cpu")

    config = json.loads((again / "config.json").read_text())
    assert config["imported_from"] == str(hf.resolve())
    assert config["tokenizer"]["kind"] == original.tokenizer.kind  # genlab's own tokenizer back, not a wrapper
    assert (again / "README.md").is_file() and (again / "tokenizer.json").is_file()

    idx = torch.randint(0, original.model.config.vocab_size, (2, 64), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(_logits(original.model, idx), _logits(imported.model, idx), atol=1e-5)
    greedy = dict(prompt=PROMPT, max_new_tokens=40, temperature=0)
    assert imported.generate(**greedy) == original.generate(**greedy)


def test_import_and_sample_from_the_command_line(tmp_path, exported, capsys):
    run, hf = exported
    out = tmp_path / "imported"
    assert main(["import", str(hf), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert main(["sample", str(out), "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", "30"]) == 0
    expected = api.load(run, device="cpu").generate(prompt=PROMPT, max_new_tokens=30, temperature=0)
    assert capsys.readouterr().out.startswith(PROMPT + expected)

    # a run is never overwritten
    assert main(["import", str(hf), "--out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_an_imported_run_evaluates_on_given_text(tmp_path, exported, small_corpus):
    _, hf = exported
    again = api.import_run(hf, out=tmp_path / "imported")
    metrics = api.evaluate(again, str(small_corpus), max_tokens=2000, device="cpu")
    assert metrics["val_loss"] > 0 and metrics["perplexity"] > 1


def test_the_model_card_says_the_weights_were_imported(tmp_path, exported):
    _, hf = exported
    again = api.import_run(hf, out=tmp_path / "imported")
    card = (again / "README.md").read_text()
    assert ("whose weights were imported into genlab" in card and f"from `{hf.resolve()}` (format hf-gpt2: a "
            "transformers GPT-2 directory)" in card and "It was not trained with genlab." in card)
    assert "trained with genlab " not in card and "steps: 0 of" not in card  # no training genlab never did
    assert "genlab eval" not in card  # not evaluated yet: no Evaluation section


# ---------------------------------------------------------------------------------------------------
# a GPT-2 directory made by transformers itself, with a byte-level BPE tokenizer as GPT-2's


def _byte_level_tokenizer(text: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def _save_gpt2(folder, tok, **config):
    """GPT2LMHeadModel + tokenizer saved by transformers' own save_pretrained."""
    torch.manual_seed(0)
    shard = config.pop("_shard", False)
    eot = tok.token_to_id(EOT)
    settings = dict(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=tok.get_vocab_size(),
                    bos_token_id=eot, eos_token_id=eot)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**settings, **config})).eval()
    model.save_pretrained(folder, **({"max_shard_size": "40KB"} if shard else {}))
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT).save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory, small_corpus):
    folder = tmp_path_factory.mktemp("gpt2") / "hf"
    tok = _byte_level_tokenizer(small_corpus.read_text(encoding="utf-8")[:20_000])
    return folder, _save_gpt2(folder, tok), tok


def _hf_greedy(model, ids: list[int], n: int) -> list[int]:
    """Greedy decoding by hand: transformers' generate() would stop at <|endoftext|>, genlab's sampler does not."""
    ids = list(ids)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids


def test_a_gpt2_made_by_transformers_imports_with_its_tokenizer(tmp_path, gpt2_dir):
    folder, theirs, tok = gpt2_dir
    run = api.import_run(folder, out=tmp_path / "run")
    ours = api.load(run, device="cpu")
    config = json.loads((run / "config.json").read_text())
    assert config["tokenizer"]["kind"] == "hf" and config["tokenizer"]["vocab_size"] == tok.get_vocab_size()
    assert config["tokenizer"]["special_tokens"]["eos_token"] == EOT

    text = f"Some text, with ünïcödé and {EOT} in it.\n  indented"
    assert ours.tokenizer.encode(text).tolist() == tok.encode(text, add_special_tokens=False).ids
    assert ours.tokenizer.decode(ours.tokenizer.encode(text)) == text

    idx = torch.randint(0, tok.get_vocab_size(), (2, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(ours.model(idx), theirs(idx).logits, atol=1e-5)
    prompt_ids = tok.encode(PROMPT, add_special_tokens=False).ids
    expected = tok.decode(_hf_greedy(theirs, prompt_ids, 20)[len(prompt_ids):], skip_special_tokens=False)
    assert ours.generate(prompt=PROMPT, max_new_tokens=20, temperature=0) == expected

    # and out again: transformers sees the special tokens it came with
    back = api.export(run, tmp_path / "hf", format="hf-gpt2")
    eot = tok.token_to_id(EOT)
    assert transformers.AutoConfig.from_pretrained(back).eos_token_id == eot
    assert json.loads((back / "generation_config.json").read_text())["eos_token_id"] == eot
    assert transformers.AutoTokenizer.from_pretrained(back).eos_token == EOT


def test_old_names_shards_and_fp16_weights_import(tmp_path, gpt2_dir):
    from safetensors.torch import load_file, save_file

    folder, theirs, tok = gpt2_dir
    # a bare GPT2Model's names (no "transformer."), the causal-mask buffers older transformers saved, fp16
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (old / name).write_bytes((folder / name).read_bytes())
    tensors = {k.removeprefix("transformer."): v.half() for k, v in load_file(folder / "model.safetensors").items()}
    tensors["h.0.attn.bias"] = torch.ones(1, 1, 64, 64).tril()
    save_file(tensors, old / "model.safetensors")
    ours = api.load(api.import_run(old, out=tmp_path / "run-old"), device="cpu")
    idx = torch.arange(20).view(1, 20)
    with torch.no_grad():
        assert torch.allclose(ours.model(idx), theirs.half().float()(idx).logits, atol=1e-4)

    sharded = tmp_path / "sharded"
    _save_gpt2(sharded, tok, _shard=True)
    assert (sharded / "model.safetensors.index.json").is_file()
    assert api.load(api.import_run(sharded, out=tmp_path / "run-sharded"), device="cpu").generate(
        prompt=PROMPT, max_new_tokens=5, temperature=0)


# ---------------------------------------------------------------------------------------------------
# what cannot be imported is one line that names the reason


def _copy_with(src, dst, **changes):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    config = json.loads((dst / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


@pytest.mark.parametrize("changes, match", [
    ({"activation_function": "relu"}, "activation_function 'relu'"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"model_type": "llama"}, "model_type is 'llama'"),
    ({"n_inner": 100}, "n_inner is 100"),
    ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon"),
    ({"n_embd": 64}, "does not match its config.json"),
])
def test_settings_genlabs_gpt_cannot_express_are_refused(tmp_path, gpt2_dir, changes, match):
    src = _copy_with(gpt2_dir[0], tmp_path / "hf", **changes)
    with pytest.raises(GenlabError, match=match) as e:
        api.import_run(src, out=tmp_path / "run")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()


def test_pickled_weights_are_refused_unread(tmp_path, gpt2_dir):
    src = _copy_with(gpt2_dir[0], tmp_path / "hf")
    (src / "model.safetensors").unlink()
    (src / "pytorch_model.bin").write_bytes(b"not to be unpickled")
    with pytest.raises(GenlabError, match="pytorch_model.bin, a pickle.*safe_serialization=True"):
        api.import_run(src, out=tmp_path / "run")


def test_a_non_empty_out_and_a_missing_tokenizer_are_refused(tmp_path, gpt2_dir):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(GenlabError, match="not an empty folder"):
        api.import_run(gpt2_dir[0], out=out)
    assert (out / "keep.txt").read_text() == "mine"

    src = _copy_with(gpt2_dir[0], tmp_path / "hf")
    (src / "tokenizer.json").unlink()
    with pytest.raises(GenlabError, match="has no tokenizer"):
        api.import_run(src, out=tmp_path / "other")


def test_gpt2s_slow_tokenizer_files_import_as_the_same_byte_level_bpe(tmp_path, gpt2_dir):
    folder, _, tok = gpt2_dir
    src = _copy_with(folder, tmp_path / "hf")
    (src / "tokenizer.json").unlink()
    tok.model.save(str(src))  # vocab.json and merges.txt, as GPT2Tokenizer keeps them
    ours = api.load(api.import_run(src, out=tmp_path / "run"), device="cpu").tokenizer
    text = f"Some text, with ünïcödé and {EOT} in it.\n  indented"
    assert ours.encode(text).tolist() == tok.encode(text, add_special_tokens=False).ids
    assert ours.decode(ours.encode(text)) == text
