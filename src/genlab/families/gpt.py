"""GPT: a decoder-only Transformer language model.

Implements the architecture of GPT-2 (Radford et al. 2019, "Language Models are Unsupervised
Multitask Learners"), itself the decoder of "Attention Is All You Need" (Vaswani et al. 2017)
with pre-LayerNorm blocks. Token and position embeddings, causal self-attention through
`scaled_dot_product_attention`, a GELU MLP (exact, or GPT-2's tanh approximation), weight tying
between the embedding and the output head (Press & Wolf 2017), and a key/value cache so that
sampling does one token of work per step. Parameter names and layouts follow GPT-2 so that
`genlab export --format hf-gpt2` maps every tensor one to one (GPT-2's Conv1D stores weights
transposed; the export transposes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError
from genlab.families.base import LanguageModelFamily, feature_ids


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 256  # the longest context the position embedding knows
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # GPT-2 has biases in Linear and LayerNorm
    # "gelu" (exact, as nanoGPT) or "gelu_tanh" (GPT-2's approximation); the exact one is ~45%
    # cheaper here forward and backward, ~6% of a small model's training step
    activation: str = "gelu"
    # ids of a second input the data gives beside each token (music: the room left in the bar), embedded and
    # added like the position embedding; 0: none (as GPT-2)
    feature_vocab_size: int = 0


class KVCache:
    """Keys and values of every layer for the tokens seen so far, preallocated to max_len."""

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int, device, dtype):
        head_dim = config.n_embd // config.n_head
        shape = (2, batch_size, config.n_head, max_len, head_dim)  # keys and values together
        self.kv = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.max_len = max_len
        self.pos = 0  # number of positions already filled

    def put_row(self, row: int, other: KVCache, src: int = 0, length: int | None = None) -> None:
        """Copy slots [0, length) of row `src` of `other` (default: its filled ones) into row `row`: a prompt
        prefilled alone joins a batch decoded with `GPT.decode_rows`; `other` may be this cache (a row moves)."""
        n = other.pos if length is None else length
        for mine, theirs in zip(self.kv, other.kv, strict=True):
            mine[:, row, :, :n] = theirs[:, src, :, :n]


def matmul_attention(q, k, v, mask: torch.Tensor | None, is_causal: bool, dropout: float) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v as two batched matmuls, the softmax in fp32.

    For bf16 on CPU: there the matmuls run on the AMX units and the fused kernel does not; forward
    and backward took 15.5 against 27.4 ms (batch 12, 6 heads, 256 tokens), the same math.
    """
    T, S = q.size(-2), k.size(-2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
    if is_causal:
        mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
    if mask is not None:
        att = att.masked_fill(~mask, float("-inf"))
    att = F.dropout(att.float().softmax(dim=-1).to(q.dtype), p=dropout, training=dropout > 0)
    return att @ v


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        # q, k and v as views of one tensor, so that a cache takes keys and values in one copy
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hd)
        q, kv = qkv[0], qkv[1:]
        mask, is_causal = None, T > 1
        if cache is not None:
            past = cache.pos
            cache.kv[layer][:, :, :, past : past + T] = kv
            kv = cache.kv[layer][:, :, :, : past + T]  # (2, B, nh, past + T, hd)
            if past > 0 and T > 1:
                # a chunk after a prefix: query i may see every key up to its own absolute position
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
                is_causal = False
            elif T == 1:
                is_causal = False  # one new token may see everything before it
        k, v = kv.unbind(0)
        dropout = self.dropout if self.training else 0.0
        if q.dtype == torch.bfloat16 and q.device.type == "cpu" and T > 1:
            y = matmul_attention(q, k, v, mask, is_causal, dropout)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=is_causal)
        # y: (B, nh, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.approximate = {"gelu": "none", "gelu_tanh": "tanh"}[config.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        if config.feature_vocab_size:
            self.transformer["wfe"] = nn.Embedding(config.feature_vocab_size, config.n_embd)  # the data's second input
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale residual projections by depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @property
    def max_context(self) -> int:
        return self.config.block_size

    def new_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        p = self.transformer.wte.weight
        return KVCache(self.config, batch_size, max_len or self.config.block_size, p.device, p.dtype)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None, features: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Token ids (B, T) -> next-token logits (B, T, vocab). With a cache, idx continues it. `features`
        (B, T): the data's second input, for a model built with feature_vocab_size."""
        return self.lm_head(self.body(idx, cache, features))

    def body(self, idx: torch.Tensor, cache: KVCache | None = None, features: torch.Tensor | None = None
             ) -> torch.Tensor:
        """The final hidden states (B, T, n_embd) that the head reads (a reward model's head reads them too)."""
        B, T = idx.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # (B, T, C)
        if self.config.feature_vocab_size:
            x = x + self.transformer.wfe(feature_ids(features, idx))
        x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache, i)
        if cache is not None:
            cache.pos += T
        return self.transformer.ln_f(x)

    def decode_step(self, idx: torch.Tensor, cache: KVCache, features: torch.Tensor | None = None) -> torch.Tensor:
        """forward() for one new token per sequence, (B, 1), at inference: the same computation in
        fewer, direct calls (no module calls but the Linear layers, no dropout, no reshuffling of
        q/k/v), since sampling runs it once per token and at these sizes the calls cost ~20% of it."""
        pos, tr = cache.pos, self.transformer
        if pos + 1 > self.config.block_size:
            raise ValueError(f"sequence of {pos + 1} tokens exceeds block_size {self.config.block_size}")
        B, C, nh = idx.size(0), self.config.n_embd, self.config.n_head
        x = tr.wte.weight[idx[:, 0]] + tr.wpe.weight[pos]  # (B, C)
        if self.config.feature_vocab_size:
            x = x + tr.wfe.weight[feature_ids(features, idx)[:, 0]]
        for i, block in enumerate(tr.h):
            h = F.layer_norm(x, (C,), block.ln_1.weight, block.ln_1.bias)
            qkv = block.attn.c_attn(h).view(B, 3, nh, 1, C // nh)
            kv = cache.kv[i]  # (2, B, nh, max_len, hd)
            kv[:, :, :, pos : pos + 1] = qkv[:, 1:].transpose(0, 1)
            y = F.scaled_dot_product_attention(qkv[:, 0], kv[0, :, :, : pos + 1], kv[1, :, :, : pos + 1])
            x = x + block.attn.c_proj(y.reshape(B, C))
            h = F.layer_norm(x, (C,), block.ln_2.weight, block.ln_2.bias)
            x = x + block.mlp.c_proj(F.gelu(block.mlp.c_fc(h), approximate=block.mlp.approximate))
        cache.pos += 1
        return self.lm_head(F.layer_norm(x, (C,), tr.ln_f.weight, tr.ln_f.bias)).unsqueeze(1)

    def decode_rows(self, idx: torch.Tensor, cache: KVCache, positions: torch.Tensor) -> torch.Tensor:
        """decode_step() for rows at different lengths (continuous batching): the new token of row b, (B, 1),
        goes to slot positions[b] of row b of the cache (its first B rows) and sees slots 0..positions[b] only.
        Returns logits (B, 1, vocab); `cache.pos` is not used, each row's length is its position."""
        tr = self.transformer
        B, C, nh = idx.size(0), self.config.n_embd, self.config.n_head
        S = int(positions.max()) + 1  # the slots any row may see
        if S > min(cache.max_len, self.config.block_size):
            raise ValueError(f"position {S - 1} is past the cache ({cache.max_len}) or block_size")
        rows = torch.arange(B, device=idx.device)
        mask = (torch.arange(S, device=idx.device) <= positions[:, None]).view(B, 1, 1, S)  # slots past a row's own
        x = tr.wte.weight[idx[:, 0]] + tr.wpe.weight[positions]  # (B, C)
        for i, block in enumerate(tr.h):
            h = F.layer_norm(x, (C,), block.ln_1.weight, block.ln_1.bias)
            qkv = block.attn.c_attn(h).view(B, 3, nh, 1, C // nh)
            kv = cache.kv[i]  # (2, max_rows, nh, max_len, hd)
            kv[:, rows, :, positions] = qkv[:, 1:, :, 0]  # (B, 2, nh, hd), each row at its own slot
            y = F.scaled_dot_product_attention(qkv[:, 0], kv[0, :B, :, :S], kv[1, :B, :, :S], attn_mask=mask)
            x = x + block.attn.c_proj(y.reshape(B, C))
            h = F.layer_norm(x, (C,), block.ln_2.weight, block.ln_2.bias)
            x = x + block.mlp.c_proj(F.gelu(block.mlp.c_fc(h), approximate=block.mlp.approximate))
        return self.lm_head(F.layer_norm(x, (C,), tr.ln_f.weight, tr.ln_f.bias)).unsqueeze(1)


class GPTFamily(LanguageModelFamily):
    name = "gpt"
    config_class = GPTConfig
    # small is the default size; base is nanoGPT's shakespeare-char model
    presets: ClassVar[dict] = {"tiny": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64},
                               "small": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 256},
                               "base": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256}}
    # attention and MLP matrices; the embedding is tied to the output head (see align/lora.py)
    lora_targets = r"transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)"

    def make_config(self, values: dict) -> GPTConfig:
        if values.get("activation", "gelu") not in ("gelu", "gelu_tanh"):
            raise GenlabError(f"--activation must be gelu or gelu_tanh, got {values['activation']!r}")
        return super().make_config(values)

    def saved_config(self, saved: dict) -> GPTConfig:
        return self.make_config({"activation": "gelu_tanh", **saved})  # runs saved before the setting used tanh

    def build(self, config: GPTConfig) -> GPT:
        _check_heads(config)
        return GPT(config)


def _check_heads(config: GPTConfig) -> None:
    """Each attention head takes n_embd / n_head channels: a width the heads cannot share is one line that
    offers the nearest head counts that fit, before any layer is built (a run's config.json comes here too)."""
    n_head, n_embd = config.n_head, config.n_embd
    if n_head <= 0 or n_embd <= 0:
        raise GenlabError(f"--n-head and --n-embd must be positive, got {n_head} and {n_embd}")
    if n_embd % n_head == 0:
        return
    below = next(d for d in range(n_head, 0, -1) if n_embd % d == 0)
    above = next((d for d in range(n_head + 1, n_embd + 1) if n_embd % d == 0), below)
    fits = " or ".join(str(d) for d in sorted({below, above}))
    raise GenlabError(
        f"--n-head {n_head} does not divide --n-embd {n_embd} (each attention head takes n_embd / n_head "
        f"channels); use --n-head {fits}, or an --n-embd that is a multiple of {n_head}"
    )
