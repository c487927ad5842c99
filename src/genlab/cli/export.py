"""`genlab export` (a run in another tool's format), `genlab import` (a run from another tool's weights) and
`genlab demo` (small models on built-in data)."""

from __future__ import annotations

import sys


def add_parsers(sub) -> None:
    p = sub.add_parser("export", help="write a run in another tool's format")
    p.set_defaults(handler=run_export)
    p.add_argument("run", help="a genlab run directory (a gpt text model)")
    p.add_argument("out", help="the folder to write (new or empty)")
    p.add_argument("--format", default="hf-gpt2", choices=["hf-gpt2"],
                   help="hf-gpt2 (the default): a transformers GPT-2 directory with its tokenizer")

    p = sub.add_parser("import", help="make a run from a transformers GPT-2 directory (the reverse of export)")
    p.set_defaults(handler=run_import)
    p.add_argument("src", metavar="HF_DIR", help="a directory transformers' save_pretrained wrote (safetensors)")
    p.add_argument("--out", required=True, metavar="RUN", help="the new run directory (new or empty)")
    p.add_argument("--format", default="hf-gpt2", choices=["hf-gpt2"],
                   help="hf-gpt2 (the default): a transformers GPT-2 directory")

    p = sub.add_parser("demo", help="train a small model on built-in data and show samples")
    p.set_defaults(handler=run_demo)
    p.add_argument("--out", default="runs/demo", help="run directory of the text model (default runs/demo)")
    p.add_argument("--minutes", type=float, default=1.5, help="training budget of the text model (default 1.5)")


def run_export(a, argv: list[str]) -> None:
    from genlab import api

    print(api.export(a.run, a.out, format=a.format))


def run_import(a, argv: list[str]) -> None:
    from genlab import api

    run = api.import_run(a.src, out=a.out, format=a.format)
    print(run)
    print(f"genlab: sample it with: genlab sample {run} --prompt \"...\"", file=sys.stderr)


def run_demo(a, argv: list[str]) -> None:
    from genlab import api

    api.demo(out=a.out, minutes=a.minutes)
