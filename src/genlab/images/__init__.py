"""The images wing: datasets and normalisation (data), sampling and PNG files (sample), metrics in a
learned feature space (evaluate).

    images:digits       scikit-learn's 1,797 handwritten digits, no download
    images:mnist:DIR    MNIST from its IDX files
    any folder of PNG/JPEG (sub-folders = class labels)
"""

from __future__ import annotations

from pathlib import Path

from genlab.modalities import LoadedRun, Modality


class ImageModality(Modality):
    name = "images"
    datasets = ("images:digits", "images:mnist:DIR")  # data.BUILTIN_IMAGES
    file_extensions = (".png", ".jpg", ".jpeg")  # data.IMAGE_SUFFIXES
    batch_kind = "images"
    eval_options = ("num_samples", "seed", "label", "steps", "guidance", "eta", "sampler", "weights")
    eval_precisions = ("fp32",)
    card_limitations = (
        "A small model for learning and experiments that makes images like its training images. It reproduces "
        "their style and biases and can reproduce training images almost exactly (the evaluation's near_copies "
        "says how often). Its outputs are machine-generated and should be labelled as such.")

    def claims(self, source: str) -> bool:
        from genlab.images.data import is_image_source

        return is_image_source(source)

    def open_data(self, source: str, cfg, block_size: int | None, preprocessing=None):
        from genlab.images.data import open_images

        return open_images(source, image_size=cfg.image_size, color=cfg.color, augment=cfg.augment,
                           val_fraction=cfg.val_fraction, extensions=cfg.extensions,
                           exclude_labels=cfg.exclude_labels, parent=preprocessing)

    def load_preprocessing(self, run_dir: Path, config: dict):
        """The image size, colour and classes, and whether the model reads labels: what a fine-tune keeps."""
        return {**config["images"], "conditional": bool(config["model"].get("conditional"))}

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
