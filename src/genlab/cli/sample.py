"""`genlab sample`: generate from a trained run, print it or write it with provenance.

The run's sampler declares the controls it takes and their defaults (`controls`), the options its
writer takes (`write_options`), where outputs go without -o (`default_out_dir`), whether it streams,
and how its outputs are shown; this module only passes on what the user gave.
"""

from __future__ import annotations

import sys

SAMPLING_FLAGS = [  # (flag, type, help); a flag left out takes the sampler's own default
    ("max-new-tokens", int, "tokens to sample (default 256; music: 512)"),
    ("temperature", float, "0 = greedy; higher = more surprising (default 0.8)"),
    ("top-k", int, "sample from the k likeliest tokens only"),
    ("top-p", float, "sample from the smallest set of tokens whose probability reaches p"),
    ("repetition-penalty", float, "divide the logits of tokens already present (default 1.0 = off)"),
    ("seed", int, "random seed (default: a fresh one, printed)"),
    ("num-samples", int, "default 1 (text, music) or 64 (images)"),
]
IMAGE_FLAGS = [
    ("label", int, None, "class to draw (conditional models)"),
    ("steps", int, None, "diffusion denoising steps"),
    ("guidance", float, None, "classifier-free guidance scale (1 = conditional model alone, 0 = unconditional)"),
    ("eta", float, None, "DDIM noise (0 = deterministic)"),
    ("sampler", str, ["ddim", "ddpm"], "diffusion sampler"),
    ("weights", str, ["ema", "raw"], "averaged or last weights"),
]


def add_image_flags(p) -> None:
    g = p.add_argument_group("images")
    for name, kind, choices, text in IMAGE_FLAGS:
        g.add_argument(f"--{name}", type=kind, choices=choices, default=None, help=text)


def add_parsers(sub) -> None:
    p = sub.add_parser("sample", help="generate from a trained run")
    p.set_defaults(handler=run)
    p.add_argument("run", help="run directory")
    p.add_argument("--prompt", default=None, help="text to continue (music: a header such as 'M:6/8 K:Dmaj')")
    for name, kind, text in SAMPLING_FLAGS:
        p.add_argument(f"--{name}", type=kind, default=None, help=text)
    p.add_argument("--stop", action="append", default=None, help="stop at this string (repeatable)")
    p.add_argument("--checkpoint", default="last", help="last or best")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                   help="int8: weights in int8 (text and music on CPU), a quarter of the bytes read per token")
    add_image_flags(p)
    p.add_argument("--interpolate", action="store_true", default=None, help="images: walk between two noises")
    p.add_argument("-o", "--out-dir", default=None,
                   help="folder for the outputs, each with its provenance (images: default samples/, grid.png and "
                        "one PNG each; music: .abc/.mid/.wav tunes; text: a .txt per sample)")
    p.add_argument("--renderer", default="auto", choices=["auto", "additive", "fluidsynth"],
                   help="music .wav: FluidSynth with a General-MIDI soundfont where installed (auto), or genlab's "
                        "own additive synthesizer")


def run(a, argv: list[str]) -> None:
    from genlab import api

    m = api.load(a.run, checkpoint=a.checkpoint, device=a.device, precision=a.precision)
    given = {k: v for k, v in vars(a).items() if k in m.controls and v is not None}
    controls = {**m.controls, **given}
    out_dir = a.out_dir or m.default_out_dir
    out = sys.stdout
    if out_dir is None and m.streams(controls):
        pieces = m.stream(**controls)
        first = next(pieces, "")  # validates the prompt and controls before anything is printed
        out.write(controls.get("prompt", "") + first)
        for piece in pieces:
            out.write(piece)
            out.flush()
        out.write("\n")
    else:
        outputs = m.generate(**controls)
        if out_dir is None:
            print(m.show(outputs))
        else:
            paths = m.write(outputs, out_dir, **{k: getattr(a, k) for k in m.write_options})
            print(m.summary(outputs, paths, out_dir))
    print(f"(seed {m.last_seed})", file=sys.stderr)
