"""The CLI's one error boundary, as a user meets it: every malformed file, bad environment variable or
failing disk is one line (what, where, how to fix) and exit code 2; a genuine bug keeps its traceback, and
GENLAB_DEBUG=1 shows the traceback of every error."""

import errno
import json
import os
import resource
import shutil
import subprocess
import sys

import pytest
from user_errors import user_error

import genlab.api
from genlab.cli import main
from genlab.training.config import read_config_file

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--max-steps", "2",
        "--eval-interval", "2", "--eval-batches", "1", "--precision", "fp32", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_corpus):
    """A finished two-step run (it also warms the token cache the other cases read)."""
    out = tmp_path_factory.mktemp("errors") / "run"
    genlab.api.train(str(small_corpus), n_layer=1, n_head=2, n_embd=32, block_size=32, max_steps=2,
                     eval_interval=2, eval_batches=1, precision="fp32", quiet=True, out=str(out))
    return out


def copy_with_config(run, tmp_path, edit) -> str:
    """A copy of the run whose config.json went through `edit(config)`."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    edit(config)
    (copy / "config.json").write_text(json.dumps(config))
    return str(copy)


def test_bad_yaml_and_toml_name_the_file(capsys, tmp_path, small_corpus):
    yaml_file = tmp_path / "settings.yaml"
    yaml_file.write_text("n_layer: [1, 2\nlr: 0.01\n")
    err = user_error(capsys, "train", small_corpus, "--config", yaml_file, "--out", tmp_path / "a")
    assert f"config file {yaml_file} is not valid" in err and "line " in err

    toml_file = tmp_path / "settings.toml"
    toml_file.write_text("max_steps = \n")
    err = user_error(capsys, "train", small_corpus, "--config", toml_file, "--out", tmp_path / "b")
    assert f"config file {toml_file} is not valid" in err

    toml_file.write_text("model = 3\n")  # a value where a table belongs
    assert "model must be a table" in user_error(capsys, "train", small_corpus, "--config", toml_file)
    toml_file.write_bytes(b"lr = 0.01 # \xff\xfe\n")
    assert "is not UTF-8" in user_error(capsys, "train", small_corpus, "--config", toml_file)


@pytest.mark.parametrize("name, text, wanted", [
    ("c.toml", '[model]\nn_layer = "four"\n', "n_layer must be an integer, got 'four'"),
    ("c.toml", 'lr = "fast"\n', "lr must be a number, got 'fast'"),
    ("c.toml", 'compile = "yes"\n', "compile must be true or false, got 'yes'"),
    ("c.yaml", "max_steps: 1.5\n", "max_steps must be an integer, got 1.5"),
    ("c.yaml", "model:\n  dropout: lots\n", "dropout must be a number, got 'lots'"),
])
def test_wrong_typed_value_names_key_and_file(capsys, tmp_path, small_corpus, name, text, wanted):
    path = tmp_path / name
    path.write_text(text)
    err = user_error(capsys, "train", small_corpus, "--config", path, "--out", tmp_path / "x")
    assert wanted in err and str(path) in err


def test_yaml_reads_exponents_as_numbers(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-3 as a string; a learning rate written so is a number to anyone else
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nmin_lr: 5.0e-5\nmax_steps: 10\nmodel:\n  n_layer: 2\n")
    assert read_config_file(str(path)) == {"lr": 0.001, "min_lr": 5e-5, "max_steps": 10, "n_layer": 2}


def test_n_head_must_divide_n_embd(capsys, tmp_path, small_corpus, run):
    err = user_error(capsys, "train", small_corpus, *TINY, "--n-head", "3", "--out", tmp_path / "x")
    assert "--n-head 3 does not divide --n-embd 32" in err and "--n-head 2 or 4" in err


def test_resume_refuses_unknown_or_mistyped_saved_settings(capsys, tmp_path, run):
    copy = copy_with_config(run, tmp_path, lambda c: c["train"].update(warmup_epochs=3))
    err = user_error(capsys, "train", "--resume", copy, "--max-steps", "4")
    assert "unknown training setting(s) warmup_epochs" in err and os.path.join(copy, "config.json") in err

    shutil.rmtree(copy)
    copy = copy_with_config(run, tmp_path, lambda c: c["train"].update(batch_size="twelve"))
    assert "batch_size must be an integer, got 'twelve'" in user_error(capsys, "train", "--resume", copy)

    shutil.rmtree(copy)
    copy = copy_with_config(run, tmp_path, lambda c: c["model"].update(n_kv_head=1))
    err = user_error(capsys, "train", "--resume", copy)
    assert "unknown gpt setting(s): n_kv_head" in err and "config.json" in err

    (tmp_path / "copy" / "config.json").write_text('{"family": "gpt", "train": {')  # torn by hand
    assert "is not valid JSON" in user_error(capsys, "train", "--resume", copy)


def test_bad_environment_variables(capsys, monkeypatch, tmp_path, small_corpus):
    monkeypatch.setenv("GENLAB_THREADS", "two")
    err = user_error(capsys, "train", small_corpus, *TINY, "--out", tmp_path / "x")
    assert "GENLAB_THREADS='two' must be a positive integer" in err
    monkeypatch.delenv("GENLAB_THREADS")
    monkeypatch.setenv("GENLAB_DEBUG", "maybe")
    assert "GENLAB_DEBUG='maybe'" in user_error(capsys, "train", small_corpus, "--out", tmp_path / "y")


def test_unwritable_out(capsys, tmp_path, small_corpus, run):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user may write anywhere (root ignores file modes); the disk-full cases stand in")
        err = user_error(capsys, "train", small_corpus, *TINY, "--out", locked / "run")
        assert str(locked) in err and "Permission denied" in err
    finally:
        locked.chmod(0o700)


def test_disk_full_while_writing(capsys, monkeypatch, tmp_path, small_corpus, run):
    # a full disk shows at write or fsync, on an open file: the OS error carries no file name, so the line
    # names the run folder the command was writing
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "run"
    err = user_error(capsys, "train", small_corpus, *TINY, "--out", out)
    assert "No space left on device" in err and str(out) in err and "free some space" in err


def test_read_only_file_system(capsys, monkeypatch, tmp_path, small_corpus, run):
    # the line names the path the OS refused and its reason
    def read_only(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), src, dst)

    monkeypatch.setattr(os, "replace", read_only)
    out = tmp_path / "run"
    err = user_error(capsys, "train", small_corpus, *TINY, "--out", out)
    assert f"{out}{os.sep}" in err and "Read-only file system; write elsewhere (--out)" in err


def test_file_size_limit_in_a_real_process(tmp_path, small_corpus, run):
    # `ulimit -f 1`: the kernel refuses writes past 1 KiB (EFBIG; Python ignores SIGXFSZ), as a full disk would
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "genlab", "train", str(small_corpus), *TINY, "--out", str(out)],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit)
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert err.startswith("genlab: error: ") and "\n" not in err and "Traceback" not in err, err
    assert "File too large" in err and str(out) in err and "ulimit -f" in err


def test_genlab_debug_shows_the_traceback(capsys, monkeypatch, tmp_path, small_corpus):
    path = tmp_path / "c.toml"
    path.write_text('lr = "fast"\n')
    monkeypatch.setenv("GENLAB_DEBUG", "1")
    assert main(["train", str(small_corpus), "--config", str(path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" in err and err.splitlines()[-1].startswith("genlab: error: lr must be a number")


def test_a_genuine_bug_keeps_its_traceback(monkeypatch, small_corpus):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug, not a user mistake")

    monkeypatch.setattr(genlab.api, "train", bug)
    with pytest.raises(ZeroDivisionError):
        main(["train", str(small_corpus)])
