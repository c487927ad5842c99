"""`genlab demo` also trains a conditional diffusion model on digits and writes a grid of them."""

import torch
from PIL import Image

from genlab.demo import demo_images
from genlab.safety.provenance import read_provenance


def test_demo_writes_a_grid_of_digits(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        paths = demo_images(str(tmp_path / "demo-images"), minutes=0.1)
    finally:
        torch.set_num_threads(before)
    grid, view = paths[:2]
    assert grid.name == "grid.png" and view.name == "grid@2x.png" and len(paths) == 42
    with Image.open(grid) as im:
        assert im.size == (10 * 18 + 2, 4 * 18 + 2)  # ten columns (one per digit) of 16px tiles, 2px apart
    with Image.open(view) as im:
        assert im.size == (2 * (10 * 18 + 2), 2 * (4 * 18 + 2))  # the same grid, each pixel a 2x2 block
    assert read_provenance(grid)["family"] == "diffusion"
