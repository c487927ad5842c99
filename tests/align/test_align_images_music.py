"""The feedback loop beyond text: rated images kept as files, a reward model on a diffusion U-Net and best-of-n
raising a preferred digit's share (judged by scikit-learn's classifier on real digits), and DPO on ABC music
raising the share of major keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from genlab import api
from genlab.align.store import FeedbackStore
from tests.user_errors import user_error

DIGIT = 0  # the scripted image rater prefers it
IMAGE_SAMPLING = {"steps": 10}


@pytest.fixture(scope="module")
def digit_classifier():
    """Logistic regression on scikit-learn's real 8x8 digits: what a user's own tool says an image shows."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    return LogisticRegression(max_iter=3000, random_state=0).fit(digits.images.reshape(len(digits.images), -1) / 16,
                                                                 digits.target)


def share_of_digit(clf, images) -> float:
    from genlab.images.data import to_pixels

    pixels = to_pixels(images).numpy().reshape(len(images), -1) / 255.0
    return float(np.mean(clf.predict(pixels) == DIGIT))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """An unconditional diffusion model on 8x8 digits, trained for ~15 seconds."""
    out = tmp_path_factory.mktemp("align-images") / "diffusion"
    return api.train("images:digits", family="diffusion", out=str(out), image_size=8, width=16, time_dim=64,
                     max_steps=600, lr_decay_steps=600, max_minutes=0.6, eval_interval=600, eval_batches=2, lr=3e-3,
                     seed=0, quiet=True)


def test_a_reward_model_on_images_and_best_of_n_raise_the_preferred_digit(tmp_path, digits_run, digit_classifier,
                                                                           capsys):
    from PIL import Image

    def digit(path: str) -> int:
        pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0
        return int(digit_classifier.predict(pixels.reshape(1, -1))[0])

    def judge(prompt: str, left: str, right: str) -> str:
        x, y = digit(left) == DIGIT, digit(right) == DIGIT
        return "tie" if x == y else "left" if x else "right"

    store = tmp_path / "feedback.sqlite"
    counts = api.rate(digits_run, [""] * 200, store=store, judge=judge, rater="scripted", **IMAGE_SAMPLING)
    assert counts["pairs"] >= 15, counts
    with FeedbackStore(store, create=False, readonly=True) as kept:
        pairs = kept.preference_pairs()
    files = [p[side] for p in pairs for side in ("chosen", "rejected")]
    assert all(f.endswith(".png") and (tmp_path / "feedback-outputs").samefile(Path(f).parent) for f in files)
    provenance = json.loads(Image.open(files[0]).text["genlab"])  # each rated image says where it came from
    assert provenance["seed"] is not None and provenance["checkpoint_sha256"]

    rm = api.reward(digits_run, store, out=tmp_path / "rm", max_steps=150, lr=1e-3, val_fraction=0.2, batch_size=16,
                    quiet=True)
    assert api.reward_accuracy(rm)["pairwise_accuracy"] >= 0.75

    before = share_of_digit(digit_classifier, api.load(digits_run).generate(num_samples=200, seed=5,
                                                                             output_type="pt", **IMAGE_SAMPLING))
    run = api.align(digits_run, method="best-of-n", reward=rm, n=8, num_prompts=64, sampling=IMAGE_SAMPLING,
                    out=tmp_path / "best-of-n", max_steps=100, quiet=True)
    assert len(list((run / "best-of-n").glob("*.png"))) == 64  # unconditional: one flat folder of kept images
    after = share_of_digit(digit_classifier, api.load(run).generate(num_samples=200, seed=5, output_type="pt",
                                                                     **IMAGE_SAMPLING))
    assert after >= before + 0.15, (before, after)
    objective = json.loads((run / "config.json").read_text())["train"]["objective"]
    assert objective["kept_reward"] > objective["mean_reward"]

    # DPO is for token models: refused in one line, before any run directory is made
    assert "align an image model with --method best-of-n" in user_error(
        capsys, "align", digits_run, "--preferences", store, "--out", tmp_path / "dpo")
    assert not (tmp_path / "dpo").exists()


def test_the_loop_on_an_image_run_from_the_command_line(tmp_path, digits_run, capsys, monkeypatch):
    """genlab rate, reward and align --method best-of-n on images take the image controls, not text's."""
    import io

    from genlab.cli import main

    store = tmp_path / "feedback.sqlite"
    monkeypatch.setattr("sys.stdin", io.StringIO("a\nb\nt\nb\na\nb\na\nb\n"))
    assert main(["rate", str(digits_run), "--store", str(store), "--repeat", "8", "--steps", "2"]) == 0
    out, err = capsys.readouterr()
    assert "kept 7 preferences, 1 ties" in err and "feedback-outputs" in out  # the judge is shown the files
    with FeedbackStore(store, create=False, readonly=True) as kept:
        assert {p["chosen"].endswith(".png") for p in kept.preference_pairs()} == {True}
    assert "--max-new-tokens is not a control of images models" in user_error(
        capsys, "rate", digits_run, "--store", store, "--max-new-tokens", "5")

    assert main(["reward", str(digits_run), "--preferences", str(store), "--out", str(tmp_path / "rm"),
                 "--max-steps", "2", "--val-fraction", "0.3", "--quiet"]) == 0
    assert "pairwise accuracy" in capsys.readouterr().err
    assert main(["align", str(digits_run), "--method", "best-of-n", "--reward", str(tmp_path / "rm"), "--n", "2",
                 "--num-prompts", "3", "--steps", "2", "--max-steps", "2", "--out", str(tmp_path / "bon"),
                 "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "bon")
    assert json.loads((tmp_path / "bon" / "config.json").read_text())["train"]["objective"]["prompts"] == 3
    assert "--temperature is not a control of images models" in user_error(
        capsys, "align", digits_run, "--method", "best-of-n", "--reward", tmp_path / "rm", "--temperature", "0.9",
        "--out", tmp_path / "bon2")
    assert "sampling flags are for --method best-of-n" in user_error(
        capsys, "align", digits_run, "--preferences", store, "--steps", "2", "--out", tmp_path / "dpo")
    assert not (tmp_path / "bon2").exists() and not (tmp_path / "dpo").exists()


def test_best_of_n_keeps_a_conditional_models_classes(tmp_path):
    from genlab.images.data import open_images

    run = api.train("images:digits", family="diffusion", conditional=True, out=str(tmp_path / "c"), image_size=8,
                    width=8, time_dim=32, max_steps=2, eval_interval=2, eval_batches=1, quiet=True)
    m = api.load(run)
    images = m.generate(prompt="3", num_samples=2, seed=1, steps=2)
    assert [im.info["label"] for im in images] == [3, 3]
    m.write_for_training([*images, m.generate(prompt="7", num_samples=1, seed=2, steps=2)], ["3", "3", "7"],
                         tmp_path / "kept")
    assert sorted(p.parent.name for p in (tmp_path / "kept").rglob("*.png")) == ["3", "3", "7"]
    data = open_images(str(tmp_path / "kept"), val_fraction=0.34, parent=api.load(run).config["images"]
                       | {"conditional": True})
    assert sorted(data.train_labels.tolist() + data.val_labels.tolist()) == [3, 3, 7]
    with pytest.raises(Exception, match="takes no prompt"):
        api.load(api.train("images:digits", family="diffusion", out=str(tmp_path / "u"), image_size=8, width=8,
                           time_dim=32, max_steps=1, eval_interval=1, eval_batches=1, quiet=True)
                 ).generate(prompt="3", num_samples=1)


def is_major(abc: str) -> bool:
    """The tune's key (its K: field) is major: K:Gmaj, or a bare tonic such as K:G."""
    key = re.search(r"^K:\s*(\S+)", abc, re.M)
    return bool(key) and (key.group(1).endswith("maj") or re.fullmatch(r"[A-G][b#]?", key.group(1)) is not None)


MUSIC_SAMPLING = {"max_new_tokens": 24}


def major_rate(run, n: int = 128) -> float:
    m = api.load(run)
    return sum(is_major(m.content(t)) for t in m.generate(num_samples=n, seed=99, **MUSIC_SAMPLING)) / n


def test_dpo_on_abc_music_raises_the_share_of_major_keys(tmp_path):
    from music21 import converter

    # a parent that has barely begun (30 steps) samples keys of every mode: many pairs are not ties
    parent = api.train("music:folk", family="gpt", preset="tiny", out=str(tmp_path / "folk"), max_steps=30,
                       eval_interval=1000, seed=0, quiet=True)

    def judge(prompt: str, left: str, right: str) -> str:
        x, y = is_major(left), is_major(right)
        return "tie" if x == y else "left" if x else "right"

    store = tmp_path / "feedback.sqlite"
    counts = api.rate(parent, [""] * 200, store=store, judge=judge, rater="scripted", **MUSIC_SAMPLING)
    assert counts["pairs"] >= 40, counts
    with FeedbackStore(store, create=False, readonly=True) as kept:
        chosen = kept.preference_pairs()[0]["chosen"]
    assert converter.parse(chosen, format="abc") is not None  # the store keeps tunes as ABC music21 reads

    run = api.align(parent, store, beta=1.0, out=tmp_path / "dpo", max_steps=100, eval_interval=100, lr=1e-3,
                    quiet=True)
    before, after = major_rate(parent), major_rate(run)
    assert after >= before + 0.15, (before, after)
    # measured on the parent's held-out tunes, not on the pairs: the model still models music
    quick = dict(max_tokens=20_000, num_samples=4, distribution_samples=4, max_new_tokens=64)  # the loss is the point
    assert api.evaluate(run, **quick)["perplexity"] <= 1.2 * api.evaluate(parent, **quick)["perplexity"]
