"""An invisible watermark for images: the DWT-DCT idea of `invisible-watermark` (imwatermark's dwtDct, the mark
Stable Diffusion's reference scripts put in every output), re-implemented for genlab's small images.

imwatermark itself refuses images under 256x256 and pulls in OpenCV and PyWavelets; genlab's images are 16-64 px.
The scheme is the same, sized down:

- One level of the Haar wavelet transform; its LL band (the half-size average image) carries the mark, because a
  low band survives compression, noise and resizing.
- The LL band is cut into 2x2 blocks (4x4 pixels) and each block's DCT taken; one coefficient per block holds one
  bit by quantisation index modulation (Chen & Wornell 2001, "Quantization Index Modulation"): it is moved to the
  nearest point of the lattice STEP * (k + dither + bit / 2), and read back by which of the two lattices it is
  nearer. The dither, fixed per bit, keeps a flat or black image from reading as one bit everywhere.
- The coefficient is the block's DC, which is (orthonormal transforms) the sum of its 16 pixels / 4: a change of
  the DC is a flat lift of the block. imwatermark quantises the largest entry after the first of each 4x4 block of
  the LL band (8x8 pixels); the DC of 4x4-pixel blocks is what fits here: a 28 px image holds 49 bits instead of 9,
  JPEG keeps block means best (its own DC is the 8x8 mean), and on the black background of digits a flat lift is
  possible where an AC pattern would need pixels below 0. Where the nearest lattice point would clip, the other
  one is taken.
- The message is a fixed 49-bit tag (a 7x7 tile of blocks, from SHAKE-256 of the scheme's name) tiled over the
  image: a large image repeats every bit and the decoder averages the repeats (soft votes: the cosine of each
  coefficient's phase on the lattice). A cropped image is read again at the 16 pixel offsets of the block grid
  times the 49 shifts of the tile, and one halved in size (a 50% resize) after scaling it back up by 2.
- Detection counts matched bits and asks how likely an unmarked image is to match that well: a binomial tail for
  49 fair coins. Two tests share THRESHOLD, half each: the reading at the corner alone (42 of 49 bits pass), and
  the best of all 785 readings, Bonferroni-corrected (45 of 49 pass).
- Colour images carry it in their BT.601 luma: the same lift goes to R, G and B, which moves Y exactly and leaves
  the colour alone (imwatermark marks the U channel; luma is what JPEG keeps best and what a grey conversion keeps).

Images under MIN_SIZE (28 px) on a side cannot hold one tile: they are written unmarked, and only the provenance
in their PNG text chunks says where they came from. Measured in bench/image_watermark.py.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genlab.errors import GenlabError

SCHEME = "genlab-dwt-dct/1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what detect_file reads (genlab detect routes these files here)
BLOCK = 4  # pixels a side of the block that holds one bit: a 2x2 block of the Haar LL band
TILE = 7  # the message is a TILE x TILE tile of blocks, repeated over the image
MESSAGE_BITS = TILE * TILE  # 49
MIN_SIZE = BLOCK * TILE  # 28: the smallest side that holds the whole tile once
STEP = 32.0  # QIM step of the DC (in its own units, 4x the block's mean): bigger is sturdier and more visible
THRESHOLD = 1e-6  # the false-positive chance under which an image is called marked
_LUMA = np.array([0.299, 0.587, 0.114])  # BT.601, as JPEG's YCbCr and Pillow's convert("L") use


@functools.cache
def _key() -> tuple[np.ndarray, np.ndarray]:
    """The tag's bits and each bit's dither (a fraction of STEP), both (TILE, TILE), fixed by the scheme's name."""
    raw = hashlib.shake_256(SCHEME.encode()).digest(7 + 2 * MESSAGE_BITS)
    bits = np.unpackbits(np.frombuffer(raw[:7], dtype=np.uint8))[:MESSAGE_BITS].reshape(TILE, TILE)
    dither = np.frombuffer(raw[7:], dtype=">u2").astype(np.float64).reshape(TILE, TILE) / 65536
    return bits.astype(np.int64), dither


def capacity(height: int, width: int) -> int:
    """The bits an image of this size holds: one per 4x4-pixel block. The mark needs MESSAGE_BITS of them, laid out
    as a 7x7 tile, so both sides must be at least MIN_SIZE (see `carries`)."""
    return (height // BLOCK) * (width // BLOCK)


def carries(height: int, width: int) -> bool:
    """Whether an image of this size can hold the whole mark (one 7x7 tile of blocks)."""
    return min(height, width) >= MIN_SIZE


def _as_hwc(pixels: np.ndarray) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        raise GenlabError(f"the image watermark takes uint8 pixels, got {arr.dtype}; convert with "
                          "np.clip(x, 0, 255).astype(np.uint8)")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise GenlabError(f"the image watermark takes (H, W), (H, W, 1) or (H, W, 3) pixels, got {arr.shape}")
    return arr


def _luma(x: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H, W) float: the grey level itself, or BT.601 luma of RGB."""
    return x[..., 0].astype(np.float64) if x.shape[-1] == 1 else x.astype(np.float64) @ _LUMA


def coefficients(y: np.ndarray) -> np.ndarray:
    """(H, W) luma -> (H // 4, W // 4): the DC of the orthonormal 2x2 DCT of each 2x2 block of the orthonormal Haar
    LL band, which is each 4x4 pixel block's sum / 4 (LL = 2x2 sum / 2, DC = 2x2 sum / 2)."""
    r, c = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    return y[: r * BLOCK, : c * BLOCK].reshape(r, BLOCK, c, BLOCK).sum(axis=(1, 3)) / 4


def _tiled(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A (TILE, TILE) array repeated over a grid of rows x cols blocks, from the top-left corner."""
    return np.tile(a, (-(-rows // TILE), -(-cols // TILE)))[:rows, :cols]


def embed(pixels: np.ndarray) -> np.ndarray:
    """The image with genlab's mark in it: uint8 (H, W), (H, W, 1) or (H, W, 3), both sides at least MIN_SIZE.
    The same shape and dtype come back; pixels past the last whole 4x4 block are left as they are."""
    arr = _as_hwc(pixels)
    h, w = arr.shape[:2]
    if not carries(h, w):
        raise GenlabError(f"an image of {w}x{h} pixels is too small to carry the watermark: it needs at least "
                          f"{MIN_SIZE} px a side (images under that rely on the provenance in their PNG text chunks)")
    rows, cols = h // BLOCK, w // BLOCK
    bits, dither = _key()
    phase = _tiled(dither, rows, cols) + _tiled(bits, rows, cols) / 2  # the bit's lattice: STEP * (k + phase)
    out = arr.astype(np.float64)
    core = out[: rows * BLOCK, : cols * BLOCK].copy()  # contiguous, so that the block view below writes into it
    view = core.reshape(rows, BLOCK, cols, BLOCK, -1)  # (rows, 4, cols, 4, C)
    start = core.copy()
    c = coefficients(_luma(core))
    below = (np.floor(c / STEP - phase) + phase) * STEP
    above = below + STEP
    lo, hi = view.min(axis=(1, 3, 4)), view.max(axis=(1, 3, 4))

    def fits(target: np.ndarray) -> np.ndarray:  # a flat lift of (target - c) / 4 keeps every pixel in 0..255
        lift = (target - c) / 4
        return (lo + lift >= 0) & (hi + lift <= 255)

    near_below = c - below <= above - c
    near, far = np.where(near_below, below, above), np.where(near_below, above, below)
    target = np.where(fits(near) | ~fits(far), near, far)
    # Lift each block towards its target; pixels at 0 or 255 cannot move, so the rest take their share, and the
    # rounding to whole levels is measured again. A block that still misses (a stroke edge from 0 to 255 that no
    # lift fits) is one wrong vote among its bit's repeats.
    for _ in range(4):
        r = target - c  # (rows, cols), in DC units: the block's sum must change by 4 r
        if np.abs(r).max() < STEP / 16:
            break
        room = np.where(r[:, None, :, None] > 0, view.max(axis=-1) < 255, view.min(axis=-1) > 0)  # (rows, B, cols, B)
        free = room.sum(axis=(1, 3))
        view += (room * (4 * r / np.maximum(free, 1))[:, None, :, None])[..., None]
        np.clip(core, start - STEP / 4, start + STEP / 4, out=core)  # no pixel moves more than 8 levels in all
        np.clip(np.rint(core, out=core), 0, 255, out=core)
        c = coefficients(_luma(core))
    out[: rows * BLOCK, : cols * BLOCK] = core
    marked = out.astype(np.uint8)
    return marked[..., 0] if np.asarray(pixels).ndim == 2 else marked


def mark(pixels: np.ndarray) -> tuple[np.ndarray, dict]:
    """The pixels, marked where they are large enough, and what provenance records of it."""
    h, w = np.asarray(pixels).shape[:2]
    if not carries(h, w):
        return pixels, {"scheme": SCHEME, "embedded": False,
                        "reason": f"image smaller than {MIN_SIZE} px a side ({w}x{h}); it cannot carry the mark"}
    return embed(pixels), {"scheme": SCHEME, "embedded": True, "bits": MESSAGE_BITS}


# ------------------------------------------------------------------------------------------------- detection


def binomial_tail(matched: int, bits: int) -> float:
    """P(at least `matched` of `bits` fair coins come up right): the chance an unmarked image matches that well."""
    return sum(math.comb(bits, k) for k in range(matched, bits + 1)) / 2**bits


@dataclass
class ImageDetection:
    """What `detect` found. found is None when the image is too small to have carried the mark."""

    found: bool | None
    height: int
    width: int
    matched: int = 0  # bits of the tag read right, at the best alignment
    bits: int = MESSAGE_BITS
    p_value: float | None = None  # chance that an unmarked image matches this well, alignments tried included
    shift: tuple[int, int] = (0, 0)  # rows, columns cut off the top and left (mod MIN_SIZE) at the best alignment
    scale: int = 1  # 2: read from the image scaled up by 2, as a mark shrunk to half its size is
    alignments: int = 0  # how many readings (alignments and scales) were tried
    threshold: float = THRESHOLD

    @property
    def watermarked(self) -> bool:
        return bool(self.found)

    @property
    def bit_accuracy(self) -> float:
        """The share of the tag's bits read right (nan where the image was too small to read)."""
        return self.matched / self.bits if self.found is not None else float("nan")

    def summary(self) -> str:
        size = f"{self.width}x{self.height} px"
        if self.found is None:
            return "\n".join([
                f"image watermark: cannot be checked - this image is {size}, and images under {MIN_SIZE} px a side "
                "are too small to carry genlab's mark",
                f"(it needs {MESSAGE_BITS} blocks of {BLOCK}x{BLOCK} pixels in a {TILE}x{TILE} tile; this one has room "
                f"for {capacity(self.height, self.width)}), so genlab writes such images unmarked",
                "rely on the provenance in the PNG's text chunks instead: genlab inspect FILE "
                "(re-saving or a screenshot removes it)",
            ])
        where = ("at the image's corner, as written" if self.shift == (0, 0) else
                 f"shifted by {self.shift[0]} rows and {self.shift[1]} columns (mod {MIN_SIZE}), as after a crop")
        if self.scale == 2:
            where = "with the image scaled up by 2, as after a 50% resize"
        if not self.found:
            where = f"at the best reading (an unmarked image matches about {self.bits // 2})"
        return "\n".join([
            f"image watermark ({SCHEME}, {size}): found: {'yes' if self.found else 'no'}",
            f"bits matched: {self.matched} of {self.bits}, {where}",
            f"false-positive chance: {self.p_value:.2g} (that an unmarked image matches this well, over "
            f"{self.alignments} readings tried; called marked under {self.threshold:g})",
        ])


def _votes(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each tile cell's summed cos and sin of the lattice angle over its repeats, both (TILE, TILE)."""
    c = coefficients(y)
    rows, cols = c.shape
    angle = 2 * np.pi * c / STEP
    cell = ((np.arange(rows)[:, None] % TILE) * TILE + np.arange(cols)[None, :] % TILE).ravel()
    cs, sn = (np.bincount(cell, weights=w.ravel(), minlength=MESSAGE_BITS).reshape(TILE, TILE)
              for w in (np.cos(angle), np.sin(angle)))
    return cs, sn


def _read(y: np.ndarray, search: bool) -> tuple[int, int, tuple[int, int], int]:
    """(matched bits at the corner, matched bits at the best alignment, its shift, alignments tried) of luma y:
    the tag read at the corner and, with `search`, at every pixel offset of the block grid and shift of the tile."""
    bits, dither = _key()
    cos_d, sin_d = np.cos(2 * np.pi * dither), np.sin(2 * np.pi * dither)
    aligned, best, best_shift, tried = 0, -1, (0, 0), 0
    offsets = [(a, b) for a in range(BLOCK) for b in range(BLOCK)] if search else [(0, 0)]
    shifts = [(a, b) for a in range(TILE) for b in range(TILE)] if search else [(0, 0)]
    for oy, ox in offsets:
        if not carries(y.shape[0] - oy, y.shape[1] - ox):
            continue
        cs, sn = _votes(y[oy:, ox:])
        for sy, sx in shifts:
            # block (i, j) of this reading is cell (i + sy, j + sx) of the tile: its votes score that cell's dither
            vote = np.roll(cs, (sy, sx), axis=(0, 1)) * cos_d + np.roll(sn, (sy, sx), axis=(0, 1)) * sin_d
            matched = int(((vote < 0) == bits.astype(bool)).sum())  # nearer the half-step lattice: a 1
            tried += 1
            if (oy, ox, sy, sx) == (0, 0, 0, 0):
                aligned = matched
            if matched > best:
                best, best_shift = matched, ((BLOCK * sy - oy) % MIN_SIZE, (BLOCK * sx - ox) % MIN_SIZE)
    return aligned, best, best_shift, tried


def _doubled(y: np.ndarray) -> np.ndarray:
    """Luma scaled up by 2 (bicubic): where a mark shrunk to half its size is read again."""
    from PIL import Image

    im = Image.fromarray(y.astype(np.float32), mode="F")
    return np.asarray(im.resize((2 * y.shape[1], 2 * y.shape[0]), Image.Resampling.BICUBIC), dtype=np.float64)


def detect(pixels: np.ndarray, search: bool = True, threshold: float = THRESHOLD) -> ImageDetection:
    """Whether uint8 pixels (H, W), (H, W, 1) or (H, W, 3) carry genlab's mark. With `search`, what a crop or a
    50% resize would have done to it is tried too (every alignment of the grid, and the image scaled up by 2),
    and paid for in the false-positive chance."""
    arr = _as_hwc(pixels)
    h, w = arr.shape[:2]
    if not carries(h, w):
        return ImageDetection(None, h, w, threshold=threshold)
    y = _luma(arr)
    aligned, best, shift, tried = _read(y, search)
    scale = 1
    if search:
        halved, _, _, _ = _read(_doubled(y), search=False)  # an image shrunk to half keeps its corner: one reading
        tried += 1
        if halved > best:
            best, shift, scale = halved, (0, 0), 2
    # two tests, each at half the level: the corner reading alone, and the best of every reading tried (Bonferroni)
    p_corner, p_best = binomial_tail(aligned, MESSAGE_BITS), min(1.0, tried * binomial_tail(best, MESSAGE_BITS))
    p = min(1.0, 2 * min(p_corner, p_best))
    if p_corner <= p_best:
        best, shift, scale = aligned, (0, 0), 1
    return ImageDetection(p <= threshold, h, w, best, MESSAGE_BITS, p, shift, scale, tried, threshold)


def read_image(path: str | Path) -> np.ndarray:
    """A PNG or JPEG file as uint8 pixels: grey (H, W) or RGB (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"{path} does not exist; give the path of an image file")
    try:
        with Image.open(path) as im:
            grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
            return np.asarray(im.convert("L" if grey else "RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise GenlabError(f"{path} is not a readable image ({e}); give a PNG or JPEG file") from None


def detect_file(path: str | Path, search: bool = True, threshold: float = THRESHOLD) -> ImageDetection:
    """`detect` on an image file (PNG or JPEG, as Pillow reads it)."""
    return detect(read_image(path), search=search, threshold=threshold)
