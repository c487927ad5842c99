"""Image datasets: scikit-learn's handwritten digits, MNIST from its IDX files, or any folder of PNG/JPEG.

    images:digits          1,797 real 8x8 scans of handwritten digits (10 classes), shipped with scikit-learn
    images:mnist:DIR       the standard MNIST IDX .gz files in DIR (train = the 60k set, validation = the 10k set)
    path/to/folder         PNG/JPEG files; when every image lies in a sub-folder, sub-folder names are class labels

Every image is resized once to `image_size` (square: centre-cropped, then resampled; small images such
as the 8x8 digits are upsampled), kept in memory as uint8 and normalised per batch to [-1, 1]
(x = pixel / 127.5 - 1). That normalisation, the size, the channels and the optional augmentation
are written into the model's config.json so that sampling maps outputs back to pixels.

A corrupt, truncated or unreadable file among good ones is skipped with one warning that counts them
(a photo folder often holds a stray broken file, and one bad file should not cost the whole run); a
folder where no image can be read is an error. So is an image over MAX_IMAGE_PIXELS (Pillow's default
bound, ~89.5 megapixels) or over Pillow's own Image.MAX_IMAGE_PIXELS when that is lower: a small file
that claims more is most likely a decompression bomb. The skipped files are counted by reason in the
run's data summary (`skipped_files`, `skipped_reasons`).

A folder is walked as the text wing walks one (text/data.py: build, cache and VCS folders are left out)
and --extensions chooses among the image suffixes. It is images when it holds images and no more text
or source files than images: a photo folder with a README is images, a code folder with a logo is text.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genlab.align.dpo import PreferencePairs
from genlab.errors import GenlabError
from genlab.text.data import TEXT_EXTENSIONS, choose_files, extensions_for_folder, folder_files, parse_extensions

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BUILTIN_IMAGES = ("images:digits", "images:digit-scenes", "images:mnist:DIR")
# images:digit-scenes' size: enough scenes that each of the ~1,400 (digits, layout) combinations of training is
# drawn ~14 times with different scans and positions; building them takes a few seconds
DIGIT_SCENES = {"train": 20_000, "val": 1_000}
AUGMENTATIONS = ("flip", "shift")
SPLIT_SEED = 0  # the train/validation split of a dataset without an official one is always the same
# Pillow's default bound (a quarter GiB of RGB), kept here so that raising Image.MAX_IMAGE_PIXELS elsewhere
# does not let a decompression bomb in: every image is decoded whole and held until all are resized, and
# even a 50-megapixel camera photo is well below it
MAX_IMAGE_PIXELS = 89_478_485


def is_image_source(source: str) -> bool:
    """True for `images:...` names and for folders whose files are images rather than text."""
    if source.startswith("images:"):
        return True
    path = Path(source).expanduser()
    if path.is_file():
        return path.suffix.lower() in IMAGE_SUFFIXES
    if path.is_dir():  # a folder of images, not one of text or code that happens to hold a picture
        suffixes = [f.suffix.lower() for f in folder_files(path)[0]]
        images = sum(1 for s in suffixes if s in IMAGE_SUFFIXES)
        return images > 0 and images >= sum(1 for s in suffixes if s in TEXT_EXTENSIONS)
    return False


# ---------------------------------------------------------------------------------------------- sources


def _digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    pixels = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8), values 0..16 -> 0..255
    return pixels, d.target.astype(np.int64), [str(i) for i in range(10)]


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format): magic with the dtype and rank, big-endian sizes, then the data."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise GenlabError(f"cannot read {path} ({e}); is it a complete MNIST IDX file?") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise GenlabError(f"{path} is not an unsigned-byte IDX file; give the standard MNIST .gz files")
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
    data = np.frombuffer(bytearray(raw), dtype=np.uint8, offset=4 + 4 * rank)  # writable, for torch
    if data.size != int(np.prod(dims)):
        raise GenlabError(f"{path} is truncated ({data.size} of {int(np.prod(dims))} values)")
    return data.reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise GenlabError(f"{folder} has no {stem}.gz; images:mnist:DIR needs the four standard MNIST IDX files")


def _mnist(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not folder.is_dir():
        raise GenlabError(f"MNIST folder {folder} does not exist; give the folder of the IDX .gz files")
    xs = [_read_idx(_find(folder, f"{s}-images-idx3-ubyte"))[:, None] for s in ("train", "t10k")]
    ys = [_read_idx(_find(folder, f"{s}-labels-idx1-ubyte")).astype(np.int64) for s in ("train", "t10k")]
    return xs[0], ys[0], xs[1], ys[1]


def _read_image(f: Path) -> tuple[str, object] | str:
    """(mode, decoded image) of one file, or the reason it is skipped."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns past Image.MAX_IMAGE_PIXELS and raises past twice that: both skip the file
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as im:  # reads the header only
                if im.width * im.height > MAX_IMAGE_PIXELS:
                    return "over the pixel cap (a decompression bomb?)"
                im.load()
                return im.mode, im.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "over the pixel cap (a decompression bomb?)"
    except UnidentifiedImageError:
        return "not a PNG/JPEG image"
    except (OSError, ValueError, SyntaxError, EOFError):
        return "truncated or corrupt"


def _folder(path: Path, size: int, color: str, extensions: str | None = None, known: tuple[str, ...] = (),
            only: list[Path] | None = None) -> tuple[np.ndarray, np.ndarray, list[str], dict, dict, list[Path]]:
    """The folder's images (N, C, H, W), labels, class names, skipped files by reason, what the folder gave and the
    files read, in order; `only` reads these files of the folder instead of walking it (a captioned folder's)."""
    if not path.exists():
        from genlab.modalities import unknown_dataset

        raise unknown_dataset(str(path))
    folder: dict = {}  # what a folder gave, for the data summary
    if only is not None:
        files = list(only)
    elif path.is_file():
        extensions_for_folder(str(path), extensions)
        files = [path]
    else:
        chosen = parse_extensions(extensions, IMAGE_SUFFIXES, "image")
        everything, left_out = folder_files(path)
        files = choose_files(path, IMAGE_SUFFIXES, chosen, "image", everything)
        folder = {"extensions": list(chosen) if chosen else "default", "left_out_folders": left_out}
    # class labels only when every image sits in a sub-folder of the root
    parents = {f.parent.relative_to(path).parts[0] if f.parent != path else None for f in files}
    # (a single sub-folder is a class too where the classes are known: a fine-tune on one class of its parent's)
    labelled = None not in parents and (len(parents) > 1 or (known and parents <= set(known)))
    class_names = sorted(parents) if labelled else []
    index = {name: i for i, name in enumerate(class_names)}
    pictures, labels, bad, kept = [], [], [], []
    skipped: collections.Counter = collections.Counter()  # reason -> files
    for f in files:
        read = _read_image(f)
        if isinstance(read, str):
            bad.append(f)
            skipped[read] += 1
            continue
        pictures.append(read)
        kept.append(f)
        labels.append(index[f.parent.relative_to(path).parts[0]] if class_names else 0)
    if not pictures:
        reasons = ", ".join(f"{c} {r}" for r, c in skipped.most_common())
        raise GenlabError(f"none of the {len(files)} image files in {path} could be read ({reasons}); "
                          "are they PNG/JPEG?")
    if bad:
        names = ", ".join(str(b.relative_to(path) if b != path else b) for b in bad[:3])
        reasons = ", ".join(f"{c} {r}" for r, c in skipped.most_common())
        print(f"genlab: warning: skipped {len(bad)} of {len(files)} image files that could not be read "
              f"({names}{', ...' if len(bad) > 3 else ''}): {reasons}", file=sys.stderr)
    if color == "auto":
        color = "grey" if all(mode in ("1", "L", "LA", "I", "I;16", "P") and not _is_colour_palette(im)
                              for mode, im in pictures) else "rgb"
    mode = "L" if color == "grey" else "RGB"
    out = np.stack([np.asarray(_square(im.convert(mode), size)) for _, im in pictures])
    out = out[:, None] if mode == "L" else out.transpose(0, 3, 1, 2)  # (N, C, H, W)
    if folder:
        unread = set(bad)
        folder["files_by_extension"] = dict(collections.Counter(
            f.suffix.lower() for f in files if f not in unread).most_common())
    return out, np.asarray(labels, dtype=np.int64), class_names, dict(skipped), folder, kept


def _is_colour_palette(im) -> bool:
    if im.mode != "P":
        return False
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())


def _square(im, size: int):
    from PIL import Image

    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return im.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 stack (N, C, h, w) to (N, C, size, size): bilinear up, antialiased down."""
    if pixels.shape[-1] == size and pixels.shape[-2] == size:
        return pixels
    x = torch.from_numpy(pixels).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < pixels.shape[-1])
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


# ---------------------------------------------------------------------------------------------- the dataset


class ImageData:
    """Images as uint8 (N, C, H, W) in memory, served as batches of (images in [-1, 1], labels), or with captions
    of (images, caption ids (B, L)): each draw of an image takes one of its phrasings at random, so a scene is
    seen under all of them."""

    modality = "images"
    unit = "img"  # what the progress bar counts per second
    items = "images"  # what the training split is counted in

    def __init__(self, source: str, train: np.ndarray, train_labels: np.ndarray, val: np.ndarray,
                 val_labels: np.ndarray, class_names: list[str], augment: tuple[str, ...] = (),
                 skipped: dict | None = None, folder: dict | None = None,
                 captions: tuple[list[list[str]], list[list[str]]] | None = None, caption_tokenizer=None):
        self.source = source
        self.skipped = dict(skipped or {})  # reason -> files of the source left out
        self.folder = dict(folder or {})  # a folder source: extensions chosen, files by extension, folders left out
        self.train = torch.from_numpy(np.ascontiguousarray(train))
        self.val = torch.from_numpy(np.ascontiguousarray(val))
        self.train_labels = torch.from_numpy(train_labels)
        self.val_labels = torch.from_numpy(val_labels)
        self.class_names = class_names
        self.augment = tuple(augment)
        h = hashlib.sha256()
        for a in (train, train_labels, val, val_labels):
            h.update(np.ascontiguousarray(a).tobytes())
        self.captions = captions
        self.caption_tokenizer = None
        if captions is not None:
            from genlab.images.captions import CaptionTokenizer

            h.update(json.dumps(captions).encode())
            said = [c for options in captions[0] for c in options if c]
            if caption_tokenizer is None:
                self.caption_tokenizer = CaptionTokenizer.fit(said)
            else:  # a fine-tune: the parent's words, which its caption encoder was trained on
                caption_tokenizer.check_training_captions(said, source)
                self.caption_tokenizer = caption_tokenizer
            self._caption_ids = [self._phrasings(options) for options in captions]  # (N, P, L) per split
        self.content_hash = h.hexdigest()

    def _phrasings(self, texts: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image's phrasings as ids (N, P, L), P the most any image has (the others repeat theirs), and how
        many each image has (N,)."""
        most = max(len(options) for options in texts)
        flat = [options[k % len(options)] for options in texts for k in range(most)]
        ids = self.caption_tokenizer.encode(flat).view(len(texts), most, -1)
        return ids, torch.tensor([len(options) for options in texts])

    @property
    def channels(self) -> int:
        return int(self.train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def model_settings(self) -> dict:
        settings = {"channels": self.channels, "image_size": self.image_size, "num_classes": self.num_classes}
        if self.caption_tokenizer is not None:
            settings.update(caption_vocab_size=self.caption_tokenizer.vocab_size,
                            caption_length=self.caption_tokenizer.max_length)
        return settings

    def images(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole split as floats in [-1, 1] (N, C, H, W) and labels (N,) (with captions, each image's first
        phrasing's ids (N, L))."""
        x, y = (self.train, self.train_labels) if split == "train" else (self.val, self.val_labels)
        if self.captions is not None:
            y = self._caption_ids[0 if split == "train" else 1][0][:, 0]
        return to_unit_range(x), y

    def batch(self, split: str, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        pixels, labels = (self.train, self.train_labels) if split == "train" else (self.val, self.val_labels)
        idx = torch.randint(len(pixels), (batch_size,), generator=generator)
        x = to_unit_range(pixels[idx])  # (B, C, H, W) in [-1, 1]
        if split == "train" and self.augment:
            x = self._augment(x, generator)
        if self.captions is None:
            return x, labels[idx]
        ids, counts = self._caption_ids[0 if split == "train" else 1]
        pick = (torch.rand(batch_size, generator=generator) * counts[idx]).long()  # one phrasing of each image
        return x, ids[idx, pick]  # (B, L)

    def _augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        B = x.shape[0]
        if "flip" in self.augment:
            flip = torch.rand(B, generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if "shift" in self.augment:  # move each image by up to 1/16 of its side, filling with the border
            m = max(1, self.image_size // 16)
            shifts = torch.randint(-m, m + 1, (B, 2), generator=generator)
            padded = F.pad(x, (m, m, m, m), mode="replicate")  # (B, C, H+2m, W+2m)
            H = self.image_size
            x = torch.stack([padded[i, :, m + dy : m + dy + H, m + dx : m + dx + H]
                             for i, (dy, dx) in enumerate(shifts.tolist())])
        return x

    def items_in(self, batch) -> int:
        return batch[0].shape[0]

    @property
    def train_items(self) -> int:
        return len(self.train)

    def describe(self) -> dict:
        return {
            "modality": "images",
            "source": self.source,
            "content_sha256": self.content_hash,
            "train_images": len(self.train),
            "val_images": len(self.val),
            "num_classes": self.num_classes,
            "skipped_files": int(sum(self.skipped.values())),
            "skipped_reasons": dict(self.skipped),
            **self.folder,
            **({} if self.captions is None else {
                "captions": sum(len(options) for split in self.captions for options in split),
                "uncaptioned_images": sum(options == [""] for split in self.captions for options in split)}),
        }

    def preprocessing(self) -> dict:
        return {"images": {
            "channels": self.channels, "image_size": self.image_size,
            "color": "grey" if self.channels == 1 else "rgb",
            "normalize": "x = pixel / 127.5 - 1 (pixels 0..255 to [-1, 1]); pixel = (x + 1) * 127.5",
            "augment": list(self.augment), "class_names": self.class_names,
        }, **({} if self.caption_tokenizer is None else {"captions": {
            "tokenizer": "caption_tokenizer.json", "max_length": self.caption_tokenizer.max_length,
            "words": self.caption_tokenizer.vocab_size - 3, "lowercase": True}})}

    def save(self, run_dir: Path) -> None:
        """The caption tokenizer, where there are captions; the rest of the preprocessing lives in config.json and
        the pixels in the source."""
        if self.caption_tokenizer is not None:
            self.caption_tokenizer.save(run_dir)


def to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    return pixels.float() / 127.5 - 1.0


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats (B, C, H, W) -> uint8 pixels (B, H, W, C), the inverse of the normalisation."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def parse_augment(augment: str | list | tuple | None) -> tuple[str, ...]:
    if not augment or augment == "none":
        return ()
    items = [a.strip() for a in augment.split(",")] if isinstance(augment, str) else list(augment)
    unknown = [a for a in items if a not in AUGMENTATIONS]
    if unknown:
        raise GenlabError(f"unknown augmentation {unknown[0]!r}; choose from: {', '.join(AUGMENTATIONS)} "
                          "(comma-separated), or none")
    return tuple(items)


def open_images(source: str, *, image_size: int | None = None, color: str = "auto", augment=None,
                val_fraction: float = 0.1, extensions: str | None = None, exclude_labels: str | None = None,
                parent: dict | None = None, captions: bool = False, allow_uncaptioned: bool = False) -> ImageData:
    """Open an image dataset by name or folder, resized to image_size (default: 16 for digits, else native/32);
    `extensions` chooses among a folder's image suffixes; `exclude_labels` (class names, comma-separated)
    leaves those classes' images out while the model keeps their labels. With a `parent` run's preprocessing
    (fine-tuning) the images take its size and colour and its class labels, matched by name. With `captions`
    each image comes with its captions (images:digit-scenes, or a captioned folder: images/captions.py)."""
    if parent is not None:
        image_size, color = parent["image_size"], parent["color"]
    if color not in ("auto", "grey", "rgb"):
        raise GenlabError(f"--color must be auto, grey or rgb, got {color!r}")
    if image_size is not None and not 4 <= image_size <= 512:
        raise GenlabError(f"--size must be between 4 and 512 pixels, got {image_size}")
    aug = parse_augment(augment)
    if captions and aug:
        raise GenlabError("--augment flips and shifts images, which would make their captions false (a 3 to the "
                          "left of a 7 becomes one to its right); train captioned images without it")
    skipped: dict = {}
    read: dict = {}  # what a folder source gave
    texts = None  # with captions: the training and validation images' captions, every phrasing of each
    if source.startswith("images:"):
        extensions_for_folder(source, extensions)
    if source == "images:digits":
        pixels, labels, names = _digits()
        pixels = _resize(pixels, image_size or 16)
        train, tl, val, vl = _split(pixels, labels, val_fraction)
    elif source == "images:digit-scenes":
        from genlab.images.scenes import build_scenes

        scenes = build_scenes(DIGIT_SCENES["train"], DIGIT_SCENES["val"])  # its own split, by scan and layout
        side = image_size or scenes.train.images.shape[-1]
        train, val = (_resize(split.images[:, None], side) for split in (scenes.train, scenes.val))
        tl, vl, names = np.zeros(len(train), np.int64), np.zeros(len(val), np.int64), []
        texts = (scenes.train.captions, scenes.val.captions)
    elif source.startswith("images:mnist"):
        folder = source[len("images:mnist"):].lstrip(":=")
        if not folder:
            raise GenlabError("images:mnist needs the folder of its IDX files: images:mnist:DIR "
                              "(e.g. images:mnist:../shared/data/mnist)")
        train, tl, val, vl = _mnist(Path(folder).expanduser())
        train, val = _resize(train, image_size or 28), _resize(val, image_size or 28)
        names = [str(i) for i in range(10)]
    elif ":" in source and not Path(source).exists() and not source.startswith("images:"):
        from genlab.modalities import registry, unknown_dataset

        if source.split(":")[0] not in registry():  # nosuch:thing is no dataset of any modality
            raise unknown_dataset(source)
        raise GenlabError(f"{source} is not image data; the image families (vae, gan, diffusion) train on "
                          f"{', '.join(BUILTIN_IMAGES)} or a folder of PNG/JPEG files")
    elif source.startswith("images:"):
        from genlab.modalities import unknown_dataset

        raise unknown_dataset(source)
    else:
        known = tuple(parent["class_names"]) if parent else ()
        path = Path(source).expanduser()
        pairs = None
        if captions:
            from genlab.images.captions import read_captioned_folder

            pairs = dict(read_captioned_folder(path, allow_uncaptioned))
        pixels, labels, names, skipped, read, kept = _folder(path, image_size or 32, color, extensions, known,
                                                             only=None if pairs is None else list(pairs))
        if len(pixels) < 2:
            raise GenlabError(f"{source} holds {len(pixels)} readable image; give at least 2 (train and validation)")
        tr, va = _split_indices(len(pixels), val_fraction)
        train, tl, val, vl = pixels[tr], labels[tr], pixels[va], labels[va]
        if pairs is not None:
            said = [[pairs[f]] for f in kept]  # one caption each ("" for an uncaptioned image)
            texts = ([said[i] for i in tr], [said[i] for i in va])
    if captions and texts is None:
        raise GenlabError(f"{source} has no captions; --captions trains on images:digit-scenes or a folder with a "
                          ".txt caption beside each image (or a metadata.jsonl)")
    if color == "rgb" and train.shape[1] == 1:
        train, val = np.repeat(train, 3, axis=1), np.repeat(val, 3, axis=1)
    elif color == "grey" and train.shape[1] == 3:
        weights = np.array([0.299, 0.587, 0.114])[None, :, None, None]  # ITU-R 601 luma, as Pillow's "L"
        train, val = [np.rint((a * weights).sum(1, keepdims=True)).astype(np.uint8) for a in (train, val)]
    if parent is not None:
        names, (tl, vl) = _parent_labels(source, names, parent, (tl, vl))
    if exclude_labels:
        if texts is not None:
            raise GenlabError("--exclude-labels leaves out classes, and captioned images have none; drop it")
        (train, tl), (val, vl) = _leave_out(names, exclude_labels, (train, tl), (val, vl))
    return ImageData(source, train, tl, val, vl, names, aug, skipped, read, captions=texts if captions else None,
                     caption_tokenizer=(parent or {}).get("caption_tokenizer"))


def _parent_labels(source: str, names: list[str], parent: dict, labels: tuple[np.ndarray, ...]):
    """The data's labels as indices into the parent's class names."""
    known = list(parent["class_names"])
    if not names:
        if parent["conditional"] and known:
            raise GenlabError(f"the model reads class labels ({', '.join(known[:10])}) and {source} has none; put "
                              "each image in a sub-folder named by its class")
        return known, labels
    new = [n for n in names if n not in known]
    if new:
        raise GenlabError(f"{source} has classes the model does not know ({', '.join(new[:5])}); its classes are "
                          f"{', '.join(known[:20])}: name the sub-folders by them")
    to_parent = np.array([known.index(n) for n in names], dtype=np.int64)
    return known, tuple(to_parent[y] for y in labels)


def _leave_out(names: list[str], exclude: str, *splits: tuple[np.ndarray, np.ndarray]):
    """Each (pixels, labels) split without the images of the classes named in `exclude`."""
    left_out = [n.strip() for n in exclude.split(",") if n.strip()]
    unknown = [n for n in left_out if n not in names]
    if unknown:
        raise GenlabError(f"--exclude-labels {', '.join(unknown)}: no such class; the classes are "
                          f"{', '.join(names[:20]) or 'none (the data has no labels)'}")
    ids = [names.index(n) for n in left_out]
    kept = [(x[~np.isin(y, ids)], y[~np.isin(y, ids)]) for x, y in splits]
    if any(len(x) == 0 for x, _ in kept):
        raise GenlabError(f"--exclude-labels {exclude} leaves no images; leave out fewer classes")
    return kept


def _split(pixels: np.ndarray, labels: np.ndarray, val_fraction: float):
    tr, va = _split_indices(len(pixels), val_fraction)
    return pixels[tr], labels[tr], pixels[va], labels[va]


def _split_indices(n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The training and validation indices of n items, the same for every run (SPLIT_SEED)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_val = min(n - 1, max(1, int(round(n * val_fraction))))
    return order[:-n_val], order[-n_val:]


class ImagePreferenceData(PreferencePairs):
    """Rated pairs of a model's images (files the feedback store names) as batches of (images,), (B, 2, C, H, W)
    in [-1, 1] with the chosen image in row 0: what a reward model on an image model trains on."""

    def __init__(self, pairs: list[dict], source: str, sampler, val_fraction: float):
        super().__init__(pairs, source, sampler.config, sampler.run_dir, val_fraction)
        self.images = torch.stack([torch.stack([sampler.read_image(p[side]) for side in ("chosen", "rejected")])
                                   for p in pairs])  # (N, 2, C, H, W)
        h = hashlib.sha256(self.images.numpy().tobytes())  # the pixels, wherever the files lie
        h.update("".join(p["prompt"] + "\n" for p in pairs).encode())
        self.content_hash = h.hexdigest()

    def _rows(self, index) -> tuple[torch.Tensor, ...]:
        return (self.images[index],)
