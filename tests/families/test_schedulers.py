"""Our DDPM and DDIM schedulers step for step against diffusers' (the reference), on the same inputs."""

import pytest
import torch

from genlab.families.schedulers import DDIMScheduler, DDPMScheduler, make_betas

diffusers = pytest.importorskip("diffusers")

SCHEDULE_NAMES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def _outputs(timesteps, shape=(4, 1, 8, 8), seed=0):
    """Fixed 'model outputs' per timestep, and a start sample, independent of the scheduler under test."""
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(shape, generator=g)
    return sample, {int(t): torch.randn(shape, generator=g) for t in timesteps}


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_betas_match_diffusers(schedule):
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=SCHEDULE_NAMES[schedule])
    ours = make_betas(schedule, 1000)
    torch.testing.assert_close(ours, ref.betas, rtol=0, atol=0)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [1000, 50, 7])
def test_ddpm_matches_diffusers(schedule, steps):
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=SCHEDULE_NAMES[schedule])
    ours = DDPMScheduler(make_betas(schedule, 1000))
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    assert torch.equal(ours.timesteps, ref.timesteps)
    x_ref, eps = _outputs(ours.timesteps.tolist())
    x_ours = x_ref.clone()
    g_ref, g_ours = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for t in ours.timesteps.tolist():
        a = ref.step(eps[t], t, x_ref, generator=g_ref)
        b = ours.step(eps[t], t, x_ours, generator=g_ours)
        torch.testing.assert_close(b.pred_original_sample, a.pred_original_sample, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(b.prev_sample, a.prev_sample, rtol=1e-5, atol=1e-5)
        x_ref, x_ours = a.prev_sample, b.prev_sample


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("steps,eta,clipped", [(50, 0.0, False), (20, 0.0, True), (10, 0.5, False), (50, 1.0, True)])
def test_ddim_matches_diffusers(schedule, steps, eta, clipped):
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule=SCHEDULE_NAMES[schedule])
    ours = DDIMScheduler(make_betas(schedule, 1000))
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    assert torch.equal(ours.timesteps, ref.timesteps)
    x_ref, eps = _outputs(ours.timesteps.tolist(), seed=2)
    x_ours = x_ref.clone()
    g_ref, g_ours = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for t in ours.timesteps.tolist():
        a = ref.step(eps[t], t, x_ref, eta=eta, generator=g_ref, use_clipped_model_output=clipped)
        b = ours.step(eps[t], t, x_ours, eta=eta, generator=g_ours, use_clipped_model_output=clipped)
        torch.testing.assert_close(b.prev_sample, a.prev_sample, rtol=1e-5, atol=1e-5)
        x_ref, x_ours = a.prev_sample, b.prev_sample


def test_add_noise_matches_diffusers():
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    ours = DDPMScheduler(make_betas("cosine", 1000))
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 1, 8, 8, generator=g), torch.randn(6, 1, 8, 8, generator=g)
    t = torch.tensor([0, 1, 10, 500, 998, 999])
    torch.testing.assert_close(ours.add_noise(x0, noise, t), ref.add_noise(x0, noise, t))


def test_steps_out_of_range_is_one_clear_error():
    from genlab.errors import GenlabError

    s = DDIMScheduler(make_betas("linear", 100))
    with pytest.raises(GenlabError, match="--steps"):
        s.set_timesteps(101)
    with pytest.raises(GenlabError, match="noise schedule"):
        make_betas("quadratic", 10)
