"""One worker thread and one bounded queue per served model: generation runs off the event loop, one job at a
time per model (a model's sampler keeps state between calls: its last seed, its decoding copies), and a full
queue is an answer, not a wait.

A job is a function of the sampler. Its result reaches the waiting request through an asyncio future; a
streaming job gets an `emit` callback that puts pieces onto the request's asyncio queue, and a `cancelled`
event the request sets when its client goes away, so a dropped stream frees the worker at the next piece.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genlab.errors import GenlabError


class QueueFull(Exception):
    """The model's queue holds as many waiting requests as it may: the client should retry later."""


@dataclass
class Job:
    run: Callable[..., Any]  # run(sampler, emit, cancelled) -> result
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    emit: Callable[[Any], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.perf_counter)


class ModelWorker:
    """The thread that runs one model's jobs in order, with at most `max_queue` waiting."""

    def __init__(self, name: str, sampler, max_queue: int = 64):
        self.name, self.sampler = name, sampler
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self.running = 0
        self.thread = threading.Thread(target=self._loop, name=f"genlab-serve-{name}", daemon=True)
        self.thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting or running."""
        return self.jobs.qsize() + self.running

    def submit(self, run: Callable[..., Any], emit: Callable[[Any], None] | None = None) -> Job:
        loop = asyncio.get_running_loop()
        job = Job(run, loop.create_future(), loop, emit)
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise QueueFull(self.name) from None
        return job

    def _loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            if job.cancelled.is_set():
                continue  # its client left while it waited
            self.running = 1
            try:
                emit = None
                if job.emit is not None:
                    def emit(item, job=job):  # called on this thread; hands the piece to the event loop
                        job.loop.call_soon_threadsafe(job.emit, item)
                result, error = job.run(self.sampler, emit, job.cancelled), None
            except GenlabError as e:
                result, error = None, e
            except Exception as e:  # a bug: the request answers 500 with its message, the worker lives on
                result, error = None, e
            finally:
                self.running = 0
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)

    def close(self) -> None:
        try:
            self.jobs.put_nowait(None)
        except queue.Full:
            pass  # a daemon thread: it ends with the process


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
