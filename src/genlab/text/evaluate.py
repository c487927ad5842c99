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
                  max_tokens: int | None = None) -> dict:
    """Loss, perplexity and bits per character of a loaded text model on a split of its own corpus
    (or of `data`), scored as sampling at the model's precision runs it."""
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
    return {f"{split}_loss": loss, **metrics, **uniform, "vocab_size": vocab, "data": source, "split": split,
            "block_size": block, "precision": m.precision}


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
    return "\n".join(lines)
