"""The images wing: datasets and normalisation (data), sampling and PNG files (sample), metrics in a
learned feature space (evaluate).

    images:digits         scikit-learn's 1,797 handwritten digits, no download
    images:digit-scenes   32x32 scenes of two or three of those digits, each with captions (images/scenes.py)
    images:mnist:DIR      MNIST from its IDX files
    any folder of PNG/JPEG (sub-folders = class labels; a .txt beside each image or a metadata.jsonl = captions)
"""

from __future__ import annotations

from pathlib import Path

from genlab.errors import GenlabError
from genlab.modalities import Description, LoadedRun, Modality, Translation


class ImageModality(Modality):
    name = "images"
    datasets = ("images:digits", "images:digit-scenes", "images:mnist:DIR")  # data.BUILTIN_IMAGES
    file_extensions = (".png", ".jpg", ".jpeg")  # data.IMAGE_SUFFIXES
    batch_kind = "images"
    eval_options = ("num_samples", "seed", "label", "steps", "guidance", "eta", "sampler", "weights")
    eval_precisions = ("fp32",)
    card_limitations = (
        "A small model for learning and experiments that makes images like its training images. It reproduces "
        "their style and biases and can reproduce training images almost exactly (the evaluation's near_copies "
        "says how often). Its outputs are machine-generated and should be labelled as such.")
    card_watermark = (
        "Every image at least 28 px a side, and every grid and its enlarged view, carries genlab's invisible "
        "watermark, a DWT-DCT mark in the image's brightness as Stable Diffusion's invisible-watermark puts one: "
        "`genlab detect IMAGE.png` finds it. From 64 px it survives JPEG at quality 50, noise, crops and a 50% "
        "resize; at 28 to 32 px, only light JPEG and noise. Smaller images, such as the default 16 px digits, are "
        "too small to carry it and rely on their provenance alone.")
    pipeline_tag = "unconditional-image-generation"
    card_metrics = ("frechet_distance", "kid_x1000", "precision", "recall", "label_accuracy", "near_copies")
    # UCI's Optical Recognition of Handwritten Digits; the scenes are composed of its scans
    data_licenses = {"images:digits": ("cc-by-4.0", None), "images:digit-scenes": ("cc-by-4.0", None)}

    def claims(self, source: str) -> bool:
        from genlab.images.data import is_image_source

        return is_image_source(source)

    def open_data(self, source: str, cfg, block_size: int | None, preprocessing=None):
        from genlab.images.data import open_images

        if getattr(cfg, "descriptions", False):
            raise GenlabError("--descriptions describes ABC tunes by their headers (text-to-music); for text-to-image "
                              "train a diffusion model with --captions")
        return open_images(source, image_size=cfg.image_size, color=cfg.color, augment=cfg.augment,
                           val_fraction=cfg.val_fraction, extensions=cfg.extensions,
                           exclude_labels=cfg.exclude_labels, parent=preprocessing,
                           captions=bool(cfg.model.get("captions")), allow_uncaptioned=cfg.allow_uncaptioned)

    def load_preprocessing(self, run_dir: Path, config: dict):
        """The image size, colour and classes, and whether the model reads labels: what a fine-tune keeps."""
        preprocessing = {**config["images"], "conditional": bool(config["model"].get("conditional"))}
        if config["model"].get("captions"):  # a fine-tune reads its captions in the parent's words
            from genlab.images.captions import CaptionTokenizer

            preprocessing["caption_tokenizer"] = CaptionTokenizer.load(run_dir, config["model"]["caption_length"])
        return preprocessing

    describes = (".png", ".jpg", ".jpeg")

    def describe_file(self, path: Path) -> Description:
        """An image's caption: the prompt genlab drew it from (kept in the PNG), or the .txt beside it."""
        from genlab.images.captions import image_caption
        from genlab.images.scenes import parse_caption

        caption = image_caption(path)
        try:
            spec = parse_caption(caption)
            facts = {"digits": list(spec.digits), "arrangement": spec.arrangement, "sizes": list(spec.sizes),
                     "inverted": spec.inverted}
        except GenlabError:
            facts = {}  # a caption of the user's own: its words are all there is
        return Description(str(path), self.name, caption, facts)

    def prompt_from(self, description: Description, sampler) -> Translation:
        """A tune as a digit scene: the first two different digits of its meter and then of the rest of its
        description, side by side, on a background its mode picks (black for major, white for minor)."""
        from genlab.images.scenes import LayoutSpec, captions

        facts = description.facts
        if description.modality == "music":
            numbers = (facts.get("meter") or "") + " " + description.text
            digits = list(dict.fromkeys(int(c) for c in numbers if c.isdigit()))[:2]
            if len(digits) < 2:
                raise GenlabError(f"the description of {description.path} holds fewer than two different digits "
                                  f"({description.text!r}), and its numbers are what a digit scene can show")
            minor = bool(facts.get("minor_like"))  # the music wing's reading of its mode
            spec = LayoutSpec(tuple(digits), "row", ("small", "small"))  # its first phrasing leaves black unsaid
            caption = captions(spec)[0] + (", on a white background" if minor else ", on a black background")
            return Translation(caption, f"the numbers {digits[0]} and {digits[1]} (from its meter "
                               f"{facts.get('meter')} first), its {facts.get('mode') or 'unsaid'} mode as the "
                               f"{'white' if minor else 'black'} background",
                               "its key, tune type, tempo, contour and title (a digit scene has no way to show them)")
        return super().prompt_from(description, sampler)

    def sampler(self, run: LoadedRun):
        from genlab.images.sample import ImageModel

        return ImageModel(run)

    def evaluate(self, sampler, data: str | None = None, **options) -> dict:
        from genlab.images.evaluate import evaluate_images

        return evaluate_images(sampler, data, **options)

    def format_metrics(self, metrics: dict) -> str:
        from genlab.images.evaluate import format_image_metrics

        return format_image_metrics(metrics)

    def card_data(self, config: dict) -> list[str]:
        im, data = config["images"], config.get("data", {})
        return [f"- images: {im['image_size']}px, {im['color']}, {len(im['class_names'])} classes, normalised to "
                f"[-1, 1]; {data.get('train_images')} for training, {data.get('val_images')} held out for validation"]

    def card_usage(self, run_dir: Path) -> str:
        return f"genlab sample {run_dir} --num-samples 64 --seed 1 -o samples/"

    def card_generates(self, config: dict) -> str:
        im = config["images"]
        names = im.get("class_names") or []
        given = f", of a class asked for ({', '.join(map(str, names[:10]))}{', ...' if len(names) > 10 else ''})" \
            if config["model"].get("conditional") and names else ""
        return f"{im['image_size']}x{im['image_size']} {im['color']} images like its training images{given}"

    def card_bias(self, config: dict, evaluation: dict | None) -> list[str]:
        """The training set's class balance against what unconditional samples hold, as genlab eval measured it."""
        balance = (evaluation or {}).get("class_balance")
        if not isinstance(balance, dict):
            if len(config["images"].get("class_names") or []) < 2:
                return super().card_bias(config, evaluation)
            return ["- not measured yet: `genlab eval` compares the training set's class balance with that of the "
                    "model's samples"]
        rows = ["| class | training images | samples |", "|---|---|---|"]
        samples = balance.get("samples") or {}
        for name, share in balance["train"].items():
            rows.append(f"| {name} | {share:.1%} | {f'{samples[name]:.1%}' if name in samples else '-'} |")
        if balance.get("total_variation") is None:
            summary = ("- a conditional model makes the classes it is asked for; its training set's balance, which "
                       "its sense of each class comes from:")
        else:
            summary = (f"- class balance of unconditional samples (as genlab eval's classifier reads them) against "
                       f"the training set: total variation distance {balance['total_variation']:.3f} (0: the same "
                       "balance, 1: no class in common); a model over-makes the classes it found easiest")
        return [summary, "", *rows]
