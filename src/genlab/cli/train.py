"""`genlab train`: train a model on a dataset, resume a run, or launch either under torchrun."""

from __future__ import annotations

from genlab.errors import GenlabError

MODEL_FLAGS = [  # (flag, type, help): routed to the family's config by genlab.api.train
    ("n-layer", int, "layers"), ("n-head", int, "attention heads (gpt)"), ("n-embd", int, "width"),
    ("block-size", int, "context length in tokens"), ("dropout", float, "dropout probability"),
    ("activation", str, "gpt: gelu (exact, default) or gelu_tanh (GPT-2's approximation)"),
]
TRAINING_FLAGS = [
    ("batch-size", int, "sequences per step"), ("lr", float, "peak learning rate"),
    ("min-lr", float, "learning rate at the end of the cosine decay"),
    ("warmup-steps", int, "linear warmup steps"), ("max-steps", int, "optimizer steps in all"),
    ("lr-decay-steps", int, "cosine horizon (default: max-steps)"),
    ("max-minutes", float, "stop (with a checkpoint) after this much wall time"),
    ("eval-interval", int, "evaluate and checkpoint every N steps"),
    ("eval-batches", int, "validation batches per evaluation"),
    ("log-interval", int, "write a metrics.jsonl row every N steps (default 10)"),
    ("weight-decay", float, "AdamW decay"),
    ("grad-clip", float, "clip the gradient norm (0 = off)"), ("seed", int, "random seed"),
    ("val-fraction", float, "share of the corpus held out (default 0.1, the end)"),
]
IMAGE_FAMILY_FLAGS = [  # vae, gan, diffusion
    ("width", int, "conv channels (vae, diffusion)"), ("latent-dim", int, "VAE latent size"),
    ("beta", float, "VAE KL weight"), ("z-dim", int, "GAN noise size"), ("g-width", int, "GAN generator width"),
    ("d-width", int, "GAN discriminator width"), ("timesteps", int, "diffusion steps T"),
    ("label-dropout", float, "diffusion: share of labels dropped, for guidance"),
    ("ema-decay", float, "decay of the weight average (gan, diffusion)"),
]
DISTRIBUTED_FLAGS = [
    ("nproc-per-node", int, "processes per node (e.g. one per GPU, or 2 on a 2-core CPU)"),
    ("nnodes", int, "number of nodes (default 1)"), ("node-rank", int, "this node's rank, 0 .. nnodes-1"),
    ("master-addr", str, "address of the node with rank 0"), ("master-port", int, "its port (default 29500)"),
    ("max-restarts", int, "restart failed workers this many times; each restart resumes from the last checkpoint"),
]
DISTRIBUTED = tuple(name.replace("-", "_") for name, _, _ in DISTRIBUTED_FLAGS)


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset, or resume a run")
    p.set_defaults(handler=run)
    p.add_argument("data", nargs="?", help="dataset name (text:pydocs, text:pystdlib, images:digits, "
                   "images:mnist:DIR) or a path to .txt/.md or to a folder of PNG/JPEG")
    p.add_argument("--family", help="gpt, lstm, vae, gan or diffusion (default gpt)")
    p.add_argument("--config", help="TOML or YAML file of settings (flags override it)")
    p.add_argument("--resume", metavar="RUN", help="continue this run exactly where it stopped")
    p.add_argument("--out", metavar="RUN", help="run directory to create (default runs/FAMILY-DATA)")
    p.add_argument("--tokenizer", choices=["char", "bpe", "abc", "events"],
                   help="text: char or bpe; music: abc or events (default: chosen by the files)")
    p.add_argument("--vocab-size", type=int, help="BPE vocabulary size (default 1024)")
    for name, kind, text in MODEL_FLAGS + TRAINING_FLAGS:
        p.add_argument(f"--{name}", type=kind, help=text)
    # images (vae, gan, diffusion)
    p.add_argument("--conditional", action="store_true", default=None, help="condition on class labels (images)")
    p.add_argument("--size", dest="image_size", type=int, help="image side in pixels (default 16 for digits)")
    p.add_argument("--color", choices=["auto", "grey", "rgb"], help="image channels (default auto)")
    p.add_argument("--augment", help="image augmentation: flip, shift, flip,shift or none")
    for name, kind, text in IMAGE_FAMILY_FLAGS:
        p.add_argument(f"--{name}", type=kind, help=text)
    p.add_argument("--schedule", choices=["linear", "cosine"], help="diffusion noise schedule")
    p.add_argument("--loss", choices=["nonsaturating", "hinge"], help="GAN loss")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the model's forward (text families; image families call their "
                   "sub-networks directly and run eagerly)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    d = p.add_argument_group("distributed (runs the same command under torchrun)")
    for name, kind, text in DISTRIBUTED_FLAGS:
        d.add_argument(f"--{name}", type=kind, help=text)


def run(a, argv: list[str]) -> None:
    from genlab import api

    dist = {k: getattr(a, k) for k in DISTRIBUTED if getattr(a, k) is not None}
    if dist and not api.under_torchrun():
        code = api.launch(_without_flags(argv, DISTRIBUTED), nproc_per_node=a.nproc_per_node or 1,
                          nnodes=a.nnodes or 1, node_rank=a.node_rank or 0, master_addr=a.master_addr,
                          master_port=a.master_port, max_restarts=a.max_restarts or 0)
        if code != 0:
            raise GenlabError(f"distributed training failed (torchrun exit code {code}); the error is printed above; "
                              "fix it and continue with --resume RUN")
        return
    skip = ("command", "handler", "data", "config", "resume", "quiet", *DISTRIBUTED)
    settings = {k: v for k, v in vars(a).items() if k not in skip}
    api.train(a.data, config=a.config, resume=a.resume, quiet=a.quiet, **settings)


def _without_flags(argv: list[str], names) -> list[str]:
    """argv minus the given --flags and their values (both `--flag v` and `--flag=v`)."""
    flags = {"--" + n.replace("_", "-") for n in names}
    out, skip_next = [], False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg in flags:
            skip_next = True
        elif arg.split("=", 1)[0] not in flags:
            out.append(arg)
    return out
