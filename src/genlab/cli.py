"""The command line: parses, calls genlab.api, prints. A user mistake is one line and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys

# OpenMP threads that spin while waiting for work were measured to slow training steps 3-8x on a
# busy 2-core machine, while on an idle one passive waiting made small steps ~40% slower (27 -> 38 ms).
# So wait passively only when other work already keeps the cores busy. Must be set before torch loads.
if os.getloadavg()[0] > 0.75 * (os.cpu_count() or 1):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from genlab.errors import GenlabError  # noqa: E402


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset, or resume a run")
    p.add_argument("data", nargs="?", help="dataset name (text:pydocs, text:pystdlib) or a path to .txt/.md")
    p.add_argument("--family", help="gpt or lstm (default gpt)")
    p.add_argument("--config", help="TOML or YAML file of settings (flags override it)")
    p.add_argument("--resume", metavar="RUN", help="continue this run exactly where it stopped")
    p.add_argument("--out", metavar="RUN", help="run directory to create (default runs/FAMILY-DATA)")
    p.add_argument("--tokenizer", choices=["char", "bpe"])
    p.add_argument("--vocab-size", type=int, help="BPE vocabulary size (default 1024)")
    for name, kind, text in [
        ("n-layer", int, "layers"), ("n-head", int, "attention heads (gpt)"), ("n-embd", int, "width"),
        ("block-size", int, "context length in tokens"), ("dropout", float, "dropout probability"),
        ("batch-size", int, "sequences per step"), ("lr", float, "peak learning rate"),
        ("min-lr", float, "learning rate at the end of the cosine decay"),
        ("warmup-steps", int, "linear warmup steps"), ("max-steps", int, "optimizer steps in all"),
        ("lr-decay-steps", int, "cosine horizon (default: max-steps)"),
        ("max-minutes", float, "stop (with a checkpoint) after this much wall time"),
        ("eval-interval", int, "evaluate and checkpoint every N steps"),
        ("eval-batches", int, "validation batches per evaluation"), ("weight-decay", float, "AdamW decay"),
        ("grad-clip", float, "clip the gradient norm (0 = off)"), ("seed", int, "random seed"),
        ("val-fraction", float, "share of the corpus held out (default 0.1, the end)"),
    ]:
        p.add_argument(f"--{name}", type=kind, help=text)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the training step")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_sampling(p) -> None:
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy; higher = more surprising")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--stop", action="append", default=[], help="stop at this string (repeatable)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--num-samples", type=int, default=1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genlab", description="Train, sample and evaluate generative models.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)

    p = sub.add_parser("sample", help="generate from a trained run")
    p.add_argument("run", help="run directory")
    _add_sampling(p)
    p.add_argument("--checkpoint", default="last", help="last or best")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])

    p = sub.add_parser("eval", help="validation loss, perplexity, bits per character")
    p.add_argument("run")
    p.add_argument("data", nargs="?", help="evaluate on another dataset (its validation split by default)")
    p.add_argument("--split", default="val", help="val, train or all")
    p.add_argument("--block-size", type=int, default=None)
    p.add_argument("--max-tokens", type=int, default=None, help="evaluate at most this many tokens")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("export", help="write a run in another tool's format")
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--format", default="hf-gpt2", help="hf-gpt2")

    p = sub.add_parser("demo", help="train a small model on built-in data and show samples")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--minutes", type=float, default=2.0, help="training budget")
    return parser


def cmd_train(a) -> None:
    from genlab import api

    settings = {k: v for k, v in vars(a).items() if k not in ("command", "data", "config", "resume", "quiet")}
    api.train(a.data, config=a.config, resume=a.resume, quiet=a.quiet, **settings)


def cmd_sample(a) -> None:
    from genlab import api

    m = api.load(a.run, checkpoint=a.checkpoint, device=a.device, precision=a.precision)
    controls = dict(max_new_tokens=a.max_new_tokens, temperature=a.temperature, top_k=a.top_k, top_p=a.top_p,
                    repetition_penalty=a.repetition_penalty, stop=a.stop, seed=a.seed, num_samples=a.num_samples)
    out = sys.stdout
    if a.num_samples == 1:
        pieces = m.stream(a.prompt, **controls)
        first = next(pieces, "")  # validates the prompt and controls before anything is printed
        out.write(a.prompt + first)
        for piece in pieces:
            out.write(piece)
            out.flush()
        out.write("\n")
    else:
        for i, text in enumerate(m.generate(a.prompt, **controls)):
            out.write(f"--- sample {i + 1} ---\n{a.prompt}{text}\n")
    print(f"(seed {m.last_seed})", file=sys.stderr)


def cmd_eval(a) -> None:
    from genlab import api

    metrics = api.evaluate(a.run, a.data, split=a.split, block_size=a.block_size, max_tokens=a.max_tokens,
                           device=a.device)
    for k, v in metrics.items():
        print(f"{k}: {v}")


def cmd_export(a) -> None:
    from genlab import api

    print(api.export(a.run, a.out, format=a.format))


def cmd_demo(a) -> None:
    from genlab.demo import demo

    demo(out=a.out, minutes=a.minutes)


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "export": cmd_export, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
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
