"""Ways to break a token cache on disk, shared by the text and music cache tests (imported by name: pytest
puts this folder on sys.path for tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def rewrite(path: Path, data: bytes) -> None:
    # a new file, never an in-place truncation: a memory map of the old one must stay valid
    path.unlink()
    path.write_bytes(data)


def truncate(path: Path) -> None:
    rewrite(path, path.read_bytes()[: path.stat().st_size // 2])


def put_id(folder: Path, position: int, token_id: int) -> None:
    """Write `token_id` at `position` of the cache's tokens.bin."""
    meta = json.loads((folder / "meta.json").read_text())
    ids = np.fromfile(folder / "tokens.bin", dtype=meta["dtype"])
    ids[position] = token_id
    rewrite(folder / "tokens.bin", ids.tobytes())
