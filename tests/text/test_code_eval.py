"""genlab eval on a code run: sampled functions measured with ast, compile() and the real standard library, beside
as many real held-out functions, and a one-line refusal of --code-samples elsewhere."""

from __future__ import annotations

import pytest

from genlab import api
from genlab.errors import GenlabError


def test_a_code_run_is_measured_against_real_functions(tmp_path, small_corpus):
    run = api.train("text:pystdlib", family="gpt", preset="tiny", tokenizer="bpe", vocab_size=512,
                    out=str(tmp_path / "code"), max_steps=20, eval_interval=20, eval_batches=1, quiet=True)
    metrics = api.evaluate(run, max_tokens=2000, code_samples=6)
    for name in ("parse_rate", "compile_rate", "resolve_rate", "wrong_stdlib_rate"):
        assert 0 <= metrics[f"code_{name}"] <= 1 and 0 <= metrics[f"real_code_{name}"] <= 1
    assert metrics["real_code_parse_rate"] >= 0.8  # real functions of the held-out source parse
    assert metrics["code_compile_rate"] <= metrics["code_parse_rate"] and metrics["code_samples"] == 6
    shown = api.format_metrics(run, metrics)
    assert "code_parse_rate: " in shown and "real held-out functions" in shown
    prose = api.train(str(small_corpus), family="gpt", out=str(tmp_path / "prose"), n_layer=1, n_head=2, n_embd=16,
                      block_size=32, max_steps=2, eval_interval=2, eval_batches=1, quiet=True)
    assert "code_parse_rate" not in api.evaluate(prose, max_tokens=500)
    with pytest.raises(GenlabError, match="--code-samples is for a code run"):
        api.evaluate(prose, max_tokens=500, code_samples=4)
