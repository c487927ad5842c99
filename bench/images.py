"""Benchmark the three image families on the same data, budget and cores, measured in one feature space.

    python bench/images.py [--minutes 4] [--threads 2] [--mnist-minutes M] [--out runs/bench-images]

Each family (vae, gan, diffusion; all class-conditional) trains for the same wall-clock budget on
digits at 16x16 (and on MNIST 28x28 when ../shared/data/mnist is present and --mnist-minutes > 0).
One classifier, trained once on the training images, gives the feature space for every family's
Fréchet distance, KID and precision/recall, and labels the samples of each requested class. For
diffusion it also measures: the classifier accuracy of guided samples at guidance 0, 1, 2, 3; DDIM
at 10/20/50 steps against DDPM over the full schedule (quality and time, on the same starting noise);
EMA against raw weights. Prints a readable table, then, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# measured: OpenMP spin-waiting on a shared 2-core machine slows steps 3-8x (see genlab/runtime.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from genlab import api  # noqa: E402
from genlab.families import get_family  # noqa: E402
from genlab.images.data import open_images  # noqa: E402
from genlab.images.evaluate import cached_classifier, image_metrics  # noqa: E402
from genlab.training.config import TrainConfig  # noqa: E402
from genlab.training.precision import StepContext, measure_precision, pick_precision  # noqa: E402

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
FAMILIES = ("vae", "gan", "diffusion")


def say(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def steps_in(family: str, data, minutes: float) -> tuple[int, str]:
    """How many steps fit in the budget, timed on a few real steps in the precision that `--precision
    auto` takes for this model here (which it is then trained in), so the LR schedule ends with the budget."""
    fam = get_family(family)
    torch.manual_seed(0)
    defaults = fam.train_defaults
    config = fam.make_config({**data.model_settings(), "conditional": True})
    model = fam.build(config)
    betas = (defaults.get("beta1", 0.9), defaults.get("beta2", 0.99))
    opts = fam.make_optimizers(model, defaults["lr"], 0.0, betas, fused=True)
    cpu, g = torch.device("cpu"), torch.Generator().manual_seed(0)
    cfg = TrainConfig(family=family, lr=defaults["lr"], beta1=betas[0], beta2=betas[1], weight_decay=0.0)
    batch = data.batch("train", defaults["batch_size"], g)
    precision = pick_precision("auto", cpu, model, lambda: measure_precision(fam, model, config, batch, cfg, cpu)[0])
    ctx = StepContext(cpu, precision, 0.0)
    fam.train_step(model, data.batch("train", defaults["batch_size"], g), opts, ctx)  # warm-up
    t0 = time.perf_counter()
    for _ in range(5):
        fam.train_step(model, data.batch("train", defaults["batch_size"], g), opts, ctx)
    per_step = (time.perf_counter() - t0) / 5
    return max(100, int(minutes * 60 / per_step * 0.9)), precision  # evaluation and checkpoints take the rest


def train_family(family: str, source: str, size: int, minutes: float, root: Path) -> tuple[Path, dict]:
    data = open_images(source, image_size=size)
    horizon, precision = steps_in(family, data, minutes)
    out = root / f"{family}-{size}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    say(f"bench: training {family} on {source} {size}x{size} for {minutes:g} min (~{horizon} steps, {precision})")
    t0 = time.perf_counter()
    run = api.train(source, family=family, conditional=True, image_size=size, out=str(out), max_minutes=minutes,
                    max_steps=horizon * 2, lr_decay_steps=horizon, eval_interval=max(100, horizon // 4),
                    eval_batches=4, seed=0, precision=precision, quiet=True)
    wall = time.perf_counter() - t0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = max(r["step"] for r in rows)
    rates = [r["img_per_s"] for r in rows if "img_per_s" in r]
    return run, {"train_seconds": round(wall, 1), "steps": steps, "train_precision": precision,
                 "train_img_per_s": round(sorted(rates)[len(rates) // 2]) if rates else None}


def measure(m, data, classifier, num_samples: int, **controls) -> dict:
    t0 = time.perf_counter()
    x = m.generate(num_samples=num_samples, seed=0, output_type="pt", **controls)  # a tensor, for the metrics
    seconds = time.perf_counter() - t0
    metrics = image_metrics(x, m.last_labels, data, classifier)
    metrics.pop("label_accuracy_per_class", None)
    return {**metrics, "sample_seconds": round(seconds, 2), "samples_per_s": round(num_samples / seconds, 1)}


def bench_dataset(source: str, size: int, minutes: float, root: Path, num_samples: int, compare_samples: int,
                  sweep: bool) -> dict:
    data = open_images(source, image_size=size)
    t0 = time.perf_counter()
    classifier, info = cached_classifier(data, root / f"cache-{size}")
    say(f"bench: classifier on {source} {size}x{size}: val accuracy {info['val_accuracy']} "
        f"({time.perf_counter() - t0:.0f}s)")
    results: dict = {"classifier_val_accuracy": info["val_accuracy"]}
    for family in FAMILIES:
        run, train_figs = train_family(family, source, size, minutes, root)
        m = api.load(run, device="cpu")
        metrics = measure(m, data, classifier, num_samples)
        results[family] = {**train_figs, **metrics, "controls": m.last_controls}
        say(f"bench: {family}: {json.dumps(results[family])}")
        if not sweep:
            continue
        if family in ("gan", "diffusion"):  # which weights sample best: the average or the last
            other = "raw" if m.model.controls["weights"] == "ema" else "ema"
            results[family][f"{other}_weights"] = measure(m, data, classifier, num_samples, weights=other)
            say(f"bench: {family} {other} weights: fd {results[family][f'{other}_weights']['frechet_distance']}")
        if family == "diffusion":
            results["guidance"] = {str(s): measure(m, data, classifier, num_samples // 2, guidance=s)
                                   for s in (0.0, 1.0, 2.0, 3.0)}
            say(f"bench: guidance: {json.dumps({k: v['label_accuracy'] for k, v in results['guidance'].items()})}")
            samplers = {}
            for name, controls in (("ddim10", dict(steps=10)), ("ddim20", dict(steps=20)),
                                   ("ddim50", dict(steps=50)), ("ddpm", dict(sampler="ddpm"))):
                samplers[name] = measure(m, data, classifier, compare_samples, **controls)
                say(f"bench: {name}: fd {samplers[name]['frechet_distance']} in {samplers[name]['sample_seconds']}s")
            results["samplers"] = samplers
    return results


def table(title: str, res: dict) -> str:
    cols = ["train_precision", "train_seconds", "steps", "train_img_per_s", "samples_per_s", "frechet_distance",
            "kid_x1000", "precision", "recall", "label_accuracy", "nearest_train_distance"]
    lines = [title, f"{'family':<10}" + "".join(f"{c[:16]:>18}" for c in cols)]
    for family in FAMILIES:
        r = res[family]
        lines.append(f"{family:<10}" + "".join(f"{str(r.get(c, '')):>18}" for c in cols))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget per family on digits")
    ap.add_argument("--mnist-minutes", type=float, default=None,
                    help="per family on MNIST (default: --minutes; 0 skips)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--num-samples", type=int, default=1000, help="samples per family for the metrics")
    ap.add_argument("--compare-samples", type=int, default=200, help="samples per sampler in DDIM-vs-DDPM")
    ap.add_argument("--out", default="runs/bench-images", help="run directories (runs/ is git-ignored)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    root = Path(a.out)
    root.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    digits = bench_dataset("images:digits", 16, a.minutes, root, a.num_samples, a.compare_samples, sweep=True)
    mnist = None
    mnist_minutes = a.minutes if a.mnist_minutes is None else a.mnist_minutes
    if MNIST.is_dir() and mnist_minutes > 0:
        mnist = bench_dataset(f"images:mnist:{MNIST}", 28, mnist_minutes, root, a.num_samples, a.compare_samples,
                              sweep=False)

    print(table(f"digits 16x16, {a.minutes:g} min per family, {a.threads} threads, {a.num_samples} samples", digits))
    if mnist:
        print(table(f"\nMNIST 28x28, {mnist_minutes:g} min per family", mnist))
    print("\ndiffusion, guidance scale -> classifier accuracy / Fréchet distance (DDIM-20)")
    for s, r in digits["guidance"].items():
        print(f"  {s:>4}: {r['label_accuracy']:.3f} / {r['frechet_distance']}")
    print(f"\ndiffusion samplers ({a.compare_samples} samples, same starting noise)")
    sm = digits["samplers"]
    for name, r in sm.items():
        print(f"  {name:<7} fd {r['frechet_distance']:>9}  {r['sample_seconds']:>8.2f}s  "
              f"({sm['ddpm']['sample_seconds'] / r['sample_seconds']:.1f}x faster than DDPM)")
    for fam in ("gan", "diffusion"):
        alt = next(k for k in digits[fam] if k.endswith("_weights"))
        print(f"{fam}: default weights fd {digits[fam]['frechet_distance']}, {alt} fd "
              f"{digits[fam][alt]['frechet_distance']}")

    d = digits["diffusion"]
    figures = {
        "minutes_per_family": a.minutes, "threads": a.threads, "num_samples": a.num_samples,
        "classifier_val_accuracy": digits["classifier_val_accuracy"],
        "guided_accuracy": d["label_accuracy"], "guidance_default": d["controls"].get("guidance"),
        "guided_accuracy_at": {s: r["label_accuracy"] for s, r in digits["guidance"].items()},
        "ddpm_fd": sm["ddpm"]["frechet_distance"], "ddpm_seconds": sm["ddpm"]["sample_seconds"],
        "ddim50_fd": sm["ddim50"]["frechet_distance"], "ddim50_seconds": sm["ddim50"]["sample_seconds"],
        "ddim20_fd": sm["ddim20"]["frechet_distance"], "ddim20_seconds": sm["ddim20"]["sample_seconds"],
        "ddim10_fd": sm["ddim10"]["frechet_distance"], "ddim10_seconds": sm["ddim10"]["sample_seconds"],
        "gan_fd_other_weights": digits["gan"][next(k for k in digits["gan"] if k.endswith("_weights"))][
            "frechet_distance"],
        "diffusion_fd_other_weights": d[next(k for k in d if k.endswith("_weights"))]["frechet_distance"],
    }
    for fam in FAMILIES:
        r = digits[fam]
        for key, name in (("frechet_distance", "fd"), ("kid_x1000", "kid_x1000"), ("precision", "precision"),
                          ("recall", "recall"), ("train_seconds", "train_seconds"), ("steps", "steps"),
                          ("train_img_per_s", "train_img_per_s"), ("samples_per_s", "samples_per_s"),
                          ("label_accuracy", "label_accuracy"), ("nearest_train_distance", "nearest_train"),
                          ("train_precision", "train_precision")):
            figures[f"{fam}_{name}"] = r.get(key)
    if mnist:
        for fam in FAMILIES:
            for key, name in (("frechet_distance", "fd"), ("kid_x1000", "kid_x1000"), ("precision", "precision"),
                              ("recall", "recall"), ("label_accuracy", "label_accuracy")):
                figures[f"mnist_{fam}_{name}"] = mnist[fam].get(key)
    bars = {
        "guided_accuracy_ge_0.9": d["label_accuracy"] >= 0.9,
        "diffusion_fd_below_gan_and_vae": d["frechet_distance"] < min(digits["gan"]["frechet_distance"],
                                                                      digits["vae"]["frechet_distance"]),
        "ddim50_within_25pct_of_ddpm": sm["ddim50"]["frechet_distance"] <= 1.25 * sm["ddpm"]["frechet_distance"],
        "ddim50_10x_faster": sm["ddpm"]["sample_seconds"] >= 10 * sm["ddim50"]["sample_seconds"],
    }
    figures["bars"] = bars
    figures["bench_seconds"] = round(time.perf_counter() - t_start)
    print("\nbars: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in bars.items()))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
