"""Sampling image runs: seeds, labels, guidance, interpolation, PNG provenance, eval, and the CLI's errors."""

import json

import pytest
import torch

from genlab import api
from genlab.cli import main
from genlab.errors import GenlabError
from genlab.images.data import open_images
from genlab.images.evaluate import train_classifier
from genlab.safety.provenance import read_provenance


@pytest.fixture(scope="module")
def diffusion_run(tmp_path_factory, one_thread):
    """A conditional diffusion model on 8x8 digits, trained for ~25 seconds."""
    out = tmp_path_factory.mktemp("images") / "diffusion"
    return api.train("images:digits", family="diffusion", out=str(out), conditional=True, image_size=8, width=16,
                     time_dim=64, max_steps=600, lr_decay_steps=600, max_minutes=0.4, eval_interval=600,
                     eval_batches=2, lr=3e-3, seed=0, quiet=True)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("images") / "vae"
    return api.train("images:digits", family="vae", out=str(out), image_size=8, max_steps=20, eval_interval=20,
                     eval_batches=1, quiet=True)


def test_same_seed_same_images_shapes_and_ranges(diffusion_run):
    m = api.load(diffusion_run)
    a = m.generate(num_samples=6, seed=1, steps=5, output_type="pt")
    b = m.generate(num_samples=6, seed=1, steps=5, output_type="pt")
    c = m.generate(num_samples=6, seed=2, steps=5, output_type="pt")
    assert a.shape == (6, 1, 8, 8) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert m.last_controls["steps"] == 5 and m.last_controls["guidance"] == 1.5  # the defaults are recorded
    d = m.generate(num_samples=3, seed=1, sampler="ddpm", steps=10, output_type="pt")  # stochastic, but seeded
    assert torch.equal(d, m.generate(num_samples=3, seed=1, sampler="ddpm", steps=10, output_type="pt"))
    e = m.generate(num_samples=3, seed=1, eta=1.0, steps=5, output_type="pt")
    assert torch.equal(e, m.generate(num_samples=3, seed=1, eta=1.0, steps=5, output_type="pt"))


def test_guidance_raises_classifier_accuracy(diffusion_run):
    data = open_images("images:digits", image_size=8)
    classifier, info = train_classifier(data, max_steps=400)
    assert info["val_accuracy"] > 0.9
    m = api.load(diffusion_run)
    accuracy = {}
    for scale in (0.0, 3.0):
        x = m.generate(num_samples=200, seed=0, steps=10, guidance=scale, output_type="pt")
        accuracy[scale] = float((classifier.predict(x) == torch.tensor(m.last_labels)).float().mean())
    assert accuracy[3.0] > accuracy[0.0] + 0.2, accuracy


def test_interpolation_walks_between_two_noises(vae_run):
    m = api.load(vae_run)
    x = m.generate(num_samples=7, seed=3, interpolate=True, output_type="pt")
    steps = (x[1:] - x[:-1]).flatten(1).norm(dim=1)
    assert x.shape == (7, 1, 8, 8)
    assert steps.max() < (x[-1] - x[0]).norm()  # small steps from one end to the other
    recon = m.reconstruct(open_images("images:digits", image_size=8).images("val")[0][:4])
    assert recon.shape == (4, 1, 8, 8)


def test_cli_sample_writes_grid_and_singles_with_provenance(diffusion_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sample", str(diffusion_run), "--num-samples", "5", "--seed", "1", "--label", "7",
                 "--steps", "4", "--guidance", "3", "-o", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["grid.png", "grid@16x.png"] + [f"sample-{i:03d}.png" for i in range(5)]  # 32 px wide: x16
    p = read_provenance(out / "sample-002.png")
    assert p["seed"] == 1 and p["label"] == 7 and p["index"] == 2 and p["ai_generated"] is True
    assert p["controls"]["guidance"] == 3.0 and p["controls"]["steps"] == 4 and p["family"] == "diffusion"
    assert len(p["checkpoint_sha256"]) == 64
    first = (out / "sample-002.png").read_bytes()
    assert main(["sample", str(diffusion_run), "--num-samples", "5", "--seed", "1", "--label", "7",
                 "--steps", "4", "--guidance", "3", "-o", str(tmp_path / "again")]) == 0
    from PIL import Image

    with Image.open(out / "sample-002.png") as a, Image.open(tmp_path / "again" / "sample-002.png") as b:
        assert a.tobytes() == b.tobytes()  # the same seed gives the same pixels
    assert first
    # sampling again into the same folder keeps the first set: numbers go on, the grid gets a new name
    assert main(["sample", str(diffusion_run), "--num-samples", "2", "--seed", "2", "--label", "7", "--steps", "2",
                 "-o", str(out)]) == 0
    assert (out / "sample-002.png").read_bytes() == first
    assert read_provenance(out / "sample-006.png")["index"] == 6 and read_provenance(out / "grid-2.png")["seed"] == 2
    assert "wrote " in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--label", "10"], "--label 10 is out of range"),
    (["--label", "-1"], "out of range"),
    (["--steps", "0"], "--steps must be positive"),
    (["--steps", "5000"], "--steps must be between 1 and the 1000"),
    (["--guidance", "-1"], "--guidance must be 0 or more"),
    (["--sampler", "ddpm", "--eta", "0.5"], "--eta is a DDIM control"),
])
def test_cli_sampling_mistakes_are_one_line(diffusion_run, tmp_path, capsys, args, message):
    assert main(["sample", str(diffusion_run), "--num-samples", "2", "-o", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_label_and_guidance_need_a_conditional_model(vae_run, capsys):
    for args, message in ((["--label", "3"], "--label needs a model trained with --conditional"),
                          (["--guidance", "2"], "--guidance is not a control of the vae family")):
        assert main(["sample", str(vae_run), *args]) == 2
        assert message in capsys.readouterr().err
    m = api.load(vae_run)
    with pytest.raises(GenlabError, match="--interpolate needs --num-samples of 2"):
        m.generate(num_samples=1, interpolate=True)


def test_guidance_on_unconditional_diffusion(tmp_path, one_thread):
    run = api.train("images:digits", family="diffusion", out=str(tmp_path / "u"), image_size=8, width=8,
                    time_dim=16, max_steps=2, eval_interval=2, eval_batches=1, quiet=True)
    with pytest.raises(GenlabError, match="--guidance needs a model trained with --conditional"):
        api.load(run).generate(num_samples=2, guidance=2.0, steps=2)
    with pytest.raises(GenlabError, match="--label needs a model trained with --conditional"):
        api.load(run).generate(num_samples=2, label=1, steps=2)


def test_eval_writes_metrics_and_caches_its_classifier(diffusion_run, capsys):
    assert main(["eval", str(diffusion_run), "--num-samples", "100", "--steps", "5"]) == 0
    table = capsys.readouterr().out
    assert "frechet_distance" in table and "label_accuracy" in table
    metrics = json.loads((diffusion_run / "metrics.json").read_text())["val"]
    for key in ("frechet_distance", "kid_x1000", "precision", "recall", "label_accuracy", "nearest_train_distance"):
        assert key in metrics
    assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1
    assert (diffusion_run / "cache" / "eval_classifier.safetensors").is_file()
    again = api.evaluate(diffusion_run, num_samples=100, steps=5)
    assert again["frechet_distance"] == metrics["frechet_distance"]  # cached classifier, same seed
