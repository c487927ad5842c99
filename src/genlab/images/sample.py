"""Sampling for any image family (vae, gan, diffusion), and PNG files that carry their provenance.

The model contract (genlab.families.image_base): `model.noise_shape`, `model.generate(noise, labels,
generator, **controls)` and `model.controls`. This file owns what is common: seeding (the same seed
gives the same images), labels (one requested label, or the classes in turn), interpolation between
two noises (spherical, as Gaussian noise lives near a sphere: White 2016, "Sampling Generative
Networks"), batching, and writing a grid plus single PNGs whose text chunks name the model, the
checkpoint's hash, the seed and every control.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import torch

from genlab.errors import GenlabError
from genlab.modalities import LoadedRun, Sampler
from genlab.outputs import first_free_number, free_name, output_folder

MAX_BATCH = 256  # images denoised together; bounds memory, not the number of samples


def slerp(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    """n points from a to b along the great circle between them, (n, *a.shape)."""
    fa, fb = a.flatten(), b.flatten()
    omega = torch.arccos(torch.clamp(torch.dot(fa / fa.norm(), fb / fb.norm()), -1.0, 1.0))
    w = torch.linspace(0, 1, n, dtype=a.dtype, device=a.device)
    if omega.abs() < 1e-6:
        out = (1 - w)[:, None] * fa + w[:, None] * fb
    else:
        s = torch.sin(omega)
        out = (torch.sin((1 - w) * omega) / s)[:, None] * fa + (torch.sin(w * omega) / s)[:, None] * fb
    return out.view(n, *a.shape)


class ImageModel(Sampler):
    """A trained image model, ready to sample: `m.generate(...)`, `m.write(...)`, `m.model`."""

    serves = "images"
    controls = {"prompt": "", "negative_prompt": None, "num_samples": 64, "seed": None, "label": None,
                "interpolate": False, "steps": None, "guidance": None, "eta": None, "sampler": None, "weights": None}
    default_out_dir = "samples"

    def __init__(self, run: LoadedRun):
        if run.precision == "int8":
            raise GenlabError("--precision int8 is for decoding text and music; use fp32 or bf16 for images")
        super().__init__(run)
        self.last_labels: list[int] | None = None
        self.last_prompts: list[str] | None = None  # a captioned model's prompt of each image of the last call
        self._caption_tokenizer = None

    @property
    def captioned(self) -> bool:
        """Whether the model draws what a caption says (trained with --captions)."""
        return bool(getattr(self.model, "captions", False))

    @property
    def caption_tokenizer(self):
        if self._caption_tokenizer is None:
            from genlab.images.captions import CaptionTokenizer

            self._caption_tokenizer = CaptionTokenizer.load(self.run_dir, self.config["model"]["caption_length"])
        return self._caption_tokenizer

    def caption_ids(self, prompts: list[str]) -> torch.Tensor:
        """Prompts as the caption encoder reads them (N, L), each checked first (too long, unknown words)."""
        from genlab.images.captions import check_caption

        tok = self.caption_tokenizer
        for p in dict.fromkeys(prompts):
            tok.check_prompt(check_caption(p, "the prompt"))
        return tok.encode(prompts).to(self.device)

    @property
    def num_classes(self) -> int:
        return int(self.config["model"].get("num_classes", 0)) if self.model.conditional else 0

    @property
    def class_names(self) -> list[str]:
        return self.config.get("images", {}).get("class_names", [])

    @property
    def prompt_choices(self) -> list[str] | None:
        """A conditional model's prompt is one of its classes; an unconditional one takes none; a captioned one
        any caption (None)."""
        if self.captioned:
            return None
        if not self.model.conditional:
            return []
        return self.class_names or [str(i) for i in range(self.num_classes)]

    def label_index(self, label: int | str) -> int:
        """A class given by number or by name (a folder dataset's sub-folder, e.g. `square`)."""
        names = self.class_names
        hint = f" ({', '.join(f'{i}={c}' for i, c in enumerate(names))})" if 0 < len(names) <= 20 else ""
        if isinstance(label, str) and not label.lstrip("-").isdigit():
            if label not in names:
                raise GenlabError(f"--label {label!r} is not a class of this model; its classes are "
                                  f"0..{self.num_classes - 1}{hint}")
            return names.index(label)
        index = int(label)
        if not 0 <= index < self.num_classes:
            raise GenlabError(f"--label {index} is out of range: this model knows labels 0..{self.num_classes - 1}"
                              f"{hint}")
        return index

    def _labels(self, label: int | str | None, n: int) -> torch.Tensor | None:
        if not self.model.conditional:
            if label is not None:
                raise GenlabError("--label needs a model trained with --conditional; this one was trained without "
                                  "labels, so drop --label")
            return None
        if label is not None:
            return torch.full((n,), self.label_index(label), dtype=torch.long, device=self.device)
        return torch.arange(n, device=self.device) % self.num_classes  # the classes in turn

    def _family_controls(self, controls: dict) -> dict:
        given = {k: v for k, v in controls.items() if v is not None}
        known = self.model.controls
        family = self.config["family"]
        for key in given:
            if key not in known:
                ok = ", ".join(f"--{k}" for k in known) or "none"
                raise GenlabError(f"--{key} is not a control of the {family} family (its controls: {ok})")
        if "guidance" in given and not (self.model.conditional or self.captioned):
            raise GenlabError("--guidance needs a model trained with --conditional (classifier-free guidance mixes "
                              "the conditional and unconditional predictions); drop --guidance")
        if "guidance" in given and given["guidance"] < 0:
            raise GenlabError(f"--guidance must be 0 or more, got {given['guidance']}")
        if "steps" in given and given["steps"] <= 0:
            raise GenlabError(f"--steps must be positive, got {given['steps']}")
        return given

    @torch.inference_mode()
    def generate(self, num_samples: int = 16, seed: int | None = None, label: int | str | None = None,
                 interpolate: bool = False, output_type: str = "pil", prompt: str | list[str] = "",
                 negative_prompt: str | None = None, **controls):
        """A PIL image, or a list of them when num_samples > 1; with output_type="pt" a tensor (N, C, H, W) in
        [-1, 1] (as diffusers' pipelines offer). interpolate=True walks from one noise to another in N steps.
        A `prompt` is a caption for a model trained with --captions ("a small 3 to the left of a large 7"; or a
        list, one per image), with `negative_prompt` the caption guidance steers away from; for a conditional
        model it is a class label (as rating and best-of-n pass one). Each PIL image carries its label or prompt
        and its provenance in `image.info`.

        Controls depend on the family: diffusion takes sampler (ddpm|ddim), steps, guidance, eta and
        weights (ema|raw); gan takes weights; vae none.
        """
        captions = None
        if self.captioned:
            if label is not None:
                raise GenlabError("this model draws what a caption says, not a class; give --prompt \"a 3 to the left "
                                  "of a 7\" instead of --label")
            captions = [prompt] * num_samples if isinstance(prompt, str) else list(prompt)
            if len(captions) != num_samples:
                raise GenlabError(f"give one prompt, or one per image: {len(captions)} prompts for {num_samples} "
                                  "images")
            if not all(c.strip() for c in captions):
                raise GenlabError("the prompt is empty; this model draws what a caption says: give --prompt, e.g. "
                                  "\"a small 3 to the left of a large 7\"")
        elif negative_prompt is not None:
            raise GenlabError("--negative-prompt is for a model trained with --captions; drop it")
        elif prompt:
            if not isinstance(prompt, str):
                raise GenlabError("a list of prompts is for a model trained with --captions; give one prompt")
            if not self.model.conditional:
                raise GenlabError(f"this model was trained without labels or captions, so it takes no prompt (got "
                                  f"{prompt!r}); leave the prompt empty, or train with --captions to prompt it")
            if label is not None and str(label) != prompt:
                raise GenlabError(f"the prompt {prompt!r} and --label {label} name two classes; give one of them")
            if not prompt.lstrip("-").isdigit() and prompt not in self.class_names:
                classes = ", ".join(self.prompt_choices or [])
                raise GenlabError(f"this model was trained with class labels, not captions, so a prompt must name "
                                  f"one of its classes ({classes}), not {prompt!r}; or train with --captions to "
                                  "prompt it with words")
            label = prompt
        if output_type not in ("pil", "pt"):
            raise GenlabError(f"output_type must be pil (PIL images) or pt (a tensor), got {output_type!r}")
        if num_samples <= 0:
            raise GenlabError(f"--num-samples must be positive, got {num_samples}")
        if interpolate and num_samples < 2:
            raise GenlabError("--interpolate needs --num-samples of 2 or more (the two ends and the steps between)")
        given = self._family_controls(controls)
        labels = self.caption_ids(captions) if captions is not None else self._labels(label, num_samples)
        if negative_prompt is not None:
            given["negative"] = self.caption_ids([negative_prompt]).expand(num_samples, -1)
        seed = random.randrange(2**31) if seed is None else int(seed)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        shape = tuple(self.model.noise_shape)
        if interpolate:
            ends = torch.randn((2, *shape), generator=generator, device=self.device)
            noise = slerp(ends[0], ends[1], num_samples)  # (N, *shape)
            if labels is not None and label is None and captions is None:
                labels = torch.zeros_like(labels)  # one class along the whole walk unless --label says which
        else:
            noise = torch.randn((num_samples, *shape), generator=generator, device=self.device)
        out = []
        for i in range(0, num_samples, MAX_BATCH):
            part = {k: v[i : i + MAX_BATCH] if k == "negative" else v for k, v in given.items()}
            y = None if labels is None else labels[i : i + MAX_BATCH]
            out.append(self.model.generate(noise[i : i + MAX_BATCH], y, generator, **part).float())
        self.last_seed = seed
        resolve = getattr(self.model, "resolve_controls", lambda g: {**self.model.controls, **g})
        given.pop("negative", None)
        said = {} if captions is None else {"prompt": captions[0] if len(set(captions)) == 1 else captions,
                                            "negative_prompt": negative_prompt}
        self.last_controls = {**resolve(given), **said, "label": label, "interpolate": interpolate}
        self.last_prompts = captions
        self.last_labels = None if labels is None or captions is not None else labels.tolist()
        images = torch.cat(out).clamp(-1, 1)
        if output_type == "pt":
            return images
        pil = to_pil(images)
        for i, image in enumerate(pil):
            image.info["genlab"] = self.provenance(i)
            if self.last_labels is not None:
                image.info["label"] = self.last_labels[i]
            if captions is not None:
                image.info["prompt"] = captions[i]
        return pil[0] if num_samples == 1 else pil

    def read_image(self, image) -> torch.Tensor:
        """A PIL image or an image file as this model reads images: (C, H, W) in [-1, 1], of its size and colour."""
        from PIL import Image, UnidentifiedImageError

        from genlab.images.data import to_unit_range

        size, mode = self.config["images"]["image_size"], "L" if self.config["images"]["channels"] == 1 else "RGB"
        if hasattr(image, "getpixel"):
            image = image.convert(mode)
        else:
            path = Path(image)
            try:
                with Image.open(path) as im:
                    image = im.convert(mode)
            except FileNotFoundError:
                raise GenlabError(f"the rated image {path} is missing; put it back, or rate this model again") from None
            except (UnidentifiedImageError, OSError) as e:
                raise GenlabError(f"the rated image {path} cannot be read ({e}); rate this model again") from None
        if image.size != (size, size):
            raise GenlabError(f"an image of {image.size[0]}x{image.size[1]} pixels was given to a model of "
                              f"{size}x{size} images; rate images this model made")
        return to_unit_range(from_pil(image).permute(2, 0, 1))

    def preference_data(self, pairs: list[dict], source: str, reference, block_size: int, val_fraction: float):
        """Rated pairs of this model's images (files) as training data for a reward model."""
        if reference is not None:
            raise GenlabError("DPO aligns token models (text, music); align an image model with --method best-of-n "
                              "--reward RM (genlab reward RUN --preferences STORE --out RM)")
        from genlab.images.data import ImagePreferenceData

        return ImagePreferenceData(pairs, source, self, val_fraction)

    def record_output(self, output, folder: Path) -> dict:
        """An image as the feedback store keeps it: a PNG with its provenance in `folder`, by path."""
        folder = output_folder(folder)
        record = output.info.get("genlab") or self.provenance()
        path = free_name(folder, f"{self.run_dir.name}-seed{record.get('seed')}", ".png")
        write_png(path, from_pil(output), record)
        return {"file": str(path.resolve())}

    def http_output(self, output) -> dict:
        """An image for the HTTP API: a PNG with its provenance, base64 (OpenAI's b64_json), and its label."""
        import base64

        record = output.info.get("genlab") or self.provenance()
        label = output.info.get("label")
        data, record = png_file(from_pil(output), record)
        return {"b64_json": base64.b64encode(data).decode("ascii"),
                "label": None if label is None else self.class_names[label], "provenance": record}

    def blind_output(self, output) -> dict:
        """The image as a PNG without text chunks (they name the model)."""
        import base64

        return {"b64_json": base64.b64encode(png_bytes(from_pil(output), None)).decode("ascii")}

    def write_for_training(self, outputs: list, prompts: list[str], folder: Path) -> None:
        """Each image as a PNG with its provenance: in a sub-folder named by its class for a conditional model
        (a folder `genlab train` reads as labelled), all in `folder` otherwise."""
        for i, image in enumerate(outputs):
            label = image.info.get("label") if self.model.conditional else None
            where = folder if label is None else folder / self.class_names[label]
            where.mkdir(parents=True, exist_ok=True)
            write_png(where / f"sample-{i:05d}.png", from_pil(image), image.info.get("genlab") or self.provenance())

    @torch.inference_mode()
    def reconstruct(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """VAE only: encode and decode images in [-1, 1]."""
        if not hasattr(self.model, "reconstruct"):
            raise GenlabError(f"the {self.config['family']} family has no encoder, so it cannot reconstruct")
        return self.model.reconstruct(images.to(self.device), labels)

    def provenance(self, position: int | None = None, index: int | None = None) -> dict:
        """The record of image `position` of the last generate() (with its label), saved as number `index`;
        or, with neither, of the whole grid."""
        extra = {}
        if position is not None and self.last_labels is not None:
            extra["label"] = self.last_labels[position]
        if position is not None and self.last_prompts is not None:
            extra["prompt"] = self.last_prompts[position]
        return self.provenance_source.record(self.last_seed, self.last_controls, index=index, **extra)

    def write(self, images, out_dir, prefix: str = "sample") -> list[Path]:
        """Write a grid, the grid scaled up for viewing, and one PNG per image into out_dir, each with its
        provenance in text chunks: what generate() returned (PIL images, or a tensor in [-1, 1]). Files already
        there are kept: the numbers go on from them."""
        from genlab.images.data import to_pixels

        out = output_folder(out_dir)
        if isinstance(images, torch.Tensor):
            pixels = to_pixels(images)  # (N, H, W, C) uint8
        else:
            pixels = torch.stack([from_pil(im) for im in ([images] if hasattr(images, "getpixel") else images)])
        first = first_free_number(out, f"{prefix}-")
        paths = []
        for i, p in enumerate(pixels):
            path = out / f"{prefix}-{first + i:03d}.png"
            write_png(path, p, self.provenance(i, first + i))
            paths.append(path)
        cycling = self.last_labels is not None and self.last_controls.get("label") is None
        cols = self.num_classes if cycling and not self.last_controls.get("interpolate") else None
        grid = make_grid(pixels, cols=cols)
        grid_path = free_name(out, "grid", ".png")
        write_png(grid_path, grid, self.provenance())
        scale = view_scale(grid)
        view_path = grid_path.with_name(f"{grid_path.stem}@{scale}x.png")
        write_png(view_path, upscale(grid, scale), self.provenance())
        return [grid_path, view_path, *paths]

    def summary(self, images, paths: list[Path], out_dir) -> str:
        return (f"wrote {paths[0]} ({paths[1].name} scaled for viewing) and {len(paths) - 2} images to {out_dir}/ "
                f"(seed {self.last_seed})")

    # -- genlab report ----------------------------------------------------------------------------------------

    gallery_size = 32

    def gallery_html(self, images) -> str:
        """The images as one grid (a column per class when the classes come in turn), scaled up for viewing and
        inlined as a PNG data: URI that carries its provenance, described below it."""
        import base64
        import html

        from genlab.safety.provenance import describe

        pixels = torch.stack([from_pil(im) for im in ([images] if hasattr(images, "getpixel") else images)])
        cycling = self.last_labels is not None and self.last_controls.get("label") is None
        grid = make_grid(pixels, cols=self.num_classes if cycling and not self.last_controls.get("interpolate")
                         else None)
        view = upscale(grid, view_scale(grid))
        record = self.provenance()
        uri = "data:image/png;base64," + base64.b64encode(png_bytes(view, record)).decode("ascii")
        classes = (f", the classes in turn ({', '.join(self.class_names or map(str, range(self.num_classes)))}) "
                   "down each column" if cycling else "")
        alt = f"A grid of {len(pixels)} images generated by the model{classes}"
        controls = ", ".join(f"{k} {v}" for k, v in self.last_controls.items() if v is not None)
        return (f'<figure class="image-grid"><img src="{uri}" alt="{html.escape(alt)}" width="{view.shape[1]}" '
                f'height="{view.shape[0]}"><figcaption>{html.escape(alt)}. {html.escape(describe(record))}; '
                f"controls: {html.escape(controls)}.</figcaption></figure>")

    def creativity_dial(self):
        """Classifier-free guidance where the model takes it; else the scale of the starting noise, which the report
        applies itself (a VAE's or GAN's latent, diffusion's x_T): the truncation trick's gentle cousin."""
        from genlab.images.evaluate import DIAL_FIGURES, GUIDANCE_SCALES, NOISE_SCALES
        from genlab.modalities import Dial

        figures = {k: v for k, v in DIAL_FIGURES.items() if k != "label_accuracy" or self.model.conditional}
        lower = ("frechet_distance", "near_copies")
        if self.model.conditional and "guidance" in self.model.controls:
            return Dial("guidance", GUIDANCE_SCALES, 64, figures,
                        "Classifier-free guidance scale: 0 ignores the label, 1 is the plain conditional model, "
                        "above 1 pushes each image towards its label (cleaner, more alike, less varied).", lower)
        return Dial("noise_scale", NOISE_SCALES, 64, figures,
                    "Not a genlab sample control: the report multiplies the starting noise (a VAE's or GAN's latent, "
                    "diffusion's x_T) by this factor; below 1 keeps to the likeliest images (cleaner, more alike), "
                    "1 is how the model samples, above 1 reaches further out (varied, then broken).", lower)

    def sweep_point(self, value: float, seed: int, n: int) -> dict:
        if self.creativity_dial().control == "guidance":
            images = self.generate(num_samples=n, seed=seed, output_type="pt", guidance=value)
        else:
            images = self._noise_scaled(n, seed, value)
        return self._sweep().point(images, self.last_labels)

    def sweep_reference(self, seed: int, n: int) -> dict:
        return self._sweep().reference(seed, n)

    @torch.inference_mode()
    def _noise_scaled(self, n: int, seed: int, scale: float) -> torch.Tensor:
        """n images (N, C, H, W) in [-1, 1] from `seed`'s noise times `scale`, the classes in turn where the model
        takes labels."""
        if not scale > 0:
            raise GenlabError(f"the noise scale must be positive (1 is how the model samples), got {scale}; give "
                              "--sweep values such as 0.5,1,1.5")
        generator = torch.Generator(device=self.device).manual_seed(seed)
        noise = torch.randn((n, *self.model.noise_shape), generator=generator, device=self.device) * scale
        labels = self._labels(None, n)
        out = [self.model.generate(noise[i : i + MAX_BATCH], None if labels is None else labels[i : i + MAX_BATCH],
                                   generator).float() for i in range(0, n, MAX_BATCH)]
        self.last_seed, self.last_controls = seed, {"noise_scale": scale}
        self.last_labels = None if labels is None else labels.tolist()
        return torch.cat(out).clamp(-1, 1)

    def _sweep(self):
        """The sweep's data and feature classifier, made on first use and kept for every point."""
        from genlab.images.evaluate import ImageSweep

        if getattr(self, "_image_sweep", None) is None:
            self._image_sweep = ImageSweep(self)
        return self._image_sweep


def to_pil(images: torch.Tensor) -> list:
    """Images in [-1, 1] (N, C, H, W) as PIL images: grey ("L") for one channel, "RGB" for three."""
    from PIL import Image

    from genlab.images.data import to_pixels

    arrays = to_pixels(images).numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]


def from_pil(image) -> torch.Tensor:
    """A PIL image as (H, W, C) uint8 pixels, as to_pil made it."""
    import numpy as np

    arr = np.array(image)  # a copy: PIL's own buffer is read-only
    return torch.from_numpy(arr[..., None] if arr.ndim == 2 else arr)


VIEW_SIDE = 512  # the viewing grid is scaled up (by a whole factor, nearest neighbour) to about this side


def view_scale(grid: torch.Tensor) -> int:
    return max(1, VIEW_SIDE // max(grid.shape[0], grid.shape[1]))


def upscale(pixels: torch.Tensor, factor: int) -> torch.Tensor:
    """(H, W, C) uint8 -> (H * factor, W * factor, C): each pixel a factor x factor block, sharp."""
    return pixels.repeat_interleave(factor, dim=0).repeat_interleave(factor, dim=1)


def make_grid(pixels: torch.Tensor, cols: int | None = None, pad: int = 2) -> torch.Tensor:
    """(N, H, W, C) uint8 -> one image of the N tiles, `cols` a row (default ceil(sqrt(N)));
    when the classes come in turn, a row per round of classes, so each column is one class."""
    n, h, w, c = pixels.shape
    cols = min(cols or math.ceil(math.sqrt(n)), n)
    rows = math.ceil(n / cols)
    grid = torch.zeros(rows * (h + pad) + pad, cols * (w + pad) + pad, c, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = pixels[i]
    return grid


def write_png(path: Path, pixels: torch.Tensor, provenance: dict) -> None:
    """A PNG with tEXt chunks: genlab's provenance as JSON, plus the common Software/Comment keys."""
    from genlab.io import atomic_write_bytes

    atomic_write_bytes(path, png_bytes(pixels, provenance))


def png_bytes(pixels: torch.Tensor, provenance: dict | None) -> bytes:
    """write_png's file, in memory (the HTTP API sends it as base64); without provenance, no text chunks."""
    return png_file(pixels, provenance)[0]


def png_file(pixels: torch.Tensor, provenance: dict | None) -> tuple[bytes, dict | None]:
    """A PNG of `pixels` and the record its text chunks hold. An image large enough carries the invisible watermark
    (safety/image_watermark.py), and the record says whether it does and is sealed with the marked pixels' hash."""
    import io

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from genlab.safety.image_watermark import mark
    from genlab.safety.provenance import describe, pixel_hash, seal

    arr, watermark = mark(pixels.numpy())  # before anything reads the pixels: the file holds the marked ones
    im = Image.fromarray(arr[..., 0]) if arr.shape[-1] == 1 else Image.fromarray(arr)
    info = PngInfo()
    if provenance is not None:  # a new record: the caller's stays as it was
        provenance = seal({**provenance, "watermark": watermark}, "image/png", pixel_hash(im))
        info.add_text("genlab", json.dumps(provenance, sort_keys=True))
        info.add_text("Software", provenance["claim_generator"])
        info.add_text("Comment", describe(provenance))
    buf = io.BytesIO()
    im.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue(), provenance
