"""Find run directories and describe them as plain data, for `genlab list` and `genlab info`.

A run directory is a folder with a config.json that genlab wrote (it names a family). Everything here
reads the files generically: config.json's keys, trainer_state.json, metrics.json; nothing branches on a
family's or a modality's name, so a new family or modality (or keys another verb adds, such as where
imported weights came from) shows up without a change here.
"""

from __future__ import annotations

import os
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.io import read_json

# the keys the trainer writes into config.json; any other key is preprocessing (a tokenizer, image
# normalisation) that the modality saved, or lineage below
TRAINER_KEYS = ("genlab_version", "family", "model", "data", "train", "n_params", "trainable_params",
                "distributed")
# keys that say where a run came from (written by verbs that start a run from another one, or from weights
# made elsewhere); shown under lineage, never as preprocessing
LINEAGE_KEYS = ("imported_from", "imported_format", "base_run", "parent", "finetuned_from", "resumed_from",
                "source_run", "merged_from")
# train settings that repeat what config.json says elsewhere (the model's own settings, the data, the family)
_REPEATED_TRAIN_KEYS = ("model", "data", "family", "out")


def list_runs(dir: str | os.PathLike = "runs") -> list[dict]:
    """The runs in `dir` and one folder below it (runs/demo/text), newest first.

    Each is a dict: name (its path relative to `dir`), path, family, modality, data, params, disk_bytes,
    step, max_steps, best_val_loss, modified (ISO time) and modified_ts (seconds since the epoch), and error:
    None, or a short reason when the folder is broken (its other figures then may be None). A missing or
    empty `dir` gives an empty list; a file in its place is a GenlabError."""
    root = Path(dir)
    if root.exists() and not root.is_dir():
        raise GenlabError(f"{root} is a file, not a folder of runs; give the folder that holds run directories")
    rows = [row for folder in _run_folders(root) if (row := _row(root, folder)) is not None]
    rows.sort(key=lambda r: r["modified_ts"], reverse=True)
    return rows


def run_info(run: str | os.PathLike) -> dict:
    """Everything a run directory says about itself, as plain data: config (family, model, training, data,
    preprocessing), figures (steps, best validation loss and checkpoint, and under `evaluation` every
    `genlab eval` by its metrics.json key, the run's own "val" first), lineage, files with sizes, and the
    commands that use it. A missing folder or an unreadable config.json is a GenlabError; an unreadable
    trainer_state.json or metrics.json is a note under `problems`."""
    run_dir = Path(run)
    config = _config(run_dir)
    problems: list[str] = []
    state = _trainer_state(run_dir, problems)
    metrics = _metrics(run_dir, config, problems)
    files, disk_bytes, modified = _files(run_dir)
    train = _dict(config.get("train"))
    return {
        "path": str(run_dir),
        "name": run_dir.resolve().name,
        "family": config.get("family"),
        "modality": _modality(config),
        "genlab_version": config.get("genlab_version"),
        "params": config.get("n_params"),
        "model": _dict(config.get("model")),
        # an imported run's settings are placeholders genlab filled in, not how its weights were trained
        "train": {} if config.get("imported_from") else {k: v for k, v in train.items()
                                                         if k not in _REPEATED_TRAIN_KEYS},
        "data": _dict(config.get("data")),
        "preprocessing": {k: v for k, v in config.items() if k not in TRAINER_KEYS and k not in LINEAGE_KEYS},
        "distributed": _dict(config.get("distributed")),
        "figures": {
            "step": state.get("step"),
            "max_steps": _planned(train),
            "best_val_loss": state.get("best_val_loss"),
            "best_checkpoint": state.get("best_checkpoint"),
            "last_checkpoint": state.get("last_checkpoint"),
            "training_seconds": state.get("elapsed_s"),
            "evaluation": metrics,
        },
        "lineage": _lineage(config, state, train),
        "files": files,
        "disk_bytes": disk_bytes,
        "modified": _iso(modified),
        "modified_ts": modified,
        "commands": _commands(run_dir, config, state),
        "problems": problems,
    }


# ---------------------------------------------------------------------------------------------------
# Finding runs


def _is_run(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def _subfolders(folder: Path) -> list[Path]:
    try:
        # hidden folders are temporaries (a checkpoint being written) or tools' own (.git)
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []  # unreadable: there is nothing we can list in it


def _run_folders(root: Path) -> list[Path]:
    """`root` itself if it is a run, else its runs and those one folder below (runs/demo/text)."""
    if _is_run(root):
        return [root]
    found = []
    for child in _subfolders(root):
        if _is_run(child):
            found.append(child)
        else:
            found.extend(grandchild for grandchild in _subfolders(child) if _is_run(grandchild))
    return found


def _row(root: Path, folder: Path) -> dict | None:
    """One run's line of `genlab list`; None for a folder whose config.json is another tool's (a model
    exported for Hugging Face)."""
    # `genlab list RUN` lists that one run, under its own name rather than "."
    name = folder.relative_to(root).as_posix() if folder != root else folder.resolve().name
    row: dict[str, Any] = {"name": name, "path": str(folder), "family": None, "modality": None, "data": None,
                           "params": None, "disk_bytes": None, "step": None, "max_steps": None,
                           "best_val_loss": None, "modified": None, "modified_ts": 0.0, "error": None}
    try:
        _, row["disk_bytes"], modified = _files(folder)
        row["modified"], row["modified_ts"] = _iso(modified), modified
        config = read_json(folder / "config.json")
        if isinstance(config, dict) and not {"family", "genlab_version"} & config.keys():
            return None
        config = _genlab_config(config, folder / "config.json")
        train = _dict(config.get("train"))
        row.update(family=config.get("family"), modality=_modality(config), params=config.get("n_params"),
                   data=_dict(config.get("data")).get("source", train.get("data")), max_steps=_planned(train))
        problems: list[str] = []
        state = _trainer_state(folder, problems)
        row.update(step=state.get("step"), best_val_loss=state.get("best_val_loss"))
        row["error"] = problems[0] if problems else None
    except (GenlabError, OSError) as e:  # one broken run must not hide the others
        row["error"] = _short(e, folder)
    return row


def _short(e: Exception, folder: Path) -> str:
    """An error as a short reason for a row: the run's own path is already in the row's name."""
    text = (e.strerror or str(e)) if isinstance(e, OSError) else str(e)
    return text.replace(f"{folder}{os.sep}", "").replace(str(folder), "the run")


# ---------------------------------------------------------------------------------------------------
# Reading a run


def _config(run_dir: Path) -> dict:
    if not run_dir.exists():
        raise GenlabError(f"run directory {run_dir} does not exist; list the runs there are with: genlab list")
    if not _is_run(run_dir):
        raise GenlabError(f"{run_dir} is not a genlab run directory (no config.json); check the path")
    return _genlab_config(read_json(run_dir / "config.json"), run_dir / "config.json")


def _genlab_config(config: Any, path: Path) -> dict:
    if not isinstance(config, dict) or "family" not in config:
        raise GenlabError(f"{path} was not written by genlab (it names no family); give a genlab run directory, "
                          "or restore that file if it was one")
    return config


def _trainer_state(run_dir: Path, problems: list[str]) -> dict:
    from genlab.training.checkpoint import read_trainer_state

    if not (run_dir / "trainer_state.json").exists():
        return {}  # never reached a checkpoint: nothing to report, nothing wrong
    try:
        return read_trainer_state(run_dir)
    except GenlabError as e:
        problems.append(_short(e, run_dir))
        return {}


def _metrics(run_dir: Path, config: dict, problems: list[str]) -> dict | None:
    """Every `genlab eval` of the run, {metrics.json key: figures}, the run's own "val" first (the one the
    model card shows); None when it was never evaluated. A flat metrics.json from before evaluations were
    kept apart is filed under its own key (see genlab.modalities.read_evaluations)."""
    from genlab.modalities import OWN_EVALUATION, read_evaluations

    if not (run_dir / "metrics.json").exists():
        return None  # never evaluated
    try:
        evaluations = read_evaluations(run_dir, config)
    except GenlabError as e:
        problems.append(_short(e, run_dir))
        return None
    except (AttributeError, TypeError):  # valid JSON, but not evaluations (a list, a hand-edited file)
        problems.append("metrics.json does not hold evaluations by key; evaluate again with genlab eval")
        return None
    if not isinstance(evaluations, dict) or not evaluations:
        return None
    own = {OWN_EVALUATION: evaluations[OWN_EVALUATION]} if OWN_EVALUATION in evaluations else {}
    return {**own, **{k: v for k, v in evaluations.items() if k != OWN_EVALUATION}}


def _modality(config: dict) -> str | None:
    from genlab.modalities import modality_of_run

    try:
        return modality_of_run(config).name
    except (GenlabError, AttributeError):  # a modality of a newer genlab, or a hand-edited data entry
        return _dict(config.get("data")).get("modality")


def _files(run_dir: Path) -> tuple[list[dict], int, float]:
    """The files of a run (hidden ones aside) with their sizes, the bytes they take on disk (a hard link,
    such as model.safetensors and its checkpoint's copy, once) and the time the run last changed."""
    files, seen, total, modified = [], {}, 0, run_dir.stat().st_mtime
    for dirpath, dirnames, filenames in os.walk(run_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = path.lstat()
            except OSError:
                continue  # removed while we walked (a checkpoint pruned by a training)
            modified = max(modified, st.st_mtime)
            if name.startswith("."):
                continue  # the lock file and temporaries
            rel = path.relative_to(run_dir).as_posix()
            entry = {"path": rel, "bytes": st.st_size}
            inode = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and inode in seen:
                entry["same_as"] = seen[inode]
            else:
                seen[inode] = rel
                total += st.st_size
            files.append(entry)
    return files, total, modified


def _lineage(config: dict, state: dict, train: dict) -> dict:
    data = _dict(config.get("data"))
    lineage: dict[str, Any] = {k: config[k] for k in LINEAGE_KEYS if k in config}
    lineage["data"] = data.get("source", train.get("data"))
    if data.get("content_sha256"):
        lineage["data_sha256"] = data["content_sha256"]
    lineage["genlab_version"] = config.get("genlab_version")
    if state:
        step, max_steps = state.get("step"), _planned(train)
        lineage["trained_to"] = f"step {step} of {max_steps}" if max_steps else f"step {step}"
        lineage["resumable_from"] = state.get("last_checkpoint")
    return lineage


def _commands(run_dir: Path, config: dict, state: dict) -> list[dict]:
    from genlab.modalities import modality_of_run

    run = shlex.quote(str(run_dir))
    try:
        sample = modality_of_run(config).card_usage(Path(run))
    except (GenlabError, AttributeError, NotImplementedError):
        sample = f"genlab sample {run}"
    commands = [{"command": sample, "does": "make new samples"},
                {"command": f"genlab eval {run}" + (" DATA" if config.get("imported_from") else ""),
                 "does": "measure it (writes metrics.json)"}]
    if state.get("last_checkpoint"):  # only a run with a training state can train on
        commands.append({"command": f"genlab train --resume {run} --max-steps N", "does": "train on to step N"})
    return commands


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _planned(train: dict) -> int | None:
    """The run's step limit; None while only --max-minutes bounds it (stopped before it planned its steps)."""
    from genlab.training.config import UNTIL_TIME_RUNS_OUT

    steps = train.get("max_steps")
    return steps if isinstance(steps, int) and steps < UNTIL_TIME_RUNS_OUT else None
