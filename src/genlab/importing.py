"""Import: start from weights a user already has. `hf-gpt2`: a transformers GPT-2 directory becomes a genlab
run directory, the reverse of `genlab export --format hf-gpt2` (as nanoGPT's `init_from`).

Read from the directory:
    config.json          model_type gpt2, with only settings genlab's GPT can express (else one line naming it)
    model.safetensors    or its shards (model.safetensors.index.json); never a pickle (pytorch_model.bin)
    the tokenizer        genlab_tokenizer.json where genlab exported it (the very char or bpe tokenizer back),
                         else tokenizer.json, or vocab.json + merges.txt, as an `hf` tokenizer (real GPT-2
                         vocabularies: 50257 tokens of byte-level BPE)
Written to the run: config.json in genlab's format with "imported_from", model.safetensors in genlab's
names, tokenizer.json and the model card. The run samples (`genlab sample`) and evaluates on text given
to it (`genlab eval RUN DATA`); it has no training data or optimizer state, so `--resume` does not apply.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, fsync_dir, load_tensors, make_temp_dir, read_json, save_tensors

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# transformers' names for the GELUs genlab's GPT has (gelu_new and gelu_pytorch_tanh are one function)
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
# GPT-2 settings where genlab's GPT has one fixed value (transformers' default)
_FIXED = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "add_cross_attention": False}
# GPT2Config's defaults, for keys a config.json leaves out
_HF_DEFAULTS = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12}
SPECIAL_TOKENS = ("bos_token", "eos_token", "pad_token", "unk_token")


def import_run(src: str | os.PathLike, out: str | os.PathLike, fmt: str = "hf-gpt2") -> Path:
    if fmt not in FORMATS:
        raise GenlabError(f"unknown import format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    src, out = Path(src), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenlabError(f"{out} already exists and is not an empty folder; import into a new or empty one, so "
                          "nothing there is overwritten")
    if not src.is_dir():
        raise GenlabError(f"{src} is not a folder; give the directory that transformers' save_pretrained wrote "
                          "(config.json, model.safetensors and the tokenizer files)")
    return FORMATS[fmt](src, out)


def import_hf_gpt2(src: Path, out: Path) -> Path:
    from genlab import __version__
    from genlab.families import get_family
    from genlab.safety.card import write_model_card
    from genlab.training.checkpoint import model_tensors
    from genlab.training.config import TrainConfig

    hf_config = _read_config(src / "config.json")
    model_config = gpt_config(hf_config, src / "config.json")
    tokenizer = read_tokenizer(src)
    if tokenizer.vocab_size != model_config.vocab_size:
        raise GenlabError(f"the tokenizer of {src} has {tokenizer.vocab_size} tokens but its model has "
                          f"{model_config.vocab_size} (vocab_size in config.json); genlab needs one id per token")
    family = get_family("gpt")
    model = family.build(model_config)
    load_weights(model, read_weights(src), src, bool(hf_config.get("tie_word_embeddings", True)))

    special = _special_tokens(src, hf_config, tokenizer) if tokenizer.kind == "hf" else {}
    source = f"(none: imported from {src.resolve()})"  # what `genlab eval RUN` without DATA will name
    train = TrainConfig(data=source, tokenizer=tokenizer.kind, precision="fp32",
                        vocab_size=tokenizer.vocab_size if tokenizer.kind == "bpe" else None)
    config = {
        "genlab_version": __version__, "family": family.name, "model": asdict(model_config),
        "tokenizer": {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
                      **({"special_tokens": special} if special else {})},
        "data": {"modality": "text", "source": source},
        "train": asdict(train), "n_params": sum(p.numel() for p in model.parameters()),
        "imported_from": str(src.resolve()), "imported_format": "hf-gpt2",
    }
    # built beside the target and renamed into place: an import cut short leaves no half run behind
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, out.name)
    try:
        tokenizer.save(tmp / "tokenizer.json")
        save_tensors(tmp / "model.safetensors", model_tensors(model))
        atomic_write_json(tmp / "config.json", config)
        if out.exists():
            out.rmdir()  # empty: checked before any work
        os.rename(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_model_card(out)
    return out


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise GenlabError(f"{path.parent} has no config.json; it is not a transformers model directory "
                          "(save one with model.save_pretrained(DIR))")
    config = read_json(path)
    if not isinstance(config, dict):
        raise GenlabError(f"{path} is not a JSON object; restore the file")
    return config


def gpt_config(hf: dict, path: Path):
    """genlab's GPTConfig for a transformers GPT2Config; a setting genlab's GPT cannot express is one line."""
    from genlab.families.gpt import GPTConfig

    if hf.get("model_type") != "gpt2":
        raise GenlabError(f"{path}: model_type is {hf.get('model_type')!r}; genlab imports GPT-2 models "
                          "(model_type gpt2) only")
    sizes = {}
    for key, default in _HF_DEFAULTS.items():
        value = hf.get(key, hf.get("n_ctx", default) if key == "n_positions" else default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise GenlabError(f"{path}: {key} is {value!r}, not a positive whole number; restore the file")
        sizes[key] = value
    activation = hf.get("activation_function", "gelu_new")
    if activation not in _ACTIVATIONS:
        raise GenlabError(f"{path}: activation_function {activation!r} is not one genlab's GPT has "
                          f"({', '.join(_ACTIVATIONS)}); this model cannot be imported")
    for key, value in _FIXED.items():
        if bool(hf.get(key, value)) != value:
            raise GenlabError(f"{path}: {key} is {hf.get(key)!r}; genlab's GPT has only {key} {value}, so this model "
                              "cannot be imported")
    n_inner = hf.get("n_inner")
    if n_inner is not None and n_inner != 4 * sizes["n_embd"]:
        raise GenlabError(f"{path}: n_inner is {n_inner}; genlab's GPT has an MLP of 4 x n_embd "
                          f"({4 * sizes['n_embd']}), so this model cannot be imported")
    eps = hf.get("layer_norm_epsilon", 1e-5)
    if not isinstance(eps, (int, float)) or not math.isclose(eps, 1e-5, rel_tol=1e-6):
        raise GenlabError(f"{path}: layer_norm_epsilon is {eps!r}; genlab's GPT has 1e-05, so this model cannot "
                          "be imported")
    return GPTConfig(vocab_size=sizes["vocab_size"], block_size=sizes["n_positions"], n_layer=sizes["n_layer"],
                     n_head=sizes["n_head"], n_embd=sizes["n_embd"], dropout=0.0, bias=True,
                     activation=_ACTIVATIONS[activation])


def read_weights(src: Path) -> dict[str, torch.Tensor]:
    """The tensors of model.safetensors, or of the shards its index names. A pickle is refused unread."""
    single, index = src / "model.safetensors", src / "model.safetensors.index.json"
    if single.is_file():
        return load_tensors(single)
    if index.is_file():
        saved = read_json(index)
        weight_map = saved.get("weight_map") if isinstance(saved, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise GenlabError(f"{index} has no weight_map; restore the file, or save the model again")
        shards = sorted(set(weight_map.values()))
        bad = [s for s in shards if not isinstance(s, str) or Path(s).name != s]
        if bad:  # a shard name is joined into a path: it must not leave the folder
            raise GenlabError(f"{index} names {bad[0]!r}, not a file beside it; restore the file")
        tensors: dict[str, torch.Tensor] = {}
        for shard in shards:
            tensors.update(load_tensors(src / shard))
        return tensors
    pickles = sorted(p.name for p in src.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    if pickles:
        raise GenlabError(f"{src} holds its weights as {pickles[0]}, a pickle that can run code when loaded; "
                          "re-save the model with model.save_pretrained(DIR, safe_serialization=True) and import that")
    raise GenlabError(f"{src} has no model.safetensors; save the model with model.save_pretrained(DIR) and import "
                      "that")


def load_weights(model, tensors: dict[str, torch.Tensor], src: Path, tied: bool) -> None:
    """GPT-2's tensors into genlab's GPT: the same names (with or without the `transformer.` prefix a bare
    GPT2Model saves without), Conv1D weights transposed, fp16/bf16 widened to fp32, old mask buffers dropped."""
    ours: dict[str, torch.Tensor] = {}
    head = None
    for name, t in tensors.items():
        key = name.removeprefix("transformer.")
        if key.startswith("h.") and key.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # the causal mask older transformers saved as a buffer; genlab's attention is causal itself
        t = t.float()
        if key == "lm_head.weight":
            head = t
            continue
        ours["transformer." + key] = t.t().contiguous() if key.endswith(_CONV1D) else t
    wte = ours.get("transformer.wte.weight")
    if head is not None and wte is not None and not torch.equal(head, wte):
        raise GenlabError(f"{src}: lm_head.weight differs from the token embedding (tie_word_embeddings false); "
                          "genlab's GPT ties them, so this model cannot be imported")
    if head is None and not tied:
        raise GenlabError(f"{src}: tie_word_embeddings is false but model.safetensors has no lm_head.weight; "
                          "save the model again with model.save_pretrained(DIR)")
    try:
        missing, unexpected = model.load_state_dict(ours, strict=False)
    except RuntimeError as e:  # a shape that differs from config.json's
        detail = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e)[:160])
        raise GenlabError(f"{src}/model.safetensors does not match its config.json ({detail[:160]})") from None
    missing = [n for n in missing if n != "lm_head.weight"]  # tied to transformer.wte.weight
    if missing or unexpected:
        raise GenlabError(f"{src}/model.safetensors does not match a GPT-2 of its config.json (missing "
                          f"{missing[:3]}, unexpected {[n.removeprefix('transformer.') for n in unexpected[:3]]})")


def read_tokenizer(src: Path):
    """genlab's own tokenizer where genlab exported the directory; else the transformers tokenizer as `hf`."""
    from genlab.text.tokenizer import BPETokenizer, CharTokenizer, HFTokenizer, read_tokenizer_json

    own = src / "genlab_tokenizer.json"
    if own.is_file():
        # genlab's char file says its kind; its bpe file is the `tokenizers` JSON itself
        return CharTokenizer.load(own) if read_tokenizer_json(own).get("kind") == "char" else BPETokenizer.load(own)
    if (src / "tokenizer.json").is_file():
        return HFTokenizer.load(src / "tokenizer.json")
    vocab, merges = src / "vocab.json", src / "merges.txt"
    if vocab.is_file() and merges.is_file():  # GPT-2's slow tokenizer files: the same byte-level BPE
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        try:
            tok = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
        except Exception as e:  # `tokenizers` raises a plain Exception for a file it cannot read
            raise GenlabError(f"cannot read {vocab} and {merges} ({str(e).splitlines()[0][:120]}); restore "
                              "them") from None
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        named = [t for t in read_special_tokens(src).values() if tok.token_to_id(t) is not None]
        tok.add_special_tokens(sorted(set(named)))  # encoded whole, as GPT2Tokenizer does with <|endoftext|>
        return HFTokenizer(tok)
    raise GenlabError(f"{src} has no tokenizer (tokenizer.json, or vocab.json and merges.txt); save it beside the "
                      "model with tokenizer.save_pretrained(DIR)")


def read_special_tokens(src: Path) -> dict[str, str]:
    """The special tokens a transformers directory names (tokenizer_config.json, then special_tokens_map.json),
    as {"eos_token": "<|endoftext|>", ...}."""
    found: dict[str, str] = {}
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = src / name
        try:
            saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # optional files: the tokenizer works without them
        for key in SPECIAL_TOKENS:
            value = saved.get(key) if isinstance(saved, dict) else None
            if isinstance(value, dict):  # {"content": "<|endoftext|>", "lstrip": false, ...}
                value = value.get("content")
            if isinstance(value, str):
                found[key] = value
    return found


def _special_tokens(src: Path, hf_config: dict, tokenizer) -> dict[str, str]:
    """Special tokens that are in the vocabulary: those the tokenizer files name, then the ids of config.json."""
    hf = tokenizer.to_hf()
    found = {k: t for k, t in read_special_tokens(src).items() if hf.token_to_id(t) is not None}
    for key in ("bos_token", "eos_token", "pad_token"):
        token_id = hf_config.get(f"{key}_id")
        if key not in found and isinstance(token_id, int) and hf.id_to_token(token_id) is not None:
            found[key] = hf.id_to_token(token_id)
    return found


FORMATS = {"hf-gpt2": import_hf_gpt2}
