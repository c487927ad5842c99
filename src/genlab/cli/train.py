"""`genlab train`: train a model on a dataset, resume a run, or launch either under torchrun."""

from __future__ import annotations

from genlab.errors import GenlabError

# (flag, type, help). The defaults shown are the families' own (their config classes and train_defaults) and
# TrainConfig's; tests/training/test_budgets.py checks them against those, so they cannot drift apart.
MODEL_FLAGS = [  # routed to the family's config by genlab.api.train
    ("n-layer", int, "layers, >= 1 (default gpt 4, lstm 2)"), ("n-head", int, "gpt: attention heads, dividing "
     "--n-embd (default 4)"), ("n-embd", int, "width, >= 1 (default gpt 128, lstm 256)"),
    ("block-size", int, "context length in tokens (default gpt 256, lstm 128)"),
    ("dropout", float, "dropout probability, 0 <= p < 1 (default 0.0)"),
    ("activation", str, "gpt: gelu (exact, default) or gelu_tanh (GPT-2's approximation)"),
]
IMAGES = "vae, gan, diffusion"
TRAINING_FLAGS = [
    ("batch-size", int, f"sequences per micro-batch (default 12; {IMAGES}: 128)"),
    ("window", int, "token models: tokens per training window, at most --block-size (default: --block-size); "
     "shorter windows fit a few short examples"),
    ("grad-accum", int, "micro-batches per optimizer step, for batches that do not fit in memory (default 1)"),
    ("lr", float, "peak learning rate (default 1e-3; vae, diffusion: 2e-3; gan: 2e-4)"),
    ("min-lr", float, "learning rate at the end of the cosine decay, 0 .. --lr (default 1e-4; vae: 2e-4; "
     "gan: 2e-4)"),
    ("warmup-steps", int, "linear warmup steps, >= 0 (default 100; vae: 50; gan: 0)"),
    ("max-steps", int, "optimizer steps in all (default 2000; vae, gan: 3000; diffusion: 4000; with only "
     "--max-minutes: as many as fit)"),
    ("lr-decay-steps", int, "cosine horizon (default: max-steps, or the steps that fit in --max-minutes)"),
    ("max-minutes", float, "wall-time budget: the steps that fit are measured and the schedule planned for them; "
     "stops with a checkpoint (default: none)"),
    ("eval-interval", int, "evaluate and checkpoint every N steps (default 250; diffusion: 500)"),
    ("eval-batches", int, "validation batches per evaluation (default 20)"),
    ("log-interval", int, "write a metrics.jsonl row every N steps (default 10)"),
    ("weight-decay", float, f"AdamW decay of the weight matrices (default 0.1; {IMAGES}: 0.0)"),
    ("grad-clip", float, "clip the gradient norm at this, 0 = off (default 1.0; gan: 0)"),
    ("seed", int, "random seed: the same seed trains the same weights (default 1337)"),
    ("val-fraction", float, "share of the corpus held out, 0 < f < 1 (default 0.1, the end)"),
]
IMAGE_FAMILY_FLAGS = [  # vae, gan, diffusion
    ("width", int, "conv channels (vae, diffusion; default 32)"), ("latent-dim", int, "VAE latent size (default 16)"),
    ("beta", float, "VAE KL weight (default 1.0)"), ("z-dim", int, "GAN noise size (default 64)"),
    ("g-width", int, "GAN generator width (default 32)"), ("d-width", int, "GAN discriminator width (default 32)"),
    ("timesteps", int, "diffusion steps T (default 1000)"),
    ("label-dropout", float, "diffusion: share of labels (or captions) dropped, for guidance (default 0.15)"),
    ("text-dim", int, "diffusion --captions: the caption encoder's width (default 128)"),
    ("text-layers", int, "diffusion --captions: the caption encoder's Transformer layers (default 2)"),
    ("ema-decay", float, "decay of the weight average (gan, diffusion; default 0.999)"),
    ("snr-gamma", float, "diffusion: Min-SNR loss weighting with this gamma (Hang et al. 2023; 5 is theirs), "
     "0 = plain MSE (default 0.0)"),
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
    from genlab.modalities import builtin_datasets  # the wings' __init__ only: no torch at parse time

    p.add_argument("data", nargs="?", help=f"a built-in dataset ({', '.join(builtin_datasets())}) or a path: "
                   "a text or code file or folder, a folder of PNG/JPEG, or of ABC/MIDI/MusicXML")
    p.add_argument("--family", help="gpt, lstm, vae, gan or diffusion (default gpt)")
    p.add_argument("--preset", choices=["tiny", "small", "base"],
                   help="the family's model size by name (default: its own defaults, which are small); flags "
                   "override its settings; `genlab presets` lists them with their parameter counts")
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
    p.add_argument("--captions", action="store_true", default=None,
                   help="text-to-image (diffusion): condition on each image's caption (images:digit-scenes, or a "
                   "folder with a .txt beside each image or a metadata.jsonl), sampled with --prompt")
    p.add_argument("--allow-uncaptioned", action="store_true", default=None,
                   help="with --captions: train images that have no caption as the empty caption, instead of "
                   "refusing the folder")
    p.add_argument("--descriptions", action="store_true", default=None,
                   help="text-to-music (ABC): read each tune after a description made from its own header (\"a jig in "
                   "G major\", \"a reel in D major, 4/4\"), so genlab sample --prompt can describe the tune wanted")
    p.add_argument("--size", dest="image_size", type=int,
                   help="image side in pixels (default 16 for digits, 28 for MNIST, 32 for folders)")
    p.add_argument("--color", choices=["auto", "grey", "rgb"], help="image channels (default auto)")
    p.add_argument("--fim-rate", type=float, help="code: the share of training windows rearranged for "
                   "fill-in-the-middle (prefix, suffix, then middle, between sentinel tokens), so that genlab sample "
                   "--suffix can fill a gap; StarCoder trains with 0.5 (default: none)")
    p.add_argument("--augment", help="image augmentation: flip, shift, flip,shift or none (default none)")
    p.add_argument("--exclude-labels", metavar="NAMES", help="images: leave out the images of these classes "
                   "(comma-separated class names, e.g. 9); the model keeps their labels, to fine-tune on later")
    p.add_argument("--extensions", help="folder sources: the file extensions to read, comma-separated "
                   "(e.g. py,md,txt; default: text and source files for text, every music or image "
                   "suffix; build, cache and VCS folders are never read)")
    for name, kind, text in IMAGE_FAMILY_FLAGS:
        p.add_argument(f"--{name}", type=kind, help=text)
    p.add_argument("--coords", action="store_true", default=None,
                   help="diffusion: give the U-Net two coordinate channels (CoordConv), so a caption's left of and "
                   "above find their place sooner")
    p.add_argument("--schedule", choices=["linear", "cosine"], help="diffusion noise schedule (default cosine)")
    p.add_argument("--loss", choices=["nonsaturating", "hinge"], help="GAN loss (default nonsaturating)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="auto (default): bf16 where it is measured faster here, else fp32")
    p.add_argument("--device", help="auto (default: cuda where there is one), cpu or cuda")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the model's forward (text families; image families call their "
                   "sub-networks directly and run eagerly)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    d = p.add_argument_group("distributed (runs the same command under torchrun)")
    for name, kind, text in DISTRIBUTED_FLAGS:
        d.add_argument(f"--{name}", type=kind, help=text)

    p = sub.add_parser("presets", help="list every family's model sizes (--preset) with their parameter counts")
    p.set_defaults(handler=run_presets)
    p.add_argument("--vocab-size", type=int, default=96, help="token models: count at this vocabulary (default 96)")
    p.add_argument("--size", dest="image_size", type=int, default=16,
                   help="image models: count at this image side in pixels (default 16, grey)")


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


def run_presets(a, argv: list[str]) -> None:
    from genlab import api

    rows = api.presets(vocab_size=a.vocab_size, image_size=a.image_size)
    print(f"{'family':<10} {'preset':<7} {'parameters':>11}  settings")
    for row in rows:
        settings = ", ".join(f"{k}={v}" for k, v in row["settings"].items())
        print(f"{row['family']:<10} {row['preset']:<7} {_count(row['parameters']):>11}  {settings}")
    print(f"(token models at a {a.vocab_size}-token vocabulary, image models at {a.image_size}x{a.image_size} grey; "
          "a run's own count is printed when it starts)")


def _count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


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
