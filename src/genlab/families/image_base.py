"""What the three image families (vae, gan, diffusion) share: the batch they read, the sizes their
down- and up-sampling can take, and the sampling contract that genlab.images.sample drives.

An image model (the nn.Module) offers:
    noise_shape                      the shape of one sample's starting noise (a latent, or x_T)
    generate(noise, labels, generator, **controls) -> images in [-1, 1], (B, C, H, W)
    controls                         the sampling controls it takes, with their defaults
so that seeding, labels, interpolation between two noises and provenance are written once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError
from genlab.families.base import Family


@dataclass
class ImageConfig:
    """The settings every image family's config starts with; all but `conditional` and `captions` come from the
    data."""

    channels: int = 1
    image_size: int = 16
    num_classes: int = 0
    conditional: bool = False  # reads a class label
    captions: bool = False  # reads a caption (a text prompt); the families with takes_captions
    caption_vocab_size: int = 0  # the caption tokenizer's words, [PAD] [CLS] [UNK] included
    caption_length: int = 0  # the longest training caption in words, plus [CLS]


class ImageFamily(Family):
    batch_kind = "images"  # (images (B, C, H, W) in [-1, 1], labels (B,) or caption ids (B, L))
    data_keys: ClassVar[set[str]] = {"channels", "image_size", "num_classes", "caption_vocab_size", "caption_length"}
    # whether the family reads captions (--captions); the others say so when asked, rather than ignore them
    takes_captions: ClassVar[bool] = False

    def check(self, config) -> None:
        """Refuse settings the network cannot take, in one line each."""
        s = config.image_size
        if s < 8 or s % 4:
            raise GenlabError(f"the {self.name} family halves the image twice, so it takes sizes that are multiples "
                              f"of 4 from 8 up; got {s}x{s}: choose e.g. --size {max(8, (s + 3) // 4 * 4)}")
        if config.conditional and config.num_classes < 2:
            raise GenlabError("--conditional needs class labels, and this dataset has none: put the images of each "
                              "class in its own sub-folder, or train without --conditional")
        if config.captions and not self.takes_captions:
            raise GenlabError(f"the {self.name} family does not read captions; train text-to-image with --family "
                              "diffusion --captions, or condition on class labels with --conditional")
        if config.captions and config.conditional:
            raise GenlabError("--captions and --conditional are two kinds of prompt; give one (a caption can name "
                              "the class)")
        if config.captions and config.caption_vocab_size <= 3:
            raise GenlabError("--captions needs captioned images: images:digit-scenes, or a folder with a .txt "
                              "caption beside each image or a metadata.jsonl")


def class_embedding(config) -> nn.Embedding | None:
    """One vector per class, plus one for "no label" (index num_classes) used by label dropout."""
    return nn.Embedding(config.num_classes + 1, config.label_dim) if config.conditional else None


def one_hot(labels: torch.Tensor | None, num_classes: int) -> torch.Tensor | None:
    return None if labels is None else F.one_hot(labels, num_classes).float()


@contextlib.contextmanager
def held_out_noise(model: nn.Module, device: torch.device):
    """In evaluation, draw the loss's noise from a fixed seed on a forked RNG: validation losses then compare
    across evaluations, and evaluating never moves the training RNG (so resume stays exact)."""
    if model.training:
        yield
        return
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(20240601)
        yield

