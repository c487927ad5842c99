import os
import tempfile

import pytest

# one tokenized-corpus cache for the whole session, apart from the user's
os.environ.setdefault("GENLAB_CACHE", tempfile.mkdtemp(prefix="genlab-test-cache-"))


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """A small real corpus: the first 60k characters of Python's documentation topics."""
    from genlab.text.data import read_text_source

    path = tmp_path_factory.mktemp("corpus") / "docs.txt"
    path.write_text(read_text_source("text:pydocs")[:60_000], encoding="utf-8")
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A token cache of this test's own (GENLAB_CACHE), empty at first."""
    root = tmp_path / "cache"
    monkeypatch.setenv("GENLAB_CACHE", str(root))
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests: on a busy 2-core machine, OpenMP spin-waiting against other processes
    slows a step many times over."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
