"""GAN: a DCGAN generator and discriminator, trained as a two-player game.

Implements Goodfellow et al. 2014, "Generative Adversarial Nets", with the non-saturating generator
loss from that paper (or the hinge loss of Lim & Ye 2017 / Miyato et al. 2018), and the architecture
of Radford et al. 2016, "DCGAN": a generator of transposed convolutions with batch norm and ReLU ending
in tanh, a strided-convolution discriminator with LeakyReLU. The discriminator's layers carry spectral
normalisation (Miyato et al. 2018), which keeps this small game stable without tuning. With
--conditional the generator sees a class embedding beside z and the discriminator scores the class by
projection (Miyato & Koyama 2018, "cGANs with Projection Discriminator").

Generator and discriminator live in ONE module, so a checkpoint is one model.safetensors like any
other family's; the family's train_step makes the discriminator step and then the generator step, and
the one trainer drives it. An exponential moving average of the generator's weights (Karras et al.
2018; Yazici et al. 2019) is kept beside them for sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.errors import GenlabError
from genlab.families.base import core
from genlab.families.ema import EMA
from genlab.families.image_base import ImageConfig, ImageFamily, held_out_noise


@dataclass
class GANConfig(ImageConfig):
    z_dim: int = 64
    g_width: int = 32  # generator channels at s/2; doubled at s/4, halved at s
    d_width: int = 32
    label_dim: int = 32
    loss: str = "nonsaturating"  # or "hinge"
    ema_decay: float = 0.999


class Generator(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        g, s4 = config.g_width, config.image_size // 4
        extra = config.label_dim if config.conditional else 0
        self.embed = nn.Embedding(config.num_classes, config.label_dim) if config.conditional else None
        self.fc = nn.Linear(config.z_dim + extra, 2 * g * s4 * s4)
        self.net = nn.Sequential(
            nn.BatchNorm2d(2 * g), nn.ReLU(),  # (B, 2g, s/4, s/4)
            nn.ConvTranspose2d(2 * g, g, 4, 2, 1), nn.BatchNorm2d(g), nn.ReLU(),  # (B, g, s/2, s/2)
            nn.ConvTranspose2d(g, g // 2, 4, 2, 1), nn.BatchNorm2d(g // 2), nn.ReLU(),  # (B, g/2, s, s)
            nn.Conv2d(g // 2, config.channels, 3, 1, 1), nn.Tanh(),  # (B, C, s, s) in [-1, 1]
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        s4 = self.config.image_size // 4
        return self.net(self.fc(z).view(z.shape[0], -1, s4, s4))


class Discriminator(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        d, s4 = config.d_width, config.image_size // 4
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(config.channels, d, 3, 1, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(d, d, 4, 2, 1)), nn.LeakyReLU(0.2),  # (B, d, s/2, s/2)
            spectral_norm(nn.Conv2d(d, 2 * d, 4, 2, 1)), nn.LeakyReLU(0.2),  # (B, 2d, s/4, s/4)
            nn.Flatten(),
        )
        self.fc = spectral_norm(nn.Linear(2 * d * s4 * s4, 1))
        # projection: the score gains <embed(y), features>, so the class must match the picture
        self.embed = spectral_norm(nn.Embedding(config.num_classes, 2 * d * s4 * s4)) if config.conditional else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.net(x)  # (B, features)
        out = self.fc(h).squeeze(1)  # (B,) logits: real > 0 > fake
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(1)
        return out


class GAN(nn.Module):
    # `genlab sample` default weights, chosen by measurement (bench/images.py, digits 16x16, 4 minutes):
    # the EMA generator reached a Fréchet distance of 22.2 where the raw one reached 29.5
    controls: ClassVar[dict] = {"weights": "ema"}

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        self.ema = EMA(self.generator, config.ema_decay)

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.config.z_dim,)

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None, generator=None,
                 weights: str | None = None) -> torch.Tensor:
        """Map z (B, z_dim) to images in [-1, 1] with the averaged (ema) or the last (raw) generator weights."""
        weights = weights or self.controls["weights"]
        if weights not in ("ema", "raw"):
            raise GenlabError(f"--weights must be ema or raw, got {weights!r}")
        g = self.ema.averaged(self.generator) if weights == "ema" else self.generator
        was = g.training
        g.eval()
        out = g(noise, labels if self.conditional else None)
        g.train(was)
        return out


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()  # -log D(x) - log(1 - D(G(z)))


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()  # non-saturating: -log D(G(z))


class GANFamily(ImageFamily):
    name = "gan"
    config_class = GANConfig
    presets: ClassVar[dict] = {"tiny": {"z_dim": 32, "g_width": 8, "d_width": 8, "label_dim": 8},
                               "small": {"z_dim": 64, "g_width": 32, "d_width": 32, "label_dim": 32},
                               "base": {"z_dim": 128, "g_width": 64, "d_width": 64, "label_dim": 64}}
    accumulates = False  # two players, each stepping on its own loss: a step cannot be split into micro-batches
    train_defaults: ClassVar[dict] = {"batch_size": 128, "lr": 2e-4, "min_lr": 2e-4, "warmup_steps": 0,
                                      "beta1": 0.5, "beta2": 0.999, "weight_decay": 0.0, "grad_clip": 0.0,
                                      "max_steps": 3000, "eval_interval": 250}

    def build(self, config: GANConfig) -> GAN:
        self.check(config)
        if config.loss not in ("nonsaturating", "hinge"):
            raise GenlabError(f"--loss must be nonsaturating or hinge, got {config.loss!r}")
        if config.g_width < 2:
            raise GenlabError(f"--g-width must be 2 or more, got {config.g_width}")
        return GAN(config)

    def make_optimizers(self, model: GAN, lr: float, weight_decay: float, betas, fused: bool):
        """Two players, two optimizers (Adam with beta1 = 0.5, as DCGAN)."""
        def opt(module):
            return torch.optim.AdamW(module.parameters(), lr=lr, betas=betas, weight_decay=weight_decay,
                                     fused=fused or None)
        return {"generator": opt(model.generator), "discriminator": opt(model.discriminator)}

    def wrap_for_ddp(self, model: GAN, wrap) -> Players:
        """Each player is called on its own, so each is wrapped on its own; the checkpoint keeps `model`."""
        return Players(model, wrap(model.generator), wrap(model.discriminator))

    def _fakes(self, gan: GAN, generator: nn.Module, labels: torch.Tensor) -> torch.Tensor:
        z = torch.randn(labels.shape[0], gan.config.z_dim, device=labels.device)
        return generator(z, labels if gan.conditional else None)

    def train_step(self, model: GAN | Players, batch, optimizers: dict, ctx) -> dict[str, float]:
        gan, G, D = Players.of(model)
        real, labels = batch
        y = labels if gan.conditional else None
        kind = gan.config.loss
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        # 1. the discriminator learns to tell real from (detached) fake, in one call for real and fake
        with ctx.autocast():
            fake = self._fakes(gan, G, labels)
            scores = D(torch.cat([real, fake.detach()]), None if y is None else torch.cat([y, y]))  # (2B,)
            loss_d = d_loss(kind, *scores.chunk(2))
        loss_d.backward()
        ctx.clip(D.parameters())
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)
        # 2. the generator learns to make the discriminator call its fakes real
        with ctx.autocast():
            loss_g = g_loss(kind, D(fake, y))
        loss_g.backward()
        ctx.clip(G.parameters())
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)  # the generator's backward also reached the discriminator
        gan.ema.update(gan.generator)
        return {"loss": loss_g.detach(), "d_loss": loss_d.detach()}

    def loss(self, model: GAN | Players, batch) -> torch.Tensor:
        """For evaluation: the discriminator's loss on held-out real images against fresh fakes
        (2 ln 2 = 1.386 when it cannot tell them apart). A GAN has no likelihood to report."""
        gan, G, D = Players.of(model)
        real, labels = batch
        y = labels if gan.conditional else None
        with held_out_noise(gan, real.device):
            fake = self._fakes(gan, G, labels)
        return d_loss(gan.config.loss, D(real, y), D(fake, y))


class Players:
    """The GAN as its training step sees it: the model, and each player (wrapped on its own under DDP)."""

    def __init__(self, gan: GAN, generator: nn.Module, discriminator: nn.Module):
        self.gan, self.generator, self.discriminator = gan, generator, discriminator
        self.training = gan.training

    @staticmethod
    def of(model) -> tuple[GAN, nn.Module, nn.Module]:
        if isinstance(model, Players):
            return model.gan, model.generator, model.discriminator
        gan = core(model)
        return gan, gan.generator, gan.discriminator

    def parameters(self):
        return self.gan.parameters()

    def train(self, mode: bool = True) -> Players:
        self.gan.train(mode)
        self.training = mode
        return self

    def eval(self) -> Players:
        return self.train(False)
