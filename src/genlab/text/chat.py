"""Chat: a template that turns a conversation into the text a language model continues, the special tokens that
mark its turns, and the supervised fine-tuning data that teaches a model to answer (the loss on the assistant's
tokens only).

The template is Jinja, rendered in a sandbox, as transformers' `apply_chat_template` renders the `chat_template`
of tokenizer_config.json; the default is ChatML (OpenAI's format for its chat models, used by many open ones):

    <|im_start|>system\nYou answer questions about Python.<|im_end|>\n
    <|im_start|>user\nWhat does json.dumps do?<|im_end|>\n
    <|im_start|>assistant\njson.dumps(obj, ...) Serialize obj to a JSON formatted str.<|im_end|>\n

The turn markers are special tokens: new ids after the base tokenizer's, which no text a user types can produce
(a message that spells one out is refused), so nobody can forge a turn. A model is taught them by a chat
fine-tune (`genlab finetune BASE DATA --chat`), which grows its vocabulary by those few ids; the answer ends at
<|im_end|>, which sampling treats as the end of text.

Which tokens are the assistant's is found by rendering each prefix of the conversation: the tokens between the
prefix ending in a user turn (with the generation prompt, "<|im_start|>assistant\\n") and the prefix that
includes the assistant's turn are the ones it said, its <|im_end|> included. That needs a template whose
renderings of a conversation's prefixes are prefixes of each other, as ChatML's are; one that is not is refused.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.text.conversations import validate_conversation
from genlab.text.tokenizer import CONFIG_FILE, AddedTokens, seen_text

IGNORE = -100  # the target of a position the loss skips (torch's cross_entropy default ignore_index)
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")


@dataclass(frozen=True)
class ChatTemplate:
    """A Jinja chat template and the special tokens it writes (the first closes a turn: `end`)."""

    source: str = CHATML
    specials: tuple[str, ...] = CHATML_TOKENS
    end: str = "<|im_end|>"

    @functools.cached_property
    def _compiled(self):
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        try:
            return env.from_string(self.source)
        except TemplateError as e:
            raise GenlabError(f"the chat template does not parse as Jinja ({e}); fix it in {CONFIG_FILE}") from None

    def render(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        """The conversation as the text the model reads (with the assistant's turn opened, to generate one)."""
        from jinja2 import TemplateError

        messages = validate_conversation(messages)
        for m in messages:
            for s in self.specials:
                if s in m["content"]:
                    raise GenlabError(f"a {m['role']} message contains {s!r}, the chat template's own marker; "
                                      "take it out (no message may open or close a turn)")
        try:
            return self._compiled.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         eos_token=self.end, bos_token="")
        except (TemplateError, TypeError, ValueError, LookupError, AttributeError, ArithmeticError) as e:
            raise GenlabError(f"the chat template does not render this conversation ({e}); fix it in "
                              f"{CONFIG_FILE}") from None

    def encode(self, tokenizer: AddedTokens, messages: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """The token ids of a whole conversation and, per token, whether the assistant said it (the loss's
        mask): the tokens each assistant turn adds after the generation prompt that opens it."""
        ids = tokenizer.encode(self.render(messages))
        said = np.zeros(len(ids), dtype=bool)
        for i, m in enumerate(messages):
            if m["role"] != "assistant" or not m.get("weight", 1):
                continue
            start = len(tokenizer.encode(self.render(messages[:i], add_generation_prompt=True))) if i else 0
            upto = ids if i + 1 == len(messages) else tokenizer.encode(self.render(messages[: i + 1]))
            end = len(upto)
            if not np.array_equal(upto, ids[:end]) or start > end:
                raise GenlabError("the chat template renders a conversation's turns differently as it grows, so "
                                  "the assistant's tokens cannot be found; use a template whose prefixes agree, as "
                                  "ChatML's do")
            said[start:end] = True
        return ids, said

    @classmethod
    def of(cls, tokenizer) -> ChatTemplate | None:
        """The chat template a run's tokenizer carries (AddedTokens with a chat_template), or None."""
        source = getattr(tokenizer, "chat_template", None)
        if not isinstance(source, str):
            return None
        return cls(source, tuple(tokenizer.specials), tokenizer.end or tokenizer.specials[-1])


def drop_unseen(tokenizer, conversations: list[list[dict]]) -> int:
    """Take out of every message the characters a character-level tokenizer never saw; how many went."""
    dropped = 0
    for messages in conversations:
        for m in messages:
            clean = seen_text(tokenizer, m["content"])
            dropped, m["content"] = dropped + len(m["content"]) - len(clean), clean
    return dropped


# ---------------------------------------------------------------------------------------------------
# Supervised fine-tuning data: conversations as (input, target) windows, the loss on the assistant's tokens
# ---------------------------------------------------------------------------------------------------


class ChatData:
    """Conversations encoded once with the template; a batch is `batch_size` of them, each cut to block_size + 1
    tokens (a longer one loses its end: the count is reported) and padded, its targets IGNORE wherever the
    assistant did not speak. It trains through the one trainer as text does."""

    modality = "text"
    unit = "tok"
    items = "assistant tokens"

    def __init__(self, tokenizer: AddedTokens, template: ChatTemplate, train: list[list[dict]],
                 val: list[list[dict]], block_size: int, source: str, content_hash: str):
        self.tokenizer, self.template, self.block_size = tokenizer, template, block_size
        self.source, self.content_hash = source, content_hash
        self.splits = {"train": self._encode(train), "val": self._encode(val)}
        self.cut = sum(len(ids) > block_size + 1 for ids, _ in self.splits["train"] + self.splits["val"])
        for name, rows in self.splits.items():
            if not rows:
                raise GenlabError(f"{source} gives no {name} conversations; give more of them")

    def _encode(self, conversations: list[list[dict]]) -> list[tuple[np.ndarray, np.ndarray]]:
        rows = []
        for messages in conversations:
            ids, said = self.template.encode(self.tokenizer, messages)
            if said[1 : self.block_size + 1].any():  # the assistant speaks within the window: there is a target
                rows.append((ids, said))
        return rows

    def model_settings(self) -> dict:
        return {"vocab_size": self.tokenizer.vocab_size}

    def batch(self, split: str, batch_size: int, generator: torch.Generator):
        rows = self.splits[split]
        pick = torch.randint(len(rows), (batch_size,), generator=generator).tolist()
        return self.rows([rows[i] for i in pick])

    def rows(self, rows: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y), both (B, block_size): next-token targets where the assistant spoke, IGNORE elsewhere."""
        T = self.block_size
        pad = self.tokenizer.special_ids[self.template.end]
        x = np.full((len(rows), T), pad, dtype=np.int64)
        y = np.full((len(rows), T), IGNORE, dtype=np.int64)
        for r, (ids, said) in enumerate(rows):
            ids, said = ids[: T + 1], said[: T + 1]
            n = len(ids) - 1
            x[r, :n] = ids[:-1]
            y[r, :n] = np.where(said[1:], ids[1:], IGNORE)
        return torch.from_numpy(x), torch.from_numpy(y)

    def items_in(self, batch) -> int:
        return int((batch[1] != IGNORE).sum())

    @property
    def train_items(self) -> int:
        return int(sum(said[1:].sum() for _, said in self.splits["train"]))

    def describe(self) -> dict:
        return {"modality": "text", "source": self.source, "content_sha256": self.content_hash, "chat": True,
                "train_conversations": len(self.splits["train"]), "val_conversations": len(self.splits["val"]),
                "train_tokens": self.train_items, "cut_conversations": self.cut}

    def preprocessing(self) -> dict:
        return {"tokenizer": {"kind": self.tokenizer.kind, "vocab_size": self.tokenizer.vocab_size,
                              "specials": list(self.tokenizer.specials)}}

    def save(self, run_dir: Path) -> None:
        self.tokenizer.save(Path(run_dir) / "tokenizer.json")  # with tokenizer_config.json: markers and template


def open_chat(source: str, cfg, block_size: int, given) -> ChatData:
    """Conversations to fine-tune on, read with the parent's tokenizer (`given`) and the template's turn markers
    after its ids: text:pyhelp (its train split; its held-out phrasings and subjects for validation), or a JSONL
    file of {"messages": [...]} or {"prompt", "completion"} (its last val_fraction for validation)."""
    import hashlib
    import sys

    if given is None:
        raise GenlabError("--chat fine-tunes a trained text model: genlab finetune BASE DATA --chat")
    template = ChatTemplate.of(given) or ChatTemplate()  # a chat model tuned further keeps its own template
    base, kept = (given.base, given.specials) if isinstance(given, AddedTokens) else (given, ())
    specials = (*kept, *(s for s in template.specials if s not in kept))  # a code model's sentinels stay
    tokenizer = AddedTokens(base, specials, template.end, template.source)
    if source == "text:pyhelp":
        from genlab.text.pyhelp import as_messages, build_pairs

        pairs = build_pairs()
        train = [as_messages(qa)["messages"] for qa in pairs if qa.split == "train"]
        val = [as_messages(qa)["messages"] for qa in pairs if qa.split != "train"]
    else:
        from genlab.text.conversations import read_conversations

        conversations = read_conversations(source)
        n_val = max(1, round(len(conversations) * cfg.val_fraction)) if len(conversations) > 1 else 0
        train, val = conversations[: len(conversations) - n_val], conversations[len(conversations) - n_val :]
        if not val:
            raise GenlabError(f"{source} holds one conversation; give at least two (one is held out for validation)")
    dropped = drop_unseen(base, [*train, *val])  # a character model reads only the characters it was trained on
    if dropped:
        print(f"genlab: {source}: {dropped} characters the parent's character vocabulary lacks were left out",
              file=sys.stderr)
    content_hash = hashlib.sha256(json.dumps([train, val], sort_keys=True).encode()).hexdigest()
    data = ChatData(tokenizer, template, train, val, block_size, source, content_hash)
    if data.cut:
        print(f"genlab: {source}: {data.cut} conversations are longer than the context of {block_size + 1} tokens "
              "and lose their end", file=sys.stderr)
    return data
