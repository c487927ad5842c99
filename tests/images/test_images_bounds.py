"""Decompression bombs and truncated images in a folder are skipped and counted; the good images still train."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.images import data as image_data
from genlab.images.data import open_images

BOMB = "over the pixel cap (a decompression bomb?)"


def _png(path: Path, side: int = 8, value: int = 0) -> None:
    Image.fromarray(np.full((side, side, 3), value, dtype=np.uint8)).save(path)


def _png_claiming(path: Path, side: int) -> None:
    """A few-byte PNG whose header claims side x side pixels: Pillow reads only the header to know the size."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def _truncated_png(path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def test_bomb_among_good_images_is_skipped_and_counted(tmp_path, capsys):
    for i in range(4):
        _png(tmp_path / f"{i}.png", value=60 * i)
    _png_claiming(tmp_path / "bomb.png", 100_000)  # 10 gigapixels: Pillow's DecompressionBombError
    _truncated_png(tmp_path / "cut.png")
    data = open_images(str(tmp_path), image_size=8)
    assert len(data.train) + len(data.val) == 4
    summary = data.describe()
    assert summary["skipped_files"] == 2
    assert summary["skipped_reasons"] == {BOMB: 1, "truncated or corrupt": 1}
    err = capsys.readouterr().err
    assert "skipped 2 of 6 image files" in err and "bomb.png" in err and BOMB in err and err.count("\n") == 1
    x, _ = data.batch("train", 4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 8, 8)  # training data still opens


def test_pillow_limit_and_our_cap_both_skip(tmp_path, monkeypatch):
    _png(tmp_path / "small.png", side=8)  # 64 pixels
    _png(tmp_path / "small2.png", side=8)
    _png(tmp_path / "warned.png", side=10)  # 100 pixels: over Pillow's limit, under twice it (a warning)
    _png(tmp_path / "refused.png", side=16)  # 256 pixels: over twice Pillow's limit (an error)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 80)
    data = open_images(str(tmp_path), image_size=8)
    assert data.describe()["skipped_reasons"] == {BOMB: 2}
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10**9)  # someone raised Pillow's limit: ours still holds
    monkeypatch.setattr(image_data, "MAX_IMAGE_PIXELS", 90)
    data = open_images(str(tmp_path), image_size=8)
    assert data.describe()["skipped_reasons"] == {BOMB: 2} and len(data.train) + len(data.val) == 2


def test_a_folder_of_bombs_is_one_error(tmp_path):
    for i in range(2):
        _png_claiming(tmp_path / f"{i}.png", 100_000)
    with pytest.raises(GenlabError, match="none of the 2 image files") as e:
        open_images(str(tmp_path))
    assert BOMB in str(e.value) and "\n" not in str(e.value)
