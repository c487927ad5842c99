"""The command line: parses, calls genlab.api, prints. A user mistake is one line and exit code 2.

One module per verb group, each with its flags beside the function that runs it: train, sample, eval,
export (and demo). They import genlab.api and genlab.errors only, and never branch on a family's or a
modality's name: the run's sampler says which controls it takes and how its outputs are shown.
"""

from __future__ import annotations

import argparse
import sys

from genlab.runtime import wait_passively_when_busy

wait_passively_when_busy()  # OpenMP reads its wait policy once, when torch loads: before any torch import

from genlab.cli import evaluate, export, sample, train  # noqa: E402
from genlab.errors import GenlabError  # noqa: E402

VERBS = (train, sample, evaluate, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genlab", description="Train, sample and evaluate generative models.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    for verb in VERBS:
        verb.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        args.handler(args, argv)
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130
    return 0


def _version() -> str:
    from genlab import __version__

    return f"genlab {__version__}"


if __name__ == "__main__":
    sys.exit(main())
