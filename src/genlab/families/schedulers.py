"""Noise schedules and the DDPM and DDIM samplers, apart from any network (the diffusers layout).

    scheduler = DDIMScheduler(make_betas("cosine", 1000))
    scheduler.set_timesteps(50)
    for t in scheduler.timesteps:
        eps = unet(x, t)
        x = scheduler.step(eps, t, x, generator=g).prev_sample

DDPM: Ho et al. 2020, "Denoising Diffusion Probabilistic Models" (ancestral sampling, the "fixed small"
posterior variance). DDIM: Song et al. 2021, "Denoising Diffusion Implicit Models" (eta = 0 is the
deterministic sampler, eta = 1 the DDPM-like one). The cosine schedule is Nichol & Dhariwal 2021.
Both follow diffusers' conventions ("leading" timestep spacing, x0 clipped to [-1, 1], epsilon
prediction) so that tests can check every step against diffusers' DDPMScheduler and DDIMScheduler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from genlab.errors import GenlabError

SCHEDULES = ("linear", "cosine")


def make_betas(schedule: str, num_train_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02,
               max_beta: float = 0.999) -> torch.Tensor:
    """The noise added at each of the T forward steps, (T,) float32."""
    if schedule == "linear":  # Ho et al. 2020
        return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
    if schedule == "cosine":  # Nichol & Dhariwal 2021: alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2), s = 0.008

        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        T = num_train_timesteps
        betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta) for i in range(T)]
        return torch.tensor(betas, dtype=torch.float32)
    raise GenlabError(f"unknown noise schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")


@dataclass
class SchedulerOutput:
    prev_sample: torch.Tensor  # x_{t-1} (or x at the previous inference timestep), (B, C, H, W)
    pred_original_sample: torch.Tensor  # the model's current guess of x_0, clipped


class _Scheduler:
    def __init__(self, betas: torch.Tensor, clip_sample: bool = True, clip_sample_range: float = 1.0):
        self.betas = betas.to(torch.float32)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)  # alpha_bar_t, (T,)
        self.num_train_timesteps = len(betas)
        self.clip_sample, self.clip_sample_range = clip_sample, clip_sample_range
        self.num_inference_steps: int | None = None
        self.timesteps = torch.arange(self.num_train_timesteps - 1, -1, -1)

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Visit every (T // n)-th training timestep, from the noisiest down to 0 ("leading" spacing)."""
        if not 1 <= num_inference_steps <= self.num_train_timesteps:
            raise GenlabError(
                f"--steps must be between 1 and the {self.num_train_timesteps} training timesteps, "
                f"got {num_inference_steps}"
            )
        self.num_inference_steps = num_inference_steps
        ratio = self.num_train_timesteps // num_inference_steps
        steps = (np.arange(num_inference_steps) * ratio).round()[::-1].copy().astype(np.int64)
        self.timesteps = torch.from_numpy(steps)

    def _prev(self, t: int) -> int:
        ratio = self.num_train_timesteps // (self.num_inference_steps or self.num_train_timesteps)
        return t - ratio

    def _alpha_bar(self, t: int) -> torch.Tensor:
        return self.alphas_cumprod[t] if t >= 0 else torch.tensor(1.0)

    def _x0(self, eps: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod[t]
        x0 = (sample - (1 - a) ** 0.5 * eps) / a**0.5
        return x0.clamp(-self.clip_sample_range, self.clip_sample_range) if self.clip_sample else x0

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The forward process q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) for a batch of t."""
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, *([1] * (x0.dim() - 1)))  # (B, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise


class DDPMScheduler(_Scheduler):
    """Ancestral sampling: x_{t-1} ~ q(x_{t-1} | x_t, x0_hat), with the posterior ("fixed small") variance."""

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor,
             generator: torch.Generator | None = None) -> SchedulerOutput:
        t = int(timestep)
        prev_t = self._prev(t)
        a_t, a_prev = self.alphas_cumprod[t], self._alpha_bar(prev_t)
        alpha_t = a_t / a_prev  # the one-step alpha between the two visited timesteps
        beta_t = 1 - alpha_t
        x0 = self._x0(model_output, t, sample)
        # posterior mean (Ho et al. eq. 7): a weighted sum of the x0 guess and the current sample
        mean = (a_prev**0.5 * beta_t / (1 - a_t)) * x0 + (alpha_t**0.5 * (1 - a_prev) / (1 - a_t)) * sample
        if t > 0:
            noise = torch.randn(model_output.shape, generator=generator, device=model_output.device,
                                dtype=model_output.dtype)
            variance = torch.clamp((1 - a_prev) / (1 - a_t) * beta_t, min=1e-20)
            mean = mean + variance**0.5 * noise
        return SchedulerOutput(prev_sample=mean, pred_original_sample=x0)


class DDIMScheduler(_Scheduler):
    """DDIM: x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps + sigma z, sigma = eta * DDPM's sigma."""

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, eta: float = 0.0,
             generator: torch.Generator | None = None, use_clipped_model_output: bool = False) -> SchedulerOutput:
        t = int(timestep)
        prev_t = self._prev(t)
        a_t, a_prev = self.alphas_cumprod[t], self._alpha_bar(prev_t)
        x0 = self._x0(model_output, t, sample)
        eps = model_output
        if use_clipped_model_output:  # the noise that the clipped x0 implies, so both terms agree
            eps = (sample - a_t**0.5 * x0) / (1 - a_t) ** 0.5
        variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
        sigma = eta * variance**0.5
        prev = a_prev**0.5 * x0 + (1 - a_prev - sigma**2) ** 0.5 * eps
        if eta > 0:
            noise = torch.randn(model_output.shape, generator=generator, device=model_output.device,
                                dtype=model_output.dtype)
            prev = prev + sigma * noise
        return SchedulerOutput(prev_sample=prev, pred_original_sample=x0)


SAMPLERS = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}
