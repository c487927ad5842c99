"""The image watermark measured: at which sizes it holds, what survives, how often it is imagined, what it costs.

Real images at the sizes genlab makes:
- digits: scikit-learn's 8x8 scans, upsampled (bilinear, as images/data.py does) to 8, 16, 28, 32, 64, 128, 256 px;
- mnist: MNIST test digits at their own 28 px (from ../shared/data/mnist when present, else skipped);
- photo: square crops of scikit-learn's two sample photos, RGB, at 32, 64 and 256 px (what a user folder gives);
- grid / view: `genlab sample`'s grid of 64 digits at 16 px (146 px) and of 16 MNIST digits (122 px), and each
  grid scaled up for viewing (nearest neighbour, about 512 px), as images/sample.py writes them.

Each image is marked and attacked: none (clean), JPEG at quality 90, 70 and 50 (Pillow), Gaussian noise of
sigma 2 and 5 (of 255), a 50% resize (down only, and down then back up), and a crop of 10% and of 25% off each side.
Decode rate is the share of images called marked (false-positive chance under 1e-6); bit accuracy the mean share
of the 49 bits read right where the image is large enough to read. False positives: the same images unmarked,
clean and as JPEG 70, plus noise and flat images of every grey level. PSNR: marked against unmarked, clean.

Where `invisible-watermark` (imwatermark) is installed, its dwtDct with a 48-bit message is run on the same images
and attacks at the sizes it accepts (256x256 and up), as RGB (it marks the U channel), called found by the same
binomial rule (p under 1e-6 at its one alignment).

    python bench/image_watermark.py [--n 24]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from genlab.images.sample import make_grid, upscale, view_scale
from genlab.safety import image_watermark as wm

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
ATTACKS = ("clean", "jpeg90", "jpeg70", "jpeg50", "noise2", "noise5", "down50", "downup50", "crop10", "crop25")


# ------------------------------------------------------------------------------------------------- images


def bilinear(x: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) uint8 -> (N, size, size), as images/data.py resizes a dataset."""
    t = torch.from_numpy(x[:, None]).float()
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])
    return t.round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()


def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return np.rint(load_digits().images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)


def mnist(n: int) -> np.ndarray | None:
    from genlab.images.data import _find, _read_idx

    if not MNIST.is_dir():
        return None
    return _read_idx(_find(MNIST, "t10k-images-idx3-ubyte"))[:n]


def photos(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """n random square crops (96 to 400 px) of scikit-learn's two sample photos, resized to size, RGB."""
    from sklearn.datasets import load_sample_images

    out = []
    for i in range(n):
        im = load_sample_images().images[i % 2]
        side = int(rng.integers(96, 400))
        top, left = int(rng.integers(0, im.shape[0] - side)), int(rng.integers(0, im.shape[1] - side))
        crop = Image.fromarray(im[top : top + side, left : left + side])
        out.append(np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC)))
    return np.stack(out)


def grids(tiles: np.ndarray, per_grid: int, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`count` grids of `per_grid` tiles each, and their viewing versions, as ImageModel.write makes them."""
    out, views = [], []
    for g in range(count):
        pixels = torch.from_numpy(tiles[g * per_grid : (g + 1) * per_grid, :, :, None])
        grid = make_grid(pixels)
        out.append(grid[..., 0].numpy())
        views.append(upscale(grid, view_scale(grid))[..., 0].numpy())
    return out, views


# ------------------------------------------------------------------------------------------------ attacks


def to_pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a)


def attack(a: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    if name == "clean":
        return a
    if name.startswith("jpeg"):
        buf = io.BytesIO()
        to_pil(a).save(buf, format="JPEG", quality=int(name[4:]))
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    if name.startswith("noise"):
        noisy = a.astype(np.float64) + rng.normal(0, float(name[5:]), a.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    half = to_pil(a).resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BICUBIC)
    if name == "down50":
        return np.asarray(half)
    if name == "downup50":
        return np.asarray(half.resize((w, h), Image.Resampling.BICUBIC))
    cut = float(name[4:]) / 100  # off each side
    dy, dx = round(h * cut), round(w * cut)
    return a[dy : h - dy, dx : w - dx]


# --------------------------------------------------------------------------------------------- imwatermark


def imwatermark():
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        return None
    message = b"genlab"  # 48 bits
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", message)
    want = np.unpackbits(np.frombuffer(message, dtype=np.uint8)).astype(bool)

    def rgb(a: np.ndarray) -> np.ndarray:
        return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a

    def embed(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(encoder.encode(rgb(a)[..., ::-1].copy(), "dwtDct")[..., ::-1])  # RGB <-> BGR

    def matched(a: np.ndarray) -> int | None:
        a = rgb(a)
        if a.shape[0] * a.shape[1] < 256 * 256:
            return None
        got = WatermarkDecoder("bits", 48).decode(a[..., ::-1].copy(), "dwtDct")
        return int((np.asarray(got, dtype=bool) == want).sum())

    return embed, matched


# ------------------------------------------------------------------------------------------------ measuring


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def measure(images: list[np.ndarray], rng: np.random.Generator) -> dict:
    """Decode rate and bit accuracy per attack, PSNR, and the unmarked images' false positives, for one set."""
    marked = [wm.embed(a) if wm.carries(*a.shape[:2]) else a for a in images]
    row: dict = {"psnr": float(np.mean([psnr(m, a) for m, a in zip(marked, images, strict=True)]))
                 if wm.carries(*images[0].shape[:2]) else None}
    for name in ATTACKS:
        found = [wm.detect(attack(m, name, rng)) for m in marked]
        readable = [d for d in found if d.found is not None]
        row[name] = (sum(bool(d.found) for d in found) / len(found),
                     float(np.mean([d.bit_accuracy for d in readable])) if readable else None)
    plain = [wm.detect(attack(a, k, rng)) for a in images for k in ("clean", "jpeg70")]
    row["fp"], row["fp_n"] = sum(bool(d.found) for d in plain), len(plain)
    row["fp_max_matched"] = max((d.matched for d in plain if d.found is not None), default=None)
    return row


def measure_peer(peer, images: list[np.ndarray], rng: np.random.Generator) -> dict:
    embed, matched = peer
    marked = [embed(a) for a in images]
    row: dict = {"psnr": float(np.mean([psnr(m, np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a)
                                        for m, a in zip(marked, images, strict=True)]))}
    for name in ATTACKS:
        got = [matched(attack(m, name, rng)) for m in marked]
        readable = [g for g in got if g is not None]
        row[name] = (sum(g is not None and wm.binomial_tail(g, 48) <= wm.THRESHOLD for g in got) / len(got),
                     float(np.mean(readable)) / 48 if readable else None)
    return row


def needed(readings: int) -> int:
    """The matched bits that pass THRESHOLD (half of it for each of detect's two tests) over `readings` readings."""
    return next(k for k in range(wm.MESSAGE_BITS + 1)
                if 2 * readings * wm.binomial_tail(k, wm.MESSAGE_BITS) <= wm.THRESHOLD)


def fmt(cell) -> str:
    rate, acc = cell
    return f"{rate:4.0%} {'  -  ' if acc is None else f'{acc:5.3f}'}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="images per size (grids and views: a third of it)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    d = digits()
    pick = rng.permutation(len(d))
    sets: dict[str, list[np.ndarray]] = {}
    for size in (8, 16, 28, 32, 64, 128, 256):
        sets[f"digits{size}"] = list(bilinear(d[pick[: args.n]], size))
    m = mnist(max(args.n, 16 * max(1, args.n // 3)))
    if m is not None:
        sets["mnist28"] = list(m[: args.n])
    for size in (32, 64, 256):
        sets[f"photo{size}"] = list(photos(args.n, size, rng))
    count = max(1, args.n // 3)
    g16, v16 = grids(bilinear(d[pick[: 64 * count]], 16), 64, count)
    sets[f"grid{g16[0].shape[0]}"], sets[f"view{v16[0].shape[0]}"] = g16, v16
    if m is not None:
        g28, v28 = grids(m[: 16 * count], 16, count)
        sets[f"mnistgrid{g28[0].shape[0]}"], sets[f"mnistview{v28[0].shape[0]}"] = g28, v28

    rows = {name: measure(images, rng) for name, images in sets.items()}
    peer = imwatermark()
    peer_rows = {}
    if peer is not None:
        for name, images in sets.items():
            if images[0].shape[0] >= 256:
                peer_rows[name] = measure_peer(peer, images, rng)

    # false positives beyond the sets: noise, flat images of every level, at sizes that carry a mark
    extra = [rng.integers(0, 256, (s, s), dtype=np.uint8) for s in (28, 64, 256) for _ in range(args.n)]
    extra += [np.clip(rng.normal(128, 40, (s, s, 3)), 0, 255).astype(np.uint8) for s in (32, 64) for _ in range(args.n)]
    extra += [np.full((s, s), v, dtype=np.uint8) for s in (28, 64) for v in range(256)]
    extra_found = [wm.detect(a) for a in extra]
    fp = sum(r["fp"] for r in rows.values()) + sum(bool(x.found) for x in extra_found)
    fp_n = sum(r["fp_n"] for r in rows.values()) + len(extra)
    fp_max = max([r["fp_max_matched"] or 0 for r in rows.values()] + [x.matched for x in extra_found])

    print(f"genlab image watermark {wm.SCHEME}: {wm.MESSAGE_BITS} bits in {wm.BLOCK}x{wm.BLOCK} blocks, "
          f"QIM step {wm.STEP:g}, min size {wm.MIN_SIZE} px; called marked when the false-positive chance < "
          f"{wm.THRESHOLD:g}")
    print("each cell: decode rate, mean bit accuracy (- where the image is too small to read)\n")
    header = f"{'set':>14} {'n':>3} {'PSNR':>5} " + " ".join(f"{a:>10}" for a in ATTACKS)
    print(header)
    for name, row in rows.items():
        p = "  -  " if row["psnr"] is None else f"{row['psnr']:5.1f}"
        print(f"{name:>14} {len(sets[name]):>3} {p} " + " ".join(f"{fmt(row[a]):>10}" for a in ATTACKS))
    if peer_rows:
        print("\nimwatermark dwtDct (48 bits, U channel; refuses images under 256x256):")
        for name, row in peer_rows.items():
            print(f"{name:>14} {len(sets[name]):>3} {row['psnr']:5.1f} "
                  + " ".join(f"{fmt(row[a]):>10}" for a in ATTACKS))
    else:
        print("\nimwatermark not installed: its comparison skipped (pip install invisible-watermark)")
    print(f"\nfalse positives: {fp} of {fp_n} unmarked images (the sets clean and as JPEG 70, noise, flat images of "
          f"every level); most bits any matched at its best reading: {fp_max} of {wm.MESSAGE_BITS} (marked needs "
          f"{needed(1)} at the corner, or {needed(785)} at the best of the 785 readings)")
    seconds = time.perf_counter() - start
    print(f"({seconds:.0f} s)")

    figures: dict = {"scheme": wm.SCHEME, "min_size": wm.MIN_SIZE, "bits": wm.MESSAGE_BITS, "step": wm.STEP,
                     "threshold": wm.THRESHOLD}
    marked_psnr = [r["psnr"] for r in rows.values() if r["psnr"] is not None]
    figures["psnr_db"] = round(float(np.mean(marked_psnr)), 2)
    figures["psnr_db_min"] = round(float(np.min(marked_psnr)), 2)
    for name, row in rows.items():
        for a in ATTACKS:
            figures[f"{a}_{name}"] = round(row[a][0], 3)
        figures[f"bitacc_clean_{name}"] = None if row["clean"][1] is None else round(row["clean"][1], 4)
    for name, row in peer_rows.items():
        for a in ATTACKS:
            figures[f"imwatermark_{a}_{name}"] = round(row[a][0], 3)
        figures[f"imwatermark_psnr_{name}"] = round(row["psnr"], 2)
    figures.update(fpr=fp / fp_n, fp=fp, fp_n=fp_n, fp_max_matched=fp_max, seconds=round(seconds, 1))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
