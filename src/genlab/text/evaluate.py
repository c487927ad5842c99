"""Text metrics: loss (named by its split: val_loss, train_loss), perplexity and bits per character over a
whole split, each beside what a uniform model over the vocabulary scores.

The split is cut into consecutive windows of the model's context; every token after the first is
predicted once. Bits per character divide the total information by the characters those target
tokens decode to, so char and BPE models compare on the same scale.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from genlab.errors import GenlabError


@torch.inference_mode()
def text_metrics(model, tokenizer, tokens: np.ndarray, block_size: int, device: torch.device,
                 batch_size: int = 32, max_tokens: int | None = None, autocast=None) -> dict:
    tokens = np.asarray(tokens)
    if max_tokens is not None:
        tokens = tokens[: max_tokens + 1]
    n_windows = (len(tokens) - 1) // block_size
    if n_windows < 1:
        raise GenlabError(
            f"the evaluation text has {len(tokens)} tokens, fewer than one window of {block_size + 1}; "
            "give more text or a smaller --block-size"
        )
    model.eval()
    total_nats, count = 0.0, 0
    for start in range(0, n_windows, batch_size):
        w = np.arange(start, min(start + batch_size, n_windows))
        idx = w[:, None] * block_size + np.arange(block_size + 1)  # (b, T+1)
        chunk = torch.from_numpy(tokens[idx].astype(np.int64)).to(device)
        x, y = chunk[:, :-1], chunk[:, 1:]
        if autocast is not None:
            with autocast():
                logits = model(x)
        else:
            logits = model(x)
        total_nats += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                                      reduction="sum").item()
        count += y.numel()
    targets = tokens[1 : n_windows * block_size + 1]
    n_chars = len(tokenizer.decode(targets))
    loss = total_nats / count
    return {
        "loss": round(loss, 5),
        "perplexity": round(math.exp(loss), 4),
        "bits_per_char": round(total_nats / math.log(2) / max(1, n_chars), 5),
        "tokens": int(count),
        "characters": int(n_chars),
    }


def evaluate_text(m, data: str | None = None, *, split: str | None = None, block_size: int | None = None,
                  max_tokens: int | None = None, code_samples: int | None = None) -> dict:
    """Loss, perplexity and bits per character of a loaded text model on a split of its own corpus
    (or of `data`), scored as sampling at the model's precision runs it; for a code run, also how many of
    `code_samples` sampled functions parse, compile and name real things, against held-out real functions."""
    from genlab.sampling.decode import inference_copy
    from genlab.text.data import prepare_text, read_text_source

    split = split or "val"
    trained = m.model.max_context
    if block_size is not None:
        if block_size <= 0:
            raise GenlabError(f"--block-size must be positive, got {block_size}")
        if trained is not None and block_size > trained:
            raise GenlabError(
                f"--block-size {block_size} is over the {trained} this model was trained with; use {trained} or less"
            )
    block = block_size or m.config["model"]["block_size"]
    if split not in ("val", "train", "all"):
        raise GenlabError(f"--split must be val, train or all, got {split!r}")
    if data is None and "imported_from" in m.config:
        raise GenlabError(f"{m.run_dir} was imported from {m.config['imported_from']} and has no training data of "
                          f"its own; name the text to evaluate it on: genlab eval {m.run_dir} text:pydocs (or a path)")
    source = data or m.config["data"]["source"]
    val_fraction = m.config["train"]["val_fraction"]
    # the run's own folder is read with the extensions it was trained on
    text = read_text_source(source, extensions=None if data else m.config["train"].get("extensions"))
    if hashlib.sha256(text.encode("utf-8")).hexdigest() == m.config["data"].get("content_sha256"):
        # the training corpus itself: its tokens are already cached on disk
        # a fine-tune's tokenizer is its parent's, not one trained on this text
        given = m.tokenizer if m.config["train"].get("parent") else None
        corpus = prepare_text(source, m.tokenizer.kind, m.config["train"].get("vocab_size"), val_fraction, text=text,
                              given=given)
        ids = np.asarray(corpus.tokens)
    else:
        ids = m.tokenizer.encode(text)
    cut = int(len(ids) * (1 - val_fraction))
    tokens = {"val": ids[cut:], "train": ids[:cut], "all": ids}[split]
    metrics = text_metrics(inference_copy(m.model, m.precision), m.tokenizer, tokens, block, m.device,
                           max_tokens=max_tokens)
    # the loss is named by its split (val_loss, train_loss, all_loss): a train figure never reads as validation
    loss = metrics.pop("loss")
    vocab = int(m.config["model"]["vocab_size"])
    # a uniform model over the vocabulary: ln(V) nats a token, whatever the text
    uniform = {"uniform_loss": round(math.log(vocab), 5),
               "uniform_bits_per_char": round(metrics["tokens"] * math.log2(vocab) / max(1, metrics["characters"]), 5)}
    code = {}
    if is_code_run(m.config) and data is None:
        code = code_evaluation(m, m.tokenizer.decode(ids[cut:]), CODE_SAMPLES if code_samples is None else code_samples)
    elif code_samples is not None:
        raise GenlabError("--code-samples is for a code run (trained on text:pystdlib or a folder of .py files) on "
                          "its own data; leave it out")
    return {f"{split}_loss": loss, **metrics, **uniform, "vocab_size": vocab, "data": source, "split": split,
            "block_size": block, "precision": m.precision, **code}


CODE_SAMPLES = 32  # functions sampled by genlab eval on a code run (bench/code.py samples 200)
CODE_TEMPERATURE = 0.8


def is_code_run(config: dict) -> bool:
    """A run trained on Python source: text:pystdlib, a folder of .py files only, or with fill-in-the-middle."""
    data = config.get("data") or {}
    files = data.get("files_by_extension") or {}
    return data.get("source") == "text:pystdlib" or bool(data.get("fim_rate")) or (bool(files) and set(files) <= {
        ".py"})


def code_evaluation(m, held_out: str, n: int, seed: int = 0, temperature: float = CODE_TEMPERATURE) -> dict:
    """n functions sampled from "def " (each cut at the next top-level statement) measured with Python's own ast
    and compile and against the real standard library, beside n real functions of the held-out source."""
    from genlab.text.code_metrics import code_figures, first_function, held_out_functions

    if n < 1:
        raise GenlabError(f"--code-samples must be 1 or more, got {n}")
    texts = m.generate(prompt="def ", max_new_tokens=320, temperature=temperature, seed=seed, num_samples=n,
                       stop=["\ndef ", "\nclass "])
    made = code_figures([first_function("def " + t) for t in ([texts] if isinstance(texts, str) else texts)])
    real = code_figures(held_out_functions(held_out, n, seed))
    keys = ("parse_rate", "compile_rate", "resolve_rate", "name_resolution_share", "wrong_stdlib_rate")
    return {**{f"code_{k}": made[k] for k in keys}, **{f"real_code_{k}": real[k] for k in keys},
            "code_samples": n, "code_temperature": temperature}


def format_text_metrics(metrics: dict) -> str:
    """The figures with their direction and the uniform model's as the baseline (see Modality.format_metrics)."""
    from genlab.modalities import figure_line, plain

    split = metrics.get("split", "val")
    vocab = metrics.get("vocab_size")
    uniform = f"uniform model over {vocab} tokens" if vocab else "uniform model"
    lines = []
    loss_key = f"{split}_loss" if f"{split}_loss" in metrics else "val_loss"  # runs evaluated before the split
    if loss_key in metrics:
        note = "nats per token, lower is better"
        if "uniform_loss" in metrics:
            note += f"; {uniform}: {plain(metrics['uniform_loss'])}"
        lines.append(figure_line(loss_key, metrics[loss_key], note))
    if "perplexity" in metrics:
        lines.append(figure_line("perplexity", metrics["perplexity"],
                                 f"lower is better; {uniform}: {vocab}" if vocab else "lower is better"))
    if "bits_per_char" in metrics:
        base = metrics.get("uniform_bits_per_char")
        lines.append(figure_line("bits_per_char", metrics["bits_per_char"],
                                 f"lower is better; {uniform}: {plain(base)}" if base else "lower is better"))
    if "tokens" in metrics:
        lines.append(f"measured over {metrics['tokens']} tokens ({metrics.get('characters', '?')} characters), "
                     f"context {metrics.get('block_size', '?')}")
    for name, what in CODE_FIGURES:
        if f"code_{name}" in metrics:
            lines.append(figure_line(f"code_{name}", metrics[f"code_{name}"], f"{what}; real held-out functions: "
                                     f"{plain(metrics.get(f'real_code_{name}'))}"))
    if "code_samples" in metrics:
        lines.append(f"code: {metrics['code_samples']} functions sampled from 'def ' at temperature "
                     f"{plain(metrics.get('code_temperature'))}, against as many real ones")
    return "\n".join(lines)


CODE_FIGURES = (
    ("parse_rate", "share of sampled functions that ast.parse reads, higher is better"),
    ("compile_rate", "share that compile() accepts, higher is better"),
    ("resolve_rate", "share whose every name is local, builtin or imported and every stdlib reference real"),
    ("wrong_stdlib_rate", "share that names a stdlib attribute that does not exist, lower is better"),
)


# ---------------------------------------------------------------------------------------------------
# The creativity dial (genlab report): temperature against quality, diversity and originality
# ---------------------------------------------------------------------------------------------------

TEMPERATURES = (0.5, 0.7, 0.9, 1.0, 1.2, 1.5)
SWEEP_TOKENS = 160  # new tokens per sample: a few sentences, decoded in a second or two on a CPU
COPY_NGRAM = 6  # a run of 6 words and punctuation marks: held-out prose shares ~0.5-8% of them with its training text
TEXT_FIGURES = {
    "perplexity": "perplexity of the samples under the model itself: lower is more probable text (at the price of "
                  "dull, repetitive text when very low)",
    "bits_per_char": "the same as bits per character",
    "distinct_2": "distinct-2 (Li et al. 2016): unique word pairs over all word pairs of the samples; higher is "
                  "more varied",
    "distinct_1": "distinct-1: unique words over all words; higher is more varied",
    f"copied_{COPY_NGRAM}gram_share": f"copy rate: the share of the samples' runs of {COPY_NGRAM} words and "
                                      "punctuation marks found verbatim in the training text; lower is more original",
}


def text_units(text: str) -> list[str]:
    """Words and punctuation marks: the units distinct-n and the copy rate count, whatever the tokenizer."""
    import re

    return re.findall(r"\w+|[^\w\s]", text)


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams of units over all n-grams, pooled over the texts (Li et al. 2016); 0 when there are none."""
    grams = [tuple(u[i : i + n]) for u in map(text_units, texts) for i in range(len(u) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else 0.0


def ngram_hashes(codes: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit polynomial hash of every window of n codes (non-negative ints), (len - n + 1,)."""
    if len(codes) < n:
        return np.zeros(0, dtype=np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(codes.astype(np.uint64), n)
    h = np.zeros(len(windows), dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping modulo 2**64 is the hash
        for j in range(n):
            h = h * np.uint64(0x100000001B3) + windows[:, j] + np.uint64(1)
    return h


@torch.inference_mode()
def sample_perplexity(model, starts: list[list[int]], samples: list[list[int]], device) -> tuple[float, int]:
    """exp(mean loss per token) of each sample's tokens under `model`, each read after the start it continued;
    and how many tokens were scored."""
    rows = [(s, t) for s, t in zip(starts, samples, strict=True) if t]
    if not rows:
        return float("nan"), 0
    width = max(len(s) + len(t) for s, t in rows)
    x = torch.zeros(len(rows), width, dtype=torch.long)
    y = torch.full((len(rows), width), -100, dtype=torch.long)  # -100: not scored (the start, the padding)
    for i, (s, t) in enumerate(rows):
        seq = torch.as_tensor([*s, *t])
        x[i, : len(seq)] = seq
        y[i, len(s) - 1 : len(seq) - 1] = torch.as_tensor(t)
    logits = model(x[:, :-1].to(device)).float()  # (B, T-1, V)
    target = y[:, :-1].to(device)
    nats = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100,
                           reduction="sum").item()
    count = int((target != -100).sum())
    return math.exp(nats / count), count


class TextSweep:
    """A text model's creativity dial: what it reads once (the training and held-out text), then each point."""

    def __init__(self, m):
        from genlab.text.data import read_text

        self.m = m
        self.train_hashes: np.ndarray | None = None
        self.vocab: dict[str, int] = {}
        self.held_out = ""
        try:
            text, _ = read_text(m.config["data"]["source"], m.config["train"].get("extensions"))
        except (GenlabError, OSError, KeyError):  # an imported run, or data moved away: no copy rate then
            return
        cut = int(len(text) * (1 - m.config["train"]["val_fraction"]))  # by characters: the token split's near twin
        self.held_out = text[cut:]
        units = text_units(text[:cut])
        codes = np.fromiter((self.vocab.setdefault(u, len(self.vocab)) for u in units), dtype=np.int64,
                            count=len(units))
        self.train_hashes = np.unique(ngram_hashes(codes, COPY_NGRAM))

    def copy_rate(self, texts: list[str]) -> float | None:
        """The share of the texts' unit n-grams that occur in the training text (None: it cannot be read)."""
        if self.train_hashes is None:
            return None
        copied = total = 0
        for units in map(text_units, texts):
            codes = np.array([self.vocab.get(u, -1) for u in units], dtype=np.int64)
            if len(codes) < COPY_NGRAM:
                continue
            known = np.lib.stride_tricks.sliding_window_view(codes, COPY_NGRAM).min(1) >= 0  # no unseen word in it
            hits = np.isin(ngram_hashes(np.maximum(codes, 0), COPY_NGRAM), self.train_hashes) & known
            copied, total = copied + int(hits.sum()), total + len(hits)
        return round(copied / total, 4) if total else 0.0

    def figures(self, starts: list[list[int]], texts: list[str]) -> dict:
        from genlab.sampling.decode import inference_copy

        m = self.m
        samples = [m.known_tokens(t) for t in texts]
        ppl, _ = sample_perplexity(inference_copy(m.model, m.precision), starts, samples, m.device)
        chars = sum(len(t) for t in texts)
        bpc = math.log2(ppl) * sum(map(len, samples)) / chars if chars and math.isfinite(ppl) else float("nan")
        return {"quality": {"perplexity": round(ppl, 4), "bits_per_char": round(bpc, 4)},
                "diversity": {"distinct_2": distinct_n(texts, 2), "distinct_1": distinct_n(texts, 1)},
                "originality": {f"copied_{COPY_NGRAM}gram_share": self.copy_rate(texts)}}

    def new_tokens(self, start: int) -> int:
        """SWEEP_TOKENS, or fewer where the context ends first: every token is then scored as it was drawn."""
        limit = self.m.model.max_context
        return SWEEP_TOKENS if limit is None else max(1, min(SWEEP_TOKENS, limit - start))

    def point(self, temperature: float, seed: int, n: int) -> dict:
        m = self.m
        start = m.encode_prompt("").tolist()
        texts = m.generate(num_samples=n, seed=seed, temperature=temperature,
                           max_new_tokens=self.new_tokens(len(start)))
        return self.figures([start] * n, [texts] if isinstance(texts, str) else texts)

    def reference(self, seed: int, n: int) -> dict | None:
        """The figures of n windows of held-out text, as long as the samples, read from evenly spaced places."""
        m = self.m
        if not self.held_out:
            return None
        start = m.encode_prompt("").tolist()
        length = self.new_tokens(len(start))
        ids = m.known_tokens(self.held_out[: max(200_000, 40 * length * n)])  # enough text for n windows
        if len(ids) < length * n:
            return None
        offsets = np.linspace(0, len(ids) - length, n).astype(int)
        texts = [m.tokenizer.decode(ids[o : o + length]) for o in offsets]
        return self.figures([start] * n, texts)
