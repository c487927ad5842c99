"""The text wing: corpora and tokenizers (data, tokenizer), sampling (sample), evaluation (evaluate).

    text:pydocs, text:pystdlib   Python's documentation prose and standard library source, no download
    text:pyhelp                  questions and answers about the standard library, for a chat fine-tune (pyhelp)
    any text file, or a folder   a user's own text or code (data.TEXT_EXTENSIONS, or --extensions)
"""

from __future__ import annotations

from pathlib import Path

from genlab.errors import GenlabError
from genlab.modalities import Description, LoadedRun, Modality, Translation


class TextModality(Modality):
    name = "text"
    datasets = ("text:pydocs", "text:pystdlib")  # data.BUILTIN_TEXT reads them
    batch_kind = "tokens"
    eval_options = ("split", "block_size", "max_tokens", "code_samples")
    card_limitations = (
        "A small model for learning, experiments and generating drafts like its training data. It reproduces "
        "the style, errors and biases of that data, can copy passages from it, and states falsehoods "
        "fluently. Its outputs are machine-generated and should be labelled as such.")
    takes_chat = True
    pipeline_tag = "text-generation"
    card_watermark = (
        "Its text can carry the green-list watermark of Kirchenbauer et al. 2023, invisible without its key: "
        "`genlab sample RUN --watermark-key KEY`, or `genlab serve --watermark-key KEY` for everything served, "
        "found by `genlab detect FILE --key KEY --run RUN`. It needs about 200 tokens to be found reliably, and "
        "paraphrase, heavy editing and very predictable text wash it out.")
    card_metrics = ("loss", "perplexity", "bits_per_char")
    data_licenses = {"text:pydocs": ("other", "psf-2.0"), "text:pystdlib": ("other", "psf-2.0")}  # Python's own

    def claims(self, source: str) -> bool:
        return True  # any name or path the other modalities leave: its reader says what is wrong with it

    def open_data(self, source: str, cfg, block_size: int | None, preprocessing=None):
        from genlab.text.data import open_text

        if getattr(cfg, "descriptions", False):
            raise GenlabError(f"--descriptions describes ABC tunes by their headers (text-to-music); {source} is not "
                              "music: train on music:folk or a folder of .abc files")
        if getattr(cfg, "chat", False):  # conversations, the loss on the assistant's turns (genlab finetune --chat)
            from genlab.text.chat import open_chat

            return open_chat(source, cfg, block_size, preprocessing)
        return open_text(source, block_size=block_size, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size,
                         val_fraction=cfg.val_fraction, extensions=cfg.extensions, given=preprocessing,
                         fim_rate=getattr(cfg, "fim_rate", None))

    describes = (".txt", ".md")
    MAX_DESCRIPTION_CHARS = 4000  # a prompt, not a document

    def describe_file(self, path: Path) -> Description:
        text = path.read_bytes().decode("utf-8", errors="replace").strip()
        if not text:
            raise GenlabError(f"{path} is empty; write the description in it")
        if len(text) > self.MAX_DESCRIPTION_CHARS:
            raise GenlabError(f"{path} is {len(text)} characters; a description to prompt with is at most "
                              f"{self.MAX_DESCRIPTION_CHARS}")
        return Description(str(path), self.name, text, {})

    def prompt_from(self, description: Description, sampler) -> Translation:
        return Translation(description.text, "the whole description, as text", "nothing")

    def load_preprocessing(self, run_dir: Path, config: dict):
        from genlab.text.tokenizer import AddedTokens, load_tokenizer

        tokenizer = load_tokenizer(config["tokenizer"]["kind"], Path(run_dir) / "tokenizer.json")
        return AddedTokens.load(tokenizer, run_dir)  # a chat or code model's special tokens, after its own ids

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
        data = config.get("data", {})
        return [f"- tokenizer: {config.get('tokenizer', {}).get('kind')} with {config['model'].get('vocab_size')} "
                "tokens",
                f"- split: the last {config['train']['val_fraction']:.0%} of the corpus is held out for validation: "
                f"{data.get('train_tokens')} tokens for training, {data.get('val_tokens')} for validation"]

    def card_usage(self, run_dir: Path) -> str:
        return f"genlab sample {run_dir} --prompt \"...\" --temperature 0.8"

    def card_generates(self, config: dict) -> str:
        return "text that continues a prompt in the style of its training text"
