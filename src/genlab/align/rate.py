"""Collecting people's preferences: two samples for one prompt, side by side, and the rater's choice, kept in
the feedback store (align/store.py) with everything that made each sample.

Which sample is shown on the left is random and recorded, because raters favour one side; the two samples
differ only in their seed. A judge is any function (prompt, left, right) -> choice, so the terminal, the
studio and a scripted rater in a benchmark all go through `rate`. Texts and tunes are kept in the store;
images are written as PNG files (with their provenance) into a folder beside it, and the judge sees their paths.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import textwrap
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from genlab.errors import GenlabError

CHOICES = {"a": "left", "b": "right", "t": "tie", "n": "both_bad", "s": "skip", "q": "quit"}
# (prompt, left, right) -> left|right|tie|both_bad|skip|quit; left and right are texts, or files' paths (images)
Judge = Callable[[str, str, str], str]


def tokenizer_sha256(run_dir: Path) -> str | None:
    path = Path(run_dir) / "tokenizer.json"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def rate(sampler, prompts: Iterable[str], store, judge: Judge, *, rater: str | None = None, seed: int = 0,
         **controls) -> dict[str, int]:
    """For each prompt: two samples with different seeds, shown to `judge` in a random order, its choice
    recorded in `store` (one transaction per comparison). Returns how many of each choice were made."""
    sampler.check_controls(controls)
    rng = random.Random(seed)
    counts = {"pairs": 0, "ties": 0, "both_bad": 0, "skipped": 0}
    tok = tokenizer_sha256(sampler.run_dir)
    files = outputs_folder(store.path)
    for prompt in prompts:
        outputs = []
        for _ in range(2):
            made = sampler.generate(prompt=prompt, seed=rng.randrange(2**31), **{"num_samples": 1, **controls})
            outputs.append({"model": str(sampler.run_dir), "checkpoint_sha256": sampler.checkpoint_sha256,
                            "tokenizer_sha256": tok, "modality": sampler.modality, "prompt": prompt,
                            **sampler.record_output(made, files), "controls": dict(sampler.last_controls),
                            "seed": sampler.last_seed})
        left = rng.choice("ab")
        shown = [o.get("content") or o["file"] for o in (outputs if left == "a" else outputs[::-1])]
        t0 = time.perf_counter()
        choice = judge(prompt, shown[0], shown[1])
        latency = time.perf_counter() - t0
        if choice == "quit":
            break
        if choice == "skip":
            counts["skipped"] += 1
            continue
        if choice in ("left", "right"):
            winner = left if choice == "left" else {"a": "b", "b": "a"}[left]
            counts["pairs"] += 1
        elif choice in ("tie", "both_bad"):
            winner = choice
            counts["ties" if choice == "tie" else "both_bad"] += 1
        else:
            raise GenlabError(f"a judge answered {choice!r}; answer left, right, tie, both_bad, skip or quit")
        store.record_comparison(output_a=outputs[0], output_b=outputs[1], prompt=prompt, left=left, winner=winner,
                                rater=rater, latency_s=latency)
    return counts


def outputs_folder(store_path: Path) -> Path:
    """Where rated outputs that are files (images) are kept: beside the store, `feedback-outputs/` for
    `feedback.sqlite`."""
    store_path = Path(store_path)
    return store_path.with_name(f"{store_path.stem}-outputs")


def terminal_judge(read: Callable[[str], str] = input, write: Callable[[str], None] = print) -> Judge:
    """Ask in the terminal: the two samples in two columns, then a / b / t(ie) / n (both bad) / s(kip) / q(uit)."""

    def judge(prompt: str, left: str, right: str) -> str:
        if all(Path(side).is_absolute() and Path(side).is_file() for side in (left, right)):
            # files (images) are named whole, one per line, so the path can be copied into a viewer
            write(f"prompt: {prompt!r}\n[a] {left}\n[b] {right}\n(open both to compare)")
        else:
            write(side_by_side(prompt, left, right))
        while True:
            answer = read("better? [a] left  [b] right  [t] tie  [n] both bad  [s] skip  [q] quit: ").strip().lower()
            if answer[:1] in CHOICES and answer:
                return CHOICES[answer[:1]]
            write("answer a, b, t, n, s or q")

    return judge


def side_by_side(prompt: str, left: str, right: str, width: int | None = None) -> str:
    """Two texts in two columns under their prompt, each wrapped to half the terminal."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    half = max(20, (width - 3) // 2)

    def column(text: str) -> list[str]:
        lines = []
        for line in (text or "(empty)").splitlines() or [""]:
            lines += textwrap.wrap(line, half, replace_whitespace=False, drop_whitespace=False) or [""]
        return lines

    a, b = column(left), column(right)
    rows = [f"{x:<{half}} | {y}" for x, y in zip(a + [""] * (len(b) - len(a)), b + [""] * (len(a) - len(b)),
                                                 strict=True)]
    head = f"{'[a]':<{half}} | [b]"
    return "\n".join([f"prompt: {prompt!r}", head, "-" * min(width, 2 * half + 3), *rows])


def read_prompts(prompt: str | None, prompts_file: str | None) -> list[str]:
    """The prompts to rate: one given, the lines of a file, or the empty prompt."""
    if prompts_file is not None:
        path = Path(prompts_file)
        if not path.is_file():
            raise GenlabError(f"--prompts {path} does not exist; give a text file with one prompt per line")
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            raise GenlabError(f"--prompts {path} holds no prompt; write one per line")
        return lines
    return [prompt or ""]
