"""`genlab eval` as a user types it: every figure named by its split and data, each evaluation kept under its
own key in metrics.json, the model card showing the run's own validation figures, and output a person reads
(direction and baseline per figure, no Python reprs, a short music summary, image cards without text lines)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genlab import api
from genlab.modalities import OWN_EVALUATION, evaluation_key, plain, read_evaluations

REPRS = re.compile(r"\bNone\b|[{}\[\]]|\bTrue\b|\bFalse\b")  # what a Python repr leaves behind


def genlab(*args):
    return subprocess.run([sys.executable, "-m", "genlab", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def ok(*args) -> str:
    proc = genlab(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def metrics_json(run) -> dict:
    return json.loads((run / "metrics.json").read_text())


def card_evaluation(run) -> str:
    card = (run / "README.md").read_text()
    return card.split("## Evaluation", 1)[1].split("\n## ", 1)[0]


def card_body(run) -> str:
    """The card below its YAML front matter (whose tags are a list) and above its usage line."""
    return (run / "README.md").read_text().split("---", 2)[2].split("## How to use")[0]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, small_corpus):
    out = tmp_path_factory.mktemp("eval-labels") / "text"
    return api.train(str(small_corpus), family="gpt", out=str(out), n_layer=1, n_head=2, n_embd=32, block_size=32,
                     max_steps=20, eval_interval=20, eval_batches=1, quiet=True)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A conditional VAE on a folder whose sub-folders name the classes."""
    root = tmp_path_factory.mktemp("eval-labels-images")
    rng = np.random.default_rng(0)
    for name in ("circle", "square"):
        (root / "data" / name).mkdir(parents=True)
        for i in range(20):  # 10% held out: 4 real images to measure against
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / "data" / name / f"{i}.png")
    return api.train(str(root / "data"), family="vae", out=str(root / "run"), conditional=True, image_size=8,
                     max_steps=2, eval_interval=2, eval_batches=1, batch_size=4, quiet=True)


TUNES = [
    "X:{i}\nT:t\nM:6/8\nL:1/8\nK:D\n|:A|dfa afd|gfe dcB|AFA dFA|BGE E2A|dfa afd|gfe dcB|AFA Bcd|edc d2:|\n",
    "X:{i}\nT:t\nM:2/4\nL:1/8\nK:G\nGA|B2 BA|G2 GA|B2 d2|e4|d2 BA|G2 E2|D2 EF|G4|]\n",
]


@pytest.fixture(scope="module")
def music_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-labels-music")
    (root / "tunes").mkdir()
    (root / "tunes" / "tunes.abc").write_text("\n".join(TUNES[i % 2].format(i=i) for i in range(30)))
    return api.train(str(root / "tunes"), family="gpt", out=str(root / "run"), n_layer=1, n_head=2, n_embd=32,
                     block_size=64, batch_size=8, max_steps=10, eval_interval=10, eval_batches=1, quiet=True)


def test_eval_on_the_train_split_says_train_and_keeps_the_val_figures(text_run):
    val = ok("eval", text_run)
    assert "split: val" in val and re.search(r"^val_loss: \d", val, re.M)
    val_loss = metrics_json(text_run)["val"]["val_loss"]

    train = ok("eval", text_run, "--split", "train")
    assert "split: train" in train and re.search(r"^train_loss: \d", train, re.M)
    assert "val_loss" not in train  # a figure on the training split never reads as validation

    kept = metrics_json(text_run)
    assert {"val", "train"} <= set(kept)
    assert kept["val"]["val_loss"] == val_loss and kept["train"]["split"] == "train"
    card = card_evaluation(text_run)
    assert "val_loss: " in card and "train_loss" not in card  # the card shows the run's own val figures
    assert "metrics.json also holds: train" in card


def test_eval_on_another_dataset_names_it_and_keeps_it_apart(text_run, small_corpus, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(small_corpus.read_text()[:20_000])  # same characters, another text
    out = ok("eval", text_run, other)
    assert f"data: {other}" in out and "(the run's own)" not in out
    kept = metrics_json(text_run)
    assert f"{other} val" in kept and kept[OWN_EVALUATION]["data"] == str(small_corpus)
    assert str(other) not in card_evaluation(text_run).split("metrics.json also holds")[0]


def test_eval_int8_is_kept_apart_from_fp32(text_run):
    ok("eval", text_run)
    out = ok("eval", text_run, "--precision", "int8")
    assert 'metrics.json key "val int8"' in out
    kept = metrics_json(text_run)
    assert kept["val"]["precision"] == "fp32" and kept["val int8"]["precision"] == "int8"


def test_text_figures_say_which_way_is_better_and_the_uniform_baseline(text_run):
    out = ok("eval", text_run)
    loss_line = next(line for line in out.splitlines() if line.startswith("val_loss: "))
    assert "lower is better" in loss_line and "uniform model over" in loss_line
    vocab = metrics_json(text_run)["val"]["vocab_size"]
    assert metrics_json(text_run)["val"]["uniform_loss"] == pytest.approx(np.log(vocab), abs=1e-4)
    assert not REPRS.search(out)
    assert not REPRS.search(card_body(text_run))


def test_a_flat_metrics_json_of_an_older_run_is_its_val_evaluation(text_run):
    config = json.loads((text_run / "config.json").read_text())
    flat = {"val_loss": 9.5, "perplexity": 13359.7, "bits_per_char": 13.7, "data": config["data"]["source"],
            "split": "val", "precision": "fp32"}
    (text_run / "metrics.json").write_text(json.dumps(flat))
    assert read_evaluations(text_run, config) == {"val": flat}
    ok("eval", text_run, "--split", "train", "--max-tokens", "2000")
    kept = metrics_json(text_run)
    assert kept["val"] == flat and "train" in kept
    assert "val_loss: 9.5" in card_evaluation(text_run)


def test_evaluation_keys_and_plain_values():
    config = {"data": {"source": "text:pydocs"}}
    assert evaluation_key(config, None, "val") == "val"
    assert evaluation_key(config, "text:pydocs", "train") == "train"
    assert evaluation_key(config, "text:pystdlib", "val") == "text:pystdlib val"
    assert evaluation_key(config, None, "val", "bf16") == "val bf16"
    assert plain(None) == "none" and plain({"steps": 20, "guidance": None}) == "steps 20, guidance none"
    assert plain([1, 2]) == "1, 2" and plain(0.123456) == "0.1235" and plain(2.0) == "2"


def test_image_eval_reads_kid_x1000_beside_real_images_and_its_card_has_no_text_lines(image_run):
    out = ok("eval", image_run, "--num-samples", "16")
    assert re.search(r"^kid_x1000: ", out, re.M) and not re.search(r"^kid: ", out, re.M)
    fd = next(line for line in out.splitlines() if line.startswith("frechet_distance: "))
    assert "lower is better" in fd and "real held-out vs real training images: " in fd
    assert "higher is better" in next(line for line in out.splitlines() if line.startswith("recall: "))
    assert not REPRS.search(out), out
    kept = metrics_json(image_run)["val"]
    assert {"kid_x1000", "real_kid_x1000", "real_frechet_distance", "real_precision", "real_recall"} <= set(kept)
    assert "kid" not in kept

    card = (image_run / "README.md").read_text()
    for text_only in ("tokenizer", "falsehoods", "passages", "--prompt", "perplexity", "bits_per_char"):
        assert text_only not in card, text_only
    assert "kid_x1000: " in card and not REPRS.search(card_body(image_run).replace("[-1, 1]", "-1 to 1"))


def test_music_eval_prints_a_short_summary_and_keeps_the_detail(music_run):
    out = ok("eval", music_run, "--num-samples", "3", "--distribution-samples", "4", "--max-new-tokens", "40")
    lines = out.strip().splitlines()
    assert len(lines) <= 16, out
    assert not REPRS.search(out), out
    assert re.search(r"^val_loss: ", out, re.M) and re.search(r"^parse_rate: .*real tunes: ", out, re.M)
    pitch = next(line for line in lines if line.startswith("pitch_class_distance: "))
    assert "lower is better" in pitch and "real tunes: " in pitch and "shuffled: " in pitch
    assert "parse_ratio" not in out

    kept = metrics_json(music_run)["val"]
    for key in ("val_loss", "uniform_loss", "parse_rate", "real_parse_rate", "pitch_class_kl", "bars_per_tune",
                "pitch_class_distance_real", "real_longest_copied_notes", "median_longest_copied_notes"):
        assert key in kept, key
    assert "parse_ratio" not in kept
    assert len(kept) > 2 * len(lines)  # the detail is in metrics.json, not on the screen

    train = ok("eval", music_run, "--split", "train", "--num-samples", "2", "--distribution-samples", "2",
               "--max-new-tokens", "20")
    assert re.search(r"^train_loss: ", train, re.M) and "val_loss" not in train
    assert set(metrics_json(music_run)) == {"val", "train"}
    assert "val_loss: " in card_evaluation(music_run)
