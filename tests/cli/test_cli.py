"""The command line as a user runs it: one subprocess per command, plus every user mistake."""

import json
import subprocess
import sys

import pytest

from genlab.cli import main


def genlab(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "genlab", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def figures(printed: str) -> dict[str, str]:
    """`genlab eval`'s printout as {name: value}: each figure line is `name: value` then a note."""
    pairs = dict(line.split(": ", 1) for line in printed.strip().splitlines() if ": " in line)
    return {k.strip(): v.split()[0] for k, v in pairs.items() if v.split()}


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_corpus):
    out = tmp_path_factory.mktemp("cli") / "run"
    genlab("train", small_corpus, "--family", "gpt", "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
           "--block-size", "32", "--max-steps", "60", "--eval-interval", "30", "--out", out)
    return out


def test_train_sample_eval_export_end_to_end(run, tmp_path):
    a = genlab("sample", run, "--prompt", "The ", "--max-new-tokens", "40", "--seed", "11", "--top-k", "20")
    b = genlab("sample", run, "--prompt", "The ", "--max-new-tokens", "40", "--seed", "11", "--top-k", "20")
    assert a.stdout == b.stdout and a.stdout.startswith("The ") and len(a.stdout) > 40
    several = genlab("sample", run, "--num-samples", "3", "--max-new-tokens", "20", "--seed", "1")
    assert several.stdout.count("--- sample") == 3

    ev = genlab("eval", run)
    assert ev.stdout.startswith("data: ") and 'metrics.json key "val"' in ev.stdout.splitlines()[0]
    lines = figures(ev.stdout)
    assert float(lines["val_loss"]) > 0 and float(lines["perplexity"]) > 1 and float(lines["bits_per_char"]) > 0
    evaluations = json.loads((run / "metrics.json").read_text())
    assert evaluations["val"]["val_loss"] == pytest.approx(float(lines["val_loss"]), rel=1e-3)

    int8 = genlab("sample", run, "--prompt", "The ", "--max-new-tokens", "40", "--seed", "11", "--precision", "int8")
    assert int8.stdout.startswith("The ") and len(int8.stdout) > 40
    out8 = genlab("eval", run, "--precision", "int8").stdout
    ev8 = figures(out8)
    assert "precision: int8" in out8 and 'metrics.json key "val int8"' in out8
    assert abs(float(ev8["val_loss"]) / float(lines["val_loss"]) - 1) < 0.01
    evaluations = json.loads((run / "metrics.json").read_text())
    assert evaluations["val int8"]["precision"] == "int8"
    assert evaluations["val int8"]["val_loss"] == pytest.approx(float(ev8["val_loss"]), rel=1e-3)
    assert evaluations["val"]["val_loss"] == pytest.approx(float(lines["val_loss"]), rel=1e-3)  # not replaced

    genlab("export", run, tmp_path / "hf", "--format", "hf-gpt2")
    assert (tmp_path / "hf" / "config.json").exists() and (tmp_path / "hf" / "model.safetensors").exists()


def user_error(capsys, *args):
    """Run the CLI in-process: a user mistake must be exit code 2 and one line, never a traceback."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("genlab: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_unknown_dataset(capsys, tmp_path):
    assert "unknown dataset" in user_error(capsys, "train", "text:nosuch", "--out", tmp_path / "x")
    assert "neither a built-in name" in user_error(capsys, "train", tmp_path / "missing.txt", "--out", tmp_path / "y")


def test_empty_corpus(capsys, tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    assert "empty" in user_error(capsys, "train", tmp_path / "empty.txt", "--out", tmp_path / "x")
    (tmp_path / "folder").mkdir()
    assert "it holds no files" in user_error(capsys, "train", tmp_path / "folder", "--out", tmp_path / "y")


def test_missing_and_not_a_run_directory(capsys, tmp_path):
    assert "does not exist" in user_error(capsys, "sample", tmp_path / "nope")
    assert "not a genlab run directory" in user_error(capsys, "sample", tmp_path)
    assert "not a genlab run directory" in user_error(capsys, "train", "--resume", tmp_path)


def test_truncated_and_corrupt_weights(capsys, run, tmp_path):
    import shutil

    for name, mangle in [("truncated", lambda b: b[: len(b) // 2]), ("corrupt", lambda b: b"\x00" * 8 + b[8:])]:
        copy = tmp_path / name
        shutil.copytree(run, copy)
        weights = copy / "model.safetensors"
        data = weights.read_bytes()
        weights.unlink()  # it is a hard link to the checkpoint: write a new file, don't edit in place
        weights.write_bytes(mangle(data))
        assert "corrupt or truncated" in user_error(capsys, "sample", copy)


def test_prompt_with_unseen_characters(capsys, run):
    assert "never saw" in user_error(capsys, "sample", run, "--prompt", "日本語")


def test_prompt_too_long(capsys, run):
    assert "shorten the prompt" in user_error(capsys, "sample", run, "--prompt", "the " * 40)


@pytest.mark.parametrize(
    "flag,value,message",
    [("--temperature", "-0.5", "temperature"), ("--top-p", "0", "top-p"), ("--top-p", "1.5", "top-p"),
     ("--top-k", "0", "top-k"), ("--num-samples", "0", "num-samples")],
)
def test_nonsensical_sampling_options(capsys, run, flag, value, message):
    assert message in user_error(capsys, "sample", run, flag, value)


def test_block_size_over_the_trained_one(capsys, run):
    assert "over the 32" in user_error(capsys, "eval", run, "--block-size", "64")
    assert "over the 32" in user_error(capsys, "train", "--resume", run, "--block-size", "64")


def test_eval_refuses_music_sampling_flags_for_text(capsys, run):
    assert "--top-k is for music models" in user_error(capsys, "eval", run, "--top-k", "5")
    err = user_error(capsys, "eval", run, "--distribution-samples", "5")
    assert "--distribution-samples is for music models" in err


def test_nonsensical_training_options(capsys, small_corpus, tmp_path):
    assert "lr" in user_error(capsys, "train", small_corpus, "--lr", "-1", "--out", tmp_path / "a")
    assert "dropout" in user_error(capsys, "train", small_corpus, "--dropout", "1.5", "--out", tmp_path / "b")
    assert "unknown family" in user_error(capsys, "train", small_corpus, "--family", "rnn", "--out", tmp_path / "c")
    assert "block-size" in user_error(capsys, "train", small_corpus, "--block-size", "100000", "--out", tmp_path / "d")


def test_stop_strings_and_streaming_agree_with_generate(run):
    from genlab import api

    m = api.load(run)
    controls = dict(max_new_tokens=120, seed=3, temperature=1.0)
    full = m.generate(prompt="The ", **controls)
    stop = next(full[i : i + 2] for i in range(5, len(full) - 2) if full[i : i + 2].strip())  # occurs in `full`
    cut = m.generate(prompt="The ", stop=[stop], **controls)
    assert full.startswith(cut) and stop not in cut and len(cut) < len(full)
    assert "".join(m.stream(prompt="The ", stop=[stop], **controls)) == cut
    assert "".join(m.stream(prompt="The ", **controls)) == full
    several = m.generate(prompt="The ", num_samples=3, **controls)
    assert isinstance(several, list) and len(several) == 3 and several[0] != several[1]
