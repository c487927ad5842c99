"""Output folders that never lose earlier outputs: files are numbered on from what is already there
(AUTOMATIC1111's habit), so sampling twice into one folder keeps both sets, each with its provenance."""

from __future__ import annotations

import re
from pathlib import Path

from genlab.errors import GenlabError


def output_folder(out_dir: str | Path) -> Path:
    """The folder, created if needed; a file in its place is a one-line error."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GenlabError(f"{out} is a file; give a folder for the outputs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenlabError(f"cannot create the output folder {out} ({e.strerror}); choose another -o") from None
    return out


def first_free_number(folder: Path, prefix: str, start: int = 0) -> int:
    """One more than the highest NNN of the files named PREFIXNNN.* in folder (`start` when there are none)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return max(found, default=start - 1) + 1


def free_name(folder: Path, stem: str, suffix: str) -> Path:
    """STEM.SUFFIX, or STEM-2.SUFFIX, STEM-3.SUFFIX ... whichever is free first."""
    path, n = folder / f"{stem}{suffix}", 2
    while path.exists():
        path, n = folder / f"{stem}-{n}{suffix}", n + 1
    return path
