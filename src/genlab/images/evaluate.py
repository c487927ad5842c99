"""Image metrics: quality, diversity, label faithfulness and memorisation, in a learned feature space.

A small CNN classifier is trained once on the run's training images (and cached in RUN/cache/); its
penultimate layer is the feature space, as Inception's is for FID. On a dataset without labels it
learns to tell which of four rotations an image was given (Gidaris et al. 2018), which also needs
features of shape and stroke. In that space:

- Fréchet distance between Gaussians fitted to generated and held-out real features (Heusel et al.
  2017, "FID"): |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
- KID, the unbiased squared MMD with the cubic polynomial kernel (Bińkowski et al. 2018), averaged
  over random subsets; unlike FID it is unbiased in the number of samples. Kept x1000 (`kid_x1000`).
- precision and recall from k-NN manifolds (Kynkäänniemi et al. 2019): the share of generated
  samples inside the real manifold (quality), and of real samples inside the generated one (coverage).
- for conditional models, the classifier's accuracy on samples of each requested label.
- memorisation: the pixel distance from each sample to its nearest training image, beside the same
  distance for held-out real images (a model that copies comes out much closer than real data does).

Each figure has a `real_` twin: the held-out real images measured against as many training images, i.e.
what a model that made real images would score.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, load_tensors, read_json, save_tensors

FEATURE_DIM = 64


class FeatureNet(nn.Module):
    """conv-conv-pool-conv-pool, a 64-d penultimate layer, then the class logits."""

    def __init__(self, channels: int, num_outputs: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, s/2, s/2)
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, s/4, s/4)
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),  # (B, 256): any input size
            nn.Linear(256, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.inference_mode()
    def features(self, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
        self.eval()
        return torch.cat([self.body(x[i : i + batch]) for i in range(0, len(x), batch)]).double()

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
        self.eval()
        return torch.cat([self(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])


def _rotations(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.rot90(img, int(r), dims=(-2, -1)) for img, r in zip(x, k, strict=True)])


def train_classifier(data, seed: int = 0, max_steps: int = 1500, quiet: bool = True) -> tuple[FeatureNet, dict]:
    """Fit the feature network on the training split; report its accuracy on the validation split."""
    labelled = data.num_classes >= 2
    torch.manual_seed(seed)
    net = FeatureNet(data.channels, data.num_classes if labelled else 4)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    x, y = data.images("train")
    steps = int(min(max_steps, max(400, 4 * len(x) / 64)))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    net.train()
    for step in range(steps):
        idx = torch.randint(len(x), (64,), generator=gen)
        xb, yb = x[idx], y[idx]
        if labelled:  # shifts of a pixel or two, so samples a little off-centre are still recognised
            xb = torch.roll(xb, shifts=tuple(torch.randint(-1, 2, (2,), generator=gen).tolist()), dims=(-2, -1))
        else:
            yb = torch.randint(4, (64,), generator=gen)
            xb = _rotations(xb, yb)
        for g in opt.param_groups:
            g["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    xv, yv = data.images("val")
    if not labelled:
        yv = torch.arange(len(xv)) % 4
        xv = _rotations(xv, yv)
    acc = float((net.predict(xv) == yv).float().mean())
    info = {"task": "classes" if labelled else "rotation", "val_accuracy": round(acc, 4), "steps": steps,
            "seconds": round(time.perf_counter() - t0, 1), "content_sha256": data.content_hash}
    if not quiet:
        print(f"genlab: eval classifier trained in {info['seconds']}s, validation accuracy {acc:.3f}", file=sys.stderr)
    return net, info


def cached_classifier(data, cache_dir: Path, quiet: bool = True) -> tuple[FeatureNet, dict]:
    """The classifier for this exact data, trained once and kept in cache_dir (safetensors + JSON)."""
    cache_dir = Path(cache_dir)
    weights, meta = cache_dir / "eval_classifier.safetensors", cache_dir / "eval_classifier.json"
    labelled = data.num_classes >= 2
    if weights.is_file() and meta.is_file():
        info = read_json(meta)
        if info.get("content_sha256") == data.content_hash:
            net = FeatureNet(data.channels, data.num_classes if labelled else 4)
            net.load_state_dict(load_tensors(weights))
            return net.eval(), info
    net, info = train_classifier(data, quiet=quiet)
    save_tensors(weights, net.state_dict())
    atomic_write_json(meta, info)
    return net.eval(), info


# ---------------------------------------------------------------------------------------------- metrics


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)), in float64.

    Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), and the inner matrix is symmetric positive
    semi-definite, so its eigenvalues give the trace without a general (and unstable) matrix root.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    tr_covmean = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def frechet_distance(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return frechet_distance_from_stats(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))


def kernel_inception_distance(x, y, subsets: int = 50, subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / D + 1)^3, averaged over random subsets of equal size."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = x.shape[1]
    m = min(len(x), len(y), subset_size)
    if m < 2:
        raise GenlabError("KID needs at least 2 real and 2 generated samples")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    return float(total / subsets)


def _kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)  # (N, N); the 0 on the diagonal is each point itself
    return d.kthvalue(k + 1, dim=1).values


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: precision = share of fakes within some real's k-NN ball, recall the converse."""
    real, fake = torch.as_tensor(np.asarray(real, np.float64)), torch.as_tensor(np.asarray(fake, np.float64))
    k = min(k, len(real) - 1, len(fake) - 1)  # a handful of held-out images: the nearest neighbours there are
    if k < 1:
        raise GenlabError(f"precision and recall need at least 2 real and 2 generated images, got {len(real)} "
                          f"and {len(fake)}; give more data or --num-samples")
    r_real, r_fake = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    d = torch.cdist(fake, real)  # (M, N)
    precision = (d <= r_real[None, :] + 1e-9).any(1).double().mean()
    recall = (d.T <= r_fake[None, :] + 1e-9).any(1).double().mean()
    return float(precision), float(recall)


def nearest_distance(queries: torch.Tensor, reference: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Per query, the root-mean-square pixel distance to its nearest reference image (N,)."""
    q, r = queries.flatten(1).float(), reference.flatten(1).float()
    out = torch.cat([torch.cdist(q[i : i + chunk], r).min(1).values for i in range(0, len(q), chunk)])
    return out / math.sqrt(q.shape[1])


def image_metrics(images: torch.Tensor, labels: list[int] | None, data, classifier: FeatureNet,
                  real_features: torch.Tensor | None = None) -> dict:
    """Every metric for generated images (N, C, H, W) in [-1, 1] against the data's validation split."""
    real, _ = data.images("val")
    images = images.cpu().float()
    f_real = classifier.features(real) if real_features is None else real_features
    f_gen = classifier.features(images)
    precision, recall = precision_recall(f_real, f_gen)
    train, _ = data.images("train")
    gen_nn = nearest_distance(images, train)
    val_nn = nearest_distance(real, train)
    out = {
        "frechet_distance": round(frechet_distance(f_real, f_gen), 4),
        # KID is a few thousandths for close sets: x1000, so it reads like a number
        "kid_x1000": round(1000 * kernel_inception_distance(f_real, f_gen), 3),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "nearest_train_distance": round(float(gen_nn.mean()), 4),
        "nearest_train_distance_min": round(float(gen_nn.min()), 4),
        "real_nearest_train_distance": round(float(val_nn.mean()), 4),
        # share of samples closer to a training image than the closest 1% of held-out real images are
        "near_copies": round(float((gen_nn < torch.quantile(val_nn, 0.01)).float().mean()), 4),
    }
    if labels is not None:
        pred = classifier.predict(images)
        want = torch.as_tensor(labels)
        out["label_accuracy"] = round(float((pred == want).float().mean()), 4)
        out["label_accuracy_per_class"] = {
            str(c): round(float((pred[want == c] == c).float().mean()), 4) for c in sorted(set(labels))
        }
    return out


def class_balance(data, names: list[str], classifier: FeatureNet, samples: torch.Tensor | None) -> dict:
    """Bias, measured: each class's share of the training images, and of unconditional samples as the classifier
    sees them (None for a conditional model: its samples are the labels asked for), and the total variation
    distance between the two (0: the same balance; 1: no class in common)."""
    _, labels = data.images("train")
    train = torch.bincount(labels, minlength=len(names)).float()
    out = {"train": {n: round(float(v), 4) for n, v in zip(names, train / train.sum(), strict=True)},
           "samples": None, "total_variation": None}
    if samples is not None:
        made = torch.bincount(classifier.predict(samples.cpu().float()), minlength=len(names)).float()
        out["samples"] = {n: round(float(v), 4) for n, v in zip(names, made / made.sum(), strict=True)}
        out["total_variation"] = round(0.5 * float((made / made.sum() - train / train.sum()).abs().sum()), 4)
    return out


def real_baselines(data, classifier: FeatureNet, n: int, seed: int = 0) -> dict:
    """The same figures for real images: the held-out images against n training images (as many as samples,
    so both carry the same small-sample bias). What a model that made real images would score."""
    real, _ = data.images("val")
    train, _ = data.images("train")
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: max(2, n)]
    f_real, f_train = classifier.features(real), classifier.features(train[pick])
    precision, recall = precision_recall(f_real, f_train)
    return {"real_frechet_distance": round(frechet_distance(f_real, f_train), 4),
            "real_kid_x1000": round(1000 * kernel_inception_distance(f_real, f_train), 3),
            "real_precision": round(precision, 4), "real_recall": round(recall, 4)}


def open_run_data(config: dict, source: str | None = None):
    """The dataset a run was trained on, with the same size, colour and split (and captions, for a model that
    reads them)."""
    from genlab.images.data import open_images

    im, train = config["images"], config["train"]
    data = open_images(source or config["data"]["source"], image_size=im["image_size"], color=im["color"],
                       val_fraction=train["val_fraction"], extensions=None if source else train.get("extensions"),
                       captions=bool(config["model"].get("captions")),
                       allow_uncaptioned=bool(train.get("allow_uncaptioned")))
    if source is None and data.content_hash != config["data"].get("content_sha256"):
        print(f"genlab: warning: {config['data']['source']} changed since training; metrics use it as it is now",
              file=sys.stderr)
    if data.channels != im["channels"] or data.image_size != im["image_size"]:
        raise GenlabError(f"the evaluation data has {data.channels}-channel {data.image_size}px images, the model "
                          f"makes {im['channels']}-channel {im['image_size']}px ones")
    return data


def evaluate_images(m, data: str | None = None, *, num_samples: int = 1000, seed: int = 0, quiet: bool = False,
                    **controls) -> dict:
    """Sample num_samples images from a loaded model and measure them against held-out real ones."""
    ds = open_run_data(m.config, data)
    classifier, info = cached_classifier(ds, Path(m.run_dir) / "cache", quiet=quiet)
    prompts = None
    if m.captioned and not controls.get("prompt"):  # the held-out images' own captions, in turn
        prompts = [ds.captions[1][i % len(ds.val)][0] for i in range(num_samples)]
        controls = {**controls, "prompt": prompts}
    t0 = time.perf_counter()
    images = m.generate(num_samples=num_samples, seed=seed, output_type="pt", **controls)
    seconds = time.perf_counter() - t0
    metrics = image_metrics(images, m.last_labels if m.model.conditional else None, ds, classifier)
    if m.captioned and ds.source == "images:digit-scenes":
        metrics.update(scene_prompt_match(images, m.last_prompts))
    metrics.update(real_baselines(ds, classifier, num_samples, seed))
    if "label_accuracy" in metrics and info.get("task") == "classes":
        metrics["real_label_accuracy"] = info["val_accuracy"]  # the classifier on held-out real images
    if info.get("task") == "classes":
        metrics["class_balance"] = class_balance(ds, m.class_names, classifier,
                                                 None if m.model.conditional else images)
    return {**metrics, "num_samples": num_samples, "seed": seed, "sample_seconds": round(seconds, 2),
            "samples_per_s": round(num_samples / seconds, 1),
            "controls": m.last_controls if prompts is None else {**m.last_controls, "prompt": "the held-out images' "
                                                                 "captions, in turn"},
            "data": ds.source, "split": "val", "real_images": len(ds.val), "classifier": info}


def scene_prompt_match(images: torch.Tensor, prompts: list[str]) -> dict:
    """For digit scenes: the share of images showing what their prompt says (each digit where the caption puts
    it, of its size, on its background), read by a digit classifier trained on real scans, and that classifier's
    accuracy on held-out real scans (images/scenes.py)."""
    from genlab.images.data import to_pixels
    from genlab.images.scenes import digit_classifier, layout_match, parse_caption

    classify = digit_classifier()
    pixels = to_pixels(images.cpu()).numpy()[..., 0]  # (N, H, W) uint8
    matched = [layout_match(img, parse_caption(p), classify) for img, p in zip(pixels, prompts, strict=True)]
    return {"prompt_match": round(float(np.mean(matched)), 4),
            "prompt_match_classifier_accuracy": round(classify.accuracy, 4)}


REAL = "real held-out vs real training images"
# figure, direction, the key of its baseline and what that baseline is
IMAGE_FIGURES = (
    ("frechet_distance", "lower is better", "real_frechet_distance", REAL),
    ("kid_x1000", "KID x 1000, lower is better", "real_kid_x1000", REAL),
    ("precision", "higher is better (quality)", "real_precision", REAL),
    ("recall", "higher is better (coverage)", "real_recall", REAL),
    ("label_accuracy", "higher is better", "real_label_accuracy", "real held-out images"),
    ("prompt_match", "higher is better: digits, places and sizes as the prompt says", None,
     "the digit classifier's accuracy on real scans bounds it"),
    ("nearest_train_distance", "well below real means copying", "real_nearest_train_distance", "real held-out images"),
    ("near_copies", "lower is better", None, "real held-out images: 0.01 by construction"),
)


def format_image_metrics(metrics: dict) -> str:
    """One line of what was sampled, then each figure with its direction and real images' figure beside it."""
    from genlab.modalities import figure_line, plain

    lines = []
    if "num_samples" in metrics:
        lines.append(f"samples: {metrics['num_samples']} (seed {metrics.get('seed', 0)}, "
                     f"{plain(metrics.get('samples_per_s'))}/s) against {plain(metrics.get('real_images'))} "
                     f"held-out images; controls: {plain(metrics.get('controls') or {})}")
    for name, better, base_key, base in IMAGE_FIGURES:
        if name not in metrics:
            continue
        if base_key is None:
            note = f"{better}; {base}"
        elif base_key in metrics:
            note = f"{better}; {base}: {plain(metrics[base_key])}"
        else:
            note = better
        lines.append(figure_line(name, metrics[name], note))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# The creativity dial (genlab report): guidance, or the scale of the starting noise, against the figures above
# ---------------------------------------------------------------------------------------------------

GUIDANCE_SCALES = (0.0, 1.0, 2.0, 3.0, 5.0)
NOISE_SCALES = (0.4, 0.6, 0.8, 1.0, 1.2)
DIAL_FIGURES = {
    "frechet_distance": "Fréchet distance to held-out real images in the evaluation classifier's feature space; lower "
                        "is more realistic",
    "precision": "share of samples inside the real images' k-NN manifold (Kynkäänniemi et al. 2019); higher is more "
                 "realistic",
    "label_accuracy": "share of samples the classifier reads as the label they were asked for; higher is better",
    "recall": "share of real images inside the samples' k-NN manifold: how much of the data's variety the samples "
              "cover; higher is more diverse",
    "near_copies": "share of samples closer to a training image than the closest 1% of held-out real images are; "
                   "lower is more original",
    "nearest_train_distance": "mean pixel distance from a sample to its nearest training image; higher is further "
                              "from the training images",
}


class ImageSweep:
    """An image model's creativity dial: the data and the feature classifier, read or trained once, then each
    point (a fixed-seed batch measured with image_metrics)."""

    def __init__(self, m, quiet: bool = True):
        self.m = m
        self.data = open_run_data(m.config)
        self.classifier, self.info = cached_classifier(self.data, Path(m.run_dir) / "cache", quiet=quiet)
        self.real_features = self.classifier.features(self.data.images("val")[0])

    @staticmethod
    def axes(metrics: dict) -> dict:
        """image_metrics' figures on the dial's three axes (label accuracy only for a conditional model)."""
        quality = {k: metrics[k] for k in ("frechet_distance", "precision", "label_accuracy") if k in metrics}
        return {"quality": quality, "diversity": {"recall": metrics["recall"]},
                "originality": {k: metrics[k] for k in ("near_copies", "nearest_train_distance")}}

    def point(self, images: torch.Tensor, labels: list[int] | None) -> dict:
        return self.axes(image_metrics(images, labels, self.data, self.classifier, self.real_features))

    def reference(self, seed: int, n: int) -> dict:
        """Held-out real images: against n training images for quality and recall, as real_baselines measures
        them, and their own distance to the training images for originality."""
        base = real_baselines(self.data, self.classifier, n, seed)
        real, _ = self.data.images("val")
        val_nn = nearest_distance(real, self.data.images("train")[0])
        figures = {"frechet_distance": base["real_frechet_distance"], "precision": base["real_precision"],
                   "recall": base["real_recall"], "nearest_train_distance": round(float(val_nn.mean()), 4),
                   "near_copies": round(float((val_nn < torch.quantile(val_nn, 0.01)).float().mean()), 4)}
        if self.m.model.conditional and self.info.get("task") == "classes":
            figures["label_accuracy"] = self.info["val_accuracy"]
        return self.axes(figures)
