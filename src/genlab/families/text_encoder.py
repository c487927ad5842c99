"""Text conditioning for image families: a caption encoder and the cross-attention that reads it.

Rombach et al. 2022 (latent diffusion, "Stable Diffusion") condition the U-Net on a prompt this way: a text
encoder turns the caption's tokens into a sequence of states, and cross-attention layers in the U-Net let
every image position attend to them (queries from the image features, keys and values from the text).
Stable Diffusion's encoder is a frozen CLIP model; ours is a small Transformer encoder trained with the U-Net
(Imagen found the text encoder's quality matters most; at our scale, one trained on the captions themselves
is what there is). As SD-XL and Imagen do, the pooled caption (the mean of its states) is also added to the
time embedding, so every block knows the prompt's gist, not only the layers that attend.

A caption arrives as word ids (images/captions.py: CaptionTokenizer): [CLS] first, [PAD] (id 0) after the
last word. The empty caption, [CLS] alone, is the unconditional prompt that caption dropout trains and
classifier-free guidance mixes against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PAD_ID = 0


class CaptionEncoder(nn.Module):
    """Word ids (B, L) -> states (B, L, dim), the word mask (B, L) (True = a word, not padding) and the pooled
    caption (B, dim)."""

    def __init__(self, vocab_size: int, max_length: int, dim: int, n_layer: int, n_head: int = 4):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
        self.positions = nn.Parameter(torch.zeros(max_length, dim))
        nn.init.normal_(self.positions, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, n_head, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        words = ids != PAD_ID  # (B, L)
        h = self.tokens(ids) + self.positions[: ids.shape[1]]
        h = self.norm(self.layers(h, src_key_padding_mask=~words))  # (B, L, dim)
        h = h * words[..., None]  # padded positions carry nothing
        pooled = h.sum(1) / words.sum(1, keepdim=True).clamp(min=1)  # (B, dim)
        return h, words, pooled


class CrossAttention(nn.Module):
    """Each position of a feature map (B, C, H, W) attends to the caption's states (B, L, D): the feature map plus
    what it read. The output projection starts at zero, so an untrained layer changes nothing."""

    def __init__(self, channels: int, context_dim: int, n_head: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.kv = nn.Linear(context_dim, 2 * channels)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.n_head = n_head
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        nh, hd = self.n_head, C // self.n_head
        q = self.q(self.norm(x)).reshape(B, nh, hd, H * W).transpose(-1, -2)  # (B, nh, HW, hd)
        k, v = self.kv(context).reshape(B, -1, 2, nh, hd).permute(2, 0, 3, 1, 4)  # each (B, nh, L, hd)
        mask = words[:, None, None, :]  # (B, 1, 1, L): attend to words, never to padding
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, HW, hd)
        return x + self.proj(y.transpose(-1, -2).reshape(B, C, H, W))
