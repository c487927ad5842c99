"""A music folder says what it read (files by extension, files skipped with reasons, folders left out), and
--extensions chooses among the music suffixes (issue 18, item 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.music.data import is_music_source

TUNE = "X:{i}\nT:t\nM:6/8\nL:1/8\nK:D\n|:A|dfa afd|gfe dcB|AFA dFA|BGE E2A|dfa afd|gfe dcB|AFA Bcd|edc d2:|\n"
TINY = ["--max-steps", "2", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16",
        "--batch-size", "2", "--eval-interval", "2", "--eval-batches", "1", "--quiet"]


@pytest.fixture
def tunes(tmp_path) -> Path:
    folder = tmp_path / "tunes"
    (folder / ".git").mkdir(parents=True)
    (folder / "set.abc").write_text("\n".join(TUNE.format(i=i) for i in range(12)))
    (folder / "pom.xml").write_text("<project><modelVersion>4.0.0</modelVersion></project>\n")  # not MusicXML
    (folder / ".git" / "old.abc").write_text(TUNE.format(i=99))
    (folder / "README.md").write_text("my tunes\n")
    return folder


def train(source, out: Path, *flags, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_THREADS": "1", "GENLAB_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "genlab", "train", str(source), "--out", str(out), *TINY, *flags],
                          capture_output=True, text=True, timeout=300, env=env)


def test_music_folder_says_what_it_read(tunes, tmp_path):
    proc = train(tunes, tmp_path / "run", cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("genlab: read ")]
    assert f"read 1 file from {tunes}/ (1 .abc), 12 tunes" in line, line
    assert "skipped 1 of 2 music files not MusicXML (pom.xml)" in line and ".git" in line, line
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert data["modality"] == "music" and data["files_by_extension"] == {".abc": 1}
    assert data["skipped_reasons"] == {"not MusicXML": 1} and data["left_out_folders"] == [".git"]


@pytest.mark.parametrize(("flags", "words"), [
    (["--extensions", "mid"], ["--extensions mid", "no .mid files", "1 .abc"]),
    # txt is no music extension: the folder is read as text, which has none
    (["--extensions", "txt"], ["--extensions txt", "no .txt files", "1 .abc"]),
])
def test_music_extensions_errors_are_one_line(tunes, tmp_path, flags, words):
    proc = train(tunes, tmp_path / "run", *flags, cache=tmp_path / "cache")
    err = proc.stderr.strip()
    assert proc.returncode == 2 and err.startswith("genlab: error: ") and "\n" not in err, proc.stderr
    for word in words:
        assert word in err, err


def test_code_folder_with_a_midi_fixture_is_text(tmp_path):
    (tmp_path / "tests").mkdir()
    for i in range(3):
        (tmp_path / f"m{i}.py").write_text("x = 1\n")
    (tmp_path / "tests" / "fixture.mid").write_bytes(b"MThd")
    (tmp_path / "pom.xml").write_text("<project/>")
    assert not is_music_source(str(tmp_path))
    (tmp_path / "tests" / "more.abc").write_text(TUNE.format(i=1))
    (tmp_path / "tests" / "most.abc").write_text(TUNE.format(i=2))
    assert is_music_source(str(tmp_path))  # as many tunes as text files: a music folder
