"""The text wing: corpora and tokenizers (data, tokenizer), sampling (sample), evaluation (evaluate).

    text:pydocs, text:pystdlib   Python's documentation prose and standard library source, no download
    any text file, or a folder   a user's own text or code (data.TEXT_EXTENSIONS, or --extensions)
"""

from __future__ import annotations

from pathlib import Path

from genlab.modalities import LoadedRun, Modality


class TextModality(Modality):
    name = "text"
    datasets = ("text:pydocs", "text:pystdlib")  # data.BUILTIN_TEXT reads them
    batch_kind = "tokens"
    eval_options = ("split", "block_size", "max_tokens")
    card_limitations = (
        "A small model for learning, experiments and generating drafts like its training data. It reproduces "
        "the style, errors and biases of that data, can copy passages from it, and states falsehoods "
        "fluently. Its outputs are machine-generated and should be labelled as such.")

    def claims(self, source: str) -> bool:
        return True  # any name or path the other modalities leave: its reader says what is wrong with it

    def open_data(self, source: str, cfg, block_size: int | None, preprocessing=None):
        from genlab.text.data import open_text

        return open_text(source, block_size=block_size, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size,
                         val_fraction=cfg.val_fraction, extensions=cfg.extensions, given=preprocessing)

    def load_preprocessing(self, run_dir: Path, config: dict):
        from genlab.text.tokenizer import load_tokenizer

        return load_tokenizer(config["tokenizer"]["kind"], Path(run_dir) / "tokenizer.json")

    def sampler(self, run: LoadedRun):
        from genlab.text.sample import TextModel

        return TextModel(run, run.preprocessing)

    def evaluate(self, sampler, data: str | None = None, **options) -> dict:
        from genlab.text.evaluate import evaluate_text

        return evaluate_text(sampler, data, **options)

    def format_metrics(self, metrics: dict) -> str:
        from genlab.text.evaluate import format_text_metrics

        return format_text_metrics(metrics)

    def card_data(self, config: dict) -> list[str]:
        return [f"- tokenizer: {config.get('tokenizer', {}).get('kind')} with {config['model'].get('vocab_size')} "
                "tokens",
                f"- split: the last {config['train']['val_fraction']:.0%} of the corpus is held out for validation"]

    def card_usage(self, run_dir: Path) -> str:
        return f"genlab sample {run_dir} --prompt \"...\" --temperature 0.8"
