"""The request bodies genlab serve reads, in OpenAI's names (completions, images) and the same style for music
and feedback. Unknown fields are refused, so a typo is an answer rather than a silently ignored dial; OpenAI
fields genlab does not implement are accepted only at their default values."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SEED = Field(None, ge=0, lt=2**63, description="the same seed gives the same output")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StreamOptions(Body):
    include_usage: bool = False


class Sampled(Body):
    """The fields the completions and chat APIs share: the model, OpenAI's dials, genlab's own and OpenAI's
    penalties (accepted at their defaults only)."""

    model: str
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = SEED
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # genlab's own dials, sent by OpenAI clients as extra body fields
    top_k: int | None = Field(None, ge=1)
    repetition_penalty: float | None = Field(None, gt=0)
    # OpenAI's, accepted at their defaults only
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None


class CompletionRequest(Sampled):
    prompt: str | list[str] = ""
    max_tokens: int | None = Field(16, ge=0, description="OpenAI's default, 16")
    # OpenAI's, accepted at their defaults only
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None
    suffix: str | None = None


class ChatMessage(Body):
    role: Literal["system", "user", "assistant"]
    content: str
    name: str | None = None


class ChatRequest(Sampled):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=0, description="the longest answer; default 256")
    max_completion_tokens: int | None = Field(None, ge=0, description="OpenAI's newer name for max_tokens")
    # OpenAI's, accepted at their defaults only
    logprobs: bool | None = None
    top_logprobs: int | None = None


UNSUPPORTED_CHAT_FIELDS = {"logprobs": (None, False), "top_logprobs": (None, 0), "frequency_penalty": (None, 0),
                           "presence_penalty": (None, 0), "logit_bias": (None, {})}
CHAT_MAX_TOKENS = 256  # an answer's default length (OpenAI's runs to the context; a small model rambles)

UNSUPPORTED_COMPLETION_FIELDS = {"echo": False, "logprobs": None, "best_of": (None, 1), "frequency_penalty": (None, 0),
                                 "presence_penalty": (None, 0), "logit_bias": (None, {}), "suffix": (None, "")}


class ImageRequest(Body):
    model: str
    prompt: str = Field("", description="the caption for a model trained with --captions ('a 4 above a 9'); a "
                        "class name or label number for a conditional model; else empty")
    negative_prompt: str | None = Field(None, description="a caption for guidance to steer away from (captioned "
                                        "models)")
    n: int | None = Field(1, ge=1)
    size: str | None = None
    response_format: Literal["b64_json", "url"] | None = "b64_json"
    user: str | None = None
    seed: int | None = SEED
    steps: int | None = Field(None, ge=1)
    guidance: float | None = Field(None, ge=0)
    eta: float | None = Field(None, ge=0)
    sampler: Literal["ddim", "ddpm"] | None = None
    weights: Literal["ema", "raw"] | None = None
    quality: str | None = None  # OpenAI's, for its own models: accepted and ignored only when absent
    style: str | None = None


class WatermarkRequest(Body):
    model: str = Field(description="the model whose tokenizer made the text (or ABC tune)")
    text: str = Field(description="the text, or a tune's ABC, to test for the server's watermark")


class MusicRequest(Body):
    model: str
    prompt: str = Field("", description="an ABC header such as 'M:6/8 K:Dmaj'")
    n: int = Field(1, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    repetition_penalty: float | None = Field(None, gt=0)
    seed: int | None = SEED
    constraint: bool = True
    formats: list[Literal["abc", "mid", "wav"]] | None = None
    user: str | None = None


class FeedbackRequest(Body):
    """A rating of one earlier output (output_id with score or thumbs), or a preference between two
    (output_a, output_b, winner; left says which was shown on the left)."""

    output_id: str | None = None
    score: int | None = Field(None, ge=1, le=5)
    thumbs: Literal[-1, 1] | None = None
    tags: list[str] = Field(default_factory=list, max_length=32)
    output_a: str | None = None
    output_b: str | None = None
    winner: Literal["a", "b", "tie", "both_bad"] | None = None
    left: Literal["a", "b"] = "a"
    reason: str | None = Field(None, max_length=2000)
    rater: str | None = Field(None, max_length=200)
    latency_s: float | None = Field(None, ge=0)


class BattleRequest(Body):
    """A blind battle: `models` two names (one name twice with controls_b: two settings of one model), or None for
    two models of that API at random. `controls` take the fields of the API's own body (max_tokens, temperature,
    steps, guidance, seed, ...); `controls_b`, when given, are the second source's."""

    prompt: str = ""
    api: Literal["completions", "images", "music"] = "completions"
    models: list[str] | None = Field(None, min_length=2, max_length=2)
    controls: dict[str, Any] = Field(default_factory=dict)
    controls_b: dict[str, Any] | None = None


class VoteRequest(Body):
    winner: Literal["a", "b", "tie", "both_bad"] = Field(description="a: the left pane, b: the right one")
    reason: str | None = Field(None, max_length=2000)
    rater: str | None = Field(None, max_length=200)
