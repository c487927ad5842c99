"""Image datasets: built-in digits, MNIST IDX files, folders of PNG/JPEG, and their mistakes."""

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.images.data import ImageData, open_images, to_pixels, to_unit_range


def test_digits_shapes_ranges_and_split():
    data = open_images("images:digits", image_size=16)
    assert isinstance(data, ImageData) and data.modality == "images"
    assert len(data.train) + len(data.val) == 1797 and len(data.val) == 180
    assert data.model_settings() == {"channels": 1, "image_size": 16, "num_classes": 10}
    x, y = data.batch("train", 32, torch.Generator().manual_seed(0))
    assert x.shape == (32, 1, 16, 16) and x.dtype == torch.float32 and y.shape == (32,) and y.dtype == torch.long
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1  # background is black
    x2, y2 = data.batch("train", 32, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)  # batches are a function of the generator
    assert data.items_in((x, y)) == 32
    assert open_images("images:digits", image_size=8).image_size == 8
    pre = data.preprocessing()["images"]
    assert pre["image_size"] == 16 and pre["class_names"] == [str(i) for i in range(10)]


def test_normalisation_round_trips():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_pixels(to_unit_range(pixels))[..., 0], pixels[:, 0])


def test_augmentation_flips_and_shifts_only_training_batches():
    data = open_images("images:digits", augment="flip,shift")
    g = torch.Generator().manual_seed(0)
    x, _ = data.batch("train", 64, g)
    assert x.shape == (64, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert data.preprocessing()["images"]["augment"] == ["flip", "shift"]
    with pytest.raises(GenlabError, match="unknown augmentation 'rotate'"):
        open_images("images:digits", augment="rotate")


def _png(path, colour=(200, 30, 30), size=(20, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_folder_with_class_subfolders(tmp_path):
    for cls, colour in (("cats", (200, 30, 30)), ("dogs", (30, 30, 200))):
        for i in range(5):
            _png(tmp_path / cls / f"{i}.png", colour)
    data = open_images(str(tmp_path), image_size=8, val_fraction=0.2)
    assert data.class_names == ["cats", "dogs"] and data.channels == 3 and data.image_size == 8
    assert len(data.train) == 8 and len(data.val) == 2
    x, y = data.images("train")
    red = x[y == 0][:, 0].mean() > x[y == 0][:, 2].mean()
    assert red  # the labels follow the folders
    grey = open_images(str(tmp_path), image_size=8, color="grey")
    assert grey.channels == 1


def test_corrupt_image_is_skipped_with_a_counted_warning(tmp_path, capsys):
    for i in range(4):
        _png(tmp_path / f"{i}.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    data = open_images(str(tmp_path), image_size=8)
    assert len(data.train) + len(data.val) == 4 and data.num_classes == 0
    err = capsys.readouterr().err
    assert "skipped 1 of 5 image files" in err and "broken.png" in err


def test_folder_mistakes_are_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenlabError, match="no .png, .jpg or .jpeg"):
        open_images(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"{i}.jpg").write_bytes(b"garbage")
    with pytest.raises(GenlabError, match="none of the 3 image files"):
        open_images(str(bad))
    with pytest.raises(GenlabError, match="unknown dataset 'images:cifar'"):
        open_images("images:cifar")
    with pytest.raises(GenlabError, match="images:mnist:DIR"):
        open_images("images:mnist")
    with pytest.raises(GenlabError, match="--size must be between"):
        open_images("images:digits", image_size=2)


def _idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 4)):
        _idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 28, 28)))
        _idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, size=(n,)))
    data = open_images(f"images:mnist:{tmp_path}")
    assert data.train.shape == (12, 1, 28, 28) and data.val.shape == (4, 1, 28, 28) and data.num_classes == 10
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09ab"))
    with pytest.raises(GenlabError, match="truncated"):
        open_images(f"images:mnist:{tmp_path}")
