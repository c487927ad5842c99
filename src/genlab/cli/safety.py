"""`genlab detect`: whether a text or tune carries a key's green-list watermark, or an image genlab's invisible
mark; `genlab inspect`: the provenance a file carries, and whether it was altered since; `genlab card`: a run's
model card."""

from __future__ import annotations

import sys


def add_parsers(sub) -> None:
    p = sub.add_parser("detect", help="find a watermark: a key's in a text or tune, genlab's in an image",
                       description="Score a text or ABC tune for the green-list watermark that genlab sample "
                       "--watermark-key put in it (the z-score, green pairs over scored pairs, watermarked yes or no), "
                       "or look for genlab's invisible mark in an image (.png, .jpg). Exit code 0: found; 1: not.")
    p.set_defaults(handler=run)
    p.add_argument("file", metavar="FILE", help="the text, tune or image to test, or - for a text on standard input")
    p.add_argument("--key", help="the secret key the text may have been marked with (texts and tunes)")
    p.add_argument("--run", help="the run whose tokenizer made the text (texts and tunes)")
    p.add_argument("--gamma", type=float, default=None, help="the green share it was marked with (default: from "
                   "FILE's .json provenance beside it, else 0.25)")
    p.add_argument("--threshold", type=float, default=None, help="z-score above which it is called watermarked "
                   "(default 4)")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="test against gamma instead of the key's green share on the run's own training text")

    p = sub.add_parser("card", help="rewrite a run's model card (README.md)",
                       description="Write RUN/README.md, a Hugging Face style model card with YAML front matter, from "
                       "what the run holds now: data, training, evaluation, bias, watermark. train, eval, finetune "
                       "and align refresh it themselves.")
    p.set_defaults(handler=card)
    p.add_argument("runs", metavar="RUN", nargs="+", help="the runs whose cards to write")
    p.add_argument("--print", action="store_true", help="print the card too")

    p = sub.add_parser("inspect", help="show where a file genlab wrote came from",
                       description="Print the provenance record a genlab output carries (PNG, .txt with its .json, "
                       ".abc, .mid, .wav): model, checkpoint, seed, controls, time, watermark, and whether the content "
                       "still matches it. Exit code 0: intact; 1: no provenance, or the file was altered.")
    p.set_defaults(handler=inspect)
    p.add_argument("files", metavar="FILE", nargs="+", help="the files to inspect")


def card(a, argv: list[str]) -> None:
    from genlab import api

    for run in a.runs:
        path = api.card(run)
        print(path.read_text(encoding="utf-8") if a.print else f"wrote {path}")


def inspect(a, argv: list[str]) -> int:
    from genlab import api

    found = [api.inspect(f) for f in a.files]
    print("\n\n".join(f.summary() for f in found))
    return 0 if all(f.status in ("intact", "unsealed") for f in found) else 1


def run(a, argv: list[str]) -> int:
    from genlab import api

    text = sys.stdin.read() if a.file == "-" else None
    found = api.detect(a.file, key=a.key, run=a.run, gamma=a.gamma, threshold=a.threshold, calibrate=a.calibrate,
                       text=text)
    print(found.summary())
    return 0 if found.watermarked else 1
