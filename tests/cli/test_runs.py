"""`genlab list` and `genlab info` as a user runs them, on tiny real runs of two modalities."""

import json
import os
import subprocess
import sys
import time

import pytest
from user_errors import user_error

from genlab.cli import main


def genlab(*args, code=0):
    proc = subprocess.run([sys.executable, "-m", "genlab", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_THREADS": "1"})
    assert proc.returncode == code, proc.stderr
    return proc


def set_age(folder, seconds):
    """Make every file of a run look last changed `seconds` ago, so the order of the list is known."""
    then = time.time() - seconds
    for dirpath, _, names in os.walk(folder):
        for name in [*names, "."]:
            os.utime(os.path.join(dirpath, name), (then, then))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_corpus):
    root = tmp_path_factory.mktemp("runs")
    genlab("train", small_corpus, "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
           "--max-steps", "10", "--eval-interval", "5", "--eval-batches", "2", "--out", root / "text")
    genlab("train", "images:digits", "--family", "vae", "--width", "8", "--latent-dim", "4", "--batch-size", "16",
           "--max-steps", "10", "--eval-interval", "5", "--eval-batches", "2", "--out", root / "demo" / "img")
    # what other verbs may write: where the weights came from, and one evaluation per split and dataset
    config = json.loads((root / "text" / "config.json").read_text())
    config["imported_from"] = {"format": "hf-gpt2", "path": "/models/gpt2", "revision": None}
    (root / "text" / "config.json").write_text(json.dumps(config))
    (root / "text" / "metrics.json").write_text(json.dumps({  # as genlab eval keys them; val need not come first
        "text:pydocs val": {"val_loss": 4.25, "perplexity": 70.1, "note": None, "extra": {}, "data": "text:pydocs",
                            "split": "val", "precision": "fp32"},
        "val": {"val_loss": 2.5, "perplexity": 12.2, "split": "val", "precision": "fp32"},
        "train int8": {"train_loss": 2.25, "split": "train", "precision": "int8"}}))
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text('{"family": ')
    (root / "exported").mkdir()  # a model exported for another tool: its config.json is not genlab's
    (root / "exported" / "config.json").write_text('{"model_type": "gpt2"}')
    set_age(root / "text", 2 * 3600)
    set_age(root / "broken", 3 * 86400)
    return root


def test_list_table(runs):
    lines = genlab("list", runs).stdout.splitlines()
    assert lines[0].split() == ["NAME", "FAMILY", "MODALITY", "DATA", "PARAMS", "SIZE", "STEPS", "BEST", "LOSS",
                                "LAST", "USED"]
    assert [line.split()[0] for line in lines[1:]] == ["demo/img", "text", "broken"]  # newest first
    img, text, broken = (line.split() for line in lines[1:])
    assert img[1:4] == ["vae", "images", "images:digits"] and img[7] == "10/10" and float(img[8]) > 0
    assert text[1:3] == ["gpt", "text"] and text[3].endswith("docs.txt") and text[4].endswith("K") and text[6] == "KB"
    assert text[7] == "10/10" and lines[2].endswith("2 hours ago")
    assert "3 days ago" in lines[3] and "broken: config.json is not valid JSON" in lines[3]


def test_list_json(runs):
    rows = {r["name"]: r for r in json.loads(genlab("list", runs, "--json").stdout)}
    assert set(rows) == {"text", "demo/img", "broken"}
    text = rows["text"]
    assert (text["family"], text["modality"], text["step"], text["max_steps"]) == ("gpt", "text", 10, 10)
    assert text["params"] > 0 and text["disk_bytes"] > 0 and text["best_val_loss"] > 0 and text["error"] is None
    assert rows["demo/img"]["modality"] == "images"
    assert rows["broken"]["family"] is None and "not valid JSON" in rows["broken"]["error"]


def test_list_empty_and_missing(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    empty = tmp_path / "empty"
    out = genlab("list", empty).stdout
    assert out == f"no runs in {empty}/; train one with: genlab train text:pydocs --out {empty}/NAME\n"
    assert main(["list", str(tmp_path / "missing")]) == 0  # the rest in-process: one subprocess is proof enough
    assert capsys.readouterr().out.startswith(f"no runs in {tmp_path}/missing/; train one with: ")
    assert main(["list", str(tmp_path / "missing"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_info(runs):
    out = genlab("info", runs / "text").stdout
    for section in ("Model", "Training", "Data", "Preprocessing", "Figures", "Lineage", "Use it"):
        assert f"\n{section}\n" in out
    assert "Files (" in out and "config.json" in out and "checkpoints/checkpoint-10/model.safetensors" in out
    assert "  family: gpt" in out and "  modality: text" in out and "trained steps: 10 of 10" in out
    assert "best val loss: " in out and "(checkpoint-" in out
    # each evaluation under its metrics.json key, the run's own val first, and lineage keys, are printed as
    # name: value lines, never as Python or JSON
    assert "    val:\n      val_loss: 2.5\n      perplexity: 12.2\n" in out
    assert ("    text:pydocs val:\n      val_loss: 4.25\n      perplexity: 70.1\n      note: -\n      extra: none\n"
            in out)
    assert "    train int8:\n      train_loss: 2.25\n" in out
    assert out.index("    val:\n") < out.index("    text:pydocs val:\n") < out.index("    train int8:\n")
    assert "  imported_from:\n    format: hf-gpt2\n    path: /models/gpt2\n" in out
    assert "  kind: char" in out  # the tokenizer, as preprocessing
    assert f"genlab sample {runs / 'text'}" in out and f"genlab eval {runs / 'text'}" in out
    for repr_ in ("None", "{", "[", "True", "False", "null"):
        assert repr_ not in out, repr_


def test_info_json(runs):
    info = json.loads(genlab("info", runs / "demo" / "img", "--json").stdout)
    assert (info["family"], info["modality"], info["figures"]["step"]) == ("vae", "images", 10)
    assert info["figures"]["best_val_loss"] > 0 and info["figures"]["evaluation"] is None
    assert info["lineage"]["data"] == "images:digits" and "images" in info["preprocessing"]
    files = {f["path"]: f for f in info["files"]}
    assert files["config.json"]["bytes"] > 0 and ".lock" not in files
    assert info["disk_bytes"] < sum(f["bytes"] for f in info["files"])  # hard-linked weights counted once
    assert [c["command"].split()[:2] for c in info["commands"]][:2] == [["genlab", "sample"], ["genlab", "eval"]]


def test_info_files_a_flat_metrics_json_under_its_key(runs, tmp_path):
    """A run evaluated before evaluations were kept apart: its one flat evaluation shows under its own key."""
    from genlab import api

    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text((runs / "text" / "config.json").read_text())
    (run / "metrics.json").write_text(json.dumps({"val_loss": 3.5, "perplexity": 33.1}))
    assert api.info(run)["figures"]["evaluation"] == {"val": {"val_loss": 3.5, "perplexity": 33.1}}
    (run / "metrics.json").write_text(json.dumps({"train_loss": 3.0, "split": "train", "data": "text:pystdlib"}))
    assert list(api.info(run)["figures"]["evaluation"]) == ["text:pystdlib train"]
    (run / "metrics.json").write_text("[1, 2]")
    info = api.info(run)
    assert info["figures"]["evaluation"] is None and "metrics.json" in info["problems"][0]


def test_one_line_errors(capsys, runs, tmp_path):
    assert "is a file, not a folder of runs" in user_error(capsys, "list", runs / "text" / "config.json")
    assert "does not exist" in user_error(capsys, "info", tmp_path / "nope")
    assert "not a genlab run directory" in user_error(capsys, "info", tmp_path)
    assert "not valid JSON" in user_error(capsys, "info", runs / "broken")
    assert "not written by genlab" in user_error(capsys, "info", runs / "exported")


def test_list_a_run_itself(capsys, runs):
    assert main(["list", str(runs / "text")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].split()[:2] == ["text", "gpt"]
