"""`genlab detect`: whether a text carries a run's green-list watermark for a key; `genlab inspect`: the provenance
a file carries, and whether it was altered since."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from genlab.errors import GenlabError


def add_parsers(sub) -> None:
    p = sub.add_parser("detect", help="find the watermark of a key in a text",
                       description="Score a text for the green-list watermark that genlab sample --watermark-key "
                       "put in it: the z-score, green pairs over scored pairs, and watermarked yes or no.")
    p.set_defaults(handler=run)
    p.add_argument("file", metavar="FILE", help="the text to test, or - for standard input")
    p.add_argument("--key", required=True, help="the secret key the text may have been marked with")
    p.add_argument("--run", required=True, help="the run whose tokenizer made the text")
    p.add_argument("--gamma", type=float, default=None, help="the green share it was marked with (default: from "
                   "FILE's .json provenance beside it, else 0.25)")
    p.add_argument("--threshold", type=float, default=None, help="z-score above which it is called watermarked "
                   "(default 4)")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="test against gamma instead of the key's green share on the run's own training text")


    p = sub.add_parser("inspect", help="show where a file genlab wrote came from",
                       description="Print the provenance record a genlab output carries (PNG, .txt with its .json, "
                       ".abc, .mid, .wav): model, checkpoint, seed, controls, time, watermark, and whether the content "
                       "still matches it. Exit code 0: intact; 1: no provenance, or the file was altered.")
    p.set_defaults(handler=inspect)
    p.add_argument("files", metavar="FILE", nargs="+", help="the files to inspect")


def inspect(a, argv: list[str]) -> int:
    from genlab import api

    found = [api.inspect(f) for f in a.files]
    print("\n\n".join(f.summary() for f in found))
    return 0 if all(f.status in ("intact", "unsealed") for f in found) else 1


def run(a, argv: list[str]) -> None:
    from genlab import api

    if a.file == "-":
        text, gamma = sys.stdin.read(), None
    else:
        path = Path(a.file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise GenlabError(f"cannot read {a.file} as UTF-8 text ({e}); give a text file") from None
        gamma = recorded_gamma(path.with_suffix(".json"))
    m = api.load(a.run)
    found = m.detect_watermark(text, a.key, gamma=a.gamma if a.gamma is not None else gamma,
                               threshold=a.threshold, calibrate=a.calibrate)
    print(found.summary())


def recorded_gamma(sidecar: Path) -> float | None:
    """The gamma a genlab text was marked with, from its provenance sidecar, if it has one."""
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
        return float(record["watermark"]["gamma"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
