"""The image watermark: its coefficient against a literal Haar DWT + DCT, round trips (grey and RGB, as PNG and as
JPEG 90, cropped), unmarked images not called marked, the documented size limit, and generated PNGs that say in
their provenance whether they carry the mark."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from genlab.cli import main as genlab_main
from genlab.errors import GenlabError
from genlab.safety import image_watermark as wm


def digits(size: int, n: int = 6) -> np.ndarray:
    """n real digit scans upsampled (bilinear, as images/data.py does) to size x size, uint8."""
    from sklearn.datasets import load_digits

    x = torch.from_numpy(np.rint(load_digits().images[:n] * (255 / 16))[:, None]).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().to(torch.uint8)[:, 0].numpy()


def photo(size: int) -> np.ndarray:
    from sklearn.datasets import load_sample_images

    return np.asarray(Image.fromarray(load_sample_images().images[0][100:356, 200:456]).resize((size, size)))


def jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def test_the_coefficient_is_the_dc_of_the_dct_of_the_haar_ll_band():
    from scipy.fft import dctn

    y = np.random.default_rng(0).integers(0, 256, (32, 40)).astype(np.float64)
    ll = (y[0::2, 0::2] + y[0::2, 1::2] + y[1::2, 0::2] + y[1::2, 1::2]) / 2  # orthonormal Haar, one level
    blocks = ll.reshape(8, 2, 10, 2).transpose(0, 2, 1, 3)  # (8, 10, 2, 2)
    dc = dctn(blocks, axes=(2, 3), norm="ortho")[..., 0, 0]
    assert np.allclose(wm.coefficients(y), dc)


def test_round_trip_above_the_limit_grey_and_rgb():
    for a in [*digits(32, 4), photo(64)]:
        marked = wm.embed(a)
        assert marked.shape == a.shape and marked.dtype == np.uint8
        mse = np.mean((marked.astype(float) - a) ** 2)
        assert 10 * np.log10(255**2 / mse) > 34  # PSNR, dB
        found = wm.detect(marked)
        assert found.found and found.matched == found.bits == wm.MESSAGE_BITS and found.shift == (0, 0)
        assert found.p_value < 1e-12 and "found: yes" in found.summary() and "49 of 49" in found.summary()
    grey = digits(28, 1)[0]
    assert wm.detect(wm.embed(grey[..., None])).found  # (H, W, 1) as genlab's tensors come


def test_unmarked_images_are_not_called_marked():
    rng = np.random.default_rng(1)
    plain = [*digits(28, 8), *digits(64, 4), photo(64), rng.integers(0, 256, (48, 48), dtype=np.uint8)]
    plain += [np.full((28, 28), v, dtype=np.uint8) for v in range(0, 256, 5)]
    for a in plain:
        d = wm.detect(a)
        assert d.found is False and d.p_value > wm.THRESHOLD, d.summary()
    assert "found: no" in wm.detect(plain[0]).summary()


def test_the_documented_limit():
    assert wm.MIN_SIZE == 28 and wm.MESSAGE_BITS == 49
    assert wm.capacity(wm.MIN_SIZE - 1, wm.MIN_SIZE - 1) < wm.MESSAGE_BITS <= wm.capacity(wm.MIN_SIZE, wm.MIN_SIZE)
    assert not wm.carries(wm.MIN_SIZE - 1, 512) and wm.carries(wm.MIN_SIZE, wm.MIN_SIZE)
    small = digits(16, 1)[0]
    d = wm.detect(small)
    assert d.found is None and d.p_value is None
    text = d.summary()
    assert "16x16 px" in text and "under 28 px" in text and "genlab inspect" in text and "text chunks" in text
    with pytest.raises(GenlabError, match="too small to carry the watermark"):
        wm.embed(small)
    pixels, note = wm.mark(small)
    assert pixels is small and note["embedded"] is False and "28 px" in note["reason"]


def test_what_survives_where_the_bench_shows_it_holds():
    for a in digits(28, 4):  # JPEG 90 at the smallest size that carries the mark
        assert wm.detect(jpeg(wm.embed(a), 90)).found
    a = wm.embed(digits(64, 1)[0])
    cropped = wm.detect(a[6:-6, 6:-6])  # 10% off each side
    assert cropped.found and cropped.shift == (6, 6)
    assert wm.detect(jpeg(a, 50)).found
    half = np.asarray(Image.fromarray(a).resize((32, 32), Image.Resampling.BICUBIC))
    assert wm.detect(half).scale == 2 and wm.detect(half).found


def test_detect_file_and_its_mistakes(tmp_path):
    a = wm.embed(photo(64))
    Image.fromarray(a).save(tmp_path / "m.jpg", quality=90)
    assert wm.detect_file(tmp_path / "m.jpg").found
    with pytest.raises(GenlabError, match="does not exist"):
        wm.detect_file(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(GenlabError, match="not a readable image"):
        wm.detect_file(tmp_path / "bad.png")
    with pytest.raises(GenlabError, match="uint8"):
        wm.embed(np.zeros((32, 32), dtype=np.float32))


def test_generated_pngs_record_whether_they_carry_it(tmp_path):
    from genlab import api
    from genlab.images.sample import png_bytes
    from genlab.safety.provenance import read_provenance

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = api.train("images:digits", family="diffusion", out=str(tmp_path / "run"), image_size=8, width=8,
                        time_dim=16, max_steps=2, eval_interval=2, eval_batches=1, quiet=True)
        m = api.load(run)
        grid, view, single, *_ = m.write(m.generate(num_samples=4, seed=0, steps=2), tmp_path / "out")
    finally:
        torch.set_num_threads(threads)
    for path, embedded in ((view, True), (grid, False), (single, False)):  # the view is ~500 px; the rest tiny
        note = read_provenance(path)["watermark"]
        assert note["scheme"] == wm.SCHEME and note["embedded"] is embedded
        assert wm.detect_file(path).found is (True if embedded else None)
    assert "smaller than 28 px" in read_provenance(single)["watermark"]["reason"]
    assert genlab_main(["detect", str(view)]) == 0  # genlab detect: no key or run for an image
    assert genlab_main(["detect", str(single)]) == 1  # too small to check: not found, and it says why
    blind = png_bytes(torch.from_numpy(digits(64, 1)[0][..., None]), None)  # the arena's PNG, no text chunks
    assert wm.detect(np.asarray(Image.open(io.BytesIO(blind)))).found
