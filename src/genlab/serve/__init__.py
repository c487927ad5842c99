"""genlab serve: trained runs behind an OpenAI-compatible HTTP API (FastAPI + uvicorn).

    genlab serve runs/shakespeare runs/digits --port 8000
    openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="-").completions.create(model="shakespeare", ...)

`create_app` (serve/app.py) builds the app from loaded samplers, for tests and for embedding; `serve` loads run
directories once, checks the address, and runs uvicorn until stopped.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import types
from pathlib import Path

from genlab.errors import GenlabError
from genlab.runtime import wait_passively

wait_passively()  # OpenMP reads its wait policy when torch loads: a server shares its cores with its clients

from genlab.serve.app import Limits, create_app  # noqa: E402

__all__ = ["Limits", "create_app", "load_models", "serve"]


def load_models(runs: list[str | os.PathLike], names: list[str] | None = None, **load_options) -> dict:
    """Each run loaded once for sampling, by name: its folder's name, or `names` in the same order."""
    from genlab import api

    if not runs:
        raise GenlabError("give at least one run to serve: genlab serve RUN [RUN ...]")
    names = list(names or [])
    if names and len(names) != len(runs):
        raise GenlabError(f"{len(names)} --name for {len(runs)} runs; give one --name per run, in order")
    names = names or [Path(run).resolve().name for run in runs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GenlabError(f"two runs would be served as {twice[0]!r}; name them apart with --name")
    return {name: api.load(run, **load_options) for name, run in zip(names, runs, strict=True)}


def serve(runs: list[str | os.PathLike], *, names: list[str] | None = None, host: str = "127.0.0.1",
          port: int = 8000, api_key: str | None = None, store: str | os.PathLike | None = "feedback.sqlite",
          limits: Limits | None = None, device: str = "auto", precision: str = "fp32",
          watermark_key: str | None = None, content_filter: str | os.PathLike | None = None) -> None:
    """Load the runs, then answer HTTP on host:port until interrupted. The API key defaults to $GENLAB_API_KEY,
    the watermark key (which marks every completion and tune) to $GENLAB_WATERMARK_KEY."""
    import uvicorn

    api_key = api_key or os.environ.get("GENLAB_API_KEY") or None
    watermark_key = watermark_key or os.environ.get("GENLAB_WATERMARK_KEY") or None
    listener = bind(host, port)  # before loading: a taken port is the first thing to know
    models = load_models(runs, names, device=device, precision=precision, content_filter=content_filter)
    if not is_loopback(host) and api_key is None:
        print(f"genlab: warning: serving on {host} without an API key: anyone who can reach this machine can use "
              "the models; set --api-key or GENLAB_API_KEY", file=sys.stderr)
    app = create_app(models, api_key=api_key, store=store, limits=limits, watermark_key=watermark_key)
    where = f"http://{'[' + host + ']' if ':' in host else host}:{listener.getsockname()[1]}"
    print(f"genlab: serving {', '.join(models)} at {where}/v1 (studio: {where}/); Ctrl+C stops", file=sys.stderr)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[listener])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error saying why not."""
    if not 0 <= port <= 65535:
        raise GenlabError(f"--port must be 0..65535, got {port}")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named, not implied: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say so, and with
        # Nagle on, each kept-alive request waits out the client's delayed ACK (~40 ms)
        listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as e:
        listener.close()
        if e.errno in (98, 48):  # EADDRINUSE on Linux, macOS
            raise GenlabError(f"port {port} on {host} is taken by another program; choose another with --port"
                              ) from None
        raise GenlabError(f"cannot listen on {host}:{port} ({e.strerror or e}); check --host and --port") from None
    return listener


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _CallableModule(types.ModuleType):
    """`genlab.serve(...)` runs the server, though genlab.serve is also this package (for create_app)."""

    def __call__(self, *args, **kwargs):
        return serve(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
