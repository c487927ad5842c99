"""VAE: a convolutional variational autoencoder.

Implements Kingma & Welling 2014, "Auto-Encoding Variational Bayes": an encoder q(z|x) that outputs
the mean and log-variance of a diagonal Gaussian, the reparameterisation z = mu + sigma * eps so that
gradients flow through the sampling, and a decoder p(x|z) with a Bernoulli likelihood per pixel (on
pixels mapped to [0, 1]). The loss is the negative ELBO with the KL term weighted by beta (Higgins et
al. 2017, "beta-VAE"; beta = 1 is the plain ELBO), reported per pixel. With --conditional, encoder and
decoder both see the class as a one-hot vector (Sohn et al. 2015, "conditional VAE"). Sampling draws
z from the prior N(0, I); interpolation walks between two such z.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from genlab.families.base import core
from genlab.families.image_base import ImageConfig, ImageFamily, held_out_noise, one_hot


@dataclass
class VAEConfig(ImageConfig):
    latent_dim: int = 16
    width: int = 32  # channels after the first down-sampling; doubled after the second
    hidden: int = 256
    beta: float = 1.0  # weight of the KL term


class VAE(nn.Module):
    controls: ClassVar[dict] = {}

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        c, w, s = config.channels, config.width, config.image_size
        self.n_cond = config.num_classes if config.conditional else 0
        self.flat = 2 * w * (s // 4) ** 2
        self.encoder = nn.Sequential(
            nn.Conv2d(c, w, 4, 2, 1), nn.SiLU(),  # (B, w, s/2, s/2)
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.SiLU(),  # (B, 2w, s/4, s/4)
            nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.SiLU(),
            nn.Flatten(),
        )
        self.enc_fc = nn.Sequential(nn.Linear(self.flat + self.n_cond, config.hidden), nn.SiLU())
        self.to_mu = nn.Linear(config.hidden, config.latent_dim)
        self.to_logvar = nn.Linear(config.hidden, config.latent_dim)
        self.dec_fc = nn.Sequential(nn.Linear(config.latent_dim + self.n_cond, config.hidden), nn.SiLU(),
                                    nn.Linear(config.hidden, self.flat), nn.SiLU())
        self.decoder = nn.Sequential(
            nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.SiLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.SiLU(),  # (B, w, s/2, s/2)
            nn.ConvTranspose2d(w, c, 4, 2, 1),  # (B, c, s, s): Bernoulli logits per pixel
        )

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def _cond(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([h, one_hot(labels, self.n_cond)], dim=1) if self.n_cond else h

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc_fc(self._cond(self.encoder(x), labels))  # (B, hidden)
        return self.to_mu(h), self.to_logvar(h).clamp(-12, 8)  # (B, latent) each

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        s4 = self.config.image_size // 4
        h = self.dec_fc(self._cond(z, labels)).view(-1, 2 * self.config.width, s4, s4)
        return self.decoder(h)  # (B, C, H, W)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        mu, logvar = self.encode(x, labels)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation
        return self.decode_logits(z, labels), mu, logvar

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None, generator=None) -> torch.Tensor:
        """Decode prior samples z (B, latent) into the decoder's mean image, in [-1, 1]."""
        return torch.sigmoid(self.decode_logits(noise, labels)) * 2 - 1

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        mu, _ = self.encode(x, labels)
        return self.generate(mu, labels)


class VAEFamily(ImageFamily):
    name = "vae"
    config_class = VAEConfig
    presets: ClassVar[dict] = {"tiny": {"width": 8, "hidden": 64, "latent_dim": 8},
                               "small": {"width": 32, "hidden": 256, "latent_dim": 16},
                               "base": {"width": 64, "hidden": 512, "latent_dim": 32}}
    train_defaults: ClassVar[dict] = {"batch_size": 128, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 50,
                                      "weight_decay": 0.0, "max_steps": 3000, "eval_interval": 250}

    def build(self, config: VAEConfig) -> VAE:
        self.check(config)
        return VAE(config)

    def loss(self, model: VAE, batch) -> torch.Tensor:
        """Negative ELBO per pixel: Bernoulli reconstruction + beta * KL(q(z|x) || N(0, I))."""
        x, labels = batch
        vae = core(model)
        with held_out_noise(model, x.device):
            logits, mu, logvar = model(x, labels if vae.conditional else None)
        target = (x + 1) / 2  # pixels in [0, 1] as Bernoulli means
        recon = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (recon + vae.config.beta * kl) / x.numel()
