"""Text metrics: validation loss, perplexity and bits per character over a whole split.

The split is cut into consecutive windows of the model's context; every token after the first is
predicted once. Bits per character divide the total information by the characters those target
tokens decode to, so char and BPE models compare on the same scale.
"""

from __future__ import annotations

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
        "val_loss": round(loss, 5),
        "perplexity": round(math.exp(loss), 4),
        "bits_per_char": round(total_nats / math.log(2) / max(1, n_chars), 5),
        "tokens": int(count),
        "characters": int(n_chars),
    }
