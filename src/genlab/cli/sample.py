"""`genlab sample`: generate from a trained run, print it or write it with provenance.

The run's sampler declares the controls it takes and their defaults (`controls`), the options its
writer takes (`write_options`), where outputs go without -o (`default_out_dir`), whether it streams,
and how its outputs are shown; this module only passes on what the user gave.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from genlab.errors import GenlabError

SAMPLING_FLAGS = [  # (flag, type, help); a flag left out takes the sampler's own default
    ("max-new-tokens", int, "tokens to sample (default 256; music: 512); past the model's context it sees only its "
                            "last block-size tokens"),
    ("temperature", float, "0 = greedy, 1 = the model's own distribution, higher = more surprising (default 0.8)"),
    ("top-k", int, "sample from the k likeliest tokens only, k >= 1 (default: all)"),
    ("top-p", float, "sample from the likeliest tokens whose probabilities add up to p, 0 < p <= 1 (default 1: all)"),
    ("repetition-penalty", float, "divide the logits of tokens already present by this, >= 1 (default 1.0 = off)"),
    ("seed", int, "random seed: the same seed gives the same output (default: a fresh one, printed)"),
    ("num-samples", int, "how many to make, >= 1 (default 1; images: 64)"),
]
IMAGE_FLAGS = [
    ("negative-prompt", str, None, "text-to-image (--captions models): the caption guidance steers away from, e.g. "
                                   "'on a white background' (default: the empty caption)"),
    ("label", str, None, "class to draw, by number or by name (conditional models; default: the classes in turn)"),
    ("steps", int, None, "diffusion denoising steps, 1 .. the training timesteps (default 20 for DDIM, all for DDPM)"),
    ("guidance", float, None, "classifier-free guidance scale >= 0: 1 = conditional model alone, 0 = unconditional "
                              "(default 1.5)"),
    ("eta", float, None, "DDIM noise >= 0: 0 = deterministic (default), 1 = DDPM-like"),
    ("sampler", str, ["ddim", "ddpm"], "diffusion sampler (default ddim)"),
    ("weights", str, ["ema", "raw"], "averaged or last weights (default ema)"),
]
WATERMARK_FLAGS = [  # (flag, alias, type, help)
    ("watermark-key", None, str, "mark the text or ABC tune with the green-list watermark of this secret key "
                                 "(Kirchenbauer et al. 2023); genlab detect finds it with the same key"),
    ("watermark-gamma", "--gamma", float, "the green share of the vocabulary, 0 < gamma < 1 (default 0.25)"),
    ("watermark-delta", "--delta", float, "added to green logits: stronger is easier to detect, costs fluency "
                                          "(default 2.0)"),
]
# every control flag, by its name in the samplers' `controls`; a run's sampler takes some of them
CONTROLS = ("prompt", "suffix", "stop", "interpolate", "truncate_prompt", "constraint",
            *(n.replace("-", "_") for n, _, _ in SAMPLING_FLAGS), *(n.replace("-", "_") for n, _, _, _ in IMAGE_FLAGS),
            *(n.replace("-", "_") for n, _, _, _ in WATERMARK_FLAGS))
ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\\\": "\\"}


def add_content_filter_flag(p) -> None:
    """--content-filter, as genlab sample, chat and serve take it."""
    p.add_argument("--content-filter", metavar="FILE|default|off", default=None,
                   help="the content filter on prompts and generated words: a TOML file of your own, default "
                   "(the built-in list) or off (default: the run's content_filter.toml where it has one, else the "
                   "built-in list)")


def add_image_flags(p, leave_out: tuple[str, ...] = ()) -> None:
    g = p.add_argument_group("images")
    for name, kind, choices, text in IMAGE_FLAGS:
        if name not in leave_out:
            g.add_argument(f"--{name}", type=kind, choices=choices, default=None, help=text)


def add_sampling_flags(p, leave_out: tuple[str, ...] = ()) -> None:
    """The sampling controls as flags, each None unless given, so a run's sampler keeps its own defaults."""
    for name, kind, text in SAMPLING_FLAGS:
        if name not in leave_out:
            p.add_argument(f"--{name}", type=kind, default=None, help=text)


def given_controls(a, leave_out: tuple[str, ...] = ()) -> dict:
    """The control flags the user gave (the sampler checks that it takes them)."""
    return {k: getattr(a, k) for k in CONTROLS if k not in leave_out and getattr(a, k, None) is not None}


def add_parsers(sub) -> None:
    p = sub.add_parser("describe", help="describe a tune, a captioned image or a text in words (the text one "
                       "model's output gives another as its prompt: genlab sample RUN --prompt-from FILE)")
    p.set_defaults(handler=run_describe)
    p.add_argument("file", help="a tune (.abc, .mid, .midi, .musicxml, .mxl), an image genlab drew from a caption "
                   "or one with a .txt beside it (.png, .jpg), or a .txt/.md")
    p.add_argument("--json", action="store_true", help="print the description and its facts as one JSON object")

    p = sub.add_parser("sample", help="generate from a trained run")
    p.set_defaults(handler=run)
    p.add_argument("run", help="run directory")
    p.add_argument("--prompt", default=None,
                   help="text to continue, - to read it from standard input (music: a header such as 'M:6/8 K:Dmaj')")
    p.add_argument("--prompt-file", metavar="FILE", default=None, help="read the prompt from this UTF-8 file")
    p.add_argument("--prompt-from", metavar="FILE", default=None,
                   help="one modality conditioning another: describe FILE (a tune .abc/.mid, a captioned image, a "
                   ".txt) as genlab describe does and prompt this model with what of it the model can take; what "
                   "carried over is printed on stderr")
    p.add_argument("--suffix", default=None, help="code: fill in the middle between --prompt and this text (a "
                   "model trained with --fim-rate); backslash escapes as for --stop")
    p.add_argument("--truncate-prompt", action="store_true", default=None,
                   help="keep a too-long prompt's last tokens instead of refusing it (text)")
    add_sampling_flags(p)
    p.add_argument("--stop", action="append", default=None,
                   help="stop at this string (repeatable); \\n, \\t, \\r and \\\\ mean newline, tab, return and a "
                        "backslash, so --stop '\\n\\n' stops at a blank line")
    p.add_argument("--checkpoint", default="last", choices=["last", "best"],
                   help="the newest weights (default) or those of the best validation loss")
    p.add_argument("--device", default="auto", help="auto (default: cuda where there is one), cpu or cuda")
    add_content_filter_flag(p)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                   help="default fp32; bf16 halves the bytes read per token; int8: weights in int8 (text and music "
                        "on CPU), a quarter of them")
    add_image_flags(p)
    g = p.add_argument_group("watermark (text and ABC tunes)")
    for name, alias, kind, text in WATERMARK_FLAGS:
        g.add_argument(f"--{name}", *([alias] if alias else []), type=kind, default=None, help=text)
    p.add_argument("--interpolate", action="store_true", default=None, help="images: walk between two noises")
    p.add_argument("--no-constraint", dest="constraint", action="store_false", default=None,
                   help="music: sample the raw model, without the constraint that keeps bars to the meter (ABC) "
                        "or notes switched off (events)")
    p.add_argument("-o", "--out-dir", default=None,
                   help="folder for the outputs, each with its provenance (images: default samples/, grid.png and "
                        "one PNG each; music: .abc/.mid/.wav tunes; text: a .txt per sample)")
    p.add_argument("--renderer", default=None, choices=["auto", "additive", "fluidsynth"],
                   help="music .wav: FluidSynth with a General-MIDI soundfont where installed (auto, the "
                        "default), or genlab's own additive synthesizer")


def run(a, argv: list[str]) -> None:
    from genlab import api

    a.prompt = read_prompt(a.prompt, a.prompt_file)
    if a.prompt_from is not None and a.prompt is not None:
        raise GenlabError("give the prompt once: --prompt(-file) or --prompt-from, not both")
    m = api.load(a.run, checkpoint=a.checkpoint, device=a.device, precision=a.precision,
                 content_filter=a.content_filter)
    if a.prompt_from is not None:
        translation = api.prompt_from(m, a.prompt_from)
        a.prompt = translation.prompt
        print(f"genlab: prompt from {a.prompt_from}: {translation.prompt!r}\n  carried over: {translation.carried}"
              f"\n  not carried: {translation.dropped}", file=sys.stderr)
    given = given_controls(a)
    m.check_controls(given)
    if a.renderer is not None and "renderer" not in m.write_options:
        raise GenlabError(f"--renderer is for music models, whose tunes are rendered to .wav; leave it out for "
                          f"{m.modality} models")
    if "stop" in given:
        given["stop"] = [unescape(x) for x in given["stop"]]
    if given.get("suffix") is not None:
        given["suffix"] = unescape(given["suffix"])
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
        out.write((controls.get("suffix") or "") + "\n")  # an infill: the middle, then the code it fits before
    else:
        outputs = m.generate(**controls)
        if out_dir is None:
            print(m.show(outputs))
        else:
            options = {k: getattr(a, k) if getattr(a, k) is not None else v for k, v in m.write_options.items()}
            paths = m.write(outputs, out_dir, **options)
            print(m.summary(outputs, paths, out_dir))
    print(f"(seed {m.last_seed})", file=sys.stderr)


def run_describe(a, argv: list[str]) -> None:
    from genlab import api

    d = api.describe(a.file)
    if a.json:
        print(json.dumps({"file": d.path, "modality": d.modality, "description": d.text, "facts": d.facts},
                         ensure_ascii=False))
    else:
        print(d.text)


def unescape(text: str) -> str:
    """The usual backslash escapes, as a shell passes them on literally: '\\n' -> a newline."""
    return re.sub(r"\\[ntr\\]", lambda m: ESCAPES[m.group(0)], text)


def read_prompt(prompt: str | None, prompt_file: str | None) -> str | None:
    """--prompt TEXT, --prompt - (standard input) or --prompt-file FILE."""
    if prompt is not None and prompt_file is not None:
        raise GenlabError("give the prompt once: --prompt or --prompt-file, not both")
    if prompt == "-":
        return sys.stdin.read()
    if prompt_file is None:
        return prompt
    try:
        return Path(prompt_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GenlabError(f"--prompt-file {prompt_file} does not exist") from None
    except UnicodeDecodeError:
        raise GenlabError(f"--prompt-file {prompt_file} is not UTF-8 text; convert it (e.g. iconv -t utf-8)") from None
