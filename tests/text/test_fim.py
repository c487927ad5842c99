"""Fill-in-the-middle: training windows rearranged suffix-prefix-middle between sentinel tokens (bigcode's order),
and a tiny model trained that way writing the code that fits between a prefix and a suffix."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
import torch

from genlab import api
from genlab.errors import GenlabError
from genlab.text.data import FIM_TOKENS, open_text

NAMES = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
BODIES = ["x + 1", "x * 2", "x - 3", "x // 4", "x ** 2", "-x", "abs(x)", "x % 5"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("fim") / "code.py"
    path.write_text("".join(f"def {n}(x):\n    return {b}\n\n" for _ in range(60) for n, b in zip(NAMES, BODIES,
                                                                                                  strict=True)))
    return path


def test_windows_are_rearranged_suffix_prefix_middle(source):
    data = open_text(str(source), block_size=48, fim_rate=1.0)
    tok = data.tokenizer
    assert tok.vocab_size == tok.base.vocab_size + 4 and set(FIM_TOKENS) <= set(tok.specials)
    x, y = data.batch("train", 6, torch.Generator().manual_seed(0))
    pre, mid, suf, end = (tok.special_ids[t] for t in FIM_TOKENS)
    for r in range(6):
        row = torch.cat([x[r], y[r, -1:]]).tolist()
        assert row[:2] == [pre, suf] and row[-1] == end and row.count(mid) == 1
        body = row[2:-1]
        k = body.index(mid)
        suffix, prefix_and_middle = body[:k], body[k + 1 :]
        text = tok.decode(prefix_and_middle + suffix)  # the window's first T - 3 tokens, in order
        assert text in source.read_text() and len(prefix_and_middle + suffix) == 48 + 1 - 4
    plain = open_text(str(source), block_size=48)
    assert Counter(plain.batch("train", 2, torch.Generator().manual_seed(0))[0].flatten().tolist()) \
        and plain.tokenizer.vocab_size == tok.base.vocab_size  # without --fim-rate: no sentinels


def test_a_tiny_fim_model_fills_the_middle(source, tmp_path):
    run = api.train(str(source), family="gpt", out=str(tmp_path / "run"), n_layer=2, n_head=4, n_embd=64,
                    block_size=64, max_steps=600, eval_interval=600, eval_batches=1, seed=0, quiet=True,
                    fim_rate=0.5, lr=3e-3, batch_size=32)
    assert json.loads((run / "config.json").read_text())["data"]["fim_rate"] == 0.5
    m = api.load(run)
    right = 0
    for name, body, after in zip(NAMES, BODIES, NAMES[1:] + NAMES[:1], strict=True):
        middle = m.generate(prompt=f"def {name}(x):\n    return ", suffix=f"\n\ndef {after}(x):", temperature=0,
                            max_new_tokens=30)
        right += middle == body
    assert right >= 6, right  # the code that fits the gap, and nothing past it
    streamed = "".join(m.stream(prompt="def gamma(x):\n    return ", suffix="\n\ndef delta(x):", temperature=0,
                                max_new_tokens=30))
    assert streamed == m.generate(prompt="def gamma(x):\n    return ", suffix="\n\ndef delta(x):", temperature=0,
                                  max_new_tokens=30)
    shown = subprocess.run([sys.executable, "-m", "genlab", "sample", str(run), "--prompt", "def omega(x):\n    "
                            "return ", "--suffix", "\\n\\ndef sigma(x):", "--temperature", "0", "--max-new-tokens",
                            "30"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    middle = m.generate(prompt="def omega(x):\n    return ", suffix="\n\ndef sigma(x):", temperature=0,
                        max_new_tokens=30)
    assert shown.stdout == f"def omega(x):\n    return {middle}\n\ndef sigma(x):\n"  # prefix, middle, suffix
    with pytest.raises(GenlabError, match="needs a model trained for it"):
        api.load(api.train(str(source), family="gpt", out=str(tmp_path / "plain"), n_layer=1, n_head=2, n_embd=16,
                           block_size=32, max_steps=2, eval_interval=2, eval_batches=1, quiet=True)).generate(
            prompt="def f(", suffix="\n")
