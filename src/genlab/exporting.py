"""Export a run to other tools' formats. `hf-gpt2`: a transformers GPT2LMHeadModel directory.

genlab's GPT keeps GPT-2's parameter names; GPT-2 stores its projection weights as Conv1D
(in_features, out_features), the transpose of nn.Linear, so those four matrices are transposed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, save_tensors

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def export_hf_gpt2(loaded, out: Path) -> Path:
    cfg = loaded.config
    if cfg["family"] != "gpt":
        raise GenlabError(f"--format hf-gpt2 exports gpt runs; {loaded.run_dir} is a {cfg['family']} run")
    out = write_hf_gpt2(loaded.model, Path(out))
    shutil.copyfile(Path(loaded.run_dir) / "tokenizer.json", out / "genlab_tokenizer.json")
    return out


def write_hf_gpt2(model, out: Path) -> Path:
    """Write a genlab GPT module as a transformers GPT-2 directory (config.json + model.safetensors)."""
    m = vars(model.config)
    if not m.get("bias", True):
        raise GenlabError("--format hf-gpt2 needs a model trained with bias=true (GPT-2 has biases)")
    tensors = {}
    for name, t in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied to transformer.wte.weight, as in GPT-2
        tensors[name] = t.t().contiguous() if name.endswith(_CONV1D) else t
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(out / "model.safetensors", tensors, metadata={"format": "pt"})
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
        "bos_token_id": 0,
        "eos_token_id": 0,
    })
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
