"""`genlab eval`: measure a run (text: loss, perplexity, bits/char; images: Fréchet distance, KID, ...;
music: loss, parse rate, distribution distances, originality). Each modality takes its own options;
one it does not take is a one-line error. It prints the data and split measured, then each figure with
whether higher or lower is better and its baseline; metrics.json keeps every evaluation under its own key."""

from __future__ import annotations

import sys

from genlab.cli.sample import add_image_flags

SAMPLING_OPTIONS = ("num_samples", "seed", "temperature", "top_k", "max_new_tokens", "distribution_samples",
                    "label", "steps", "guidance", "eta", "sampler", "weights", "code_samples")


def add_parsers(sub) -> None:
    p = sub.add_parser("eval", help="text: loss, perplexity, bits/char; images: Fréchet distance, KID, ...")
    p.set_defaults(handler=run)
    p.add_argument("run")
    from genlab.modalities import builtin_datasets  # the wings' __init__ only: no torch at parse time

    p.add_argument("data", nargs="?", help="evaluate on another dataset, its validation split by default: "
                   f"a built-in one ({', '.join(builtin_datasets())}) or a path")
    p.add_argument("--split", default=None, help="val (default), train or all; each is kept apart in metrics.json")
    p.add_argument("--block-size", type=int, default=None,
                   help="text: context of the scored windows, 1 .. the trained block size (default: that size)")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="evaluate at most this many tokens (default: the whole split)")
    p.add_argument("--code-samples", type=int, default=None, help="code runs (text:pystdlib, a folder of .py): "
                   "functions sampled to check with ast and compile against as many real ones (default 32)")
    p.add_argument("--device", default="auto", help="auto (default: cuda where there is one), cpu or cuda")
    p.add_argument("--num-samples", type=int, default=None,
                   help="samples to measure (images: default 1000; music: default 100)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                   help="text and music: score the model as sampling at this precision runs it (default fp32)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default 0)")
    add_image_flags(p)
    g = p.add_argument_group("music")
    g.add_argument("--temperature", type=float, default=None, help="sampling temperature (default 1.0)")
    g.add_argument("--top-k", type=int, default=None,
                   help="sample from the k likeliest tokens only, k >= 1 (default: all)")
    g.add_argument("--max-new-tokens", type=int, default=None, help="longest sampled tune in tokens (default 512)")
    g.add_argument("--distribution-samples", type=int, default=None,
                   help="sampled tunes for the distribution distances (default 1000; --num-samples of them are "
                        "checked in music21)")


def run(a, argv: list[str]) -> None:
    from genlab import api

    sampling = {k: getattr(a, k) for k in SAMPLING_OPTIONS if getattr(a, k) is not None}
    metrics = api.evaluate(a.run, a.data, split=a.split, block_size=a.block_size, max_tokens=a.max_tokens,
                           device=a.device, precision=a.precision, **sampling)
    print(api.format_metrics(a.run, metrics))
    print(f"(kept in {a.run}/metrics.json beside earlier evaluations; the model card shows \"val\")", file=sys.stderr)
