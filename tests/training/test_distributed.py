"""Distributed data parallel through torchrun on CPU (gloo): equal to one process, exact resume, clean failure."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--eval-interval", "10",
        "--eval-batches", "2", "--lr-decay-steps", "40", "--seed", "5", "--quiet"]


def genlab(*args, check=True, **kw):
    proc = subprocess.run([sys.executable, "-m", "genlab", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kw)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def weights(run: Path) -> dict:
    return load_file(run / "model.safetensors")


def assert_close(a: dict, b: dict, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max().item() <= atol, k


def loss_rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory, small_corpus):
    """One process x batch 8 for 40 steps, and two processes x batch 4 for 20 steps then resumed to 40."""
    root = tmp_path_factory.mktemp("ddp")
    genlab("train", small_corpus, *TINY, "--batch-size", "8", "--max-steps", "40", "--out", root / "one")
    genlab("train", small_corpus, *TINY, "--batch-size", "4", "--max-steps", "20", "--out", root / "two",
           "--nproc-per-node", "2")
    mid = weights(root / "two")
    genlab("train", "--resume", root / "two", "--max-steps", "40", "--nproc-per-node", "2")
    return root, mid


def test_two_processes_equal_one_process_with_the_global_batch(ddp_runs, tmp_path, small_corpus):
    root, mid = ddp_runs
    genlab("train", small_corpus, *TINY, "--batch-size", "8", "--max-steps", "20", "--out", tmp_path / "one20")
    assert_close(weights(tmp_path / "one20"), mid)  # after K = 20 steps
    config = json.loads((root / "two" / "config.json").read_text())
    assert config["distributed"] == {"world_size": 2, "global_batch_size": 8}
    # evaluation reduced across ranks equals one process scoring the same batches
    one = {r["step"]: r["val_loss"] for r in loss_rows(root / "one") if "val_loss" in r}
    two = {r["step"]: r["val_loss"] for r in loss_rows(root / "two") if "val_loss" in r}
    assert one.keys() == two.keys() and all(abs(one[s] - two[s]) < 1e-4 for s in one)


def test_only_rank_zero_writes(ddp_runs):
    root, _ = ddp_runs
    steps = [r["step"] for r in loss_rows(root / "two") if "loss" in r]
    assert len(steps) == len(set(steps)) == 4  # log_interval 10 over 40 steps, each row once
    names = sorted(p.name for p in (root / "two" / "checkpoints").iterdir())
    assert all(n.startswith("checkpoint-") for n in names) and "checkpoint-40" in names  # no torn temporaries


def test_resume_under_ddp_continues_exactly(ddp_runs):
    root, _ = ddp_runs
    assert_close(weights(root / "one"), weights(root / "two"))  # 20 + 20 resumed under DDP == 40 straight


def test_resume_with_another_number_of_processes(ddp_runs, tmp_path):
    import shutil

    root, _ = ddp_runs
    shutil.copytree(root / "two", tmp_path / "r")
    genlab("train", "--resume", tmp_path / "r", "--max-steps", "50")  # 1 process keeps the global batch of 8
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["batch_size"] == 8
    bad = genlab("train", "--resume", tmp_path / "r", "--max-steps", "60", "--nproc-per-node", "3", check=False)
    assert bad.returncode != 0 and "cannot share it evenly" in bad.stderr


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _start_and_kill_a_worker(args, run: Path, at_step: int):
    proc = subprocess.Popen([sys.executable, "-m", "genlab", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    state = run / "trainer_state.json"
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["step"] >= at_step):
        time.sleep(0.05)
    workers = [w for t in _children(proc.pid) for w in _children(t)]
    assert len(workers) == 2, workers
    os.kill(max(workers), signal.SIGKILL)  # rank 1, most likely; either way one rank dies without warning
    return proc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_dying_rank_brings_the_run_down_and_resume_finishes(tmp_path, small_corpus):
    run = tmp_path / "dies"
    args = ["train", small_corpus, *TINY, "--batch-size", "4", "--max-steps", "3000", "--out", run,
            "--nproc-per-node", "2"]
    proc = _start_and_kill_a_worker(args, run, at_step=30)
    code = proc.wait(timeout=120)  # no hang: torchrun stops the surviving rank
    err = proc.stderr.read()
    assert code == 2 and "distributed training failed" in err and "SIGKILL" in err
    stopped_at = json.loads((run / "trainer_state.json").read_text())["step"]
    assert 30 <= stopped_at < 3000
    genlab("train", "--resume", run, "--max-steps", stopped_at + 10, "--nproc-per-node", "2")
    assert json.loads((run / "trainer_state.json").read_text())["step"] == stopped_at + 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_max_restarts_resume_on_their_own(tmp_path, small_corpus):
    run = tmp_path / "restarts"
    args = ["train", small_corpus, *TINY, "--batch-size", "4", "--max-steps", "400", "--out", run,
            "--nproc-per-node", "2", "--max-restarts", "1"]
    proc = _start_and_kill_a_worker(args, run, at_step=30)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    assert json.loads((run / "trainer_state.json").read_text())["step"] == 400
    steps = [r["step"] for r in loss_rows(run) if "loss" in r]
    assert steps == sorted(set(steps))  # the restart resumed from the checkpoint: no step logged twice


def test_torch_available_for_gloo():
    assert torch.distributed.is_available() and torch.distributed.is_gloo_available()
