"""Print constraints.txt: every distribution genlab[test] pulls in, pinned at the version installed here.

Run it on purpose, after upgrading and running the whole test suite in a clean environment:

    python .ci/pins.py > constraints.txt

It walks the requirements of the installed genlab (with its `test` extra) transitively, keeping those whose
environment markers hold here, so the file lists what the project needs and not whatever else pip freeze
shows. A local version label (torch's +cpu) is dropped: `torch==2.13.0` matches the 2.13.0+cpu wheel.
"""

from __future__ import annotations

import importlib.metadata as metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT, EXTRAS = "genlab", ("test",)

HEADER = """\
# Every distribution that `pip install -e ".[test]"` brings in, pinned at the version CI tests: .ci/run installs
# with `pip install -c constraints.txt -e ".[test]"`, so that a fresh machine runs what was tested.
# Made on Python 3.11, Linux x86-64; torch is the local CPU wheel (2.13.0+cpu, which ==2.13.0 matches).
#
# Refresh it on purpose, never as a side effect: in a clean environment upgrade what should move
#     python -m pip install torch==2.13.0 && python -m pip install -U -e ".[test]"
# run the whole test suite (python -m pytest -q), then write the pins of what is now installed with
#     python .ci/pins.py > constraints.txt
# and raise the lower bounds in pyproject.toml to the versions tested."""


def wanted(req: Requirement, extras: tuple[str, ...]) -> bool:
    """Whether a requirement applies here, for the given extras of the distribution that states it."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in ("", *extras))


def closure(project: str, extras: tuple[str, ...]) -> dict[str, str]:
    """Canonical name -> installed version of every distribution `project[extras]` needs, transitively."""
    pins: dict[str, str] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo = [(project, extras)]
    while todo:
        name, asked = todo.pop()
        key = (canonicalize_name(name), asked)
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(name)  # PackageNotFoundError: the environment lacks a requirement
        pins[canonicalize_name(name)] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if wanted(req, asked):
                todo.append((req.name, tuple(sorted(req.extras))))
    pins.pop(canonicalize_name(project))
    return pins


def main() -> None:
    print(HEADER)
    for name, version in sorted(closure(PROJECT, EXTRAS).items()):
        print(f"{name}=={version.split('+')[0]}")


if __name__ == "__main__":
    main()
