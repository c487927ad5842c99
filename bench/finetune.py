"""Fine-tuning: all weights against a LoRA adapter, then few-shot LoRA on images and on text, measured side by side.

1. Domain shift. A GPT is pretrained on text:pydocs (Python's documentation prose, byte-level BPE), then
   fine-tuned on a narrow domain, text:pystdlib (the standard library's source code), twice for the same
   number of steps: all weights (`genlab finetune RUN text:pystdlib`, a tenth of the parent's learning rate)
   and a LoRA adapter (`--lora-rank 8`, the parent's rate). Each model's perplexity is measured on the
   held-out tail of both corpora: narrow-domain perplexity says what the fine-tune learned, general-domain
   (pydocs) perplexity before and after what it forgot. Beside them: trainable parameters, what the run
   keeps on disk (model.safetensors against adapter_model.safetensors), the wall time of each fine-tune
   (the `genlab finetune` call, start to end) and its median ms per step.
2. Few-shot images. A conditional diffusion model is pretrained on images:digits with class 9 left out
   (`--exclude-labels 9`: the label exists, no image of it was seen), then a LoRA adapter is trained on a
   folder DIR/9/ of 6 real 9s (5 train, 1 held out as validation, as the split keeps one) for a short
   budget. A scikit-learn logistic regression fitted on real 16x16 digits (all 10 classes, the training
   split) judges samples asked for label 9 before and after: the share it calls 9. Its own share on real
   held-out 9s is printed as the ceiling, and the share of samples of the seen classes 0-8 recognised
   as asked, before and after, shows whether the adapter cost the parent its other classes.
3. Few-shot text. 10 short lines of a made-up pattern (`The type of WORD is the WORD class.`, each WORD one
   frequent token of the parent's vocabulary; text:pydocs never has the arrangement) go into a file; a LoRA
   adapter on the pydocs parent learns them (the parent's learning rate, as `genlab finetune` gives it) with
   windows shorter than the held-out tail (`--window`). Samples from the prompt `The type of` are checked
   with a regular expression (the word repeated): the share that match, before and after, at the sampling
   temperature (--text-temperature) and at 0.2, and how many of the matching words are new ones. (The LoRA
   layers are attention and MLP matrices: the tied embedding/head and the final LayerNorm stay frozen, which
   bounds how sharp the adapted model's next-token distribution can get; 0.2 shows what it prefers.)

    python bench/finetune.py [--minutes 10] [--quick] [--out DIR] [--seed 0]

--minutes is the training budget, shared out as BUDGET says (fine-tunes by step count: as many steps as the
pretraining took in as much time, with --max-minutes only as a safety limit); evaluation and sampling add a
minute or two on a 2-core CPU. --quick is a 1-2 minute smoke run with the tiny presets. Runs go into a
temporary folder (removed afterwards) or --out (kept). The last line of stdout is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from genlab import api
from genlab.io import read_json

# shares of --minutes: pretraining, the two domain fine-tunes (each), diffusion pretraining, the two few-shot LoRAs
BUDGET = {"pretrain": 0.30, "finetune": 0.14, "diffusion": 0.26, "fewshot_digit": 0.10, "fewshot_text": 0.06}
# words the parent knows well (one frequent BPE token each) in an arrangement text:pydocs never has
WORDS = ("list", "string", "module", "object", "method", "value", "name", "function", "tuple", "number")
LINE = "The type of {w} is the {w} class.\n"
PROMPT = "The type of"
PATTERN = re.compile(r"The type of (\w+) is the \1 class\.")
NEW_CLASS = 9


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def metrics_rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def run_figures(run: Path) -> dict:
    """Steps trained, median ms per step (the first logged steps left out) and the run's config."""
    rows = metrics_rows(run)
    ms = [r["ms_per_step"] for r in rows if "ms_per_step" in r]
    return {"steps": max((r.get("step", 0) for r in rows), default=0),
            "ms_per_step": round(statistics.median(ms[1:] or ms), 2) if ms else None,
            "config": read_json(run / "config.json")}


def perplexities(run: Path, max_tokens: int) -> dict:
    narrow = api.evaluate(run, "text:pystdlib", max_tokens=max_tokens)
    general = api.evaluate(run, "text:pydocs", max_tokens=max_tokens)
    return {"narrow_ppl": narrow["perplexity"], "general_ppl": general["perplexity"],
            "narrow_loss": narrow["val_loss"], "general_loss": general["val_loss"]}


# ---------------------------------------------------------------------------------------------- 1. domain shift


def domain_shift(work: Path, a, minutes: dict) -> dict:
    preset = "tiny" if a.quick else "small"
    log(f"pretraining a gpt ({preset}, BPE {a.vocab_size}) on text:pydocs for {minutes['pretrain']:.2f} minutes ...")
    t0 = time.perf_counter()
    parent = api.train("text:pydocs", family="gpt", tokenizer="bpe", vocab_size=a.vocab_size, preset=preset,
                       max_minutes=minutes["pretrain"], out=str(work / "pydocs"), seed=a.seed, quiet=True)
    pre = {**run_figures(parent), "wall_s": round(time.perf_counter() - t0, 1)}

    # the parent's tokens of text:pystdlib, cached once here so that neither fine-tune's wall time carries them
    from genlab.text.data import prepare_text
    from genlab.text.tokenizer import load_tokenizer

    t0 = time.perf_counter()
    prepare_text("text:pystdlib", "bpe", None, pre["config"]["train"]["val_fraction"],
                 given=load_tokenizer("bpe", parent / "tokenizer.json"))
    tokenize_s = time.perf_counter() - t0

    # the same number of steps for both: as many as the pretraining took in as much time (a full step costs as
    # much; the pace over the whole run, evaluations and stalls included, not the median step of a quiet moment)
    steps = max(20, int(pre["steps"] * minutes["finetune"] / minutes["pretrain"]))
    cap = 3 * minutes["finetune"]  # a safety limit only: the step count is the limit
    log(f"fine-tuning on text:pystdlib for {steps} steps, all weights and LoRA ...")
    runs, out = {"full": None, "lora": None}, {}
    for kind in runs:
        lora = {"lora_rank": a.lora_rank} if kind == "lora" else {}
        t0 = time.perf_counter()
        runs[kind] = api.finetune(parent, "text:pystdlib", out=str(work / f"pystdlib-{kind}"), max_steps=steps,
                                  max_minutes=cap, eval_interval=steps, quiet=True, **lora)
        out[kind] = {**run_figures(runs[kind]), "wall_s": round(time.perf_counter() - t0, 2)}
    log("measuring perplexities ...")
    before = perplexities(parent, a.max_tokens)
    for kind, run in runs.items():
        out[kind].update(perplexities(run, a.max_tokens))
    full, lora = out["full"], out["lora"]
    return {
        "parent": parent, "preset": preset, "pretrain_steps": pre["steps"], "pretrain_ms_per_step": pre["ms_per_step"],
        "pretrain_wall_s": pre["wall_s"], "pystdlib_tokenize_s": round(tokenize_s, 1),
        "n_params": pre["config"]["n_params"], "precision": pre["config"]["train"]["precision"],
        "finetune_steps_asked": steps,
        "narrow_ppl_before": before["narrow_ppl"], "general_ppl_before": before["general_ppl"],
        "narrow_ppl_after_full": full["narrow_ppl"], "narrow_ppl_after_lora": lora["narrow_ppl"],
        "general_ppl_after_full": full["general_ppl"], "general_ppl_after_lora": lora["general_ppl"],
        "trainable_params_full": full["config"].get("trainable_params", full["config"]["n_params"]),
        "trainable_params_lora": lora["config"]["trainable_params"],
        "full_bytes": (runs["full"] / "model.safetensors").stat().st_size,
        "adapter_bytes": (runs["lora"] / "adapter_model.safetensors").stat().st_size,
        "wall_s_full": full["wall_s"], "wall_s_lora": lora["wall_s"],
        "steps_full": full["steps"], "steps_lora": lora["steps"],
        "ms_per_step_full": full["ms_per_step"], "ms_per_step_lora": lora["ms_per_step"],
        "lr_full": full["config"]["train"]["lr"], "lr_lora": lora["config"]["train"]["lr"],
    }


# ---------------------------------------------------------------------------------------------- 2. few-shot digits


def digit_classifier(seed: int):
    """scikit-learn's logistic regression on real 16x16 digits (the training split, all 10 classes), and the
    held-out real images: (classifier, val pixels, val labels)."""
    from sklearn.linear_model import LogisticRegression

    from genlab.images.data import open_images

    digits = open_images("images:digits")
    x = digits.train.numpy().reshape(len(digits.train), -1) / 255.0
    clf = LogisticRegression(max_iter=3000, random_state=seed).fit(x, digits.train_labels.numpy())
    return clf, digits.val.numpy(), digits.val_labels.numpy()


def recognised(clf, images, labels) -> float:
    """The share of generated images (a tensor in [-1, 1]) that the classifier calls by their label."""
    from genlab.images.data import to_pixels

    pixels = to_pixels(images).numpy()  # (N, H, W, C) uint8
    pred = clf.predict(pixels.reshape(len(pixels), -1) / 255.0)
    return round(float(np.mean(pred == np.asarray(labels))), 4)


def digit_shares(run: Path, clf, n: int, seed: int) -> tuple[float, float]:
    """(share of n samples asked for the new class recognised as it, share of samples of the other classes)."""
    m = api.load(run)
    new = m.generate(num_samples=n, label=NEW_CLASS, seed=seed, output_type="pt")
    seen = m.generate(num_samples=9 * max(1, n // 9), seed=seed + 1, output_type="pt")  # labels 0..9 in turn
    labels = np.asarray(m.last_labels)
    keep = labels != NEW_CLASS
    return recognised(clf, new, [NEW_CLASS] * n), recognised(clf, seen[np.flatnonzero(keep)], labels[keep])


def fewshot_digits(work: Path, a, minutes: dict) -> dict:
    from PIL import Image

    clf, val, val_labels = digit_classifier(a.seed)
    nines = np.flatnonzero(val_labels == NEW_CLASS)
    shots, rest = nines[:6], np.setdiff1d(np.arange(len(val)), nines[:6])  # the classifier never saw the 6 shots
    folder = work / "nines" / str(NEW_CLASS)
    folder.mkdir(parents=True)
    for i, k in enumerate(shots):
        Image.fromarray(val[k, 0]).save(folder / f"{i:03d}.png")
    real_x = val[rest].reshape(len(rest), -1) / 255.0
    real_acc = float(np.mean(clf.predict(real_x) == val_labels[rest]))
    real_nines = float(np.mean(clf.predict(real_x[val_labels[rest] == NEW_CLASS]) == NEW_CLASS))

    preset = "tiny" if a.quick else "small"
    log(f"pretraining a conditional diffusion ({preset}) on images:digits without 9s for "
        f"{minutes['diffusion']:.2f} minutes ...")
    t0 = time.perf_counter()
    parent = api.train("images:digits", family="diffusion", conditional=True, exclude_labels=str(NEW_CLASS),
                       preset=preset, max_minutes=minutes["diffusion"], out=str(work / "digits"), seed=a.seed,
                       quiet=True)
    parent_wall = time.perf_counter() - t0
    before, seen_before = digit_shares(parent, clf, a.samples, a.seed)
    log(f"LoRA on {len(shots) - 1} images of a {NEW_CLASS} (+1 held out) for {minutes['fewshot_digit']:.2f} "
        "minutes ...")
    t0 = time.perf_counter()
    # as many steps as the pretraining took in as much time (batches of the same size), the clock only as a limit
    steps = max(20, int(run_figures(parent)["steps"] * minutes["fewshot_digit"] / minutes["diffusion"]))
    tuned = api.finetune(parent, str(folder.parent), out=str(work / "digits-9"), lora_rank=a.lora_rank,
                         max_steps=steps, max_minutes=3 * minutes["fewshot_digit"], eval_interval=max(50, steps // 4),
                         quiet=True)
    tuned_wall = time.perf_counter() - t0
    after, seen_after = digit_shares(tuned, clf, a.samples, a.seed)
    pre, ft = run_figures(parent), run_figures(tuned)
    return {"fewshot_digit_share_before": before, "fewshot_digit_share_after": after,
            "fewshot_digit_seen_share_before": seen_before, "fewshot_digit_seen_share_after": seen_after,
            "fewshot_digit_real_share": round(real_nines, 4), "digit_classifier_real_accuracy": round(real_acc, 4),
            "fewshot_digit_train_images": len(shots) - 1, "fewshot_digit_val_images": 1,
            "fewshot_digit_samples": a.samples, "diffusion_preset": preset, "diffusion_steps": pre["steps"],
            "diffusion_wall_s": round(parent_wall, 1), "fewshot_digit_steps": ft["steps"],
            "fewshot_digit_wall_s": round(tuned_wall, 1),
            "fewshot_digit_trainable_params": ft["config"]["trainable_params"],
            "diffusion_params": pre["config"]["n_params"]}


# ---------------------------------------------------------------------------------------------- 3. few-shot text


def pattern_rate(run: Path, n: int, seed: int, words: set[str], temperature: float
                 ) -> tuple[float, float, list[str]]:
    """(share of n samples from PROMPT that follow the pattern, share of those whose word is new, the samples)."""
    m = api.load(run)
    texts = [PROMPT + t for t in m.generate(prompt=PROMPT, max_new_tokens=16, temperature=temperature, seed=seed,
                                             num_samples=n)]
    found = [PATTERN.match(t) for t in texts]
    hits = [f.group(1) for f in found if f]
    novel = sum(w not in words for w in hits) / len(hits) if hits else 0.0
    return round(len(hits) / n, 4), round(novel, 4), texts


def fewshot_text(work: Path, a, minutes: dict, parent: Path) -> dict:
    from genlab.text.tokenizer import load_tokenizer

    data = work / "pattern.txt"
    data.write_text("".join(LINE.format(w=w) for w in WORDS), encoding="utf-8")
    config = read_json(parent / "config.json")
    n = len(load_tokenizer("bpe", parent / "tokenizer.json").encode(data.read_text(encoding="utf-8")))
    tail = n - int(n * (1 - config["train"]["val_fraction"]))  # the held-out tokens, as the split cuts them
    window = min(config["model"]["block_size"], tail - 1)
    words = set(WORDS)
    t = a.text_temperature
    before, _, _ = pattern_rate(parent, a.text_samples, a.seed, words, t)
    cold_before, _, _ = pattern_rate(parent, a.text_samples, a.seed, words, 0.2)
    log(f"LoRA on {len(WORDS)} lines of a new pattern ({n} tokens, window {window}) for "
        f"{minutes['fewshot_text']:.2f} minutes ...")
    t0 = time.perf_counter()
    tuned = api.finetune(parent, str(data), out=str(work / "pattern"), lora_rank=a.lora_rank, window=window,
                         max_steps=a.text_steps, max_minutes=3 * minutes["fewshot_text"], eval_interval=50,
                         quiet=True)
    wall = time.perf_counter() - t0
    after, novel_after, texts = pattern_rate(tuned, a.text_samples, a.seed, words, t)
    cold_after, cold_novel, cold_texts = pattern_rate(tuned, a.text_samples, a.seed, words, 0.2)
    return {"fewshot_text_rate_before": before, "fewshot_text_rate_after": after,
            "fewshot_text_rate_before_t02": cold_before, "fewshot_text_rate_after_t02": cold_after,
            "fewshot_text_temperature": t, "fewshot_text_novel_word_share_after": novel_after,
            "fewshot_text_novel_word_share_after_t02": cold_novel,
            "fewshot_text_lr": read_json(tuned / "config.json")["train"]["lr"], "fewshot_text_examples": len(WORDS),
            "fewshot_text_tokens": n, "fewshot_text_heldout_tokens": tail, "fewshot_text_window": window,
            "fewshot_text_samples": a.text_samples, "fewshot_text_steps": run_figures(tuned)["steps"],
            "fewshot_text_wall_s": round(wall, 1), "fewshot_text_example_sample": texts[0],
            "fewshot_text_example_sample_t02": cold_texts[0]}


# ---------------------------------------------------------------------------------------------- report


def ratio(x, y) -> float | None:
    return round(x / y, 4) if x is not None and y else None


def table(r: dict) -> None:
    def row(name: str, before, full, lora, rat=None) -> None:
        cells = [("" if v is None else f"{v:,.4g}" if isinstance(v, float) else f"{v:,}") for v in (before, full, lora)]
        rat = "" if rat is None else f"{rat:.3f}"
        print(f"{name:34}" + "".join(f"{c:>14}" for c in cells) + f"{rat:>12}")

    print(f"gpt {r['preset']} ({r['n_params']:,} parameters, {r['precision']}) pretrained on text:pydocs for "
          f"{r['pretrain_steps']} steps ({r['pretrain_ms_per_step']} ms/step), fine-tuned on text:pystdlib for "
          f"{r['finetune_steps_asked']} steps each")
    print(f"{'':34}{'parent':>14}{'full FT':>14}{'LoRA':>14}{'LoRA/full':>12}")
    row("narrow perplexity (pystdlib)", r["narrow_ppl_before"], r["narrow_ppl_after_full"],
        r["narrow_ppl_after_lora"], ratio(r["narrow_ppl_after_lora"], r["narrow_ppl_after_full"]))
    row("  after / before", None, ratio(r["narrow_ppl_after_full"], r["narrow_ppl_before"]),
        ratio(r["narrow_ppl_after_lora"], r["narrow_ppl_before"]))
    row("general perplexity (pydocs)", r["general_ppl_before"], r["general_ppl_after_full"],
        r["general_ppl_after_lora"], ratio(r["general_ppl_after_lora"], r["general_ppl_after_full"]))
    row("  after / before (forgetting)", None, ratio(r["general_ppl_after_full"], r["general_ppl_before"]),
        ratio(r["general_ppl_after_lora"], r["general_ppl_before"]))
    row("trainable parameters", r["n_params"], r["trainable_params_full"], r["trainable_params_lora"],
        ratio(r["trainable_params_lora"], r["trainable_params_full"]))
    row("bytes on disk (weights file)", None, r["full_bytes"], r["adapter_bytes"],
        ratio(r["adapter_bytes"], r["full_bytes"]))
    row("learning rate", None, r["lr_full"], r["lr_lora"], ratio(r["lr_lora"], r["lr_full"]))
    row("steps", r["pretrain_steps"], r["steps_full"], r["steps_lora"], ratio(r["steps_lora"], r["steps_full"]))
    row("ms per step (median)", r["pretrain_ms_per_step"], r["ms_per_step_full"], r["ms_per_step_lora"],
        ratio(r["ms_per_step_lora"], r["ms_per_step_full"]))
    row("wall seconds (finetune call)", r["pretrain_wall_s"], r["wall_s_full"], r["wall_s_lora"],
        ratio(r["wall_s_lora"], r["wall_s_full"]))
    print(f"(pystdlib's tokens under the parent's tokenizer prepared, or found cached, beforehand: "
          f"{r['pystdlib_tokenize_s']} s, in neither fine-tune's wall time; perplexities over the held-out tail "
          f"of each corpus, {r['eval_max_tokens']:,} tokens at most)")
    if r["steps_full"] != r["steps_lora"] or min(r["steps_full"], r["steps_lora"]) < r["finetune_steps_asked"]:
        print(f"note: {r['finetune_steps_asked']} steps were asked of each; the --max-minutes safety limit stopped "
              "one early (the machine ran slower than during pretraining), so compare per-step figures")
    print()
    print(f"few-shot digits: diffusion {r['diffusion_preset']} ({r['diffusion_params']:,} parameters) pretrained on "
          f"images:digits without {NEW_CLASS}s for {r['diffusion_steps']} steps; LoRA "
          f"({r['fewshot_digit_trainable_params']:,} trained) on {r['fewshot_digit_train_images']} images of a "
          f"{NEW_CLASS} (+{r['fewshot_digit_val_images']} held out for validation) for {r['fewshot_digit_steps']} "
          f"steps ({r['fewshot_digit_wall_s']} s)")
    print(f"{'':48}{'before':>10}{'after':>10}{'real':>10}")
    print(f"{f'samples asked for {NEW_CLASS}, recognised as {NEW_CLASS}':48}{r['fewshot_digit_share_before']:>10.3f}"
          f"{r['fewshot_digit_share_after']:>10.3f}{r['fewshot_digit_real_share']:>10.3f}")
    print(f"{'samples of classes 0-8, recognised as asked':48}{r['fewshot_digit_seen_share_before']:>10.3f}"
          f"{r['fewshot_digit_seen_share_after']:>10.3f}{r['digit_classifier_real_accuracy']:>10.3f}")
    print(f"(scikit-learn LogisticRegression on real 16x16 digits; 'real': its share on held-out real images; "
          f"{r['fewshot_digit_samples']} samples of {NEW_CLASS})")
    print()
    print(f"few-shot text: LoRA on {r['fewshot_text_examples']} lines `{LINE.format(w='WORD').strip()}` "
          f"({r['fewshot_text_tokens']} tokens, {r['fewshot_text_heldout_tokens']} held out, window "
          f"{r['fewshot_text_window']}, lr {r['fewshot_text_lr']:g}) for {r['fewshot_text_steps']} steps "
          f"({r['fewshot_text_wall_s']} s); {r['fewshot_text_samples']} samples from {PROMPT!r}")
    t = r["fewshot_text_temperature"]
    print(f"{'':48}{'before':>10}{'after':>10}{'new words':>11}")
    for name, key in ((f"follow the pattern, temperature {t:g}", ""), ("follow the pattern, temperature 0.2", "_t02")):
        print(f"{name:48}{r['fewshot_text_rate_before' + key]:>10.3f}{r['fewshot_text_rate_after' + key]:>10.3f}"
              f"{r['fewshot_text_novel_word_share_after' + key]:>11.3f}")
    print(f"('new words': the share of matching samples whose word is none of the {r['fewshot_text_examples']})")
    print(f"a sample after, temperature {t:g}: {r['fewshot_text_example_sample']!r}")
    print(f"a sample after, temperature 0.2: {r['fewshot_text_example_sample_t02']!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, help="training budget in all, shared out as BUDGET says (default 10, "
                   "--quick 1.2)")
    p.add_argument("--quick", action="store_true", help="a 1-2 minute smoke run: tiny presets, fewer samples")
    p.add_argument("--vocab-size", type=int, default=1024, help="BPE vocabulary of the pretrained gpt")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--max-tokens", type=int, help="tokens per perplexity (default 65536, --quick 8192)")
    p.add_argument("--samples", type=int, help="digit samples of the new class (default 100, --quick 27)")
    p.add_argument("--text-samples", type=int, default=32)
    p.add_argument("--text-steps", type=int, default=300, help="steps of the few-shot text LoRA")
    p.add_argument("--text-temperature", type=float, default=0.8, help="sampling temperature of the text figures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="keep the runs in this folder (default: a temporary one, removed)")
    a = p.parse_args()
    a.minutes = a.minutes or (1.2 if a.quick else 10.0)
    a.max_tokens = a.max_tokens or (8192 if a.quick else 65536)
    a.samples = a.samples or (27 if a.quick else 100)
    minutes = {k: share * a.minutes for k, share in BUDGET.items()}
    work = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="genlab-bench-finetune-"))
    work.mkdir(parents=True, exist_ok=True)
    t0, load_before = time.perf_counter(), os.getloadavg()[0]
    try:
        r = domain_shift(work, a, minutes)
        r.update(fewshot_digits(work, a, minutes))
        r.update(fewshot_text(work, a, minutes, r.pop("parent")))
    finally:
        if not a.out:
            shutil.rmtree(work, ignore_errors=True)
    r.update({"minutes": a.minutes, "quick": a.quick, "total_wall_s": round(time.perf_counter() - t0, 1),
              "eval_max_tokens": a.max_tokens, "cpus": os.cpu_count(),
              "load_average_start": round(load_before, 2), "load_average_end": round(os.getloadavg()[0], 2),
              "lora_rank": a.lora_rank, "vocab_size": a.vocab_size,
              "lora_wall_ratio": ratio(r["wall_s_lora"], r["wall_s_full"]),
              "adapter_size_ratio": ratio(r["adapter_bytes"], r["full_bytes"]),
              "trainable_ratio": ratio(r["trainable_params_lora"], r["trainable_params_full"]),
              "forgetting_full": ratio(r["general_ppl_after_full"], r["general_ppl_before"]),
              "forgetting_lora": ratio(r["general_ppl_after_lora"], r["general_ppl_before"])})
    table(r)
    print(f"total wall time {r['total_wall_s']} s for a training budget of {a.minutes:g} minutes; 1-minute load "
          f"average {r['load_average_start']} at the start, {r['load_average_end']} at the end, on {r['cpus']} CPUs "
          "(a load above the CPUs means other work shared them: every time and step count is then low)")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
