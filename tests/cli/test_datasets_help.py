"""The data help of `genlab train` / `genlab eval` and the unknown-dataset errors list every built-in dataset
of every modality, from the Modality registry (issue 18, item 10)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from genlab.modalities import builtin_datasets, registry

ALL = ("text:pydocs", "text:pystdlib", "images:digits", "images:digit-scenes", "images:mnist:DIR", "music:folk",
       "music:bach")


def genlab(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_THREADS": "1", "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "genlab", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_registry_declares_every_builtin_dataset():
    assert sorted(builtin_datasets()) == sorted(ALL)
    from genlab.images.data import BUILTIN_IMAGES
    from genlab.music.data import BUILTIN_MUSIC
    from genlab.text.data import BUILTIN_TEXT

    # each wing's declared list is what its reader knows
    readers = {"text": set(BUILTIN_TEXT), "images": set(BUILTIN_IMAGES), "music": set(BUILTIN_MUSIC)}
    assert {name: set(m.datasets) for name, m in registry().items()} == readers


@pytest.mark.parametrize("verb", ["train", "eval"])
def test_help_lists_every_builtin_dataset(verb):
    proc = genlab(verb, "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # argparse wraps the help
    for name in ALL:
        assert name in text, (name, text)


def test_help_imports_no_torch():
    code = ("import sys; from genlab.cli import build_parser; build_parser(); "
            "assert 'torch' not in sys.modules, 'torch imported at parse time'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("source", ["text:nope", "nosuch:thing", "music:jazz", "images:cifar"])
def test_unknown_dataset_is_one_line_listing_every_modality(source, tmp_path):
    family = ["--family", "vae"] if source.startswith("images:") else []
    proc = genlab("train", source, "--out", str(tmp_path / "run"), *family)
    err = proc.stderr.strip()
    assert proc.returncode == 2, proc.stderr
    assert err.startswith("genlab: error: unknown dataset") and "\n" not in err, err
    for name in ALL:
        assert name in err, (name, err)
