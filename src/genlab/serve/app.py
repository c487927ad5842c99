"""The HTTP app of genlab serve: OpenAI's completions and images APIs, genlab's music API in the same style,
feedback into the store, the blind arena and its leaderboard, the studio page, health and Prometheus metrics.

Every model answers through its sampler's contract (genlab.modalities.Sampler): `serves` names the API that
makes its outputs, `controls` the dials it takes, `http_output` an output as JSON, `blind_output` one with nothing
that names its model, `batch` its continuous batching where it has one. The routes never ask a model's modality or
family. Errors have OpenAI's body, {"error": {"message", "type", "param", "code"}}: 400 for values a client got
wrong, 401 for the key, 404 for an unknown model, output or battle, 409 for a second vote, 411/413 for a body of
unknown or too large a size, 429 with Retry-After for a full queue; a 500 would be a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from genlab.errors import GenlabError
from genlab.safety.content_filter import ContentFiltered, refusal
from genlab.serve.arena import Arena, Side
from genlab.serve.metrics import Metrics
from genlab.serve.schemas import (
    CHAT_MAX_TOKENS,
    UNSUPPORTED_CHAT_FIELDS,
    UNSUPPORTED_COMPLETION_FIELDS,
    BattleRequest,
    ChatRequest,
    CompletionRequest,
    FeedbackRequest,
    ImageRequest,
    MusicRequest,
    VoteRequest,
    WatermarkRequest,
)
from genlab.serve.studio import FILES, png_settings
from genlab.serve.workers import ModelWorker, QueueFull


@dataclass
class Limits:
    """What one request may ask for: a client cannot make the server do unbounded work."""

    max_tokens: int = 2048
    max_n: int = 16  # samples per prompt
    max_prompts: int = 16  # prompts in one completions request
    max_prompt_chars: int = 65_536
    max_stop: int = 4
    max_stop_chars: int = 64
    max_images: int = 64
    max_steps: int = 1000
    max_body_bytes: int = 1 << 20
    max_queue: int = 64  # waiting requests per model
    max_batch: int = 32  # requests of one model decoded together (continuous batching; 1: one at a time)
    recent_outputs: int = 4096  # outputs kept in memory for feedback by id
    open_battles: int = 1024  # arena battles kept waiting for their vote
    retry_after_s: int = 1


class ApiError(Exception):
    """An answer in OpenAI's error shape."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


@dataclass
class Served:
    name: str
    sampler: Any
    worker: ModelWorker


def create_app(models: dict[str, Any], *, api_key: str | None = None, store: str | Path | None = None,
               limits: Limits | None = None, arena_seed: int | None = None,
               watermark_key: str | None = None) -> FastAPI:
    """The app serving `models` (name -> a sampler from genlab.load). `api_key`: required as a Bearer token on
    /v1; `store`: the feedback store /v1/feedback and the arena write into (None: both are refused);
    `arena_seed`: seeds the arena's choice of sides (None: a fresh one); `watermark_key`: the operator's key,
    which marks every completion and tune of a model that takes a watermark (the arena's outputs are rated, not
    published, and stay unmarked) and which POST /v1/watermark/detect tests for."""
    limits = limits or Limits()
    served = {name: Served(name, m, ModelWorker(name, m, limits.max_queue, limits.max_batch))
              for name, m in models.items()}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        for s in served.values():
            s.worker.close()

    app = FastAPI(title="genlab", version=_version(), docs_url="/docs", redoc_url=None, lifespan=lifespan)
    recent: OrderedDict[str, dict] = OrderedDict()  # output id -> what the store needs to keep it
    metrics = Metrics(served)
    feedback = FeedbackWriter(store) if store is not None else None
    arena = Arena(arena_seed, limits.open_battles)
    app.state.served, app.state.limits, app.state.metrics, app.state.feedback = served, limits, metrics, feedback
    app.state.arena = arena

    def watermarks(sampler) -> bool:
        """Whether this server marks the model's outputs: it has a key, and the model takes one."""
        return watermark_key is not None and "watermark_key" in sampler.controls

    def marked(sampler, controls: dict) -> dict:
        """The controls with the operator's watermark key, for a model that takes one."""
        return {**controls, "watermark_key": watermark_key} if watermarks(sampler) else controls

    # -- errors in OpenAI's shape -----------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return e.response()

    @app.exception_handler(ContentFiltered)
    async def filtered(request: Request, e: ContentFiltered):
        return ApiError(400, refusal(e.matches, hint="rephrase it"), type="content_filter", param="prompt",
                        code="content_filter").response()

    @app.exception_handler(GenlabError)
    async def genlab_error(request: Request, e: GenlabError):
        return ApiError(400, str(e)).response()

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, e: RequestValidationError):
        problem = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(x) for x in problem.get("loc", ()) if x != "body"]
        param = ".".join(loc) or None
        message = problem.get("msg", "invalid request")
        if problem.get("type") == "json_invalid":
            message, param = "the body is not valid JSON", None
        elif problem.get("type") == "extra_forbidden":
            message = f"unknown field {param!r}; see GET /docs for the fields this API takes"
        elif param:
            message = f"{param}: {message}"
        return ApiError(400, message, param=param).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        kind = "not_found_error" if e.status_code == 404 else "invalid_request_error"
        return ApiError(e.status_code, str(e.detail), type=kind).response()

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception):  # never for what a client sent: a bug to report
        return ApiError(500, f"internal error ({type(e).__name__}: {e}); please report it", type="server_error"
                        ).response()

    @app.middleware("http")
    async def measure(request: Request, call_next):
        t0 = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limits.max_body_bytes):
            response = ApiError(413, f"the body is over {limits.max_body_bytes} bytes; send less",
                                code="body_too_large").response()
        elif length is None and "transfer-encoding" in request.headers:  # a body of unknown size: refuse, not read
            response = ApiError(411, "send the body with a Content-Length header", code="length_required").response()
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        metrics.observe(getattr(route, "path", "other"), response.status_code, time.perf_counter() - t0)
        return response

    def authorized(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(401, "missing or wrong API key; send it as 'Authorization: Bearer KEY'",
                           type="authentication_error", code="invalid_api_key")

    def lookup(name: str, api: str | None = None) -> Served:
        if name not in served:
            raise ApiError(404, f"the model {name!r} is not served here; GET /v1/models lists them "
                           f"({', '.join(served)})", type="not_found_error", param="model", code="model_not_found")
        s = served[name]
        if api is not None and s.sampler.serves != api:
            raise ApiError(400, f"{name} is a {s.sampler.modality} model: ask /v1/{API_PATHS[s.sampler.serves]}",
                           param="model", code="wrong_endpoint")
        return s

    def submit(s: Served, job, emit=None, **batched):
        try:
            return s.worker.submit(job, emit, **batched)
        except QueueFull:
            raise ApiError(429, f"{s.name} has {limits.max_queue} requests waiting; retry in a moment",
                           type="rate_limit_error", code="queue_full",
                           headers={"Retry-After": str(limits.retry_after_s)}) from None

    def need_store() -> FeedbackWriter:
        if feedback is None:
            raise ApiError(400, "this server keeps no feedback; start it with genlab serve ... --store PATH")
        return feedback

    def keep(s: Served, output, prompt: str, seed: int | None, controls: dict) -> str:
        """Remember an output by a new id, for /v1/feedback."""
        output_id = "out-" + secrets.token_hex(12)
        recent[output_id] = {"served": s, "output": output, "prompt": prompt, "seed": seed, "controls": controls}
        while len(recent) > limits.recent_outputs:
            recent.popitem(last=False)
        return output_id

    # -- the routes ---------------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def studio():
        return FileResponse(FILES / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/studio", StaticFiles(directory=FILES), name="studio")

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": {n: {"queue": s.worker.depth, "batched": s.worker.rows,
                                               "peak_batched": s.worker.peak_rows} for n, s in served.items()}}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def list_models():
        return {"object": "list", "data": [model_card(s, watermarks(s.sampler)) for s in served.values()]}

    @app.get("/v1/models/{name}", dependencies=[Depends(authorized)])
    async def one_model(name: str):
        if name not in served:
            raise ApiError(404, f"the model {name!r} is not served here", type="not_found_error", param="model",
                           code="model_not_found")
        return model_card(served[name], watermarks(served[name].sampler))

    @app.post("/v1/completions", dependencies=[Depends(authorized)])
    async def completions(body: CompletionRequest):
        s = lookup(body.model, "completions")
        prompts, controls = completion_controls(body, s.sampler, limits)
        return await complete(s, body, prompts, controls, chat=False)

    async def complete(s: Served, body: CompletionRequest | ChatRequest, prompts: list[str], controls: dict,
                       chat: bool):
        """A completions or (with `chat`) chat completions answer, whole or streamed, in OpenAI's shape."""
        controls = marked(s.sampler, controls)
        created, request_id = int(time.time()), ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)
        events: asyncio.Queue = asyncio.Queue()
        job = start_completion(s, prompts, controls, events.put_nowait if body.stream else None)
        if body.stream:
            return StreamingResponse(stream_completion(s, body, job, events, controls["num_samples"], created,
                                                       request_id, chat),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        ends = await job.future
        def said(text: str) -> dict:
            return {"message": {"role": "assistant", "content": text}} if chat else {"text": text}

        choices = [{"index": i, **said(end["text"]), "logprobs": None, "finish_reason": end["finish_reason"],
                    "output_id": keep(s, end["text"], end["controls"]["prompt"], end["seed"], end["controls"]),
                    "provenance": end["provenance"]} for i, end in enumerate(ends)]
        usage = completion_usage(ends, controls["num_samples"])
        metrics.tokens(s.name, usage["completion_tokens"])
        return {"id": request_id, "object": "chat.completion" if chat else "text_completion", "created": created,
                "model": s.name, "system_fingerprint": fingerprint(s), "choices": choices, "usage": usage}

    def start_completion(s: Served, prompts: list[str], controls: dict, emit=None):
        """The job making every choice of a completions request (prompt by prompt, n samples each): in the
        model's running batch where it can join it, else whole and alone. Either way its result is one record
        per choice (text, finish_reason, completion_tokens, provenance, seed, controls, prompt_tokens), and a
        streaming job emits ("piece", choice index, text) and ("end", choice index, record)."""
        sequences = [(p, controls) for p in prompts]
        if s.worker.batches(sequences):
            return submit(s, None, emit, sequences=sequences)
        n = controls["num_samples"]

        def run(sampler, emit, cancelled):
            ends = []
            for k, prompt in enumerate(prompts):
                if emit is None:
                    made = sampler.generate(prompt=prompt, **controls)
                    texts = made if isinstance(made, list) else [made]
                else:
                    texts = [""] * n
                    for i, piece in sampler.stream_samples(prompt, **controls):
                        if cancelled.is_set():
                            return ends  # the client left: the model is free at once
                        texts[i] += piece
                        emit(("piece", k * n + i, piece))
                for i, end in enumerate(sampler.endings()):
                    ends.append({"text": texts[i], **end})
                    if emit is not None:
                        emit(("end", k * n + i, ends[-1]))
            return ends

        return submit(s, run, emit)

    async def stream_completion(s: Served, body: CompletionRequest | ChatRequest, job, events: asyncio.Queue, n: int,
                                created: int, request_id: str, chat: bool = False):
        """The job's events as server-sent events: OpenAI's text_completion chunks, or with `chat` its
        chat.completion.chunk ones (the assistant's role first, then content deltas)."""
        def over(future: asyncio.Future) -> None:  # after every event the job emitted: the loop keeps their order
            error = None if future.cancelled() else future.exception()
            events.put_nowait(("error", error) if error is not None else ("done",))

        job.future.add_done_callback(over)
        ends = []

        def chunk(choices: list[dict], **extra) -> str:
            return "data: " + json.dumps({"id": request_id, "object": "chat.completion.chunk" if chat else
                                          "text_completion", "created": created, "model": s.name,
                                          "system_fingerprint": fingerprint(s), "choices": choices,
                                          **extra}) + "\n\n"

        def text(i: int, piece: str, **end) -> dict:
            if chat:
                return {"index": i, "delta": {"content": piece} if piece else {}, "logprobs": None,
                        "finish_reason": None, **end}
            return {"index": i, "text": piece, "logprobs": None, "finish_reason": None, **end}

        if chat:
            yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                          "finish_reason": None} for i in range(n)])
        try:
            while True:
                item = await events.get()
                if item[0] == "done":
                    break
                if item[0] == "error":  # the headers are sent: the error goes into the stream
                    e = item[1]
                    kind = "invalid_request_error" if isinstance(e, GenlabError) else "server_error"
                    yield "data: " + json.dumps({"error": {"message": str(e), "type": kind, "param": None,
                                                           "code": None}}) + "\n\n"
                    break
                _, i, content = item
                if item[0] == "piece":
                    yield chunk([text(i, content)])
                else:
                    ends.append(content)
                    output_id = keep(s, content["text"], content["controls"]["prompt"], content["seed"],
                                     content["controls"])
                    yield chunk([text(i, "", finish_reason=content["finish_reason"], output_id=output_id,
                                      provenance=content["provenance"])])
            usage = completion_usage(ends, n)
            metrics.tokens(s.name, usage["completion_tokens"])
            if body.stream_options is not None and body.stream_options.include_usage:
                yield chunk([], usage=usage)
            yield "data: [DONE]\n\n"
        finally:
            job.cancelled.set()  # a no-op when it finished; frees the model when the client went away

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)])
    async def chat_completions(body: ChatRequest):
        s = lookup(body.model, "completions")
        prompt, controls = chat_controls(body, s.sampler, limits)
        return await complete(s, body, [prompt], controls, chat=True)

    @app.post("/v1/images/generations", dependencies=[Depends(authorized)])
    async def images(body: ImageRequest):
        s = lookup(body.model, "images")
        controls = image_controls(body, s.sampler, limits)

        def run(sampler, emit, cancelled):
            made = sampler.generate(**controls)
            made = made if isinstance(made, list) else [made]
            return [(image, sampler.http_output(image)) for image in made], sampler.last_seed, dict(
                sampler.last_controls)

        made, seed, used = await submit(s, run).future
        data = [{**out, "revised_prompt": None, "output_id": keep(s, image, body.prompt, seed, used)}
                for image, out in made]
        return {"created": int(time.time()), "model": s.name, "data": data}

    @app.post("/v1/music/generations", dependencies=[Depends(authorized)])
    async def music(body: MusicRequest):
        s = lookup(body.model, "music")
        controls = marked(s.sampler, music_controls(body, s.sampler, limits))
        formats = tuple(body.formats) if body.formats else None

        def run(sampler, emit, cancelled):
            made = sampler.generate(**controls)
            made = made if isinstance(made, list) else [made]
            return [(tune, sampler.http_output(tune, formats)) for tune in made], sampler.last_seed, dict(
                sampler.last_controls)

        made, seed, used = await submit(s, run).future
        data = [{**out, "output_id": keep(s, tune, body.prompt, seed, used)} for tune, out in made]
        return {"created": int(time.time()), "model": s.name, "data": data}

    @app.post("/v1/watermark/detect", dependencies=[Depends(authorized)])
    async def detect(body: WatermarkRequest):
        """Whether a text or tune carries this server's watermark, as a model's tokenizer reads it."""
        s = lookup(body.model)
        if watermark_key is None:
            raise ApiError(400, "this server marks nothing; start it with genlab serve ... --watermark-key KEY")
        if len(body.text) > limits.max_prompt_chars:
            raise ApiError(413, f"the text is over {limits.max_prompt_chars} characters", param="text")

        def run(sampler, emit, cancelled):  # in the model's worker: calibrating reads the run's training data once
            return sampler.detect_watermark(body.text, watermark_key)

        found = await submit(s, run).future
        return {"object": "watermark.detection", "model": s.name, "watermarked": found.watermarked,
                "z": found.z, "green": found.green, "scored": found.scored, "chance": found.rate,
                "threshold": found.threshold}

    @app.post("/v1/feedback", dependencies=[Depends(authorized)])
    async def give_feedback(body: FeedbackRequest):
        feedback = need_store()

        def known(param: str, output_id: str) -> dict:
            if output_id not in recent:
                raise ApiError(404, f"no output {output_id!r} here: feedback names an output this server made "
                               f"(it keeps the last {limits.recent_outputs})", type="not_found_error", param=param,
                               code="output_not_found")
            return recent[output_id]

        if body.output_id is not None:
            if body.output_a is not None or body.output_b is not None or body.winner is not None:
                raise ApiError(400, "give a rating (output_id with score or thumbs) or a preference (output_a, "
                               "output_b, winner), not both", param="output_id")
            if (body.score is None) == (body.thumbs is None):
                raise ApiError(400, "a rating needs exactly one of score (1 to 5) or thumbs (+1 or -1)",
                               param="score")
            kept = await asyncio.to_thread(feedback.rating, known("output_id", body.output_id), body)
            return {"object": "feedback.rating", "id": kept, "output_id": body.output_id}
        if body.output_a is None or body.output_b is None or body.winner is None:
            raise ApiError(400, "feedback needs output_id with score or thumbs, or output_a, output_b and winner",
                           param="output_id")
        if body.output_a == body.output_b:
            raise ApiError(400, "output_a and output_b are the same output; compare two", param="output_b")
        a, b = known("output_a", body.output_a), known("output_b", body.output_b)
        if a["prompt"] != b["prompt"]:
            raise ApiError(400, "the two outputs answer different prompts; compare outputs of one prompt",
                           param="output_b")
        kept = await asyncio.to_thread(feedback.comparison, a, b, left=body.left, winner=body.winner,
                                       rater=body.rater, latency_s=body.latency_s, reason=body.reason)
        return {"object": "feedback.comparison", "id": kept, "output_a": body.output_a, "output_b": body.output_b}

    # -- the arena and the studio's helpers ---------------------------------------------------------------------

    async def arena_side(name: str, api: str, prompt: str, controls: dict, which: str) -> Side:
        """One source's output, made and checked as its API's endpoint makes it, shown without its model."""
        param = f"controls{'_b' if which == 'b' else ''}"
        s = lookup(name, api)
        for key in ("model", "prompt", "stream", "stream_options", "formats", "response_format"):
            if key in controls:
                raise ApiError(400, f"{param}.{key} is set by the arena; leave it out", param=f"{param}.{key}")
        if controls.get("n", 1) != 1:
            raise ApiError(400, "an arena battle shows one output per side; leave n out", param=f"{param}.n")
        body_type, check = ARENA_APIS[api]
        try:
            body = body_type(model=name, prompt=prompt, **controls)
        except pydantic.ValidationError as e:
            problem = e.errors()[0]
            where = ".".join(str(x) for x in problem.get("loc", ()))
            raise ApiError(400, f"{param}.{where}: {problem.get('msg', 'invalid value')}",
                           param=f"{param}.{where}") from None
        checked = check(body, s.sampler, limits)

        def run(sampler, emit, cancelled):
            made = sampler.generate(**checked)
            output = made[0] if isinstance(made, list) else made
            return output, sampler.blind_output(output), sampler.last_seed, dict(sampler.last_controls)

        output, blind, seed, used = await submit(s, run).future
        return Side(s, output, blind, prompt, seed, used)

    @app.post("/v1/arena/battles", dependencies=[Depends(authorized)])
    async def open_battle(body: BattleRequest):
        need_store()
        if body.models is None:
            names = [n for n, s in served.items() if s.sampler.serves == body.api]
            if len(names) < 2:
                raise ApiError(400, f"the arena needs two models that serve {body.api}; this server has "
                               f"{len(names)} (name one model twice with controls_b to compare two settings)",
                               param="models")
            first, second = arena.pick(names)
        else:
            first, second = body.models
            if first == second and body.controls_b is None:
                raise ApiError(400, "one model on both sides needs two settings: give controls_b", param="controls_b")
        controls = dict(body.controls)
        if controls.get("seed") is None:  # one seed for both sides: a two-settings battle differs only in settings
            controls["seed"] = secrets.randbelow(2**31)
        controls_b = controls if body.controls_b is None else {"seed": controls["seed"], **body.controls_b}
        sides = await asyncio.gather(arena_side(first, body.api, body.prompt, controls, "a"),
                                     arena_side(second, body.api, body.prompt, controls_b, "b"))
        return arena.open(body.api, body.prompt, *sides).shown()

    @app.post("/v1/arena/battles/{battle_id}/vote", dependencies=[Depends(authorized)])
    async def vote(battle_id: str, body: VoteRequest):
        feedback = need_store()
        battle = arena.battles.get(battle_id)
        if battle is None:
            raise ApiError(404, f"no open battle {battle_id!r} (the server keeps the last {limits.open_battles})",
                           type="not_found_error", param="battle_id", code="battle_not_found")
        if battle.voted:
            raise ApiError(409, "this battle already has its vote; start a new one", param="battle_id",
                           code="already_voted")
        battle.voted = True  # before the write: a second vote meanwhile is refused, not stored twice
        try:
            comparison_id = await asyncio.to_thread(
                feedback.comparison, battle.first.kept(), battle.second.kept(),
                left="a" if battle.first_on_left else "b", winner=battle.stored_winner(body.winner), rater=body.rater,
                latency_s=time.monotonic() - battle.shown_at, reason=body.reason)
        except BaseException:
            battle.voted = False
            raise
        a, b = battle.panes
        return {"id": battle.id, "object": "arena.vote", "winner": body.winner, "comparison_id": comparison_id,
                "a": a.reveal(), "b": b.reveal()}

    @app.get("/v1/leaderboard", dependencies=[Depends(authorized)])
    async def ranking(modality: str | None = None):
        from genlab.align.leaderboard import leaderboard, store_battles

        feedback = need_store()
        names = {str(s.sampler.run_dir): name for name, s in served.items()}  # the store keeps run folders
        battles = await asyncio.to_thread(store_battles, feedback.store, modality)
        battles = [(names.get(a, a), names.get(b, b), winner) for a, b, winner in battles]
        rows = await asyncio.to_thread(leaderboard, battles)
        return {"object": "list", "modality": modality, "data": rows}

    @app.post("/v1/studio/png-info", dependencies=[Depends(authorized)])
    async def png_info(request: Request):
        return png_settings(await request.body())

    return app


API_PATHS = {"completions": "completions", "images": "images/generations", "music": "music/generations"}


def model_card(s: Served, watermarked: bool = False) -> dict:
    m = s.sampler
    about = {"modality": m.modality, "family": m.config.get("family"), "endpoint": f"/v1/{API_PATHS[m.serves]}",
             "controls": m.controls, "classes": m.prompt_choices, "context": getattr(m.model, "max_context", None),
             "checkpoint_sha256": m.checkpoint_sha256, "watermarked": watermarked}
    return {"id": s.name, "object": "model", "created": int(m.weights_path.stat().st_mtime), "owned_by": "genlab",
            "genlab": about}


def fingerprint(s: Served) -> str:
    return "genlab-" + s.sampler.checkpoint_sha256[:12]


def completion_usage(ends: list[dict], n: int) -> dict:
    """OpenAI's usage: the prompt's tokens once per prompt (its n samples share it), every sample's tokens."""
    prompt = sum(end["prompt_tokens"] for i, end in enumerate(ends) if i % n == 0)
    completion = sum(end["completion_tokens"] for end in ends)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_controls(body: CompletionRequest, sampler, limits: Limits) -> tuple[list[str], dict]:
    """The prompts and the sampler's controls of a completions request, checked against the limits."""
    from genlab.sampling.logits import SamplingSettings

    for name, allowed in UNSUPPORTED_COMPLETION_FIELDS.items():
        value = getattr(body, name)
        if value not in (allowed if isinstance(allowed, tuple) else (allowed,)):
            raise ApiError(400, f"{name} is not supported by genlab; leave it out", param=name,
                           code="unsupported_parameter")
    prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    if not prompts:
        raise ApiError(400, "prompt is an empty list; give a string or a list of strings", param="prompt")
    if len(prompts) > limits.max_prompts:
        raise ApiError(400, f"at most {limits.max_prompts} prompts per request, got {len(prompts)}", param="prompt")
    if any(len(p) > limits.max_prompt_chars for p in prompts):
        raise ApiError(413, f"a prompt is over {limits.max_prompt_chars} characters; shorten it", param="prompt",
                       code="context_length_exceeded")
    if body.n > limits.max_n:
        raise ApiError(400, f"n is at most {limits.max_n}, got {body.n}", param="n")
    max_tokens = 16 if body.max_tokens is None else body.max_tokens
    if max_tokens > limits.max_tokens:
        raise ApiError(400, f"max_tokens is at most {limits.max_tokens}, got {max_tokens}", param="max_tokens")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > limits.max_stop or any(not x or len(x) > limits.max_stop_chars for x in stop):
        raise ApiError(400, f"stop takes up to {limits.max_stop} non-empty strings of at most "
                       f"{limits.max_stop_chars} characters", param="stop")
    controls = {"max_new_tokens": max_tokens, "temperature": body.temperature, "top_p": body.top_p,
                "top_k": body.top_k, "repetition_penalty": body.repetition_penalty, "stop": stop, "seed": body.seed,
                "num_samples": body.n}
    controls = {k: v for k, v in controls.items() if v is not None}
    SamplingSettings(**controls).validate()
    for p in prompts:
        sampler.screen_prompt(p)  # refused here, before it waits in a queue
        try:
            sampler.encode_prompt(p)
        except GenlabError as e:
            too_long = "context" in str(e)
            raise ApiError(400, str(e).replace("--truncate-prompt", "a shorter prompt"), param="prompt",
                           code="context_length_exceeded" if too_long else None) from None
    return prompts, controls


def chat_controls(body: ChatRequest, sampler, limits: Limits) -> tuple[str, dict]:
    """The prompt a chat request's messages render to, and its controls, checked as a completion's are; a
    conversation that leaves no room for the answer is refused (400), not cut."""
    for name, allowed in UNSUPPORTED_CHAT_FIELDS.items():
        if getattr(body, name) not in allowed:
            raise ApiError(400, f"{name} is not supported by genlab; leave it out", param=name,
                           code="unsupported_parameter")
    if body.max_tokens is not None and body.max_completion_tokens is not None:
        raise ApiError(400, "give max_tokens or max_completion_tokens, not both", param="max_completion_tokens")
    max_tokens = next((x for x in (body.max_tokens, body.max_completion_tokens) if x is not None), CHAT_MAX_TOKENS)
    if getattr(sampler, "chat_template", None) is None:
        raise ApiError(400, f"{body.model} has no chat template: it continues text, so ask /v1/completions, or "
                       "fine-tune it with genlab finetune RUN DATA --chat", param="model", code="no_chat_template")
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    if sum(len(m["content"]) for m in messages) > limits.max_prompt_chars:
        raise ApiError(413, f"the messages are over {limits.max_prompt_chars} characters; shorten them",
                       param="messages", code="context_length_exceeded")
    try:
        prompt, _ = sampler.chat_prompt([{"role": m["role"], "content": m["content"]} for m in messages],
                                        max_tokens, drop=False)
    except ContentFiltered:
        raise
    except GenlabError as e:
        code = "context_length_exceeded" if "context" in str(e) else None
        raise ApiError(400, str(e), param="messages", code=code) from None
    as_completion = CompletionRequest(model=body.model, prompt=prompt, max_tokens=max_tokens,
                                      temperature=body.temperature, top_p=body.top_p, n=body.n, stop=body.stop,
                                      seed=body.seed, top_k=body.top_k, repetition_penalty=body.repetition_penalty)
    prompts, controls = completion_controls(as_completion, sampler, limits)
    return prompts[0], controls


def image_controls(body: ImageRequest, sampler, limits: Limits) -> dict:
    if body.response_format == "url":
        raise ApiError(400, "genlab serves images as b64_json only (it keeps no files to link to)",
                       param="response_format")
    if body.quality is not None or body.style is not None:
        raise ApiError(400, "quality and style are not genlab controls; use steps and guidance",
                       param="quality" if body.quality is not None else "style")
    n = 1 if body.n is None else body.n
    if n > limits.max_images:
        raise ApiError(400, f"n is at most {limits.max_images} images, got {n}", param="n")
    if body.steps is not None and body.steps > limits.max_steps:
        raise ApiError(400, f"steps is at most {limits.max_steps}, got {body.steps}", param="steps")
    side = sampler.config["images"]["image_size"]
    if body.size is not None and body.size not in (f"{side}x{side}", "auto"):
        raise ApiError(400, f"this model makes {side}x{side} images; ask for size {side}x{side}", param="size")
    for name, text in (("prompt", body.prompt), ("negative_prompt", body.negative_prompt or "")):
        if len(text) > limits.max_prompt_chars:
            raise ApiError(413, f"the {name} is over {limits.max_prompt_chars} characters; shorten it", param=name)
    controls = {"prompt": body.prompt, "negative_prompt": body.negative_prompt, "num_samples": n,
                "seed": body.seed, "steps": body.steps,
                "guidance": body.guidance, "eta": body.eta, "sampler": body.sampler, "weights": body.weights}
    controls = {k: v for k, v in controls.items() if v is not None}
    for name in controls:
        if name not in sampler.controls and name != "prompt":
            raise ApiError(400, f"{name} is not a control of this model ({sampler.config.get('family')}); leave it "
                           "out", param=name)
    return controls


def music_controls(body: MusicRequest, sampler, limits: Limits) -> dict:
    from genlab.sampling.logits import SamplingSettings

    if body.n > limits.max_n:
        raise ApiError(400, f"n is at most {limits.max_n}, got {body.n}", param="n")
    if body.max_tokens is not None and body.max_tokens > limits.max_tokens:
        raise ApiError(400, f"max_tokens is at most {limits.max_tokens}, got {body.max_tokens}", param="max_tokens")
    if len(body.prompt) > limits.max_prompt_chars:
        raise ApiError(413, f"the prompt is over {limits.max_prompt_chars} characters", param="prompt")
    sampler.screen_prompt(body.prompt)
    controls = {"prompt": body.prompt, "num_samples": body.n, "max_new_tokens": body.max_tokens,
                "temperature": body.temperature, "top_p": body.top_p, "top_k": body.top_k,
                "repetition_penalty": body.repetition_penalty, "seed": body.seed, "constraint": body.constraint}
    controls = {k: v for k, v in controls.items() if v is not None}
    SamplingSettings(**{k: v for k, v in controls.items() if k not in ("prompt", "constraint")}).validate()
    return controls


def arena_completion_controls(body: CompletionRequest, sampler, limits: Limits) -> dict:
    prompts, controls = completion_controls(body, sampler, limits)
    return {"prompt": prompts[0], **controls}


# what the arena checks a side's controls as: the body of that API and its checks
ARENA_APIS = {"completions": (CompletionRequest, arena_completion_controls), "images": (ImageRequest, image_controls),
              "music": (MusicRequest, music_controls)}


class FeedbackWriter:
    """Ratings and preferences into the feedback store, with what made each output (as genlab rate keeps them)."""

    def __init__(self, path: str | Path):
        from genlab.align.store import FeedbackStore

        self.store = FeedbackStore(path)  # opened (and created or upgraded) once, at start: a bad path fails there
        self.files = Path(self.store.path).with_name(f"{Path(self.store.path).stem}-outputs")

    def record(self, kept: dict) -> dict:
        from genlab.align.rate import tokenizer_sha256

        m = kept["served"].sampler
        return {"model": str(m.run_dir), "checkpoint_sha256": m.checkpoint_sha256,
                "tokenizer_sha256": tokenizer_sha256(m.run_dir), "modality": m.modality, "prompt": kept["prompt"],
                **m.record_output(kept["output"], self.files), "controls": kept["controls"], "seed": kept["seed"]}

    def rating(self, kept: dict, body: FeedbackRequest) -> int:
        _, rating_id = self.store.record_rating(self.record(kept), score=body.score, thumbs=body.thumbs,
                                                tags=body.tags, reason=body.reason, rater=body.rater)
        return rating_id

    def comparison(self, a: dict, b: dict, **judgement) -> int:
        """Both outputs and the judgement (left, winner, rater, latency_s, reason) in one transaction."""
        *_, comparison_id = self.store.record_comparison(output_a=self.record(a), output_b=self.record(b),
                                                         prompt=a["prompt"], **judgement)
        return comparison_id


def _version() -> str:
    from genlab import __version__

    return __version__
