"""Sampling text: the shared token loop (genlab.sampling.tokens), decoded to text as it arrives,
cut at stop strings, printed or written as .txt files with a JSON provenance sidecar each."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from genlab.errors import GenlabError
from genlab.io import atomic_write_json, atomic_write_text
from genlab.modalities import LoadedRun, Sampler
from genlab.outputs import first_free_number, output_folder
from genlab.safety.provenance import seal, text_hash
from genlab.safety.watermark import TokenWatermarking
from genlab.sampling.decode import Decoders
from genlab.sampling.logits import SamplingSettings
from genlab.sampling.tokens import make_generator, sample_tokens
from genlab.text.tokenizer import seen_text


class SampleText:
    """One sample's text as its tokens arrive: the new text it is safe to show (not a piece that may yet start a
    stop string, nor half a character), and whether a stop string ended it (the text is cut before it).

    With a content filter (`screen`), a word still being written is held back until it ends, so a listed word is
    redacted before any of it is shown (a spaced-out one, "b a d", may show its first letters), or, where the
    filter withholds, the sample ends at the first match and shows nothing more (`withheld`)."""

    def __init__(self, tokenizer, stop: list[str], screen=None):
        self.tokenizer, self.stop, self.screen = tokenizer, stop, screen
        self.hold = max((len(x) for x in stop), default=1) - 1  # text that might start a stop string
        self.ids: list[int] = []
        self.emitted = 0  # characters shown so far
        self.done = False
        self.matches: list = []  # what the filter found (safety.content_filter.Match)
        self.withheld = False

    def add(self, token: int, show: bool = True) -> str:
        """Take the next token; the text it makes safe to show (with show=False: only whether it stopped)."""
        if self.withheld:
            return ""
        self.ids.append(token)
        text, self.done = self._text()
        if not show:
            return ""
        safe = len(text) if self.done else len(text.rstrip("\ufffd")) - self.hold
        return self._show(text, safe, final=self.done)

    def rest(self) -> str:
        """The text not shown yet, once no token will come."""
        if self.withheld:
            return ""
        text, self.done = self._text()
        return self._show(text, len(text), final=True)

    def filter_record(self) -> dict | None:
        """What the filter did to this sample, for its provenance (None: no filter ran)."""
        if self.screen is None:
            return None
        outcome = "withheld" if self.withheld else "redacted" if self.matches else "passed"
        return {**self.screen.describe(), "outcome": outcome, "matches": len(self.matches)}

    def _show(self, text: str, upto: int, final: bool) -> str:
        if self.withheld:
            return ""
        if self.screen is not None and not final:
            while upto > self.emitted and _in_word(text[upto - 1]):
                upto -= 1  # a word still being written waits for its end
        if upto <= self.emitted:
            return ""
        start, self.emitted = self.emitted, upto
        if self.screen is None:
            return text[start:upto]
        return self._screened(text, start, upto)

    def _screened(self, text: str, start: int, upto: int) -> str:
        """text[start:upto] with what the filter finds there redacted; the shown text before it is read as context
        (a match that began there)."""
        context = max(0, start - SCREEN_CONTEXT)
        found = [m for m in self.screen.check(text[context:upto]) if context + m.end > start]
        if not found:
            return text[start:upto]
        self.matches += found
        if self.screen.action == "withhold":
            self.withheld = self.done = True
            return ""
        piece, at = [], start
        for m in sorted(found, key=lambda m: m.start):
            a, b = max(context + m.start, at), context + m.end
            if b > a:
                piece += [text[at:a], self.screen.mask]
                at = b
        return "".join(piece) + text[at:upto]

    def _text(self) -> tuple[str, bool]:
        text = self.tokenizer.decode(self.ids)
        cut = min((p for p in (text.find(x) for x in self.stop) if p >= 0), default=-1)
        return (text[:cut], True) if cut >= 0 else (text, False)


SCREEN_CONTEXT = 64  # characters of shown text the filter reads again, for a match that began in them


def _in_word(c: str) -> bool:
    """Whether a character may be part of a word the filter reads (letters, leetspeak, invisible joiners)."""
    import unicodedata

    return c.isalnum() or c in "@$!|*_'" or unicodedata.category(c) in ("Mn", "Cf")


class TextSampler:
    """Turns a token stream into text pieces per sample, honouring stop strings (and a content filter) while
    streaming."""

    def __init__(self, tokenizer, stop: list[str], screen=None):
        self.tokenizer = tokenizer
        self.stop = list(stop)
        self.screen = screen

    def pieces(self, token_steps: Iterator[torch.Tensor], num_samples: int,
               incremental: bool) -> Iterator[tuple[int, str]]:
        """Yield (sample index, new text) as tokens arrive (incremental) or once at the end."""
        samples = [SampleText(self.tokenizer, self.stop, self.screen) for _ in range(num_samples)]
        for tokens in token_steps:
            values = tokens.tolist()
            if not (incremental or self.stop):  # nothing to show or cut before the end: decode once, then
                for sample, token in zip(samples, values, strict=True):
                    sample.ids.append(token)
                continue
            for i, (sample, token) in enumerate(zip(samples, values, strict=True)):
                if sample.done:
                    continue
                piece = sample.add(token, show=incremental)
                if piece:
                    yield i, piece
            if all(sample.done for sample in samples):
                break
        for i, sample in enumerate(samples):
            piece = sample.rest()
            if piece:
                yield i, piece
        # how each sample ended, for an API that reports it: the tokens drawn, whether a stop string ended it, and
        # what the content filter did
        self.token_counts, self.stopped = [len(x.ids) for x in samples], [x.done for x in samples]
        self.filter_records, self.withheld = [x.filter_record() for x in samples], [x.withheld for x in samples]


class TextBatch:
    """Completions of many requests of one text model decoded together, one forward pass per step (genlab serve's
    continuous batching, over genlab.sampling.batching). Each request draws exactly the tokens generate() draws
    for it alone with the same prompt, controls and seed; its text is cut at its own stop strings.

    Not thread-safe: one serving thread calls add, step and remove."""

    def __init__(self, sampler: TextModel, max_rows: int):
        from genlab.sampling.batching import ContinuousBatcher

        self.sampler = sampler
        self.rows = ContinuousBatcher(sampler.batch_model(), max_rows)
        self.requests: dict[int, tuple[SampleText, dict]] = {}

    @property
    def active(self) -> int:
        return self.rows.active

    @property
    def free(self) -> int:
        return self.rows.free

    def admits(self, prompt: str, controls: dict) -> bool:
        """Whether this request can join the batch: one sample, within the context (no sliding window)."""
        new_tokens = controls.get("max_new_tokens", TextModel.controls["max_new_tokens"])
        if controls.get("num_samples", 1) != 1 or controls.get("truncate_prompt") or new_tokens < 1:
            return False
        limit = self.rows.max_len
        return limit is None or len(self.sampler.encode_prompt(prompt)) + new_tokens <= limit

    def add(self, prompt: str, controls: dict) -> int:
        """Start a request; its handle. What it reports when it ends (see step) is fixed here: seed and controls."""
        self.sampler.screen_prompt(prompt)
        controls = dict(controls)
        mark = self.sampler.watermark(controls.pop("watermark_key", None), controls.pop("watermark_gamma", None),
                                      controls.pop("watermark_delta", None))
        s = SamplingSettings(**controls)
        s.validate()
        ids = self.sampler.encode_prompt(prompt)
        _, seed = make_generator(s.seed, self.sampler.device)
        handle = self.rows.add(ids, s, seed, logits_processor=mark)
        stop = [*s.stop, *getattr(self.sampler.tokenizer, "end_texts", [])]
        used = {"prompt": prompt, **{k: v for k, v in controls.items() if v is not None},
                **({"watermark": mark.about()} if mark else {})}  # the key's id, never the key
        self.requests[handle] = _Request(SampleText(self.sampler.tokenizer, stop, self.sampler.content_filter), seed,
                                         used, len(ids), s.max_new_tokens)
        return handle

    def step(self) -> list[tuple[int, str, dict | None]]:
        """One token for every request: (handle, new text, None), or for a request that ended (its last token, or
        a stop string) (handle, the rest of its text, how it ended: finish_reason, completion_tokens, provenance,
        seed, controls, prompt_tokens)."""
        events = []
        for handle, token in self.rows.step().items():
            request = self.requests[handle]
            piece = request.text.add(token)
            request.left -= 1
            if request.text.done or request.left == 0:
                events.append((handle, piece + request.text.rest(), self._end(handle)))
            else:
                events.append((handle, piece, None))
        return events

    def remove(self, handle: int) -> None:
        """Drop a request (its client left); a handle that already ended is ignored."""
        self.rows.remove(handle)
        self.requests.pop(handle, None)

    def _end(self, handle: int) -> dict:
        request = self.requests.pop(handle)
        self.rows.remove(handle)  # a stop string ended it early; a no-op after its last token
        return self.sampler.ending(request.text.done, len(request.text.ids), request.seed, request.controls,
                                   request.prompt_tokens, filtered=request.text.filter_record(),
                                   withheld=request.text.withheld)


@dataclass
class _Request:
    text: SampleText
    seed: int
    controls: dict
    prompt_tokens: int
    left: int  # tokens still to draw


class TextModel(TokenWatermarking, Sampler):
    """A trained text model, ready to sample: `m.generate(...)`, `m.stream(...)`, `m.write(...)`, `m.model`."""

    serves = "completions"

    controls = {"prompt": "", "max_new_tokens": 256, "temperature": 0.8, "top_k": None, "top_p": None,
                "repetition_penalty": 1.0, "stop": [], "seed": None, "num_samples": 1, "truncate_prompt": False,
                "suffix": None, **TokenWatermarking.watermark_controls}

    def __init__(self, run: LoadedRun, tokenizer):
        super().__init__(run)
        self.tokenizer = tokenizer
        self._told_context = False
        self.decoder = Decoders(self.model, self.precision)  # the model tuned for decoding n sequences: decoder(n)
        self._batch_model = None
        # what the content filter did to each sample of the last generate() or stream (None: no filter ran)
        self.last_filter_records: list[dict | None] = []
        self.last_withheld: list[bool] = []

    def endings(self) -> list[dict]:
        """How each sample the last generate() or stream made ended, as OpenAI reports it (genlab serve): see
        ending()."""
        return [self.ending(stopped, tokens, self.last_seed, self.last_controls, self.last_prompt_tokens, i + 1,
                            filtered, withheld)
                for i, (stopped, tokens, filtered, withheld) in enumerate(zip(
                    self.last_stopped, self.last_completion_tokens, self.last_filter_records, self.last_withheld,
                    strict=True))]

    def ending(self, stopped: bool, tokens: int, seed: int, controls: dict, prompt_tokens: int,
               index: int = 1, filtered: dict | None = None, withheld: bool = False) -> dict:
        """One sample's end: finish_reason ("stop": a stop string or end token; "length"; "content_filter": the
        filter withheld the rest, as OpenAI names it), completion_tokens, its provenance (with what the filter did),
        and the seed, controls and prompt tokens it shares with its prompt's other samples."""
        reason = "content_filter" if withheld else "stop" if stopped else "length"
        return {"finish_reason": reason, "completion_tokens": tokens, "seed": seed,
                "controls": dict(controls), "prompt_tokens": prompt_tokens,
                "provenance": self.provenance(seed, controls, index, filtered)}

    def provenance(self, seed: int | None, controls: dict, index: int, filtered: dict | None) -> dict:
        """One sample's record, with what the content filter did to it where one ran."""
        return self.provenance_source.record(seed, controls, index=index,
                                             **({"content_filter": filtered} if filtered else {}))

    def batch(self, max_rows: int) -> TextBatch | None:
        """Continuous batching of this model's requests (genlab serve), where its family can decode rows at their
        own positions; None where it cannot."""
        from genlab.sampling.batching import can_batch

        return TextBatch(self, max_rows) if max_rows > 1 and can_batch(self.model) else None

    def batch_model(self):
        """The model at this run's inference precision, as the batcher runs it (made once)."""
        from genlab.sampling.decode import inference_copy

        if self._batch_model is None:
            self._batch_model = inference_copy(self.model, self.precision)
        return self._batch_model

    def infill_prompt(self, prefix: str, suffix: str) -> str:
        """What a fill-in-the-middle model continues to write the code between prefix and suffix, in the
        suffix-prefix-middle order it was trained in (text/data.py); the middle ends at <|endoftext|>."""
        from genlab.text.data import FIM_TOKENS

        if not set(FIM_TOKENS) <= set(getattr(self.tokenizer, "specials", ())):
            raise GenlabError("--suffix fills in the middle, which needs a model trained for it: genlab train DATA "
                              "--fim-rate 0.5")
        for text in (prefix, suffix):
            if any(t in text for t in FIM_TOKENS):
                raise GenlabError("the prompt and suffix may not spell the fill-in-the-middle sentinels themselves")
        pre, mid, suf, _ = FIM_TOKENS
        return f"{pre}{suf}{suffix}{mid}{prefix}"

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

    def watermark_ids(self, text: str) -> list[int]:
        return self.known_tokens(text)

    def known_tokens(self, text: str) -> list[int]:
        """The text's token ids; characters a character tokenizer never saw are left out (they carry no mark)."""
        try:
            return [int(i) for i in self.tokenizer.encode(text)]
        except GenlabError:
            return [int(i) for i in self.tokenizer.encode(seen_text(self.tokenizer, text))]

    def human_ids(self) -> list[int]:
        """The run's training text (its first 2 MB: enough to calibrate a key), as token ids."""
        from genlab.text.data import read_text_source

        return self.known_tokens(read_text_source(self.config["data"]["source"])[:2_000_000])

    def _pieces(self, prompt: str, incremental: bool, truncate_prompt: bool = False, watermark_key: str | None = None,
                watermark_gamma: float | None = None, watermark_delta: float | None = None,
                suffix: str | None = None, **controls) -> Iterator[tuple[int, str]]:
        mark = self.watermark(watermark_key, watermark_gamma, watermark_delta)
        if suffix is not None and suffix.strip():
            # the middle ends where it reaches the suffix (its first line that holds code), as editors' infill does;
            # the model's own <|endoftext|> ends it too
            first = suffix[: len(suffix) - len(suffix.lstrip())] + suffix.lstrip().split("\n", 1)[0]
            controls["stop"] = [*controls.get("stop", []), first]
        s = SamplingSettings(**controls)
        s.validate()
        self.screen_prompt(prompt)
        if suffix is not None:
            self.screen_prompt(suffix)
        ids = self.encode_prompt(self.infill_prompt(prompt, suffix) if suffix is not None else prompt,
                                 truncate_prompt)
        limit = self.model.max_context
        if limit is not None and len(ids) + s.max_new_tokens > limit and not self._told_context:
            self._told_context = True  # once per loaded model
            print(f"genlab: note: this model sees only its last {limit} tokens; past that it samples on a sliding "
                  "window", file=sys.stderr)
        generator, self.last_seed = make_generator(s.seed, self.device)
        self.last_controls = {"prompt": prompt, **{k: v for k, v in controls.items() if v is not None},
                              **({"truncate_prompt": True} if truncate_prompt else {}),
                              **({"suffix": suffix} if suffix is not None else {}),
                              **({"watermark": mark.about()} if mark else {})}  # the key's id, never the key
        self.last_prompt_tokens = len(ids)
        steps = sample_tokens(self.decoder(s.num_samples), ids, s, generator, logits_processor=mark)
        stop = [*s.stop, *getattr(self.tokenizer, "end_texts", [])]  # a tokenizer's end-of-text token ends a sample
        text = TextSampler(self.tokenizer, stop, self.content_filter)
        yield from text.pieces(steps, s.num_samples, incremental)
        # OpenAI's usage and finish_reason for the samples just made (genlab serve reports them)
        self.last_completion_tokens, self.last_stopped = text.token_counts, text.stopped
        self.last_filter_records, self.last_withheld = text.filter_records, text.withheld

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

    # -- chat: a run fine-tuned with a chat template (genlab finetune --chat) answers conversations ------------

    @property
    def chat_template(self):
        """The run's chat template (genlab.text.chat.ChatTemplate), or None: the model continues text."""
        from genlab.text.chat import ChatTemplate

        return ChatTemplate.of(self.tokenizer)

    def chat_prompt(self, messages: list[dict], max_new_tokens: int | None = None,
                    drop: bool = True) -> tuple[str, int]:
        """The text the model continues to answer `messages`, and how many of the oldest messages (after a
        system message) were left out to leave room for the answer within the context (`drop=False`: none,
        a GenlabError instead)."""
        from genlab.text.chat import drop_unseen
        from genlab.text.conversations import validate_conversation

        template = self.chat_template
        if template is None:
            raise GenlabError(f"{self.run_dir.name} has no chat template: it continues text. Teach it to answer "
                              f"with genlab finetune {self.run_dir} DATA --chat, or sample it as text")
        messages = validate_conversation(list(messages))  # copies: the caller's messages stay as they were
        unseen = drop_unseen(self.tokenizer, [messages])  # a character model drops what it never saw, and says so
        if unseen:
            print(f"genlab: note: {unseen} character(s) this character-level model never saw were left out",
                  file=sys.stderr)
        new = self.controls["max_new_tokens"] if max_new_tokens is None else max_new_tokens
        limit = self.model.max_context
        room = None if limit is None else limit - min(new, limit // 4)  # an answer past it slides the window
        dropped = 0
        while True:
            prompt = template.render(messages, add_generation_prompt=True)
            size = len(self.tokenizer.encode(prompt))
            if room is None or size <= room:
                return prompt, dropped
            first = 1 if messages[0]["role"] == "system" else 0
            if not drop or len(messages) - first <= 1:
                raise GenlabError(f"the conversation is {size} tokens, and this model's context of {limit} keeps "
                                  f"{room} of them with room for the answer; shorten the last message")
            del messages[first]
            dropped += 1

    def chat(self, messages: list[dict], **controls) -> str | list[str]:
        """The assistant's answer to a conversation (OpenAI's messages: role and content), or a list of answers
        when num_samples > 1; the oldest turns that do not fit the context are left out, and it says so."""
        return self.generate(prompt=self._fitted_chat(messages, controls), **controls)

    def chat_stream(self, messages: list[dict], **controls) -> Iterator[str]:
        """chat(), piece by piece (one answer)."""
        yield from self.stream(prompt=self._fitted_chat(messages, controls), **controls)

    def _fitted_chat(self, messages: list[dict], controls: dict) -> str:
        """chat_prompt's text, saying when the oldest turns were left out to fit."""
        prompt, dropped = self.chat_prompt(messages, controls.get("max_new_tokens"))
        if dropped:
            print(f"genlab: note: the {dropped} oldest message(s) did not fit the context and were left out",
                  file=sys.stderr)
        return prompt

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
        suffix = self.last_controls.get("suffix") or ""  # an infill shows the middle in its place
        withheld = self.last_withheld or [False] * (1 if isinstance(texts, str) else len(texts))
        if isinstance(texts, str):
            return WITHHELD if withheld[0] else prompt + texts + suffix
        return "\n".join(f"--- sample {i + 1} ---\n{WITHHELD if gone else prompt + text + suffix}"
                         for i, (text, gone) in enumerate(zip(texts, withheld, strict=False)))

    def write(self, texts: str | list[str], out_dir, stem: str = "sample") -> list[Path]:
        """Each sample (prompt and continuation) as STEM-SEED-NNN.txt, its provenance beside it as .json."""
        out = output_folder(out_dir)
        prompt = self.last_controls.get("prompt", "")
        prefix = f"{stem}-{self.last_seed}-"
        first = first_free_number(out, prefix, start=1)  # samples already there are kept: numbers go on
        paths = []
        for i, text in enumerate([texts] if isinstance(texts, str) else texts):
            base = out / f"{prefix}{first + i:03d}"
            filtered = self.last_filter_records[i] if i < len(self.last_filter_records) else None
            record = self.provenance(self.last_seed, self.last_controls, first + i, filtered)
            whole = prompt + text + (self.last_controls.get("suffix") or "")
            atomic_write_text(base.with_suffix(".txt"), whole)
            atomic_write_json(base.with_suffix(".json"), seal(record, "text/plain", text_hash(whole)))
            paths.append(base.with_suffix(".txt"))
        return paths

    def summary(self, texts, paths: list[Path], out_dir) -> str:
        return f"wrote {len(paths)} samples to {out_dir}/ (each with its provenance in a .json beside it)"

    # -- genlab report ----------------------------------------------------------------------------------------

    def gallery_html(self, texts: str | list[str]) -> str:
        """Each sample (prompt and continuation, cut to an excerpt) escaped in a <pre>, its provenance below it."""
        import html

        from genlab.safety.provenance import describe

        prompt = self.last_controls.get("prompt", "")
        parts = []
        for i, text in enumerate([texts] if isinstance(texts, str) else texts):
            whole = prompt + text
            excerpt = whole[:GALLERY_CHARS] + ("…" if len(whole) > GALLERY_CHARS else "")
            record = self.provenance_source.record(self.last_seed, self.last_controls, index=i + 1)
            parts.append(f'<figure class="text-sample"><pre>{html.escape(excerpt)}</pre>'
                         f"<figcaption>Sample {i + 1}: {html.escape(describe(record))}</figcaption></figure>")
        return "\n".join(parts)

    def creativity_dial(self):
        from genlab.modalities import Dial
        from genlab.text.evaluate import COPY_NGRAM, TEMPERATURES, TEXT_FIGURES

        return Dial("temperature", TEMPERATURES, 8, TEXT_FIGURES,
                    "Temperature divides the logits before sampling: low keeps to the likeliest tokens (fluent, "
                    "repetitive, closer to the training text), high flattens the distribution (varied, then noise).",
                    ("perplexity", "bits_per_char", f"copied_{COPY_NGRAM}gram_share"))

    def sweep_point(self, value: float, seed: int, n: int) -> dict:
        return self._sweep().point(value, seed, n)

    def sweep_reference(self, seed: int, n: int) -> dict | None:
        return self._sweep().reference(seed, n)

    def _sweep(self):
        """The sweep's reading of the training text, made on first use and kept for every point."""
        from genlab.text.evaluate import TextSweep

        if getattr(self, "_text_sweep", None) is None:
            self._text_sweep = TextSweep(self)
        return self._text_sweep


WITHHELD = "(withheld by the content filter)"
GALLERY_CHARS = 700  # a sample's excerpt in the report: a paragraph, not a page
