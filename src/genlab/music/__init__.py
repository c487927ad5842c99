"""The music wing: notes (notes), ABC and event tokenizers (tokenizers, abc_notes), corpora (data),
ABC/MusicXML/MIDI conversion (convert), audio (synth), sampling to .abc/.mid/.wav (sample) and
evaluation (evaluate, with meter: do tunes keep time).

    music:folk, music:bach          music21's folk tunes and Bach chorales, no download
    any folder of .abc/.mid/.musicxml
"""

from __future__ import annotations

from pathlib import Path

from genlab.errors import GenlabError
from genlab.modalities import Description, LoadedRun, Modality, Translation


class MusicModality(Modality):
    name = "music"
    datasets = ("music:folk", "music:bach")  # data.BUILTIN_MUSIC
    file_extensions = (".abc", ".mid", ".midi", ".musicxml", ".mxl", ".xml")  # data.MUSIC_SUFFIXES
    batch_kind = "tokens"  # tunes are token streams: gpt and lstm train on them as on text
    eval_options = ("split", "max_tokens", "num_samples", "seed", "temperature", "top_k", "max_new_tokens",
                    "distribution_samples")
    card_limitations = (
        "A small model for learning, experiments and sketching tunes like its training tunes. It reproduces "
        "their style and can copy phrases from them (the evaluation's longest_copied_notes says how long). Its "
        "outputs are machine-generated and should be labelled as such.")
    card_watermark = (
        "Its ABC tunes can carry the green-list watermark of Kirchenbauer et al. 2023, invisible without its key: "
        "`genlab sample RUN --watermark-key KEY`, or `genlab serve --watermark-key KEY` for everything served, "
        "found by `genlab detect FILE --key KEY --run RUN`. It needs about 200 tokens to be found reliably, and "
        "paraphrase, heavy editing and very predictable tunes wash it out.")
    card_metrics = ("val_loss", "parse_rate", "bars_right_share", "onset_grid_share", "ended_share",
                    "longest_copied_notes")
    # the corpus ships with music21 (BSD-3-Clause); the folk tunes and chorales in it are old, traditional music
    data_licenses = {"music:folk": ("other", "music21-corpus"), "music:bach": ("other", "music21-corpus")}

    def claims(self, source: str) -> bool:
        from genlab.music.data import is_music_source

        return is_music_source(source)

    def open_data(self, source: str, cfg, block_size: int | None, preprocessing=None):
        from genlab.music.data import open_music

        return open_music(source, block_size=block_size, tokenizer=cfg.tokenizer, val_fraction=cfg.val_fraction,
                          extensions=cfg.extensions, given=preprocessing,
                          descriptions=True if getattr(cfg, "descriptions", False) else None)

    def load_preprocessing(self, run_dir: Path, config: dict):
        from genlab.music.tokenizers import load_music_tokenizer

        return load_music_tokenizer(config["tokenizer"]["kind"], Path(run_dir) / "tokenizer.json")

    describes = (".abc", ".mid", ".midi", ".musicxml", ".mxl")

    def describe_file(self, path: Path) -> Description:
        from genlab.music.describe import FULL, describe, describe_tune_file

        facts = describe_tune_file(path)
        return Description(str(path), self.name, describe(facts, FULL), facts.to_dict())

    def prompt_from(self, description: Description, sampler) -> Translation:
        """A tune's key, mode, meter and type in the words a --descriptions model read; an image's digits as a
        meter and its background as a mode."""
        from genlab.music.describe import BACKGROUND_KEYS, describe, facts_from_dict, meter_from_digits

        facts = description.facts
        if description.modality == self.name:
            said = describe(facts_from_dict(facts), 1)  # the training phrasing that names type, key and meter
            return Translation(said, "its tune type, key, mode and meter",
                               "its title, tempo, pitch range and contour (no model here reads words for them)")
        if "digits" in facts:  # a digit scene's caption
            meter = meter_from_digits(facts["digits"])
            if meter is None:
                raise GenlabError(f"the digits {', '.join(map(str, facts['digits']))} of {description.path} spell no "
                                  "meter (one of them must be 2, 4 or 8 for the note value), and a meter is what "
                                  "carries from a digit scene to a tune")
            key = BACKGROUND_KEYS[bool(facts.get("inverted"))]
            return Translation(f"a tune in {meter} in {key}",
                               f"its digits as the meter {meter}, its {'white' if facts.get('inverted') else 'black'} "
                               f"background as {key.split()[1]}",
                               f"the digits' places and sizes; the tonic {key.split()[0]} is genlab's choice, not the "
                               "image's")
        return super().prompt_from(description, sampler)

    def sampler(self, run: LoadedRun):
        from genlab.music.sample import MusicModel

        return MusicModel(run, run.preprocessing)

    def evaluate(self, sampler, data: str | None = None, **options) -> dict:
        from genlab.music.evaluate import evaluate_music

        return evaluate_music(sampler, data, **options)

    def format_metrics(self, metrics: dict) -> str:
        from genlab.music.evaluate import music_summary

        return music_summary(metrics)

    def card_data(self, config: dict) -> list[str]:
        room = (["- beside each token the model reads how much of the bar is left (music/positions.py); "
                 f"{config.get('data', {}).get('bar_lines_added', 0)} bar lines the transcriptions left out were put "
                 "back before training"] if config['model'].get("feature_vocab_size") else [])
        return [f"- tokenizer: {config.get('tokenizer', {}).get('kind')} with {config['model'].get('vocab_size')} "
                "tokens", *room,
                f"- split: the last {config['train']['val_fraction']:.0%} of the tunes (in a fixed shuffled order) "
                f"is held out for validation: {config.get('data', {}).get('train_tunes')} tunes for training, "
                f"{config.get('data', {}).get('val_tunes')} for validation"]

    def card_usage(self, run_dir: Path) -> str:
        return f"genlab sample {run_dir} --prompt \"...\" --temperature 0.8"

    def card_generates(self, config: dict) -> str:
        if config.get("tokenizer", {}).get("kind") == "abc":
            return "tunes in ABC notation continuing an ABC header such as `M:6/8 K:Dmaj`, as .abc, .mid and .wav files"
        return "music as note events, written as MIDI and WAV"
