"""Export a run to other tools' formats. `hf-gpt2`: a transformers GPT2LMHeadModel directory.

genlab's GPT keeps GPT-2's parameter names; GPT-2 stores its projection weights as Conv1D
(in_features, out_features), the transpose of nn.Linear, so those four matrices are transposed.

A text run's tokenizer goes along as a `tokenizers` tokenizer.json (with tokenizer_config.json and
special_tokens_map.json), so that `AutoTokenizer.from_pretrained(DIR)` and
`pipeline("text-generation", DIR)` work with no custom code and give genlab's own ids. genlab's char and
bpe tokenizers have no special tokens (no end-of-text: a corpus is one stream), so bos/eos/pad stay unset
and transformers generates on to max_new_tokens as genlab does; a run brought in by `genlab import` keeps
the special tokens it came with. genlab's own tokenizer file goes along too, as genlab_tokenizer.json, so
that `genlab import` gives back the very same tokenizer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, atomic_write_text, save_tensors

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
SPECIAL_TOKENS = ("bos_token", "eos_token", "pad_token", "unk_token")


def export_hf_gpt2(loaded, out: Path) -> Path:
    cfg = loaded.config
    if cfg["family"] != "gpt":
        raise GenlabError(f"--format hf-gpt2 exports gpt runs; {loaded.run_dir} is a {cfg['family']} run")
    tokenizer = getattr(loaded, "tokenizer", None)
    hf = tokenizer.to_hf() if hasattr(tokenizer, "to_hf") else None
    special = special_tokens(cfg, tokenizer, hf)
    out = write_hf_gpt2(loaded.model, Path(out), {f"{k}_id": i for k, (_, i) in special.items()})
    if hf is not None:
        write_hf_tokenizer(hf, out, {k: t for k, (t, _) in special.items() if t is not None}, loaded.model.max_context)
    shutil.copyfile(Path(loaded.run_dir) / "tokenizer.json", out / "genlab_tokenizer.json")
    return out


def special_tokens(config: dict, tokenizer, hf) -> dict[str, tuple[str | None, int]]:
    """{"eos_token": (text, id), ...}: those an imported run recorded in config.json (tokenizer.special_tokens),
    or the bos/eos ids of a tokenizer that has them (music's); genlab's text tokenizers have none."""
    found: dict[str, tuple[str | None, int]] = {}
    for name, text in config.get("tokenizer", {}).get("special_tokens", {}).items():
        token_id = hf.token_to_id(text) if hf is not None else None
        if name in SPECIAL_TOKENS and token_id is not None:
            found[name] = (text, token_id)
    for name in ("bos", "eos"):
        token_id = getattr(tokenizer, name, None)
        if isinstance(token_id, int) and f"{name}_token" not in found:
            found[f"{name}_token"] = (hf.id_to_token(token_id) if hf is not None else None, token_id)
    return found


def write_hf_tokenizer(hf, out: Path, special: dict[str, str], max_length: int | None) -> None:
    """tokenizer.json plus the two small files AutoTokenizer reads beside it. The plain fast-tokenizer class
    needs no vocab.json or merges.txt, and adds no tokens of its own (GPT2TokenizerFast would add
    <|endoftext|> to a vocabulary that lacks it); cleaning up spaces is off, or decode would change the text."""
    atomic_write_text(out / "tokenizer.json", hf.to_str())
    atomic_write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        "add_bos_token": False,
        "add_eos_token": False,
        **({"model_max_length": max_length} if max_length else {}),
        **special,
    })
    atomic_write_json(out / "special_tokens_map.json", special)


def write_hf_gpt2(model, out: Path, special_ids: dict[str, int] | None = None) -> Path:
    """Write a genlab GPT module as a transformers GPT-2 directory (config.json, generation_config.json and
    model.safetensors). `special_ids`: bos_token_id, eos_token_id, pad_token_id where the tokenizer has them."""
    m = vars(model.config)
    if not m.get("bias", True):
        raise GenlabError("--format hf-gpt2 needs a model trained with bias=true (GPT-2 has biases)")
    if m.get("feature_vocab_size"):
        raise GenlabError("--format hf-gpt2 cannot carry this model's second input (the room left in the bar "
                          "beside each music token): GPT-2 reads token ids alone")
    tensors = {}
    for name, t in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied to transformer.wte.weight, as in GPT-2
        tensors[name] = t.t().contiguous() if name.endswith(_CONV1D) else t
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(out / "model.safetensors", tensors, metadata={"format": "pt"})
    # unset (null) rather than a made-up 0: transformers stops generating at eos_token_id
    ids = {key: (special_ids or {}).get(key) for key in ("bos_token_id", "eos_token_id", "pad_token_id")}
    atomic_write_json(out / "config.json", {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": m["vocab_size"],
        "n_positions": m["block_size"],
        "n_ctx": m["block_size"],
        "n_embd": m["n_embd"],
        "n_layer": m["n_layer"],
        "n_head": m["n_head"],
        "n_inner": None,
        "activation_function": {"gelu": "gelu", "gelu_tanh": "gelu_new"}[m.get("activation", "gelu_tanh")],
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "use_cache": True,
        **ids,
    })
    atomic_write_json(out / "generation_config.json", ids)
    return out


FORMATS = {"hf-gpt2": export_hf_gpt2}


def export(loaded, fmt: str, out: Path) -> Path:
    if fmt not in FORMATS:
        raise GenlabError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenlabError(f"{out} already exists and is not an empty folder; export into a new or empty one, so "
                          "nothing there is overwritten")
    return FORMATS[fmt](loaded, out)

