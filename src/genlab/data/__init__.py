"""Datasets by name or path. A dataset knows its modality, its train/validation split and its
preprocessing; the preprocessing is saved with the model so that sampling decodes back."""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.data.text import BUILTIN_TEXT, TokenizedCorpus, prepare_text, random_windows
from genlab.data.tokenizer import load_tokenizer
from genlab.errors import GenlabError


class TextData:
    """A tokenized corpus served as random next-token windows of `block_size` tokens."""

    modality = "text"
    unit = "tok"  # what the progress bar counts per second

    def __init__(self, corpus: TokenizedCorpus, block_size: int):
        self.corpus = corpus
        self.tokenizer = corpus.tokenizer
        self.block_size = block_size

    def model_settings(self) -> dict:
        """Settings the model must take from the data."""
        return {"vocab_size": self.tokenizer.vocab_size}

    def batch(self, split: str, batch_size: int, generator: torch.Generator):
        data = self.corpus.train if split == "train" else self.corpus.val
        return random_windows(data, batch_size, self.block_size, generator)

    def items_in(self, batch) -> int:
        return batch[0].numel()

    def describe(self) -> dict:
        return {
            "modality": "text",
            "source": self.corpus.source,
            "content_sha256": self.corpus.content_hash,
            "train_tokens": int(len(self.corpus.train)),
            "val_tokens": int(len(self.corpus.val)),
        }

    def preprocessing(self) -> dict:
        return {"tokenizer": {"kind": self.tokenizer.kind, "vocab_size": self.tokenizer.vocab_size}}

    def save(self, run_dir: Path) -> None:
        self.tokenizer.save(Path(run_dir) / "tokenizer.json")


def open_data(source: str, *, block_size: int | None = None, tokenizer: str = "char", vocab_size: int | None = None,
              val_fraction: float = 0.1, image_size: int | None = None, color: str = "auto", augment=None,
              modality: str | None = None):
    """Open a dataset by name (`text:pydocs`, `images:digits`) or path, prepared for training.
    Image sources (`images:...`, folders of PNG/JPEG) give an ImageData, everything else a TextData;
    modality="images" (an image family asking) reads the source as images whatever it looks like."""
    from genlab.data.images import is_image_source, open_images

    if modality == "images" or is_image_source(source):
        return open_images(source, image_size=image_size, color=color, augment=augment, val_fraction=val_fraction)
    from genlab.data.music import is_music_source, open_music

    if is_music_source(source):  # `music:...` names and folders of .abc/.mid/.musicxml: tunes as tokens
        return open_music(source, block_size=block_size, tokenizer=tokenizer, val_fraction=val_fraction)
    corpus = prepare_text(source, tokenizer, vocab_size, val_fraction)
    for split, tokens in (("training", corpus.train), ("validation", corpus.val)):
        if len(tokens) <= block_size:
            raise GenlabError(
                f"the {split} split of {source} has {len(tokens)} tokens, too few for --block-size {block_size}; "
                "use a smaller --block-size or more text"
            )
    return TextData(corpus, block_size)


def load_preprocessing(run_dir: Path, preprocessing: dict):
    """The tokenizer a run was trained with."""
    tok = preprocessing["tokenizer"]
    if tok["kind"] in ("abc", "events"):
        from genlab.data.music_tokenizers import load_music_tokenizer

        return load_music_tokenizer(tok["kind"], Path(run_dir) / "tokenizer.json")
    return load_tokenizer(tok["kind"], Path(run_dir) / "tokenizer.json")


__all__ = ["BUILTIN_TEXT", "TextData", "load_preprocessing", "open_data"]
