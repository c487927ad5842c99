"""A real server on a real socket: tiny runs of each modality, served by uvicorn in a thread."""

from __future__ import annotations

import threading
import time

import pytest

from genlab import api


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    text = api.train("text:pydocs", family="gpt", out=str(root / "docs"), n_layer=1, n_head=2, n_embd=32,
                     block_size=64, max_steps=30, eval_interval=30, eval_batches=1, seed=0, quiet=True)
    images = api.train("images:digits", family="diffusion", conditional=True, out=str(root / "digits"), image_size=8,
                       width=8, time_dim=32, max_steps=2, eval_interval=2, eval_batches=1, quiet=True)
    music = api.train("music:folk", family="gpt", out=str(root / "folk"), n_layer=1, n_head=2, n_embd=32,
                      block_size=64, max_steps=2, eval_interval=2, eval_batches=1, seed=0, quiet=True)
    return {"docs": text, "digits": images, "folk": music}


class Running:
    """uvicorn serving `app` on 127.0.0.1 at a free port, until stop()."""

    def __init__(self, app):
        import uvicorn

        from genlab.serve import bind

        self.socket = bind("127.0.0.1", 0)
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def models(served_runs):
    from genlab.serve import load_models

    return load_models(list(served_runs.values()))


@pytest.fixture(scope="session")
def server(models, tmp_path_factory):
    from genlab.serve import create_app

    store = tmp_path_factory.mktemp("store") / "feedback.sqlite"
    running = Running(create_app(models, store=store))
    running.store = store
    yield running
    running.stop()


@pytest.fixture(scope="session")
def arena(served_runs, models, tmp_path_factory):
    """A server for the arena: two different text models (docs and other), the image and music models, a store,
    and a seeded coin for the sides."""
    from genlab.serve import create_app, load_models

    root = tmp_path_factory.mktemp("arena")
    other = api.train("text:pydocs", family="gpt", out=str(root / "other"), n_layer=1, n_head=2, n_embd=32,
                      block_size=64, max_steps=5, eval_interval=5, eval_batches=1, seed=1, quiet=True)
    served = {**models, **load_models([other])}
    store = root / "feedback.sqlite"
    app = create_app(served, store=store, arena_seed=0)
    running = Running(app)
    running.app, running.store, running.runs = app, store, {**served_runs, "other": other}
    yield running
    running.stop()
