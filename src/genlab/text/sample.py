"""Sampling text: the shared token loop (genlab.sampling.tokens), decoded to text as it arrives,
cut at stop strings, printed or written as .txt files with a JSON provenance sidecar each."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, atomic_write_text
from genlab.modalities import LoadedRun, Sampler
from genlab.outputs import first_free_number, output_folder
from genlab.sampling.decode import Decoders
from genlab.sampling.logits import SamplingSettings
from genlab.sampling.tokens import make_generator, sample_tokens


class TextSampler:
    """Turns a token stream into text pieces per sample, honouring stop strings while streaming."""

    def __init__(self, tokenizer, stop: list[str]):
        self.tokenizer = tokenizer
        self.stop = list(stop)
        self.hold = max((len(x) for x in self.stop), default=1) - 1  # text that might start a stop string

    def pieces(self, token_steps: Iterator[torch.Tensor], num_samples: int,
               incremental: bool) -> Iterator[tuple[int, str]]:
        """Yield (sample index, new text) as tokens arrive (incremental) or once at the end."""
        generated: list[list[int]] = [[] for _ in range(num_samples)]
        emitted = [0] * num_samples
        done = [False] * num_samples
        for tokens in token_steps:
            values = tokens.tolist()
            for i in range(num_samples):
                if not done[i]:
                    generated[i].append(values[i])
            if not (incremental or self.stop):
                continue
            for i in range(num_samples):
                if done[i]:
                    continue
                text, done[i] = self._text(generated[i])
                safe = len(text) if done[i] else len(text.rstrip("\ufffd")) - self.hold
                if incremental and safe > emitted[i]:
                    yield i, text[emitted[i] : safe]
                    emitted[i] = safe
            if all(done):
                break
        for i in range(num_samples):
            text, done[i] = self._text(generated[i])
            if len(text) > emitted[i]:
                yield i, text[emitted[i] :]
        # how each sample ended, for an API that reports it: the tokens drawn, and whether a stop string ended it
        self.token_counts, self.stopped = [len(g) for g in generated], done

    def _text(self, ids: list[int]) -> tuple[str, bool]:
        text = self.tokenizer.decode(ids)
        cut = min((p for p in (text.find(x) for x in self.stop) if p >= 0), default=-1)
        return (text[:cut], True) if cut >= 0 else (text, False)


class TextModel(Sampler):
    """A trained text model, ready to sample: `m.generate(...)`, `m.stream(...)`, `m.write(...)`, `m.model`."""

    serves = "completions"

    controls = {"prompt": "", "max_new_tokens": 256, "temperature": 0.8, "top_k": None, "top_p": None,
                "repetition_penalty": 1.0, "stop": [], "seed": None, "num_samples": 1, "truncate_prompt": False}

    def __init__(self, run: LoadedRun, tokenizer):
        super().__init__(run)
        self.tokenizer = tokenizer
        self._told_context = False
        self.decoder = Decoders(self.model, self.precision)  # the model tuned for decoding n sequences: decoder(n)

    def encode_prompt(self, prompt: str, truncate: bool = False) -> torch.Tensor:
        """The prompt's token ids; one longer than the context is refused, or with `truncate` cut to its
        last tokens (as nanoGPT crops its context)."""
        if prompt:
            ids = self.tokenizer.encode(prompt)
        else:  # no prompt: start from a newline, as nanoGPT does, or from token 0 if the model never saw one
            ids = self.tokenizer.encode("\n") if self._knows_newline() else [0]
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        limit = self.model.max_context
        if limit is not None and len(ids) >= limit:
            if not truncate:
                raise GenlabError(f"the prompt is {len(ids)} tokens but this model's context is {limit}; shorten the "
                                  f"prompt, or keep its last {limit - 1} tokens with --truncate-prompt")
            ids = ids[-(limit - 1) :]
        return ids

    def _knows_newline(self) -> bool:
        try:
            self.tokenizer.encode("\n")
            return True
        except GenlabError:
            return False

    def _pieces(self, prompt: str, incremental: bool, truncate_prompt: bool = False,
                **controls) -> Iterator[tuple[int, str]]:
        s = SamplingSettings(**controls)
        s.validate()
        ids = self.encode_prompt(prompt, truncate_prompt)
        limit = self.model.max_context
        if limit is not None and len(ids) + s.max_new_tokens > limit and not self._told_context:
            self._told_context = True  # once per loaded model
            print(f"genlab: note: this model sees only its last {limit} tokens; past that it samples on a sliding "
                  "window", file=sys.stderr)
        generator, self.last_seed = make_generator(s.seed, self.device)
        self.last_controls = {"prompt": prompt, **{k: v for k, v in controls.items() if v is not None},
                              **({"truncate_prompt": True} if truncate_prompt else {})}
        self.last_prompt_tokens = len(ids)
        steps = sample_tokens(self.decoder(s.num_samples), ids, s, generator)
        stop = [*s.stop, *getattr(self.tokenizer, "end_texts", [])]  # a tokenizer's end-of-text token ends a sample
        text = TextSampler(self.tokenizer, stop)
        yield from text.pieces(steps, s.num_samples, incremental)
        # OpenAI's usage and finish_reason for the samples just made (genlab serve reports them)
        self.last_completion_tokens = text.token_counts
        self.last_finish_reasons = ["stop" if stopped else "length" for stopped in text.stopped]

    def generate(self, prompt: str = "", **controls) -> str | list[str]:
        """Sample a continuation of `prompt` (the continuation only); a list when num_samples > 1."""
        n = controls.get("num_samples", 1)
        texts = [""] * max(n, 1)
        for i, piece in self._pieces(prompt, incremental=False, **controls):
            texts[i] += piece
        return texts[0] if n == 1 else texts

    def streams(self, controls: dict) -> bool:
        return controls.get("num_samples", 1) == 1

    def preference_tokens(self, prompt: str, completion: str) -> tuple[list[int], int, None]:
        """The prompt as generate() starts from it, then the completion; characters the tokenizer never saw
        are a one-line error naming them."""
        ids = self.encode_prompt(prompt, truncate=True).tolist()
        return ids + self.tokenizer.encode(completion).tolist(), len(ids), None

    def content(self, output: str) -> str:
        return output

    def blind_output(self, output: str) -> dict:
        return {"text": output}

    def write_for_training(self, outputs: list[str], prompts: list[str], folder: Path) -> None:
        """Each sample, prompt and continuation, as one .txt file: a folder `genlab train` reads."""
        folder.mkdir(parents=True, exist_ok=True)
        for i, (prompt, text) in enumerate(zip(prompts, outputs, strict=True)):
            atomic_write_text(folder / f"sample-{i:05d}.txt", prompt + text + "\n")

    def stream(self, prompt: str = "", **controls) -> Iterator[str]:
        """Yield the continuation piece by piece as it is sampled (one sample)."""
        if controls.get("num_samples", 1) != 1:
            raise GenlabError("stream() makes one sample; use generate(num_samples=N) or stream_samples()")
        for _, piece in self._pieces(prompt, incremental=True, **controls):
            yield piece

    def stream_samples(self, prompt: str = "", **controls) -> Iterator[tuple[int, str]]:
        """Yield (sample index, piece) for several samples made together in one batch."""
        yield from self._pieces(prompt, incremental=True, **controls)

    def show(self, texts: str | list[str]) -> str:
        prompt = self.last_controls.get("prompt", "")
        if isinstance(texts, str):
            return prompt + texts
        return "\n".join(f"--- sample {i + 1} ---\n{prompt}{text}" for i, text in enumerate(texts))

    def write(self, texts: str | list[str], out_dir, stem: str = "sample") -> list[Path]:
        """Each sample (prompt and continuation) as STEM-SEED-NNN.txt, its provenance beside it as .json."""
        out = output_folder(out_dir)
        prompt = self.last_controls.get("prompt", "")
        prefix = f"{stem}-{self.last_seed}-"
        first = first_free_number(out, prefix, start=1)  # samples already there are kept: numbers go on
        paths = []
        for i, text in enumerate([texts] if isinstance(texts, str) else texts):
            base = out / f"{prefix}{first + i:03d}"
            atomic_write_text(base.with_suffix(".txt"), prompt + text)
            atomic_write_json(base.with_suffix(".json"), self.provenance_source.record(
                self.last_seed, self.last_controls, index=first + i))
            paths.append(base.with_suffix(".txt"))
        return paths

    def summary(self, texts, paths: list[Path], out_dir) -> str:
        return f"wrote {len(paths)} samples to {out_dir}/ (each with its provenance in a .json beside it)"
