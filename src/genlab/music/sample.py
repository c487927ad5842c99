"""Sampling tunes: the shared token loop (genlab.sampling.tokens), then decoding to .abc, .mid and .wav with provenance.

A tune starts at <s> (then the prompt's meter, key and notes) and ends at </s>. An ABC-trained
model writes all three formats (ABC -> music21 -> notes -> MIDI and audio); an event-trained
model writes .mid and .wav only. Every file carries its provenance: an ABC comment, a MIDI text
meta event, a WAV INFO comment.

Sampling is constrained by default (control `constraint`, `--no-constraint` to see the raw model):
ABC tunes keep their meter's bar length, header and repeats; event tunes switch every note off
(music/constraints.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.io import atomic_write_bytes, atomic_write_text
from genlab.modalities import LoadedRun, Sampler
from genlab.music.constraints import music_constraint
from genlab.music.notes import Note
from genlab.music.positions import BarRoom
from genlab.music.tokenizers import EOS, tokens_to_abc
from genlab.outputs import first_free_number, output_folder
from genlab.safety.provenance import abc_hash, comment, seal
from genlab.safety.watermark import TokenWatermarking
from genlab.sampling.decode import Decoders
from genlab.sampling.logits import SamplingSettings
from genlab.sampling.tokens import make_generator, sample_tokens

MUSIC_FORMATS = ("abc", "mid", "wav")


@dataclass
class Tune:
    """One sampled tune: its tokens (prompt included) and, once converted, its notes."""

    tokens: list[str]
    seed: int
    index: int
    notes: list[Note] | None = None
    qpm: float = 120.0
    error: str | None = None  # why it could not be converted, if it could not
    files: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(t for t in self.tokens if t not in ("<s>", EOS))


class MusicModel(TokenWatermarking, Sampler):
    """A trained music model: `m.generate(prompt, ...)` returns Tunes, `m.write(tunes, out_dir)` saves them."""

    serves = "music"
    controls = {"prompt": "", "max_new_tokens": 512, "temperature": 0.8, "top_k": None, "top_p": None,
                "repetition_penalty": 1.0, "stop": [], "seed": None, "num_samples": 1, "constraint": True,
                **TokenWatermarking.watermark_controls}
    write_options = {"renderer": "auto"}

    def __init__(self, run: LoadedRun, tokenizer):
        super().__init__(run)
        self.tokenizer = tokenizer
        self.decoder = Decoders(self.model, self.precision)  # the model tuned for decoding n sequences: decoder(n)
        self._constraint = None  # made on first use and kept: its masks are cached per state across calls
        # the room left in the bar beside each token, for a model trained to read it (music/positions.py)
        self.bar_room = BarRoom(tokenizer.vocab) if getattr(self.model.config, "feature_vocab_size", 0) else None

    @property
    def formats(self) -> tuple[str, ...]:
        return MUSIC_FORMATS if self.tokenizer.kind == "abc" else ("mid", "wav")

    def generate(self, prompt: str = "", **controls) -> Tune | list[Tune]:
        """Sample a tune continuing `prompt` (e.g. 'M:6/8 K:Dmaj'), or a list of `num_samples` > 1 tunes; each
        stops at its end token."""
        tunes = self.tunes(prompt, **controls)
        return tunes[0] if controls.get("num_samples", 1) == 1 else tunes

    def tunes(self, prompt: str = "", **controls) -> list[Tune]:
        """generate(), always as a list."""
        controls.setdefault("max_new_tokens", 512)
        if controls.get("stop"):
            raise GenlabError("--stop is for text; a tune ends at its own end token")
        controls.pop("stop", None)
        constrained = controls.pop("constraint", True)
        mark = self.watermark(controls.pop("watermark_key", None), controls.pop("watermark_gamma", None),
                              controls.pop("watermark_delta", None))
        if mark is not None and self.tokenizer.kind != "abc":
            raise GenlabError("the watermark is detected in a tune's ABC, and this model writes MIDI events; "
                              "watermark the tunes of a model trained on ABC")
        s = SamplingSettings(**controls)
        s.validate()
        self.screen_prompt(prompt)  # the header can name a title; the tunes' own titles are genlab's ("genlab tune 3")
        ids = torch.as_tensor(self.tokenizer.encode_prompt(prompt), dtype=torch.long, device=self.device)
        limit = self.model.max_context
        if limit is not None and len(ids) >= limit:
            raise GenlabError(f"the prompt is {len(ids)} tokens but this model's context is {limit}; shorten it")
        generator, seed = make_generator(s.seed, self.device)
        self.last_seed = seed
        described = bool(self.tokenizer.description_mask[ids.tolist()].any())  # the ABC will not hold the words
        self.last_controls = {**{k: v for k, v in controls.items() if v is not None}, "constraint": constrained,
                              **({"prompt": prompt.strip()} if described else {}),
                              **({"watermark": mark.about()} if mark else {})}  # the key's id, never the key
        n = s.num_samples
        if constrained and self._constraint is None:
            self._constraint = music_constraint(self.tokenizer)
        constraint = self._constraint if constrained else None
        out: list[list[int]] = [[] for _ in range(n)]
        done = [False] * n
        for step in sample_tokens(self.decoder(n), ids, s, generator, constraint, self.bar_room,
                                  logits_processor=mark):
            for i, t in enumerate(step.tolist()):
                if not done[i]:
                    out[i].append(t)
                    done[i] = t == self.tokenizer.eos
            if all(done):
                break
        prompt_tokens = self.tokenizer.tokens(ids.tolist())
        return [Tune(prompt_tokens + self.tokenizer.tokens(o), seed, i + 1) for i, o in enumerate(out)]

    def watermark_ids(self, abc: str) -> list[int]:
        """A tune's token ids, read from its ABC (the header's and title's fields as the model writes them)."""
        from genlab.music.tokenizers import AbcError

        if self.tokenizer.kind != "abc":
            raise GenlabError("this model writes MIDI events; the watermark is detected in the ABC of an ABC model")
        try:
            return [int(i) for i in self.tokenizer.encode_tune(abc)]
        except (AbcError, GenlabError) as e:
            raise GenlabError(f"the tune is not ABC this model reads ({e}); give the .abc file genlab wrote") from None

    def human_ids(self) -> list[int]:
        """The run's training tunes as token ids in this model's vocabulary, from the corpus cache (its first 2M
        tokens); a fine-tuned model's own vocabulary may differ from the corpus's."""
        from genlab.music.data import prepare_music

        corpus = prepare_music(self.config["data"]["source"], tokenizer=self.tokenizer.kind, quiet=True)
        ids = np.asarray(corpus.tokens[:2_000_000])
        if corpus.tokenizer.vocab != self.tokenizer.vocab:
            known = np.array([self.tokenizer.index.get(t, -1) for t in corpus.tokenizer.vocab])
            ids = known[ids]
            ids = ids[ids >= 0]  # tokens this model never saw carry no mark
        return ids.tolist()

    def content(self, tune: Tune) -> str:
        """A tune as the feedback store keeps it: its ABC (event models: its event tokens)."""
        return self.abc(tune) if self.tokenizer.kind == "abc" else " ".join(tune.tokens)

    def http_output(self, tune: Tune, formats: tuple[str, ...] | None = None) -> dict:
        """A tune for the HTTP API: its ABC as text, MIDI and WAV as base64, each with its provenance inside, as
        write() makes them (a tune that cannot be converted has its ABC and the reason)."""
        import base64
        import tempfile

        with tempfile.TemporaryDirectory(prefix="genlab-tune-") as folder:
            paths = self.write(tune, folder, formats=formats)
            files = {path.suffix[1:]: path.read_bytes() for path in paths}
        out = {"abc": files["abc"].decode("utf-8") if "abc" in files else None, "error": tune.error,
               "provenance": self.provenance(tune)}
        out |= {f"{kind}_b64": base64.b64encode(files[kind]).decode("ascii") if kind in files else None
                for kind in ("mid", "wav")}
        return out

    def blind_output(self, tune: Tune) -> dict:
        """The tune as ABC and WAV with no provenance inside (it names the model); an event model's tune as WAV."""
        import base64
        import tempfile

        from genlab.music.synth import write_wav

        abc = self.abc(tune) if "abc" in self.formats else None
        if tune.notes is None and tune.error is None:
            self.to_notes(tune)
        if tune.error:
            return {"abc": abc, "wav_b64": None, "error": tune.error}
        with tempfile.TemporaryDirectory(prefix="genlab-tune-") as folder:
            path = Path(folder) / "tune.wav"
            write_wav(path, tune.notes, tune.qpm)
            wav = path.read_bytes()
        return {"abc": abc, "wav_b64": base64.b64encode(wav).decode("ascii"), "error": None}

    def write_for_training(self, outputs: list[Tune], prompts: list[str], folder: Path) -> None:
        """Each tune as an .abc file (its prompt is in it): a folder `genlab train` reads."""
        if self.tokenizer.kind != "abc":
            raise GenlabError("best-of-n trains on ABC tunes; this model makes MIDI events (train it on ABC)")
        folder.mkdir(parents=True, exist_ok=True)
        for i, tune in enumerate(outputs):
            atomic_write_text(folder / f"tune-{i:05d}.abc", self.abc(tune))

    def preference_tokens(self, prompt: str, completion: str) -> tuple[list[int], int, list[int] | None]:
        """A rated tune (its content()) as the model reads it: the whole tune's ids from <s>, the prompt's share
        (a tune holds its prompt), and the room left in the bar beside each token where the model reads it."""
        from genlab.music.tokenizers import AbcError, abc_to_tokens

        try:
            tokens = abc_to_tokens(completion) if self.tokenizer.kind == "abc" else completion.split()
        except AbcError as e:
            raise GenlabError(f"a rated tune is not ABC this model reads ({e}); rate tunes of this model") from None
        ids = self.tokenizer.ids(tokens).tolist()
        n_prompt = len(self.tokenizer.encode_prompt(prompt))
        return ids, n_prompt, self.bar_room.ids(ids).tolist() if self.bar_room is not None else None

    # -------------------------------------------------------------------------------- decoding

    def provenance(self, tune: Tune, number: int | None = None) -> dict:
        """The record of a tune saved as number `number` (its index in its set by default)."""
        return self.provenance_source.record(tune.seed, self.last_controls, index=number or tune.index)

    def abc(self, tune: Tune, provenance: dict | None = None) -> str:
        if self.tokenizer.kind != "abc":
            raise GenlabError("this model was trained on MIDI/MusicXML events and cannot write .abc; "
                              "ask for .mid or .wav")
        abc = tokens_to_abc(tune.tokens, title=f"genlab tune {tune.index}", index=tune.index)
        if provenance is None:
            return abc
        sealed = seal(provenance, "text/vnd.abc", abc_hash(abc))
        return tokens_to_abc(tune.tokens, title=f"genlab tune {tune.index}", comments=[comment(sealed)],
                             index=tune.index)

    def to_notes(self, tune: Tune) -> Tune:
        """Fill tune.notes (or tune.error) by converting the tune: ABC through music21, events directly."""
        from genlab.music.convert import ConversionError, abc_to_notes

        if self.tokenizer.kind == "abc":
            try:
                tune.notes, tune.qpm = abc_to_notes(self.abc(tune))
            except ConversionError as e:
                tune.error = str(e)
        else:
            tune.notes = self.tokenizer.tokens_to_notes(tune.tokens)
        if tune.notes is not None and not tune.notes:
            tune.error = "it has no notes"
        return tune

    def write(self, tunes: Tune | list[Tune], out_dir: str | Path, formats: tuple[str, ...] | None = None,
              stem: str = "tune", renderer: str = "auto") -> list[Path]:
        """Write each tune as .abc / .mid / .wav into out_dir; a tune that cannot be converted keeps its .abc.
        The .wav comes from `renderer`: additive, fluidsynth, or auto (fluidsynth where installed)."""
        from genlab.music.convert import notes_to_midi
        from genlab.music.synth import pick_renderer, write_wav

        tunes = [tunes] if isinstance(tunes, Tune) else tunes
        formats = tuple(formats or self.formats)
        for f in formats:
            if f not in MUSIC_FORMATS:
                raise GenlabError(f"unknown music format {f!r}; choose from {', '.join(MUSIC_FORMATS)}")
            if f not in self.formats:
                raise GenlabError(f"this model was trained on MIDI/MusicXML events and cannot write .{f}; "
                                  f"ask for {' or '.join('.' + x for x in self.formats)}")
        if "wav" in formats:
            renderer = pick_renderer(renderer)
        out = output_folder(out_dir)
        for tune in tunes:
            # tunes already in the folder are kept: the numbers go on from the highest one of this seed
            number = max(tune.index, first_free_number(out, f"{stem}-{tune.seed}-", start=1))
            prov = self.provenance(tune, number)
            base = out / f"{stem}-{tune.seed}-{number:03d}"
            tune.files = []
            if "abc" in formats:
                atomic_write_text(base.with_suffix(".abc"), self.abc(tune, prov))
                tune.files.append(str(base.with_suffix(".abc")))
            if tune.notes is None and tune.error is None:
                self.to_notes(tune)
            if tune.error:
                continue  # the .abc stays, so the user can see what the model made
            if "mid" in formats:
                atomic_write_bytes(base.with_suffix(".mid"), notes_to_midi(tune.notes, tune.qpm, provenance=prov))
                tune.files.append(str(base.with_suffix(".mid")))
            if "wav" in formats:
                write_wav(base.with_suffix(".wav"), tune.notes, tune.qpm, provenance=prov, renderer=renderer)
                tune.files.append(str(base.with_suffix(".wav")))
        return [Path(f) for t in tunes for f in t.files]

    def show(self, tunes: Tune | list[Tune]) -> str:
        """Each tune as ABC (or, for an event model, its event tokens)."""
        tunes = [tunes] if isinstance(tunes, Tune) else tunes
        return "\n".join(f"--- tune {t.index} ---\n{self.abc(t) if 'abc' in self.formats else t.text}" for t in tunes)

    def summary(self, tunes: Tune | list[Tune], paths: list[Path], out_dir) -> str:
        tunes = [tunes] if isinstance(tunes, Tune) else tunes
        lines = [f"tune {t.index}: {', '.join(t.files)}" + (f"  (could not convert: {t.error})" if t.error else "")
                 for t in tunes]
        return "\n".join([*lines, f"wrote {len(paths)} files to {out_dir}/"])

    # -- genlab report ----------------------------------------------------------------------------------------

    gallery_size = 3  # each tune's audio is inlined: ~45 kB a second of music

    def gallery_html(self, tunes: Tune | list[Tune]) -> str:
        """Each tune as an audio player (its WAV inlined, provenance inside, as http_output makes it) above its ABC
        (an event model's tune: its audio only); a tune that cannot be played says why."""
        import html

        from genlab.safety.provenance import describe

        parts = []
        for tune in [tunes] if isinstance(tunes, Tune) else tunes:
            out = self.http_output(tune, formats=tuple(f for f in self.formats if f != "mid"))
            caption = f"Tune {tune.index}: {describe(out['provenance'])}"
            audio = (f'<audio controls preload="none" src="data:audio/wav;base64,{out["wav_b64"]}" '
                     f'aria-label="tune {tune.index}, as audio"></audio>' if out.get("wav_b64") else
                     f'<p class="note">It cannot be played: {html.escape(str(out.get("error")))}</p>')
            abc = f"<pre>{html.escape(self.abc(tune))}</pre>" if out.get("abc") else ""  # its provenance: below
            parts.append(f'<figure class="tune">{audio}{abc}<figcaption>{html.escape(caption)}</figcaption></figure>')
        return "\n".join(parts)

    def creativity_dial(self):
        from genlab.modalities import Dial
        from genlab.music.evaluate import MUSIC_FIGURES, NGRAM, TEMPERATURES

        return Dial("temperature", TEMPERATURES, 12, MUSIC_FIGURES,
                    "Temperature divides the logits before sampling: low keeps to the likeliest notes (tunes that "
                    "parse, alike and near the training tunes), high flattens the distribution (new, then broken).",
                    (f"copied_{NGRAM}gram_share", "longest_copied_notes"))

    def sweep_point(self, value: float, seed: int, n: int) -> dict:
        return self._sweep().point(value, seed, n)

    def sweep_reference(self, seed: int, n: int) -> dict | None:
        return self._sweep().reference(seed, n)

    def _sweep(self):
        """The sweep's reading of the training tunes, made on first use and kept for every point."""
        from genlab.music.evaluate import MusicSweep

        if getattr(self, "_music_sweep", None) is None:
            self._music_sweep = MusicSweep(self)
        return self._music_sweep
