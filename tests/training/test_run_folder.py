"""A run folder that defends itself: one writer at a time, trainer-state paths that stay inside it, and files
that a group can share. Each case is met as a user meets it: real `genlab train` processes on tiny models."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from genlab import api
from genlab.errors import GenlabError
from genlab.io import run_lock

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--precision", "fp32", "--quiet"]
TINY_API = dict(n_layer=1, n_head=2, n_embd=32, block_size=32, precision="fp32", quiet=True)


def _genlab(*args: str, env: dict | None = None, umask: int | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "genlab", *args], env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"genlab exited ({proc.returncode}) before {path.name} appeared: {proc.stderr.read()}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


def _stop(proc: subprocess.Popen) -> None:
    """SIGSTOP: the training stays in the middle of its run, holding its lock, for as long as the test needs."""
    os.kill(proc.pid, signal.SIGSTOP)
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.time() + 5
    while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "T" and time.time() < deadline:
        time.sleep(0.01)


def _snapshot(run: Path) -> dict:
    return {str(p.relative_to(run)): (p.stat().st_size, p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()}


def _one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert "\n" not in message
    return message


def test_a_second_training_into_the_same_folder_is_refused(tmp_path, small_corpus):
    run = tmp_path / "same"
    first = _genlab("train", str(small_corpus), "--out", str(run), "--max-steps", "100", "--eval-interval", "50",
                    "--seed", "1", *TINY)
    _wait_for(run / "trainer_state.json", first)  # mid-run, past its first checkpoint
    _stop(first)
    try:
        before = _snapshot(run)
        second = _genlab("train", str(small_corpus), "--out", str(run), "--max-steps", "100", "--eval-interval",
                         "50", "--seed", "5", *TINY)
        assert second.wait(timeout=120) == 2
        lines = second.stderr.read().strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("genlab: error: ")
        assert f"in use by process {first.pid} on this host (genlab train since" in lines[0]
        assert "--out" in lines[0]

        with pytest.raises(GenlabError, match=f"in use by process {first.pid}") as e:  # eval writes metrics.json
            api.evaluate(run, device="cpu")
        assert "evaluate again" in _one_line(e)
        api.load(run, device="cpu")  # readers take no lock
        assert _snapshot(run) == before  # the refused writers touched nothing
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=120) == 0, first.stderr.read()

    # the first run is whole: its settings, every step of its log, its checkpoints; and it resumes
    assert json.loads((run / "config.json").read_text())["train"]["seed"] == 1
    assert json.loads((run / "trainer_state.json").read_text())["step"] == 100
    steps = [row["step"] for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in row]
    assert steps == list(range(10, 101, 10))
    assert not (run / ".lock.owner").exists()  # a run that ended released its lock and its record
    api.train(resume=run, max_steps=110, quiet=True)
    assert json.loads((run / "trainer_state.json").read_text())["step"] == 110


def test_a_lock_left_by_a_killed_training_does_not_block(tmp_path, small_corpus):
    run = tmp_path / "run"
    victim = _genlab("train", str(small_corpus), "--out", str(run), "--max-steps", "100000", "--eval-interval", "20",
                     *TINY)
    _wait_for(run / "trainer_state.json", victim)
    with pytest.raises(GenlabError, match=f"in use by process {victim.pid} on this host") as e:
        api.train(resume=run, quiet=True)
    assert "wait for it to finish" in _one_line(e)
    os.kill(victim.pid, signal.SIGKILL)  # no chance to release anything
    victim.wait()
    assert (run / ".lock.owner").exists()  # its record is left behind, stale

    killed_at = json.loads((run / "trainer_state.json").read_text())["step"]
    api.train(resume=run, max_steps=killed_at + 10, quiet=True)
    assert json.loads((run / "trainer_state.json").read_text())["step"] == killed_at + 10


def test_the_lock_nests_in_its_thread_and_refuses_other_threads(tmp_path):
    missing = tmp_path / "missing"
    with run_lock(missing, purpose="eval", hint="h"):  # nothing to guard: the caller reports the missing run
        pass
    assert not missing.exists()
    with pytest.raises(GenlabError, match="no-such.txt"):  # a typo leaves no empty run folder behind
        api.train(str(tmp_path / "no-such.txt"), out=str(tmp_path / "typo"), max_steps=1, **TINY_API)
    assert not (tmp_path / "typo").exists()

    run, refused = tmp_path / "run", []

    def other_thread() -> None:
        try:
            with run_lock(run, purpose="eval", hint="wait"):
                pass
        except GenlabError as e:
            refused.append(str(e))

    with run_lock(run, purpose="train", hint="wait", create=True):
        with run_lock(run, purpose="card", hint="wait"):  # the card writer that train() calls at a checkpoint
            pass
        assert json.loads((run / ".lock.owner").read_text())["purpose"] == "train"  # the outer hold's record
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert refused and f"in use by process {os.getpid()} on this host" in refused[0]
    with run_lock(run, purpose="eval", hint="wait"):  # released
        pass


def test_trainer_state_paths_stay_inside_the_run(tmp_path, small_corpus):
    run = api.train(str(small_corpus), out=str(tmp_path / "run"), max_steps=20, eval_interval=10, **TINY_API)
    # a complete checkpoint where ../../elsewhere leads from RUN/checkpoints, so only the check can refuse it
    shutil.copytree(run / "checkpoints" / "checkpoint-20", tmp_path / "elsewhere")
    state_file = run / "trainer_state.json"
    state = json.loads(state_file.read_text())

    state_file.write_text(json.dumps({**state, "best_checkpoint": "../../elsewhere"}))
    with pytest.raises(GenlabError, match="best_checkpoint") as e:
        api.load(run, checkpoint="best", device="cpu")
    assert str(state_file) in _one_line(e)

    state_file.write_text(json.dumps({**state, "last_checkpoint": "../../elsewhere"}))
    with pytest.raises(GenlabError, match="last_checkpoint") as e:
        api.train(resume=run, max_steps=40, quiet=True)
    assert str(state_file) in _one_line(e)


def test_a_run_is_shareable_under_umask_002(tmp_path, small_corpus):
    run, cache = tmp_path / "run", tmp_path / "cache"
    proc = _genlab("train", str(small_corpus), "--out", str(run), "--max-steps", "20", "--eval-interval", "10",
                   *TINY, env={"GENLAB_CACHE": str(cache)}, umask=0o002)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    made = [p for root in (run, cache) for p in (root, *root.rglob("*"))]
    assert any(p.name == "model.safetensors" for p in made) and any(p.name == "tokens.bin" for p in made)
    wrong = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in made
             if p.stat().st_mode & 0o777 != (0o775 if p.is_dir() else 0o664)}
    assert not wrong, "folders should be 775 and files 664 under umask 002"
