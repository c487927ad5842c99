import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from genlab import api
from genlab.errors import GenlabError
from genlab.training.config import TrainConfig
from genlab.training.trainer import lr_at

LEARN = dict(max_steps=600, eval_interval=300, batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=30, seed=7,
             quiet=True)


def unigram_entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log(c / n) for c in counts.values())


@pytest.mark.parametrize(
    "family,model,threshold",
    [("gpt", dict(n_layer=2, n_head=2, n_embd=64, block_size=64), 2.35),
     ("lstm", dict(n_layer=1, n_embd=128, block_size=64), 2.65)],
)
def test_tiny_model_learns_a_small_corpus(tmp_path, small_corpus, family, model, threshold):
    run = api.train(str(small_corpus), family=family, out=str(tmp_path / family), **model, **LEARN)
    state = json.loads((run / "trainer_state.json").read_text())
    val = state["best_val_loss"]
    text = small_corpus.read_text()
    # well below what knowing only letter frequencies gives (about 3.1 nats here), and below the stated bar
    assert val < threshold < unigram_entropy(text[int(len(text) * 0.9):])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["loss"] > rows[-2]["loss"]  # the training loss fell too
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "trainer_state.json"} <= {
        p.name for p in run.iterdir()}


def test_same_seed_same_weights(tmp_path, small_corpus):
    kw = dict(n_layer=1, n_head=2, n_embd=32, block_size=32, max_steps=20, eval_interval=20, dropout=0.1, quiet=True)
    a = api.train(str(small_corpus), out=str(tmp_path / "a"), **kw)
    b = api.train(str(small_corpus), out=str(tmp_path / "b"), **kw)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.skipif(not (shutil.which(os.environ.get("CXX", "g++")) or shutil.which("clang++")),
                    reason="torch.compile on CPU needs a C++ compiler")
def test_compile_trains_the_same_model(tmp_path, small_corpus):
    tiny = dict(family="gpt", n_layer=1, n_head=2, n_embd=32, block_size=32, max_steps=20, eval_interval=20,
                seed=3, quiet=True)
    eager = api.train(str(small_corpus), out=str(tmp_path / "eager"), **tiny)
    compiled = api.train(str(small_corpus), out=str(tmp_path / "compiled"), compile=True, **tiny)
    a, b = load_file(eager / "model.safetensors"), load_file(compiled / "model.safetensors")
    assert a.keys() == b.keys()  # no torch.compile wrapper names in the checkpoint
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)  # the same math, fused differently
    assert json.loads((compiled / "config.json").read_text())["train"]["compile"] is True


def test_lr_schedule_warmup_cosine_floor():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) < lr_at(9, cfg) < 1e-3
    assert lr_at(10, cfg) == pytest.approx(1e-3)
    assert lr_at(60, cfg) == pytest.approx(0.55e-3)  # half way down the cosine
    assert lr_at(110, cfg) == pytest.approx(1e-4) and lr_at(500, cfg) == pytest.approx(1e-4)


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "genlab", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_resume_after_sigkill_is_bitwise_exact(tmp_path, small_corpus):
    common = ["train", str(small_corpus), "--n-layer", "2", "--n-head", "2", "--n-embd", "48", "--block-size", "48",
              "--dropout", "0.1", "--batch-size", "8", "--max-steps", "240", "--eval-interval", "20",
              "--eval-batches", "2", "--seed", "3", "--quiet"]
    straight = _cli(*common, "--out", str(tmp_path / "straight"))
    assert straight.wait(timeout=300) == 0, straight.stderr.read()

    victim_dir = tmp_path / "victim"
    victim = _cli(*common, "--out", str(victim_dir))
    state_file = victim_dir / "trainer_state.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if state_file.exists() and json.loads(state_file.read_text())["step"] >= 60:
            break
        time.sleep(0.005)
    os.kill(victim.pid, signal.SIGKILL)  # no chance to clean up: whatever is half-written stays
    victim.wait()
    killed_at = json.loads(state_file.read_text())["step"]
    assert 60 <= killed_at < 240, "the run finished before it could be killed; make it longer"

    resumed = _cli("train", "--resume", str(victim_dir), "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(victim_dir / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(x)["step"] for x in (victim_dir / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(x)]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # the log reads as one run


def test_resume_extends_a_finished_run_and_refuses_other_changes(tmp_path, small_corpus):
    kw = dict(n_layer=1, n_head=2, n_embd=32, block_size=32, eval_interval=20, quiet=True)
    run = api.train(str(small_corpus), out=str(tmp_path / "r"), max_steps=20, **kw)
    api.train(resume=run, max_steps=40, quiet=True)
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["step"] == 40
    assert json.loads((run / "config.json").read_text())["train"]["max_steps"] == 40
    with pytest.raises(GenlabError, match="cannot change when resuming"):
        api.train(resume=run, max_steps=60, n_embd=64, quiet=True)
    with pytest.raises(GenlabError, match="already holds a run"):
        api.train(str(small_corpus), out=str(run), max_steps=20, **{k: v for k, v in kw.items()})


def test_config_file_and_unknown_keys(tmp_path, small_corpus):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'data = "{small_corpus}"\nfamily = "lstm"\nmax_steps = 10\neval_interval = 10\n'
                   '[model]\nn_layer = 1\nn_embd = 32\nblock_size = 16\n')
    run = api.train(config=str(cfg), out=str(tmp_path / "fromfile"), quiet=True)
    saved = json.loads((run / "config.json").read_text())
    assert saved["family"] == "lstm" and saved["model"]["n_embd"] == 32 and saved["train"]["max_steps"] == 10
    yml = tmp_path / "run.yaml"
    yml.write_text("max_steps: 10\nn_layerz: 3\n")
    with pytest.raises(GenlabError, match="unknown setting.*n_layerz"):
        api.train(str(small_corpus), config=str(yml), quiet=True)


def test_api_functions_are_not_shadowed_by_subpackages():
    import genlab
    import genlab.sampling.tokens  # noqa: F401
    import genlab.text.evaluate  # noqa: F401
    import genlab.training.trainer  # noqa: F401

    assert all(callable(getattr(genlab, name)) for name in ("train", "sample", "evaluate", "export", "load"))


@pytest.mark.parametrize("bf16_share,chosen", [(0.4, "bf16"), (0.95, "fp32")])
def test_auto_precision_is_measured_once_kept_and_resumed(tmp_path, small_corpus, monkeypatch, bf16_share, chosen):
    from genlab.families.base import Family

    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("genlab.training.precision.cpu_has_fast_bf16", lambda: True)  # as on a CPU with bf16 units
    real_step = Family.train_step
    share = {"value": bf16_share}

    def timed_step(self, model, batch, optimizers, ctx):  # steps whose cost we set: fp32 60 ms, bf16 a share
        # padded to the set time after the real step, which on a CPU without bf16 units is slow in bf16
        t0 = time.perf_counter()
        figures = real_step(self, model, batch, optimizers, ctx)
        time.sleep(max(0.0, 0.06 * (share["value"] if ctx.precision == "bf16" else 1.0) - (time.perf_counter() - t0)))
        return figures

    monkeypatch.setattr(Family, "train_step", timed_step)
    tiny = dict(family="gpt", n_layer=1, n_head=2, n_embd=32, block_size=32, max_steps=4, eval_interval=4, seed=5,
                quiet=True)
    first = api.train(str(small_corpus), out=str(tmp_path / "first"), **tiny)
    assert json.loads((first / "config.json").read_text())["train"]["precision"] == chosen
    cache = json.loads((tmp_path / "cache" / "precision.json").read_text())
    (found,) = cache.values()
    assert found["precision"] == chosen and (chosen == "fp32" or found["bf16_ms"] < 0.85 * found["fp32_ms"])

    share["value"] = 1.6 - bf16_share  # the machine changed its mind: the same command still chooses as before
    again = api.train(str(small_corpus), out=str(tmp_path / "again"), **tiny)
    assert json.loads((again / "config.json").read_text())["train"]["precision"] == chosen
    a, b = load_file(first / "model.safetensors"), load_file(again / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # so the same seed gives the same weights
    api.train(resume=str(first), max_steps=6, precision="auto", quiet=True)  # trains on in its precision, unmeasured
    assert json.loads((first / "config.json").read_text())["train"]["precision"] == chosen
    assert len(json.loads((tmp_path / "cache" / "precision.json").read_text())) == 1
