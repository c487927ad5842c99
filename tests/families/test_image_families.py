"""vae, gan and diffusion train through the one trainer on real digits, and resume exactly."""

import json

import pytest
import torch

from genlab import api
from genlab.errors import GenlabError
from genlab.families.gan import GANFamily
from genlab.images.data import open_images
from genlab.images.evaluate import frechet_distance
from genlab.io import load_tensors


@pytest.fixture(autouse=True)
def one_thread():
    # a busy 2-core machine: one thread avoids OpenMP spin-waiting against other processes
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FAST = dict(image_size=8, max_steps=60, eval_interval=60, log_interval=10, eval_batches=2, quiet=True, seed=0)


def _losses(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


@pytest.mark.parametrize("family,settings", [
    ("vae", dict(conditional=True)),
    ("diffusion", dict(conditional=True, width=16)),
])
def test_loss_falls_on_digits(tmp_path, family, settings):
    run = api.train("images:digits", family=family, out=str(tmp_path / family), **FAST, **settings)
    losses = _losses(run)
    assert losses[-1] < 0.7 * losses[0], losses
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["num_classes"] == 10 and config["images"]["image_size"] == 8
    assert config["data"]["modality"] == "images"


def test_gan_learns_the_digits(tmp_path):
    """A GAN has no loss that must fall; its samples must come closer to the real images."""
    run = api.train("images:digits", family="gan", out=str(tmp_path / "gan"),
                    **{**FAST, "max_steps": 150, "eval_interval": 150})
    real = open_images("images:digits", image_size=8).images("val")[0].flatten(1)
    m = api.load(run)
    trained = m.generate(num_samples=300, seed=0, output_type="pt").flatten(1)
    torch.manual_seed(0)
    m.model = GANFamily().build(m.model.config)  # the same network as it was before training
    untrained = m.generate(num_samples=300, seed=0, output_type="pt").flatten(1)
    fd_trained, fd_untrained = frechet_distance(real, trained), frechet_distance(real, untrained)
    assert fd_trained < 0.5 * fd_untrained, (fd_trained, fd_untrained)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("loss" in r or "val_loss" in r for r in rows)


def test_gan_resume_is_exact(tmp_path):
    """Two optimizers, EMA buffers, batch-norm statistics and the noise RNG all come back on resume."""
    common = {**FAST, "max_steps": 20, "eval_interval": 10, "conditional": True}
    straight = api.train("images:digits", family="gan", out=str(tmp_path / "a"), **common)
    api.train("images:digits", family="gan", out=str(tmp_path / "b"), **{**common, "max_minutes": 1e-9})
    resumed = api.train(resume=tmp_path / "b", quiet=True, max_minutes=60)
    a, b = load_tensors(straight / "model.safetensors"), load_tensors(resumed / "model.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sizes_a_family_cannot_take(tmp_path):
    for family in ("vae", "gan", "diffusion"):
        with pytest.raises(GenlabError, match="multiples of 4"):
            api.train("images:digits", family=family, out=str(tmp_path / family), image_size=10, quiet=True)


def test_conditional_needs_labels(tmp_path):
    from PIL import Image

    for i in range(4):
        Image.new("L", (8, 8), i * 40).save(tmp_path / f"{i}.png")
    with pytest.raises(GenlabError, match="--conditional needs class labels"):
        api.train(str(tmp_path), family="diffusion", conditional=True, out=str(tmp_path / "run"), quiet=True)


def test_unknown_image_setting_is_refused_by_name(tmp_path):
    with pytest.raises(GenlabError, match="--n-head is not for the vae family; its model flags are --beta"):
        api.train("images:digits", family="vae", n_head=4, out=str(tmp_path / "r"), quiet=True)


def test_family_and_data_must_agree(tmp_path):
    with pytest.raises(GenlabError, match="text:pydocs is not image data"):
        api.train("text:pydocs", family="vae", out=str(tmp_path / "a"), quiet=True)
    with pytest.raises(GenlabError, match="the gpt family cannot model"):
        api.train("images:digits", family="gpt", out=str(tmp_path / "b"), quiet=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenlabError, match="has no .png, .jpg or .jpeg files"):
        api.train(str(tmp_path / "empty"), family="diffusion", out=str(tmp_path / "c"), quiet=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # no half-made run directory
