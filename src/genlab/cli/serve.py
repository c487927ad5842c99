"""`genlab serve`: runs behind an OpenAI-compatible HTTP API and the studio page."""

from __future__ import annotations

from genlab.cli.sample import add_content_filter_flag


def add_parsers(sub) -> None:
    p = sub.add_parser("serve", help="serve runs over an OpenAI-compatible HTTP API, with the studio at /",
                       description="Serve trained runs: OpenAI's /v1/completions and /v1/images/generations, "
                       "genlab's /v1/music/generations, /v1/feedback into the feedback store, /health, /metrics "
                       "and the studio page at /. Each run is loaded once, at start.")
    p.set_defaults(handler=run)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories to serve")
    p.add_argument("--name", action="append", help="the name a run is served as (repeat once per run, in order; "
                   "default: its folder's name)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--api-key", help="require this key as 'Authorization: Bearer KEY' (default: $GENLAB_API_KEY; "
                   "none: open to whoever reaches the address)")
    p.add_argument("--watermark-key", help="mark every completion and tune with the green-list watermark of this "
                   "secret key; POST /v1/watermark/detect tests a text for it (default: $GENLAB_WATERMARK_KEY)")
    p.add_argument("--store", default="feedback.sqlite", help="the feedback store that ratings and arena votes go "
                   "into (default feedback.sqlite)")
    p.add_argument("--device", default="auto", help="auto (default: cuda where there is one), cpu or cuda")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"], help="as for genlab sample")
    add_content_filter_flag(p)
    p.add_argument("--max-batch", type=int, default=32, help="completions of one text model decoded together "
                   "(continuous batching; default 32, 1: one at a time)")
    p.add_argument("--max-queue", type=int, default=64, help="requests waiting per model before the server "
                   "answers 429 (default 64)")


def run(a, argv: list[str]) -> None:
    import genlab.serve
    from genlab.errors import GenlabError

    for flag, value in (("--max-batch", a.max_batch), ("--max-queue", a.max_queue)):
        if value < 1:
            raise GenlabError(f"{flag} must be 1 or more, got {value}")
    limits = genlab.serve.Limits(max_batch=a.max_batch, max_queue=a.max_queue)
    genlab.serve.serve(a.runs, names=a.name, host=a.host, port=a.port, api_key=a.api_key, store=a.store,
                       device=a.device, precision=a.precision, limits=limits, watermark_key=a.watermark_key,
                       content_filter=a.content_filter)
