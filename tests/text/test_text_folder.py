"""A folder of code or text reads what a user means and says what it read: source and text files by default,
no build/cache/VCS folders, non-UTF-8 files skipped and counted, --extensions to choose (issue 18, item 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.errors import GenlabError
from genlab.text.data import folder_files, parse_extensions, read_text

TINY = ["--max-steps", "2", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16",
        "--batch-size", "2", "--eval-interval", "2", "--eval-batches", "1", "--quiet"]
CODE = "def add(a, b):\n    '''Return the sum of a and b.'''\n    return a + b\n\n" * 20


@pytest.fixture
def project(tmp_path) -> Path:
    """A code folder as `pip install -e .` leaves it: .py files, a README, an egg-info of .txt files, caches,
    .git, and one Latin-1 file."""
    root = tmp_path / "proj"
    for d in ("src/pkg", "src/pkg.egg-info", ".git", "src/pkg/__pycache__", "build/lib"):
        (root / d).mkdir(parents=True)
    for i in range(3):
        (root / "src/pkg" / f"mod{i}.py").write_text(CODE, encoding="utf-8")
    (root / "README.md").write_text("# proj\n\nA project that adds numbers together.\n" * 10, encoding="utf-8")
    for name in ("PKG-INFO", "SOURCES.txt", "top_level.txt", "dependency_links.txt", "requires.txt"):
        (root / "src/pkg.egg-info" / name).write_text("pkg\n")
    (root / ".git" / "notes.txt").write_text("not the project's text\n")
    (root / "src/pkg/__pycache__" / "stale.py").write_text("x = 1\n")
    (root / "build/lib" / "copy.py").write_text(CODE)
    (root / "src/pkg" / "legacy.py").write_bytes("# café, résumé\n".encode("latin-1"))
    return root


def train(source, out: Path, *flags, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_THREADS": "1", "GENLAB_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "genlab", "train", str(source), "--out", str(out), *TINY, *flags],
                          capture_output=True, text=True, timeout=300, env=env)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, proc.stderr
    assert err.startswith("genlab: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_code_folder_trains_on_its_source_and_says_what_it_read(project, tmp_path):
    proc = train(project, tmp_path / "run", cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("genlab: read ")]
    assert f"read 4 files from {project}/ (3 .py, 1 .md)" in line, line
    assert "characters" in line and "skipped 1 of 5 text files not UTF-8 (src/pkg/legacy.py)" in line, line
    for folder in (".git", "build", "src/pkg.egg-info"):
        assert folder in line, line
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert data["files_by_extension"] == {".py": 3, ".md": 1} and data["extensions"] == "default"
    assert data["skipped_files"] == 1 and data["skipped_reasons"] == {"not UTF-8": 1}
    assert "src/pkg.egg-info" in data["left_out_folders"] and data["characters"] > len(CODE) * 3

    chosen = train(project, tmp_path / "md", "--extensions", "md", cache=tmp_path / "cache")
    assert chosen.returncode == 0, chosen.stderr
    assert f"read 1 file from {project}/ (1 .md)" in chosen.stderr and "not UTF-8" not in chosen.stderr
    md = json.loads((tmp_path / "md" / "config.json").read_text())["data"]
    assert md["extensions"] == [".md"] and md["files_by_extension"] == {".md": 1}
    # another choice of files is another corpus, so another token cache: nothing stale is reused
    assert md["content_sha256"] != data["content_sha256"] and md["train_tokens"] < data["train_tokens"]
    assert len([p for p in (tmp_path / "cache" / "text").iterdir() if not p.name.startswith(".")]) == 2


def test_extension_without_files_is_one_line_naming_what_the_folder_holds(project, tmp_path):
    err = one_error_line(train(project, tmp_path / "run", "--extensions", "rs,md", cache=tmp_path / "cache"))
    assert "--extensions rs,md" in err and "no .rs files" in err and ".py" in err and ".md" in err, err


def test_folder_of_only_non_utf8_files_is_one_line(tmp_path):
    folder = tmp_path / "latin"
    folder.mkdir()
    (folder / "a.txt").write_bytes("déjà vu\n".encode("latin-1") * 50)
    (folder / "b.md").write_bytes("naïve\n".encode("cp1252") * 50)
    err = one_error_line(train(folder, tmp_path / "run", cache=tmp_path / "cache"))
    assert "none of the 2 text files" in err and "2 not UTF-8" in err and "iconv" in err, err


def test_extensions_on_a_builtin_dataset_is_one_line(tmp_path):
    err = one_error_line(train("text:pydocs", tmp_path / "run", "--extensions", "md", cache=tmp_path / "cache"))
    assert "text:pydocs is a built-in dataset; leave it out" in err, err


def test_folder_walk_leaves_out_build_cache_and_vcs_folders(project, tmp_path):
    (project / "venv").mkdir()
    (project / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (project / "venv" / "site.py").write_text(CODE)
    files, left_out = folder_files(project)
    assert {f.relative_to(project).as_posix() for f in files} == {
        "README.md", "src/pkg/mod0.py", "src/pkg/mod1.py", "src/pkg/mod2.py", "src/pkg/legacy.py"}
    assert set(left_out) == {".git", "build", "venv", "src/pkg.egg-info", "src/pkg/__pycache__"}


def test_parse_extensions():
    assert parse_extensions(None) is None
    assert parse_extensions(" py,.MD, *.txt,py") == (".py", ".md", ".txt")
    with pytest.raises(GenlabError, match="names no extension"):
        parse_extensions(" , ")
    with pytest.raises(GenlabError, match="music folders read only"):
        parse_extensions("txt", (".abc",), "music")


def test_folder_of_json_only_says_how_to_choose(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "rows.json").write_text("[1, 2, 3]\n")
    with pytest.raises(GenlabError, match=r"has no text or source \(.*\) files: it holds 1 \.json; "
                                          "choose some with --extensions json"):
        read_text(str(tmp_path / "d"))


def test_extensions_choose_the_modality_of_a_mixed_folder(tmp_path):
    """A folder of tunes with some code is music by default; --extensions py means its code."""
    from music21 import corpus

    folder = tmp_path / "mixed"
    folder.mkdir()
    tunes = [p for p in corpus.getPaths() if str(p).endswith(".abc")][:3]
    for i, path in enumerate(tunes):
        (folder / f"tune{i}.abc").write_bytes(Path(path).read_bytes())
    (folder / "tool.py").write_text(CODE, encoding="utf-8")
    done = train(folder, tmp_path / "run", "--extensions", "py", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert data["modality"] == "text" and data["files_by_extension"] == {".py": 1}
