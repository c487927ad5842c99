"""The command line: parses, calls genlab.api, prints. A user mistake is one line and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
import time


def _cores_busy_now(seconds: float = 0.05) -> float:
    """The share of CPU time other processes used over a short look at /proc/stat (0 where unknown)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


# OpenMP threads that spin while waiting for work were measured to slow training steps 3-8x on a
# busy 2-core machine, while on an idle one passive waiting made small steps ~40% slower (27 -> 38 ms).
# So wait passively only when other work keeps the cores busy right now (the load average lags by
# a minute, and counts our own last run). Must be set before torch loads.
if "OMP_WAIT_POLICY" not in os.environ and _cores_busy_now() > 0.5:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from genlab.errors import GenlabError  # noqa: E402


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset, or resume a run")
    p.add_argument("data", nargs="?", help="dataset name (text:pydocs, text:pystdlib, images:digits, "
                   "images:mnist:DIR) or a path to .txt/.md or to a folder of PNG/JPEG")
    p.add_argument("--family", help="gpt, lstm, vae, gan or diffusion (default gpt)")
    p.add_argument("--config", help="TOML or YAML file of settings (flags override it)")
    p.add_argument("--resume", metavar="RUN", help="continue this run exactly where it stopped")
    p.add_argument("--out", metavar="RUN", help="run directory to create (default runs/FAMILY-DATA)")
    p.add_argument("--tokenizer", choices=["char", "bpe", "abc", "events"],
                   help="text: char or bpe; music: abc or events (default: chosen by the files)")
    p.add_argument("--vocab-size", type=int, help="BPE vocabulary size (default 1024)")
    for name, kind, text in [
        ("n-layer", int, "layers"), ("n-head", int, "attention heads (gpt)"), ("n-embd", int, "width"),
        ("block-size", int, "context length in tokens"), ("dropout", float, "dropout probability"),
        ("activation", str, "gpt: gelu (exact, default) or gelu_tanh (GPT-2's approximation)"),
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
    ]:
        p.add_argument(f"--{name}", type=kind, help=text)
    # images (vae, gan, diffusion)
    p.add_argument("--conditional", action="store_true", default=None, help="condition on class labels (images)")
    p.add_argument("--size", dest="image_size", type=int, help="image side in pixels (default 16 for digits)")
    p.add_argument("--color", choices=["auto", "grey", "rgb"], help="image channels (default auto)")
    p.add_argument("--augment", help="image augmentation: flip, shift, flip,shift or none")
    for name, kind, text in [
        ("width", int, "conv channels (vae, diffusion)"), ("latent-dim", int, "VAE latent size"),
        ("beta", float, "VAE KL weight"), ("z-dim", int, "GAN noise size"), ("g-width", int, "GAN generator width"),
        ("d-width", int, "GAN discriminator width"), ("timesteps", int, "diffusion steps T"),
        ("label-dropout", float, "diffusion: share of labels dropped, for guidance"),
        ("ema-decay", float, "decay of the weight average (gan, diffusion)"),
    ]:
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
    for name, kind, text in [
        ("nproc-per-node", int, "processes per node (e.g. one per GPU, or 2 on a 2-core CPU)"),
        ("nnodes", int, "number of nodes (default 1)"), ("node-rank", int, "this node's rank, 0 .. nnodes-1"),
        ("master-addr", str, "address of the node with rank 0"), ("master-port", int, "its port (default 29500)"),
        ("max-restarts", int, "restart failed workers this many times; each restart resumes from the last checkpoint"),
    ]:
        d.add_argument(f"--{name}", type=kind, help=text)


def _add_sampling(p) -> None:
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy; higher = more surprising")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--stop", action="append", default=[], help="stop at this string (repeatable)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--num-samples", type=int, default=None, help="default 1 (text) or 64 (images)")


def _add_image_controls(p) -> None:
    g = p.add_argument_group("images")
    g.add_argument("--label", type=int, default=None, help="class to draw (conditional models)")
    g.add_argument("--steps", type=int, default=None, help="diffusion denoising steps")
    g.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (1 = conditional model alone, 0 = unconditional)")
    g.add_argument("--eta", type=float, default=None, help="DDIM noise (0 = deterministic)")
    g.add_argument("--sampler", choices=["ddim", "ddpm"], default=None, help="diffusion sampler")
    g.add_argument("--weights", choices=["ema", "raw"], default=None, help="averaged or last weights")


IMAGE_CONTROLS = ("label", "steps", "guidance", "eta", "sampler", "weights")


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
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                   help="int8: weights in int8 (text and music on CPU), a quarter of the bytes read per token")
    _add_image_controls(p)
    p.add_argument("--interpolate", action="store_true", help="images: walk between two noises")
    p.add_argument("-o", "--out-dir", default=None,
                   help="images: folder for grid.png and the samples; music: folder for .abc/.mid/.wav tunes")
    p.add_argument("--renderer", default="auto", choices=["auto", "additive", "fluidsynth"],
                   help="music .wav: FluidSynth with a General-MIDI soundfont where installed (auto), or genlab's "
                        "own additive synthesizer")

    p = sub.add_parser("eval", help="text: loss, perplexity, bits/char; images: Fréchet distance, KID, ...")
    p.add_argument("run")
    p.add_argument("data", nargs="?", help="evaluate on another dataset (its validation split by default)")
    p.add_argument("--split", default="val", help="val, train or all")
    p.add_argument("--block-size", type=int, default=None)
    p.add_argument("--max-tokens", type=int, default=None, help="evaluate at most this many tokens")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-samples", type=int, default=None,
                   help="samples to measure (images: default 1000; music: default 100)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                   help="text and music: score the model as sampling at this precision runs it")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default 0)")
    _add_image_controls(p)
    g = p.add_argument_group("music")
    g.add_argument("--temperature", type=float, default=None, help="sampling temperature (default 1.0)")
    g.add_argument("--top-k", type=int, default=None, help="sample from the k likeliest tokens only")
    g.add_argument("--max-new-tokens", type=int, default=None, help="longest sampled tune in tokens (default 512)")
    g.add_argument("--distribution-samples", type=int, default=None,
                   help="sampled tunes for the distribution distances (default 1000; --num-samples of them are "
                        "checked in music21)")

    p = sub.add_parser("export", help="write a run in another tool's format")
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--format", default="hf-gpt2", help="hf-gpt2")

    p = sub.add_parser("demo", help="train a small model on built-in data and show samples")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--minutes", type=float, default=1.5, help="training budget of the text model")
    return parser


DIST_FLAGS = ("nproc_per_node", "nnodes", "node_rank", "master_addr", "master_port", "max_restarts")


def cmd_train(a, argv: list[str]) -> None:
    from genlab import api
    from genlab.training.distributed import launch, under_torchrun

    dist = {k: getattr(a, k) for k in DIST_FLAGS if getattr(a, k) is not None}
    if dist and not under_torchrun():
        code = launch(_without_flags(argv, DIST_FLAGS), a.nproc_per_node or 1, a.nnodes or 1, a.node_rank or 0,
                      a.master_addr, a.master_port, a.max_restarts or 0)
        if code != 0:
            raise GenlabError(f"distributed training failed (torchrun exit code {code}); the error is printed above; "
                              "fix it and continue with --resume RUN")
        return
    skip = ("command", "data", "config", "resume", "quiet", *DIST_FLAGS)
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


def cmd_sample(a) -> None:
    from genlab import api

    m = api.load(a.run, checkpoint=a.checkpoint, device=a.device, precision=a.precision)
    if getattr(m, "modality", "text") == "images":
        return _sample_images(m, a)
    if getattr(m, "modality", "text") == "music":
        return _sample_music(m, a)
    a.num_samples = 1 if a.num_samples is None else a.num_samples
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


def _sample_images(m, a) -> None:
    controls = {k: getattr(a, k) for k in IMAGE_CONTROLS}
    n = 64 if a.num_samples is None else a.num_samples
    images = m.generate(num_samples=n, seed=a.seed, interpolate=a.interpolate, **controls)
    out = a.out_dir or "samples"
    paths = m.save_images(images, out)
    print(f"wrote {paths[0]} and {len(paths) - 1} images to {out}/ (seed {m.last_seed})")


def _sample_music(m, a) -> None:
    """Tunes: printed as ABC/event text, or written as .abc/.mid/.wav into -o FOLDER."""
    tunes = m.generate(a.prompt, max_new_tokens=a.max_new_tokens if a.max_new_tokens != 256 else 512,
                       temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, repetition_penalty=a.repetition_penalty,
                       stop=a.stop, seed=a.seed, num_samples=a.num_samples or 1)
    if a.out_dir is None:
        for t in tunes:
            body = m.abc(t) if m.tokenizer.kind == "abc" else t.text
            print(f"--- tune {t.index} ---\n{body}")
    else:
        paths = m.write(tunes, a.out_dir, renderer=a.renderer)
        for t in tunes:
            print(f"tune {t.index}: {', '.join(t.files)}"
                  + (f"  (could not convert: {t.error})" if t.error else ""))
        print(f"wrote {len(paths)} files to {a.out_dir}/", file=sys.stderr)
    print(f"(seed {m.last_seed})", file=sys.stderr)


def cmd_eval(a) -> None:
    from genlab import api

    names = ("num_samples", "seed", "temperature", "top_k", "max_new_tokens", "distribution_samples",
             *IMAGE_CONTROLS)
    sampling = {k: getattr(a, k) for k in names if getattr(a, k) is not None}
    metrics = api.evaluate(a.run, a.data, split=a.split, block_size=a.block_size, max_tokens=a.max_tokens,
                           device=a.device, precision=a.precision, **sampling)
    if "frechet_distance" in metrics:
        from genlab.evaluation.images import metrics_table

        print(metrics_table(metrics))
        print(f"(written to {a.run}/metrics.json)", file=sys.stderr)
        return
    for k, v in metrics.items():
        print(f"{k}: {v}")


def cmd_export(a) -> None:
    from genlab import api

    print(api.export(a.run, a.out, format=a.format))


def cmd_demo(a) -> None:
    from genlab.demo import demo

    demo(out=a.out, minutes=a.minutes)


COMMANDS = {"sample": cmd_sample, "eval": cmd_eval, "export": cmd_export, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            cmd_train(args, argv)
        else:
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
