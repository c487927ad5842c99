"""Diffusion: a denoising diffusion model with a small U-Net, sampled by DDPM or DDIM.

Implements Ho et al. 2020, "Denoising Diffusion Probabilistic Models": the forward process adds
Gaussian noise over T steps (linear betas, or the cosine schedule of Nichol & Dhariwal 2021), and a
network learns to predict the noise eps in x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps with a plain MSE.
The network is a U-Net (Ronneberger et al. 2015) in the shape of Ho et al.'s: residual blocks with
GroupNorm and SiLU, a sinusoidal embedding of t (Vaswani et al. 2017) added inside every block,
self-attention at the lowest resolution, skip connections between the halves.

With --conditional the class embedding is added to the time embedding, and during training the
label is replaced by a "no label" token with probability label_dropout, so one network is both the
conditional and the unconditional model: classifier-free guidance (Ho & Salimans 2022) then mixes
them as eps = eps_uncond + s * (eps_cond - eps_uncond) (diffusers' convention: s = 1 is the
conditional model alone, s = 0 the unconditional one). Samplers live apart, in
genlab.families.schedulers: DDPM ancestral sampling and DDIM (Song et al. 2021) with --steps and --eta.
An exponential moving average of the U-Net's weights is kept for sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError
from genlab.families.base import Family, core
from genlab.families.ema import EMA
from genlab.families.image_base import ImageConfig, ImageFamily, held_out_noise
from genlab.families.schedulers import SAMPLERS, SCHEDULES, DDPMScheduler, make_betas
from genlab.families.text_encoder import CaptionEncoder, CrossAttention

# `genlab sample` defaults, chosen by measurement (bench/images.py, digits 16x16, 4 minutes of training on 2
# threads; docs/images.md): DDIM-20 reached the Fréchet distance of DDIM-50 (21.2 vs 21.4) in 40% of the time,
# and DDPM over all 1000 steps (17.9) took 50x longer. Guidance 1.5 gave FD 19.6 with 99.5% of samples
# recognised; 1: FD 21.6, 95%; 2: FD 26.5, 99.8%; 3 over-saturates: FD 37.3. EMA weights: FD 19.6 vs 20.4 raw.
DEFAULT_CONTROLS = {"sampler": "ddim", "steps": 20, "guidance": 1.5, "eta": 0.0, "weights": "ema"}


@dataclass
class DiffusionConfig(ImageConfig):
    width: int = 32  # channels at full resolution; 2x at 1/2 and 1/4
    time_dim: int = 128
    attention: bool = True  # self-attention at the lowest resolution
    timesteps: int = 1000
    schedule: str = "cosine"  # or "linear"
    label_dropout: float = 0.15  # share of training labels (or captions) replaced by "no label" (""), for guidance
    ema_decay: float = 0.999
    text_dim: int = 128  # with captions: the caption encoder's width
    text_layers: int = 2  # and its Transformer layers
    snr_gamma: float = 0.0  # Min-SNR loss weighting (Hang et al. 2023) with this gamma; 0 = plain MSE
    coords: bool = False  # two coordinate channels (x, y) beside the image (CoordConv), so layers know where they are


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (B,) -> (B, dim), as Transformer positions."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W): each position's column and row in [-1, 1] (Liu et al. 2018's CoordConv). A caption says
    "left of" and "above"; convolutions with zero padding learn where they are only slowly."""
    B, _, H, W = x.shape
    ys = torch.linspace(-1, 1, H, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, W, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))  # (2, H, W): x then y
    return grid.expand(B, 2, H, W)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, time_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(8, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        h = h + self.time(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map."""

    def __init__(self, channels: int, n_head: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.n_head = n_head
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.n_head, C // self.n_head, H * W).unbind(1)
        y = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(y.transpose(-1, -2).reshape(B, C, H, W))  # y: (B, nh, HW, hd)


class UNet(nn.Module):
    """eps_theta(x_t, t, y): (B, C, s, s) at resolutions s -> s/2 -> s/4 -> s/2 -> s. The condition y is a class
    label, or, with captions, the encoded caption (encode_caption), which cross-attention reads at s/2 on the way
    down and up and at s/4 in the middle."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        w, td, c = config.width, config.time_dim, config.channels
        self.config = config
        self.time_mlp = nn.Sequential(nn.Linear(td, td), nn.SiLU(), nn.Linear(td, td))
        # classes 0..K-1, and K = "no label" (label dropout, and the unconditional half of guidance)
        self.label_emb = nn.Embedding(config.num_classes + 1, td) if config.conditional else None
        self.inp = nn.Conv2d(c + 2 * config.coords, w, 3, 1, 1)
        self.down0 = ResBlock(w, w, td)  # (B, w, s, s) -> skip
        self.pool0 = nn.Conv2d(w, w, 3, 2, 1)  # s/2
        self.down1 = ResBlock(w, 2 * w, td)  # (B, 2w, s/2, s/2) -> skip
        self.pool1 = nn.Conv2d(2 * w, 2 * w, 3, 2, 1)  # s/4
        self.mid1 = ResBlock(2 * w, 2 * w, td)
        self.attn = Attention(2 * w) if config.attention else nn.Identity()
        self.mid2 = ResBlock(2 * w, 2 * w, td)
        self.up1 = ResBlock(4 * w, 2 * w, td)  # after upsampling to s/2 and concatenating the skip
        self.up0 = ResBlock(3 * w, w, td)  # at s
        self.upconv1 = nn.Conv2d(2 * w, 2 * w, 3, 1, 1)
        self.upconv0 = nn.Conv2d(2 * w, 2 * w, 3, 1, 1)
        self.out = nn.Sequential(nn.GroupNorm(8, w), nn.SiLU(), nn.Conv2d(w, c, 3, 1, 1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        self.captions = config.captions
        if self.captions:
            d = config.text_dim
            self.text = CaptionEncoder(config.caption_vocab_size, config.caption_length, d, config.text_layers)
            self.text_pool = nn.Linear(d, td)  # the pooled caption joins the time embedding
            self.cross_down1 = CrossAttention(2 * w, d)
            self.cross_mid = CrossAttention(2 * w, d)
            self.cross_up1 = CrossAttention(2 * w, d)

    def encode_caption(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Caption word ids (B, L) as what the layers read: states (B, L, d), the word mask (B, L), pooled (B, d).
        Sampling encodes a prompt once, not at every step."""
        return self.text(ids)

    def _read(self, layer: str, h: torch.Tensor, text) -> torch.Tensor:
        return h if text is None else getattr(self, layer)(h, text[0], text[1])

    def encode(self, x: torch.Tensor, t: torch.Tensor, labels=None):
        """The down half and the middle: the features at the lowest resolution (B, 2w, s/4, s/4), the two skips,
        the embedding of t (and y) that the up half takes, and the encoded caption (None without captions)."""
        emb = self.time_mlp(timestep_embedding(t, self.config.time_dim))  # (B, td)
        text = None
        if self.captions:
            text = labels if isinstance(labels, tuple) else self.encode_caption(labels)
            emb = emb + self.text_pool(text[2])
        elif self.label_emb is not None:
            emb = emb + self.label_emb(labels)
        if self.config.coords:
            x = torch.cat([x, coordinate_channels(x)], dim=1)  # (B, C + 2, s, s)
        h0 = self.down0(self.inp(x), emb)  # (B, w, s, s)
        h1 = self._read("cross_down1", self.down1(self.pool0(h0), emb), text)  # (B, 2w, s/2, s/2)
        h = self.mid1(self.pool1(h1), emb)  # (B, 2w, s/4, s/4)
        h = self._read("cross_mid", self.attn(h), text)
        return self.mid2(h, emb), (h0, h1), emb, text

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels=None) -> torch.Tensor:
        """labels: class labels (B,), or with captions caption ids (B, L) or an encode_caption result."""
        h, (h0, h1), emb, text = self.encode(x, t, labels)
        h = self.upconv1(F.interpolate(h, scale_factor=2.0, mode="nearest"))  # (B, 2w, s/2, s/2)
        h = self._read("cross_up1", self.up1(torch.cat([h, h1], dim=1), emb), text)
        h = self.upconv0(F.interpolate(h, scale_factor=2.0, mode="nearest"))  # (B, 2w, s, s)
        h = self.up0(torch.cat([h, h0], dim=1), emb)  # (B, w, s, s)
        return self.out(h)  # (B, C, s, s): the predicted noise


class Diffusion(nn.Module):
    controls: ClassVar[dict] = DEFAULT_CONTROLS

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.unet = UNet(config)
        self.ema = EMA(self.unet, config.ema_decay)
        self.betas = make_betas(config.schedule, config.timesteps)
        self.forward_process = DDPMScheduler(self.betas)  # training noises x_0 with its add_noise

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The training network, eps_theta(x_t, t, y) (the averaged copy is only for sampling)."""
        return self.unet(x, t, labels)

    @property
    def conditional(self) -> bool:
        """Whether the model reads a class label."""
        return self.config.conditional

    @property
    def captions(self) -> bool:
        """Whether the model reads a caption (a text prompt)."""
        return self.config.captions

    @property
    def guided(self) -> bool:
        """Whether classifier-free guidance applies: the model reads a label or a caption."""
        return self.conditional or self.captions

    @property
    def feature_dim(self) -> int:
        return 2 * self.config.width

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """What the U-Net sees in clean images (t = 0, no label or the empty caption): its lowest-resolution
        features averaged over the positions, (B, 2w). A reward model on this model reads them."""
        t = torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
        return self.unet.encode(images, t, self.null_condition(images.shape[0], images.device))[0].mean(dim=(2, 3))

    @property
    def null_label(self) -> int:
        return self.config.num_classes

    def null_condition(self, n: int, device) -> torch.Tensor | None:
        """The unconditional model's input: the "no label" label (n,), or the empty caption, [CLS] alone (n, L)."""
        if self.captions:
            ids = torch.zeros(n, self.config.caption_length, dtype=torch.long, device=device)
            ids[:, 0] = 1
            return ids
        if self.conditional:
            return torch.full((n,), self.null_label, dtype=torch.long, device=device)
        return None

    @property
    def noise_shape(self) -> tuple[int, ...]:
        c, s = self.config.channels, self.config.image_size
        return (c, s, s)

    def guided_eps(self, net: UNet, x: torch.Tensor, t: int, cond, uncond, guidance: float) -> torch.Tensor:
        """eps at one timestep; with a condition (labels, or an encoded caption), eps_u + s (eps_c - eps_u) in one
        batched call, where eps_u reads `uncond` (no label, the empty caption or a negative prompt)."""
        tt = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
        if not self.guided:
            return net(x, tt)
        if guidance == 1.0:
            return net(x, tt, cond)
        if guidance == 0.0:
            return net(x, tt, uncond)
        both = tuple(torch.cat([c, u]) for c, u in zip(cond, uncond, strict=True)) if isinstance(cond, tuple) \
            else torch.cat([cond, uncond])
        eps = net(torch.cat([x, x]), torch.cat([tt, tt]), both)  # (2B, C, H, W)
        eps_cond, eps_uncond = eps.chunk(2)
        return eps_uncond + guidance * (eps_cond - eps_uncond)

    def resolve_controls(self, given: dict) -> dict:
        """The controls a call really uses: the given ones over the defaults (DDPM walks all T steps)."""
        c = {**DEFAULT_CONTROLS, **{k: v for k, v in given.items() if v is not None}}
        if c["sampler"] == "ddpm" and given.get("steps") is None:
            c["steps"] = self.config.timesteps
        if not self.guided:
            c.pop("guidance")
        return c

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None, generator=None, *, sampler: str | None = None,
                 steps: int | None = None, guidance: float | None = None, eta: float | None = None,
                 weights: str | None = None, negative: torch.Tensor | None = None) -> torch.Tensor:
        """Denoise x_T = noise (B, C, H, W) into images in [-1, 1]. `labels` are class labels (B,) or, with captions,
        caption ids (B, L); `negative` (B, L) is the caption that guidance steers away from (default: the empty
        caption), Stable Diffusion's negative prompt."""
        c = self.resolve_controls(dict(sampler=sampler, steps=steps, guidance=guidance, eta=eta, weights=weights))
        sampler, steps, eta, weights = c["sampler"], c["steps"], c["eta"], c["weights"]
        guidance = c.get("guidance", 1.0)
        if sampler not in SAMPLERS:
            raise GenlabError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if weights not in ("ema", "raw"):
            raise GenlabError(f"--weights must be ema or raw, got {weights!r}")
        if eta < 0:
            raise GenlabError(f"--eta must be 0 or more, got {eta}")
        if sampler == "ddpm" and eta:
            raise GenlabError("--eta is a DDIM control; DDPM's noise is fixed by the schedule (use --sampler ddim)")
        net = self.ema.averaged(self.unet) if weights == "ema" else self.unet
        cond, uncond = labels, self.null_condition(noise.shape[0], noise.device)
        if negative is not None:
            if not self.captions:
                raise GenlabError("a negative prompt is for a model trained on captions (--captions); drop it")
            uncond = negative
        if self.captions:  # the prompts are encoded once, not at every step
            cond, uncond = net.encode_caption(cond), net.encode_caption(uncond)
        scheduler = SAMPLERS[sampler](self.betas)
        scheduler.set_timesteps(steps)
        x = noise
        for t in scheduler.timesteps.tolist():
            eps = self.guided_eps(net, x, t, cond, uncond, guidance)
            # DDIM: the noise direction is recomputed from the clipped x0 guess, so the two terms of the update
            # agree; with guidance, leaving them inconsistent was measured to double the Fréchet distance at 50 steps
            extra = {"eta": eta, "use_clipped_model_output": True} if sampler == "ddim" else {}
            x = scheduler.step(eps, t, x, generator=generator, **extra).prev_sample
        return x.clamp(-1, 1)


class DiffusionFamily(ImageFamily):
    name = "diffusion"
    config_class = DiffusionConfig
    presets: ClassVar[dict] = {"tiny": {"width": 8, "time_dim": 32},
                               "small": {"width": 32, "time_dim": 128},
                               "base": {"width": 64, "time_dim": 256}}
    train_defaults: ClassVar[dict] = {"batch_size": 128, "lr": 2e-3, "min_lr": 1e-4, "warmup_steps": 100,
                                      "weight_decay": 0.0, "max_steps": 4000, "eval_interval": 500}
    lora_targets = r"unet\..*"  # every convolution, linear layer and the label embedding of the U-Net
    takes_captions = True

    def build(self, config: DiffusionConfig) -> Diffusion:
        self.check(config)
        if config.schedule not in SCHEDULES:
            raise GenlabError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {config.schedule!r}")
        if config.width % 8 or config.width <= 0:
            raise GenlabError(f"--width must be a positive multiple of 8 (GroupNorm of 8 groups), got {config.width}")
        if not 0 <= config.label_dropout < 1:
            raise GenlabError(f"--label-dropout must be in [0, 1), got {config.label_dropout}")
        return Diffusion(config)

    def loss(self, model: Diffusion, batch) -> torch.Tensor:
        """MSE between the noise added at a random timestep and the U-Net's prediction of it."""
        x0, labels = batch
        B = x0.shape[0]
        m = core(model)
        with held_out_noise(model, x0.device):
            t = torch.randint(0, m.config.timesteps, (B,), device=x0.device)
            noise = torch.randn_like(x0)
            drop = torch.rand(B, device=x0.device) < m.config.label_dropout
        xt = m.forward_process.add_noise(x0, noise, t)  # q(x_t | x_0)
        y = None
        if m.guided:  # prompt dropout: the same network learns the unconditional model
            null = m.null_condition(B, x0.device)
            y = torch.where(drop.view(-1, *[1] * (labels.dim() - 1)), null, labels)
        error = (model(xt, t, y).float() - noise).pow(2).mean(dim=tuple(range(1, x0.dim())))  # (B,)
        if m.config.snr_gamma > 0:  # Min-SNR: the nearly clean timesteps, easy and many, count for less
            snr = m.forward_process.alphas_cumprod.to(x0.device)[t]
            snr = snr / (1 - snr)
            error = error * snr.clamp(max=m.config.snr_gamma) / snr
        return error.mean()

    def train_step(self, model: Diffusion, batch, optimizers: dict, ctx) -> dict[str, float]:
        figures = Family.train_step(self, model, batch, optimizers, ctx)
        m = core(model)
        m.ema.update(m.unet)
        return figures

    def begin_finetune(self, model: Diffusion) -> None:
        """Train on from the averaged weights, the ones the parent samples with, and average afresh."""
        with torch.no_grad():
            for p, avg in zip(model.unet.parameters(), model.ema.averages(), strict=True):
                p.copy_(avg)
        model.ema.restart(model.unet)

    def reward_model(self, backbone: Diffusion) -> nn.Module:
        from genlab.align.reward import ImageRewardModel

        return ImageRewardModel(backbone)

    def adopt_weights(self, model: Diffusion) -> None:
        model.ema.restart(model.unet)  # sampling's averaged weights are the merged ones
