"""Budgets a newcomer gives: a time limit the schedule is planned for, Ctrl-C that keeps the work, batches
built from micro-batches, and model sizes by name."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from genlab import api
from genlab.errors import GenlabError

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--batch-size", "4",
        "--eval-batches", "1"]


def genlab(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "genlab", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kwargs)


def rows(run, key):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if key in r]


def test_a_time_budget_plans_the_schedule_to_end_at_min_lr(small_corpus, tmp_path):
    run = tmp_path / "timed"
    done = genlab("train", small_corpus, "--out", run, "--max-minutes", "0.1", "--min-lr", "2e-4", "--eval-interval",
                  "100", "--log-interval", "1", *TINY)
    assert done.returncode == 0, done.stderr
    assert "steps fit in --max-minutes 0.1; the learning-rate schedule ends there" in done.stderr
    train = json.loads((run / "config.json").read_text())["train"]
    plan = train["time_plan"]
    assert plan["minutes"] == 0.1 and plan["ms_per_step"] > 0 and plan["max_steps_asked"] is None
    assert train["lr_decay_steps"] == train["max_steps"] - 1  # recorded, so that a resume follows the same plan
    last = rows(run, "lr")[-1]
    assert last["step"] == train["max_steps"] > plan["planned_at_step"]  # stopped by the plan, not the clock
    assert last["lr"] == pytest.approx(2e-4)  # the cosine decay reached --min-lr at the last step
    assert max(r["lr"] for r in rows(run, "lr")) == pytest.approx(1e-3, rel=0.05)  # and its peak before that
    assert "--max-minutes 0.1 reached" not in done.stderr


def test_with_max_steps_too_the_smaller_limit_wins(small_corpus, tmp_path):
    run = api.train(str(small_corpus), out=str(tmp_path / "both"), max_minutes=0.1, max_steps=400, eval_interval=400,
                    n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=4, eval_batches=1, quiet=True)
    train = json.loads((run / "config.json").read_text())["train"]
    assert train["max_steps"] == 400 and train["time_plan"]["max_steps_asked"] == 400
    assert rows(run, "val_loss")[-1]["step"] == 400


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_finishes_the_step_and_writes_a_checkpoint(small_corpus, tmp_path, sig):
    run = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "genlab", "train", str(small_corpus), "--out", str(run),
                             "--max-steps", "1000000", "--eval-interval", "1000000", *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.2)  # the first log row: the loop is running and the handlers are in place
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig
    step = json.loads((run / "trainer_state.json").read_text())["step"]
    assert step >= 10 and (run / "checkpoints" / f"checkpoint-{step}").is_dir()
    line = f"genlab: stopped by {signal.Signals(sig).name} at step {step}; checkpoint-{step} written; " \
           f"continue with: genlab train --resume {run}"
    assert line in err.splitlines()
    resumed = genlab("train", "--resume", run, "--max-steps", step + 5, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "trainer_state.json").read_text())["step"] == step + 5


def test_gradient_accumulation_equals_the_whole_batch(small_corpus, tmp_path):
    common = dict(family="gpt", n_layer=1, n_head=2, n_embd=32, block_size=32, max_steps=8, eval_interval=8,
                  eval_batches=1, log_interval=1, precision="fp32", quiet=True)
    whole = api.train(str(small_corpus), out=str(tmp_path / "whole"), batch_size=8, **common)
    parts = api.train(str(small_corpus), out=str(tmp_path / "parts"), batch_size=2, grad_accum=4, **common)
    losses = [[r["loss"] for r in rows(run, "loss")] for run in (whole, parts)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-4)
    assert json.loads((parts / "config.json").read_text())["distributed"]["global_batch_size"] == 8
    weights = [load_file(run / "model.safetensors") for run in (whole, parts)]
    for name, tensor in weights[0].items():
        assert torch.allclose(tensor, weights[1][name], atol=1e-5), name


def test_a_family_that_cannot_accumulate_says_so(tmp_path):
    done = genlab("train", "images:digits", "--family", "gan", "--grad-accum", "2", "--out", tmp_path / "g")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "genlab: error: the gan family cannot split its training step into micro-batches; leave out --grad-accum "
        "and lower --batch-size instead"]
    assert not (tmp_path / "g").exists()


def test_presets_are_listed_with_the_parameter_counts_they_build():
    listed = genlab("presets")
    assert listed.returncode == 0, listed.stderr
    for row in api.presets():
        count = row["parameters"]
        shown = f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}K"
        assert any(line.split()[:3] == [row["family"], row["preset"], shown] for line in listed.stdout.splitlines())
    gpt_base = next(r for r in api.presets() if (r["family"], r["preset"]) == ("gpt", "base"))
    assert 10.5e6 < gpt_base["parameters"] < 11e6  # nanoGPT's shakespeare-char model: 10.65M besides its embedding


def test_a_preset_sets_the_size_and_flags_override_it(small_corpus, tmp_path):
    done = genlab("train", small_corpus, "--preset", "tiny", "--n-embd", "32", "--max-steps", "2",
                  "--eval-interval", "2", "--eval-batches", "1", "--out", tmp_path / "p")
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "p" / "config.json").read_text())
    assert saved["train"]["preset"] == "tiny"
    assert {k: saved["model"][k] for k in ("n_layer", "n_head", "n_embd", "block_size")} == \
        {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 64}
    assert "genlab: gpt (tiny) with" in done.stderr
    with pytest.raises(GenlabError, match="unknown preset 'huge' for the gpt family; choose one of: tiny, small"):
        api.train(str(small_corpus), preset="huge", quiet=True)


def test_errors_name_the_flag_the_user_typed(tmp_path):
    done = genlab("train", "images:digits", "--family", "vae", "--n-head", "4", "--out", tmp_path / "v")
    assert done.returncode == 2
    assert done.stderr.strip() == ("genlab: error: --n-head is not for the vae family; its model flags are --beta, "
                                   "--captions, --conditional, --hidden, --latent-dim, --width "
                                   "(see genlab train --help)")


def test_the_defaults_in_train_help_are_the_ones_used():
    """Every default a training flag's help states is TrainConfig's or a family's own, so the help cannot drift."""
    import dataclasses
    import re

    from genlab.cli.train import IMAGE_FAMILY_FLAGS, MODEL_FLAGS, TRAINING_FLAGS
    from genlab.families import FAMILIES
    from genlab.training.config import TrainConfig

    def numbers(text):
        return {float(x) for x in re.findall(r"(?<![\w.-])-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])", text)}

    own = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for flag, _, text in TRAINING_FLAGS:
        key = flag.replace("-", "_")
        wanted = {own[key], *(f.train_defaults[key] for f in FAMILIES.values() if key in f.train_defaults)}
        wanted = {float(v) for v in wanted if isinstance(v, int | float)}
        assert wanted <= numbers(text), (flag, wanted, text)
    for flag, _, text in MODEL_FLAGS + IMAGE_FAMILY_FLAGS:
        key = flag.replace("-", "_")
        defaults = {float(getattr(f.config_class(), key)) for f in FAMILIES.values()
                    if key in {x.name for x in dataclasses.fields(f.config_class)}
                    and isinstance(getattr(f.config_class(), key), int | float)
                    and not isinstance(getattr(f.config_class(), key), bool)
                    and key not in f.data_keys and (f.batch_kind == "tokens") == (flag, _, text) in MODEL_FLAGS}
        assert defaults <= numbers(text), (flag, defaults, text)
