"""Each image metric against cases whose answer is known."""

import numpy as np
import pytest
import torch

from genlab.images.evaluate import (
    frechet_distance,
    frechet_distance_from_stats,
    kernel_inception_distance,
    nearest_distance,
    precision_recall,
)


def test_frechet_of_gaussians_equals_closed_form():
    # diagonal covariances: FD = |mu1 - mu2|^2 + sum (s1 - s2)^2 with s the standard deviations
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum()
    got = frechet_distance_from_stats(mu1, np.diag(sd1**2), mu2, np.diag(sd2**2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_of_rotated_gaussians_is_invariant_to_rotating_both():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + np.eye(4), np.diag([1.0, 2.0, 3.0, 4.0])
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    fd = frechet_distance_from_stats(mu1, s1, mu2, s2)
    fd_rot = frechet_distance_from_stats(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T)
    assert fd_rot == pytest.approx(fd, rel=1e-8)
    # and for one dimension it is the closed form (mu1 - mu2)^2 + (sd1 - sd2)^2
    assert frechet_distance_from_stats([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + 1)


def test_frechet_from_samples_approaches_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal([0, 0], [1, 2], size=(200_000, 2))
    y = rng.normal([1, 0], [2, 2], size=(200_000, 2))
    assert frechet_distance(x, y) == pytest.approx(1 + 1, abs=0.05)


def test_a_set_against_itself_is_zero():
    x = np.random.default_rng(2).normal(size=(500, 16))
    assert abs(frechet_distance(x, x)) < 1e-6
    # the unbiased estimator of a set against itself is a small negative number, tiny beside a real gap
    assert abs(kernel_inception_distance(x, x, subsets=5)) < 0.05 * kernel_inception_distance(x, x + 1.0, subsets=5)
    p, r = precision_recall(x, x)
    assert (p, r) == (1.0, 1.0)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(3)
    x, y, z = rng.normal(size=(400, 8)), rng.normal(size=(400, 8)), rng.normal(1.0, 1.0, size=(400, 8))
    same, different = kernel_inception_distance(x, y, subsets=10), kernel_inception_distance(x, z, subsets=10)
    assert abs(same) < 0.05 * different
    assert different > 0


def test_precision_recall_separate_quality_from_coverage():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(600, 2))
    collapsed = rng.normal(scale=0.1, size=(600, 2))  # inside the real manifold, but covering little of it
    p, r = precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.5
    far = rng.normal(loc=10.0, size=(600, 2))
    p, r = precision_recall(real, far)
    assert p == 0.0 and r == 0.0


def test_nearest_distance_finds_copies():
    train = torch.rand(50, 1, 8, 8) * 2 - 1
    copies = train[:5].clone()
    assert torch.all(nearest_distance(copies, train) < 1e-3)  # cdist by matmul: not exactly 0
    assert torch.all(nearest_distance(-train[:5] + 3, train) > 0.5)


def test_image_figures_print_with_direction_and_the_real_images_figure():
    from genlab.images.evaluate import format_image_metrics

    out = format_image_metrics({"frechet_distance": 12.5, "kid_x1000": 3.25, "real_frechet_distance": 1.5,
                                "real_kid_x1000": 0.5, "precision": 0.8, "real_precision": 0.9, "near_copies": 0.0,
                                "num_samples": 10, "seed": 0, "samples_per_s": 5.0, "real_images": 4,
                                "controls": {"steps": 20, "guidance": None}, "label_accuracy_per_class": {"0": 1.0}})
    lines = out.splitlines()
    assert lines[0] == "samples: 10 (seed 0, 5/s) against 4 held-out images; controls: steps 20, guidance none"
    assert lines[2].startswith("kid_x1000: 3.25") and "lower is better" in lines[2] and lines[2].endswith(": 0.5")
    assert "None" not in out and "{" not in out and "per_class" not in out
