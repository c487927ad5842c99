"""`genlab finetune` (train on from a run, all weights or a LoRA adapter), `genlab merge` (an adapter written
into its parent's weights as a standalone run), `genlab rate` and `genlab feedback` (people's preferences, kept
in a feedback store), `genlab align` (DPO on them) and `genlab leaderboard` (the models ranked from their votes)."""

from __future__ import annotations

import sys

from genlab.cli.sample import add_image_flags, add_sampling_flags, given_controls
from genlab.cli.train import TRAINING_FLAGS

# the training flags a fine-tune may change; the parent's data reading and model stay as they were
FINETUNE_FLAGS = [flag for flag in TRAINING_FLAGS if flag[0] not in ("grad-accum",)]


def add_parsers(sub) -> None:
    p = sub.add_parser("finetune", help="train on from a trained run on a narrow dataset (all weights or LoRA)",
                       description="Train on from a trained run. Training settings start from the parent's, "
                       "with --max-steps 300, --warmup-steps 20, --eval-interval 50 and a tenth of the parent's "
                       "--lr (LoRA: the parent's --lr); the flags below override them.")
    p.set_defaults(handler=run_finetune)
    p.add_argument("run", nargs="?", help="the trained run to start from (the parent)")
    p.add_argument("data", nargs="?", help="the narrow dataset: a built-in name or a path, read the parent's way "
                   "(its tokenizer, image size and classes)")
    p.add_argument("--out", metavar="RUN2", help="the new run directory (default RUN-ft-DATA)")
    p.add_argument("--resume", metavar="RUN2", help="continue this fine-tune exactly where it stopped")
    _add_training_flags(p)
    p.add_argument("--augment", help="images: flip, shift, flip,shift or none")
    p.add_argument("--extensions", help="folder sources: the file extensions to read, comma-separated")
    p.add_argument("--chat", action="store_true", default=None, help="text: DATA is conversations (text:pyhelp, or "
                   "a JSONL file of {\"messages\": [...]} or {\"prompt\", \"completion\"}): learn to answer, the "
                   "loss on the assistant's tokens, with the ChatML template (supervised fine-tuning)")

    p = sub.add_parser("align", help="align a run with preferences (DPO against a frozen copy of it)")
    p.set_defaults(handler=run_align)
    p.add_argument("run", nargs="?", help="the run to align (the parent, and DPO's reference)")
    p.add_argument("--preferences", metavar="STORE|FILE", help="a feedback store (its pairs rated on RUN) or a "
                   "TRL preference .jsonl file (prompt, chosen, rejected)")
    p.add_argument("--method", default="dpo", choices=["dpo", "best-of-n"],
                   help="dpo: Direct Preference Optimization (default); best-of-n: fine-tune on the reward "
                   "model's best of n samples per prompt")
    p.add_argument("--beta", type=float, default=0.1, help="DPO's beta: how far from the reference the model "
                   "may move (default 0.1)")
    p.add_argument("--reward", metavar="RM", help="best-of-n: the reward model (genlab reward)")
    p.add_argument("--n", type=int, default=8, help="best-of-n: samples per prompt (default 8)")
    p.add_argument("--prompts", metavar="FILE", help="best-of-n: prompts, one per line (default: empty ones)")
    p.add_argument("--num-prompts", type=int, default=64, help="best-of-n without --prompts: how many (default 64)")
    p.add_argument("--out", metavar="RUN2", help="the aligned run directory (default RUN-ft-dpo)")
    p.add_argument("--resume", metavar="RUN2", help="continue this alignment exactly where it stopped")
    _add_training_flags(p)
    _add_sampling_flags(p, "best-of-n sampling (default: the run's own, as genlab sample)")

    p = sub.add_parser("reward", help="train a reward model (Bradley-Terry) on preferences, from a run's backbone")
    p.set_defaults(handler=run_reward)
    p.add_argument("run", nargs="?", help="the run whose outputs were rated (its backbone starts the model)")
    p.add_argument("--preferences", metavar="STORE|FILE", help="a feedback store (its pairs rated on RUN) or a "
                   "TRL preference .jsonl file")
    p.add_argument("--out", metavar="RM", help="the reward model's run directory (default RUN-ft-reward)")
    p.add_argument("--resume", metavar="RM", help="continue this reward model's training")
    _add_training_flags(p, lora=False)  # a reward model trains its backbone and head whole

    p = sub.add_parser("rate", help="compare two samples per prompt and keep your choice in a feedback store")
    p.set_defaults(handler=run_rate)
    p.add_argument("run", help="the run to sample from")
    p.add_argument("--prompt", help="the prompt to sample from (default: none)")
    p.add_argument("--prompts", metavar="FILE", help="a text file of prompts, one per line, rated in turn")
    p.add_argument("--repeat", type=int, default=1, help="compare this many pairs for each prompt (default 1; "
                   "answer q to stop early)")
    p.add_argument("--store", default="feedback.sqlite", help="the feedback store (default feedback.sqlite)")
    p.add_argument("--rater", help="your name, kept with each choice")
    p.add_argument("--seed", type=int, default=0, help="seeds the samples' seeds and the sides (default 0)")
    _add_sampling_flags(p, "sampling (default: the run's own, as genlab sample)")

    p = sub.add_parser("feedback", help="export or import the preference pairs of a feedback store")
    p.set_defaults(handler=run_feedback)
    p.add_argument("action", choices=["export", "import"], help="export: write JSONL; import: read TRL JSONL")
    p.add_argument("file", help="the JSONL file to write (export) or read (import)")
    p.add_argument("--store", default="feedback.sqlite", help="the feedback store (default feedback.sqlite)")
    p.add_argument("--format", default="trl", choices=["trl", "openai"],
                   help="export: trl (prompt, chosen, rejected; default) or openai (preference fine-tuning)")
    p.add_argument("--model", help="export: only pairs rated on this run; import: the name to file them under")

    p = sub.add_parser("leaderboard", help="rank the models of a feedback store from its votes (Chatbot Arena's "
                       "Bradley-Terry ratings with 95%% bootstrap intervals)")
    p.set_defaults(handler=run_leaderboard)
    p.add_argument("--store", default="feedback.sqlite", help="the feedback store (default feedback.sqlite)")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for the 95%% intervals (default 1000; "
                   "0: none)")
    p.add_argument("--seed", type=int, default=0, help="seeds the resampling (default 0)")
    p.add_argument("--modality", help="only the votes on outputs of this modality (text, images, ...)")
    p.add_argument("--json", action="store_true", help="print the leaderboard as JSON")

    p = sub.add_parser("merge", help="write a LoRA fine-tune as a standalone run (adapter merged into the parent)")
    p.set_defaults(handler=run_merge)
    p.add_argument("run", metavar="RUN2", help="a LoRA fine-tune (genlab finetune --lora-rank)")
    p.add_argument("--out", required=True, metavar="RUN3", help="the new run directory")


def _add_sampling_flags(p, title: str) -> None:
    # each sample's seed comes from --seed, their number from the verb, and a class label from the prompt
    add_sampling_flags(p.add_argument_group(title), leave_out=("seed", "num-samples"))
    add_image_flags(p, leave_out=("label", "negative-prompt"))


def _add_training_flags(p, lora: bool = True) -> None:
    if lora:
        p.add_argument("--lora-rank", type=int, help="train a LoRA adapter of this rank instead of all weights")
        p.add_argument("--lora-alpha", type=float, help="LoRA scale alpha: the update is alpha/rank * B A "
                       "(default twice the rank)")
        p.add_argument("--lora-targets", metavar="PATTERN", help="regular expression of the layer names to adapt "
                       "(default gpt: attention and MLP matrices; lstm: the gate matrices; diffusion: the U-Net)")
        p.add_argument("--lora-dropout", type=float, help="dropout on the adapter's input (default 0)")
    for name, kind, text in FINETUNE_FLAGS:
        p.add_argument(f"--{name}", type=kind, help=text)
    p.add_argument("--device", help="auto (default: cuda where there is one), cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_align(a, argv: list[str]) -> None:
    from genlab import api
    from genlab.align.rate import read_prompts
    from genlab.errors import GenlabError
    from genlab.modalities import flag_name

    sampling = given_controls(a, leave_out=("seed",))  # --seed seeds the training
    skip = ("command", "handler", "run", "preferences", "out", "resume", "quiet", "method", "beta", "reward", "n",
            "prompts", "num_prompts", *sampling)
    settings = {k: v for k, v in vars(a).items() if k not in skip and v is not None}
    if a.resume is None and a.run is None:
        raise GenlabError("genlab align needs a run: genlab align RUN --preferences STORE --out RUN2")
    if sampling and a.method != "best-of-n":
        raise GenlabError(f"{', '.join(map(flag_name, sampling))}: sampling flags are for --method best-of-n; "
                          "DPO trains on the rated samples as they are, so leave them out")
    prompts = read_prompts(None, a.prompts) if a.prompts else None
    run = api.align(a.run, a.preferences, method=a.method, beta=a.beta, reward=a.reward, n=a.n, prompts=prompts,
                    num_prompts=a.num_prompts, sampling=sampling, out=a.out, resume=a.resume, quiet=a.quiet,
                    **settings)
    print(run)
    print(f"genlab: sample it with: genlab sample {run}", file=sys.stderr)


def run_reward(a, argv: list[str]) -> None:
    from genlab import api
    from genlab.errors import GenlabError

    skip = ("command", "handler", "run", "preferences", "out", "resume", "quiet")
    settings = {k: v for k, v in vars(a).items() if k not in skip and v is not None}
    if a.resume is None and a.run is None:
        raise GenlabError("genlab reward needs a run: genlab reward RUN --preferences STORE --out RM")
    rm = api.reward(a.run, a.preferences, out=a.out, resume=a.resume, quiet=a.quiet, **settings)
    figures = api.info(rm)["figures"]["evaluation"]["preferences val"]
    print(rm)
    print(f"genlab: held-out pairwise accuracy {figures['pairwise_accuracy']:.3f} on {figures['pairs']} pairs "
          f"(0.5 is chance); kept in {rm}/metrics.json", file=sys.stderr)


def run_rate(a, argv: list[str]) -> None:
    from genlab import api
    from genlab.align.rate import read_prompts
    from genlab.errors import GenlabError

    if a.repeat < 1:
        raise GenlabError(f"--repeat must be 1 or more, got {a.repeat}")
    controls = given_controls(a, leave_out=("prompt", "seed"))  # --prompt(s) and --seed are rate's own
    prompts = [prompt for prompt in read_prompts(a.prompt, a.prompts) for _ in range(a.repeat)]
    counts = api.rate(a.run, prompts, store=a.store, rater=a.rater, seed=a.seed, **controls)
    print(f"genlab: kept {counts['pairs']} preferences, {counts['ties']} ties and {counts['both_bad']} both-bad in "
          f"{a.store} ({counts['skipped']} skipped)", file=sys.stderr)


def run_feedback(a, argv: list[str]) -> None:
    from genlab import api

    if a.action == "export":
        n = api.feedback_export(a.store, a.file, format=a.format, model=a.model)
        print(f"genlab: wrote {n} preference pairs to {a.file} ({a.format} format)", file=sys.stderr)
    else:
        n = api.feedback_import(a.store, a.file, model=a.model or "imported")
        print(f"genlab: imported {n} preference pairs into {a.store}", file=sys.stderr)


def run_leaderboard(a, argv: list[str]) -> None:
    import json

    from genlab import api

    rows = api.leaderboard(a.store, bootstrap=a.bootstrap, seed=a.seed, modality=a.modality)
    print(json.dumps(rows, indent=2) if a.json else format_leaderboard(rows))


def format_leaderboard(rows: list[dict]) -> str:
    """The leaderboard as a table: rank, model, rating, 95% interval, games, wins, ties and win rate."""
    header = ["RANK", "MODEL", "RATING", "95% CI", "GAMES", "WINS", "TIES", "WIN RATE"]
    cells = [[str(r["rank"]), r["model"], f"{r['rating']:.0f}",
              "-" if r["lower"] is None else f"{r['lower']:.0f} to {r['upper']:.0f}", str(r["games"]), str(r["wins"]),
              str(r["ties"]), f"{r['wins'] / r['games']:.0%}"] for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    right = {0, 2, 4, 5, 6, 7}  # numbers line up on the right
    return "\n".join("   ".join(c.rjust(w) if i in right else c.ljust(w)
                                for i, (c, w) in enumerate(zip(cell, widths, strict=True))).rstrip()
                     for cell in [header, *cells])


def run_finetune(a, argv: list[str]) -> None:
    from genlab import api
    from genlab.errors import GenlabError

    skip = ("command", "handler", "run", "data", "out", "resume", "quiet")
    settings = {k: v for k, v in vars(a).items() if k not in skip and v is not None}
    if a.resume is None and (a.run is None or a.data is None):
        raise GenlabError("genlab finetune needs a run and data: genlab finetune RUN DATA --out RUN2 (or "
                          "--resume RUN2)")
    run = api.finetune(a.run, a.data, out=a.out, resume=a.resume, quiet=a.quiet, **settings)
    print(run)
    if a.chat:
        print(f"genlab: talk with it: genlab chat {run}", file=sys.stderr)
    else:
        print(f"genlab: sample it with: genlab sample {run}", file=sys.stderr)


def run_merge(a, argv: list[str]) -> None:
    from genlab import api

    print(api.merge(a.run, out=a.out))
