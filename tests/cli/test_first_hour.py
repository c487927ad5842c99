"""Traps a newcomer met in the first hour, each as the user types it: flags a run does not take, outputs
written where the user asked and never over earlier ones, escapes in --stop, labels by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genlab import api
from genlab.cli import main
from genlab.errors import GenlabError
from genlab.safety.provenance import read_provenance


def genlab(*args):
    return subprocess.run([sys.executable, "-m", "genlab", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, small_corpus):
    out = tmp_path_factory.mktemp("first-hour") / "text"
    return api.train(str(small_corpus), family="gpt", out=str(out), n_layer=1, n_head=2, n_embd=32, block_size=32,
                     max_steps=30, eval_interval=30, eval_batches=1, quiet=True)


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """A conditional VAE on a folder whose sub-folders name the classes."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for name in ("circle", "square"):
        (root / "data" / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / "data" / name / f"{i}.png")
    return api.train(str(root / "data"), family="vae", out=str(root / "run"), conditional=True, image_size=8,
                     max_steps=2, eval_interval=2, eval_batches=1, batch_size=4, quiet=True)


@pytest.mark.parametrize("flag", [["--steps", "10"], ["--guidance", "2"], ["--label", "3"], ["--interpolate"]])
def test_a_control_the_run_does_not_take_is_one_line(text_run, flag):
    proc = genlab("sample", text_run, *flag, "--max-new-tokens", "5")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"genlab: error: {flag[0]} is not a control of text models")
    assert proc.stderr.count("\n") == 1 and "--temperature" in proc.stderr  # it lists what the run takes


def test_image_runs_refuse_a_prompt_and_text_runs_a_renderer(shapes_run, text_run, tmp_path, capsys):
    assert main(["sample", str(shapes_run), "--prompt", "hello", "-o", str(tmp_path)]) == 2
    assert "trained with class labels, not captions, so a prompt must name one of its classes (circle, square), " \
        "not 'hello'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was written
    assert main(["sample", str(text_run), "--renderer", "additive"]) == 2
    assert "--renderer is for music models" in capsys.readouterr().err


def test_text_samples_go_to_the_folder_and_never_over_earlier_ones(text_run, tmp_path):
    out = tmp_path / "texts"
    first = genlab("sample", text_run, "--num-samples", "2", "--max-new-tokens", "8", "--seed", "4", "-o", out)
    assert first.returncode == 0 and f"wrote 2 samples to {out}/" in first.stdout
    again = genlab("sample", text_run, "--num-samples", "2", "--max-new-tokens", "8", "--seed", "4",
                   "--temperature", "1.2", "-o", out)
    assert again.returncode == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"sample-4-00{i}.{ext}" for i in range(1, 5) for ext in ("json", "txt")]
    record = read_provenance(out / "sample-4-003.txt")
    assert record["index"] == 3 and record["controls"]["temperature"] == 1.2 and record["ai_generated"] is True
    assert json.loads((out / "sample-4-001.json").read_text())["controls"]["temperature"] == 0.8


def test_stop_takes_the_usual_escapes(text_run):
    m = api.load(text_run)
    full = m.generate(prompt="The ", max_new_tokens=150, seed=2, temperature=1.0)
    assert "\n" in full, full  # the sample has a line break for the stop to find
    proc = genlab("sample", text_run, "--prompt", "The ", "--max-new-tokens", "150", "--seed", "2",
                  "--temperature", "1.0", "--stop", r"\n")
    assert proc.returncode == 0 and proc.stdout == "The " + full[: full.index("\n")] + "\n"


def test_labels_by_name_and_number(shapes_run, tmp_path, capsys):
    m = api.load(shapes_run)
    assert m.label_index("square") == 1 and m.label_index("0") == 0
    assert main(["sample", str(shapes_run), "--label", "square", "--num-samples", "2", "-o", str(tmp_path)]) == 0
    assert read_provenance(tmp_path / "sample-000.png")["label"] == 1
    assert main(["sample", str(shapes_run), "--label", "triangle"]) == 2
    assert "0=circle, 1=square" in capsys.readouterr().err


def test_export_never_overwrites(text_run, tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["export", str(text_run), str(tmp_path / "busy")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_prompts_from_a_file_or_standard_input_and_truncation(text_run, tmp_path):
    (tmp_path / "p.txt").write_text("The ")
    from_file = genlab("sample", text_run, "--prompt-file", tmp_path / "p.txt", "--max-new-tokens", "10", "--seed", "1")
    from_stdin = subprocess.run([sys.executable, "-m", "genlab", "sample", str(text_run), "--prompt", "-",
                                 "--max-new-tokens", "10", "--seed", "1"], input="The ", capture_output=True, text=True,
                                timeout=300)
    assert from_file.returncode == 0 and from_file.stdout == from_stdin.stdout and from_file.stdout.startswith("The ")
    long = "the " * 40  # 160 characters, past the 32-token context
    refused = genlab("sample", text_run, "--prompt", long, "--max-new-tokens", "5")
    assert refused.returncode == 2 and "--truncate-prompt" in refused.stderr
    kept = genlab("sample", text_run, "--prompt", long, "--max-new-tokens", "5", "--truncate-prompt", "--seed", "1")
    assert kept.returncode == 0 and "sees only its last 32 tokens" in kept.stderr


def test_dir_lists_the_verbs():
    import genlab

    assert {"train", "load", "sample", "evaluate", "export"} <= set(dir(genlab))


def test_no_silent_abbreviations_and_a_suggestion_for_typos(text_run):
    short = genlab("sample", text_run, "--temp", "0.5", "--max-new-tokens", "3")
    assert short.returncode == 2 and "--temp" in short.stderr and "--temperature" in short.stderr
    typo = genlab("sample", text_run, "--temperture", "0.5")
    assert typo.returncode == 2 and "did you mean --temperature?" in typo.stderr
    assert genlab("-V").stdout.startswith("genlab ")


def test_generate_returns_one_output_or_a_list_in_every_modality(text_run, shapes_run, tmp_path):
    from PIL import Image as PILImage

    from genlab.music.sample import Tune

    text = api.load(text_run)
    assert isinstance(text.generate(max_new_tokens=3, seed=1), str)
    assert [type(t) for t in text.generate(max_new_tokens=3, seed=1, num_samples=2)] == [str, str]

    images = api.load(shapes_run)
    one = images.generate(num_samples=1, seed=1, label="square")
    assert isinstance(one, PILImage.Image) and one.size == (8, 8) and one.mode == "L"
    several = images.generate(num_samples=3, seed=1)
    assert len(several) == 3 and all(isinstance(im, PILImage.Image) for im in several)
    tensor = images.generate(num_samples=3, seed=1, output_type="pt")
    assert tensor.shape == (3, 1, 8, 8) and tensor.min() >= -1 and tensor.max() <= 1
    # the PIL images are the tensor's pixels, and both write the same PNG pixels
    assert np.array_equal(np.asarray(several[2]), ((tensor[2, 0] + 1) * 127.5).round().byte().numpy())
    from_pil = images.write(several, tmp_path / "pil")
    images.generate(num_samples=3, seed=1, output_type="pt")
    from_tensor = images.write(tensor, tmp_path / "pt")
    for a, b in zip(from_pil, from_tensor, strict=True):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    with pytest.raises(GenlabError, match="output_type must be pil"):
        images.generate(num_samples=1, output_type="numpy")

    music = api.load(api.train("music:folk", family="gpt", out=str(tmp_path / "music"), n_layer=1, n_head=2, n_embd=16,
                               block_size=32, max_steps=2, eval_interval=2, eval_batches=1, batch_size=2, quiet=True))
    tune = music.generate("M:6/8", max_new_tokens=8, seed=1)
    assert isinstance(tune, Tune) and tune.tokens
    tunes = music.generate("M:6/8", max_new_tokens=8, seed=1, num_samples=2)
    assert [type(t) for t in tunes] == [Tune, Tune]
    assert music.write(tune, tmp_path / "tunes", formats=("abc",))[0].suffix == ".abc"


def test_the_first_generate_of_a_later_process_does_not_measure_again(text_run, cache):
    run = str(text_run)
    env = {**os.environ, "GENLAB_CACHE": str(cache)}
    first = subprocess.run([sys.executable, "-c", f"import genlab; genlab.load({run!r}).generate(max_new_tokens=2)"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert (cache / "decoding.json").is_file()  # the choice the first process measured
    later = ("import genlab, genlab.sampling.decode as d\n"
             "def measure(*args, **kwargs): raise SystemExit('measured again')\n"
             f"d._seconds_per_step = measure\nprint(genlab.load({run!r}).generate(max_new_tokens=2, seed=1))")
    again = subprocess.run([sys.executable, "-c", later], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
