"""Checkpoints: a run directory that survives a kill at any moment, and resumes exactly.

    RUN/
      config.json            family, model, tokenizer, data and training settings
      model.safetensors      the newest weights (a hard link to the last checkpoint's)
      tokenizer.json, README.md (model card), metrics.jsonl, metrics.json (eval)
      trainer_state.json     which checkpoint is last and which is best; written last, atomically
      checkpoints/checkpoint-N/{model.safetensors, training_state.safetensors, state.json}

A checkpoint folder is written under a temporary name and renamed into place; only then does
trainer_state.json point at it. So the pointer always names a complete checkpoint. Optimizer
moments and RNG states are tensors in safetensors and everything else is JSON: nothing is pickled.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, fsync_dir, load_tensors, make_temp_dir, read_json, save_tensors


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tied weights stored once (safetensors refuses shared storage)."""
    seen: dict[int, str] = {}
    out = {}
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.shape, t.stride()) if t.numel() else None
        if key is not None and key in seen:
            continue
        if key is not None:
            seen[key] = name
        out[name] = t
    return out


def load_model_tensors(model: torch.nn.Module, path: Path) -> None:
    tensors = load_tensors(path)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    # tied weights are saved under one name only: the other alias shows up as "missing"
    tied = {n for n in missing if _is_tied_alias(model, n, tensors)}
    missing = [n for n in missing if n not in tied]
    if missing or unexpected:
        raise GenlabError(
            f"{path} does not match the model in config.json (missing {missing[:3]}, unexpected {unexpected[:3]}); "
            "the run directory is mixed up or from another genlab version"
        )


def _is_tied_alias(model: torch.nn.Module, name: str, saved: dict) -> bool:
    state = model.state_dict()
    t = state[name]
    return any(k in saved and state[k].data_ptr() == t.data_ptr() for k in state if k != name)


def _flatten(prefix: str, obj: Any, tensors: dict, meta: Any = None):
    """Split a nested dict/list of tensors and plain values into {name: tensor} and a JSON skeleton."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_key(k), _flatten(f"{prefix}.{k}", v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(f"{prefix}.{i}", v, tensors) for i, v in enumerate(obj)]
    return obj


def _key(k):
    return {"int": k} if isinstance(k, int) else k


def _unflatten(skel: Any, tensors: dict):
    if isinstance(skel, dict) and "__tensor__" in skel:
        return tensors[skel["__tensor__"]]
    if isinstance(skel, dict) and "__dict__" in skel:
        return {(k["int"] if isinstance(k, dict) else k): _unflatten(v, tensors) for k, v in skel["__dict__"]}
    if isinstance(skel, list):
        return [_unflatten(v, tensors) for v in skel]
    return skel


def rng_states() -> dict[str, torch.Tensor]:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            states[f"cuda{i}"] = s
    return states


def set_rng_states(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["torch"])
    cuda = [states[k] for k in sorted(states) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


class FullWeights:
    """Every weight of the model in model.safetensors: the layout of every run but a LoRA adapter's
    (genlab.align.lora.AdapterWeights)."""

    files = ("model.safetensors",)  # what a checkpoint holds and the run's top level links to

    def save(self, model: torch.nn.Module, folder: Path) -> None:
        save_tensors(folder / "model.safetensors", model_tensors(model))

    def load(self, model: torch.nn.Module, folder: Path) -> None:
        load_model_tensors(model, folder / "model.safetensors")


FULL_WEIGHTS = FullWeights()


def save_checkpoint(run_dir: Path, step: int, model, optimizers: dict, state: dict, keep: set[str],
                    rng: dict | None = None, weights=FULL_WEIGHTS) -> str:
    """Write checkpoint-<step> atomically, point trainer_state.json at it, link its weight files (`weights`
    says which) at the run's top level."""
    run_dir = Path(run_dir)
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{step}"
    tmp = make_temp_dir(ckpt_root, name)  # mode 0777 less the umask, like every folder the user makes
    try:
        weights.save(model, tmp)
        tensors: dict[str, torch.Tensor] = {}
        skeleton = {
            "optimizers": {k: _flatten(f"opt.{k}", o.state_dict(), tensors) for k, o in optimizers.items()},
            "rng": _flatten("rng", rng if rng is not None else rng_states(), tensors),
        }
        save_tensors(tmp / "training_state.safetensors", tensors)
        atomic_write_json(tmp / "state.json", {"step": step, **state, "skeleton": skeleton})
        final = ckpt_root / name
        if final.exists():  # the same step saved twice (never the one trainer_state points at: see below)
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(ckpt_root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    # publish: newest weights at the top level for genlab.load / Hugging Face style tools
    for file in weights.files:
        link_tmp = run_dir / f".{file}.{os.getpid()}.tmp"
        link_tmp.unlink(missing_ok=True)
        try:
            os.link(final / file, link_tmp)
        except OSError:
            shutil.copyfile(final / file, link_tmp)
        os.replace(link_tmp, run_dir / file)
    atomic_write_json(run_dir / "trainer_state.json", {"last_checkpoint": name, **state, "step": step})
    for old in ckpt_root.glob("checkpoint-*"):
        if old.name != name and old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    return name


CHECKPOINT_NAME = re.compile(r"checkpoint-[0-9]+")  # what save_checkpoint names: a plain name, never a path


def read_trainer_state(run_dir: Path) -> dict:
    """trainer_state.json, checked: its checkpoint names are joined into paths by every reader, so a name such
    as ../../elsewhere (an edited or foreign file) must never leave the run folder."""
    path = Path(run_dir) / "trainer_state.json"
    if not path.is_file():
        raise GenlabError(f"{run_dir} has no trainer_state.json: it never reached a checkpoint; start it anew")
    state = read_json(path)
    if not isinstance(state, dict):
        raise GenlabError(f"{path} is not a trainer state (a JSON object); restore it, or start the run anew")
    for key in ("last_checkpoint", "best_checkpoint"):
        value = state.get(key)
        if key == "best_checkpoint" and value is None:
            continue  # not evaluated yet
        if not isinstance(value, str) or not CHECKPOINT_NAME.fullmatch(value):
            raise GenlabError(
                f"{path}: {key} is {repr(value)[:80]}, not the name of a checkpoint (such as checkpoint-12) in "
                f"{Path(run_dir) / 'checkpoints'}; restore the file, or start the run anew"
            )
    return state


def load_checkpoint(run_dir: Path, model, optimizers: dict, weights=FULL_WEIGHTS) -> dict:
    """Restore weights and optimizer moments of the last checkpoint; return its state, with its RNG streams
    under "rng" for the caller to restore (under DDP each rank picks its own)."""
    trainer_state = read_trainer_state(run_dir)
    folder = Path(run_dir) / "checkpoints" / trainer_state["last_checkpoint"]
    weights.load(model, folder)
    state = read_json(folder / "state.json")
    tensors = load_tensors(folder / "training_state.safetensors")
    skeleton = state.pop("skeleton")
    for k, opt in optimizers.items():
        opt.load_state_dict(_unflatten(skeleton["optimizers"][k], tensors))
    state["rng"] = _unflatten(skeleton["rng"], tensors)
    return state
