"""One worker thread and one bounded queue per served model: generation runs off the event loop, and a full
queue is an answer, not a wait.

A job is either a function of the sampler, run whole and alone (a model's sampler keeps state between calls: its
last seed, its decoding copies), or, for a model whose sampler batches (`sampler.batch(rows)`, text models of the
token families), a list of sequences (prompt, controls) that join the running batch as rows free up and leave it
when they end: continuous batching, one forward pass per step for every request in flight.

A job's result reaches the waiting request through an asyncio future; a streaming job gets an `emit` callback that
puts events onto the request's asyncio queue, and a `cancelled` event the request sets when its client goes away,
so a dropped stream frees its rows at the next step.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The model's queue holds as many waiting requests as it may: the client should retry later."""


@dataclass(eq=False)  # a job is itself: hashed by identity
class Job:
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    run: Callable[..., Any] | None = None  # run(sampler, emit, cancelled) -> result, for a job run alone
    sequences: list[tuple[str, dict]] | None = None  # (prompt, controls), for a job that joins the batch
    emit: Callable[[Any], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    # a batched job's progress: each sequence's text so far and, once it ended, how (TextBatch.step's record)
    texts: list[str] = field(default_factory=list)
    ends: list[dict | None] = field(default_factory=list)
    handles: set[int] = field(default_factory=set)
    over: bool = False  # settled or dropped: the worker is done with it

    def send(self, item) -> None:
        """Hand an event to the request's event loop (called on the worker thread)."""
        if self.emit is not None:
            self.loop.call_soon_threadsafe(self.emit, item)

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, result, error)


class ModelWorker:
    """The thread that runs one model's jobs, with at most `max_queue` requests waiting and, where the sampler
    batches, up to `max_rows` sequences decoded together."""

    def __init__(self, name: str, sampler, max_queue: int = 64, max_rows: int = 32):
        self.name, self.sampler, self.max_queue = name, sampler, max_queue
        self.batch = sampler.batch(max_rows)
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.waiting: deque[tuple[Job, int]] = deque()  # batched sequences not yet in a row
        self.owners: dict[int, tuple[Job, int]] = {}  # batch handle -> (job, sequence index)
        self.in_flight = 0  # jobs taken from the queue and not settled
        self.peak_rows = 0  # the most sequences decoded together so far
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name=f"genlab-serve-{name}", daemon=True)
        self.thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting or running."""
        return self.jobs.qsize() + self.in_flight

    @property
    def rows(self) -> int:
        """Sequences decoding in the batch now."""
        return len(self.owners)

    def batches(self, sequences: list[tuple[str, dict]]) -> bool:
        """Whether these sequences can be decoded in the batch (else the job runs alone)."""
        return self.batch is not None and all(self.batch.admits(p, c) for p, c in sequences)

    def submit(self, run: Callable[..., Any] | None = None, emit: Callable[[Any], None] | None = None, *,
               sequences: list[tuple[str, dict]] | None = None) -> Job:
        loop = asyncio.get_running_loop()
        if self.depth >= self.max_queue + (self.batch.rows.max_rows if self.batch is not None else 1):
            raise QueueFull(self.name)
        job = Job(loop.create_future(), loop, run=run, sequences=sequences, emit=emit)
        if sequences is not None:
            job.texts, job.ends = [""] * len(sequences), [None] * len(sequences)
        self.jobs.put_nowait(job)
        return job

    def close(self) -> None:
        self.closed = True
        self.jobs.put_nowait(None)  # wakes the thread; a daemon thread ends with the process anyway

    # -- the thread ---------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.closed:
            busy = bool(self.owners or self.waiting)
            try:  # block only when no sequence is decoding; else take what arrived, between steps
                job = self.jobs.get_nowait() if busy else self.jobs.get()
            except queue.Empty:
                job = None
            while job is not None:
                self._take(job)
                if self.batch is None or not self.batch.free or len(self.waiting) >= self.batch.free:
                    break
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    job = None
            if self.batch is not None and (self.owners or self.waiting):
                try:
                    self._step()
                except Exception as e:  # a bug in the bookkeeping: answer everyone in the batch, keep serving
                    for job in {j for j, _ in [*self.owners.values(), *self.waiting]}:
                        self._fail(job, e)

    def _take(self, job: Job) -> None:
        if job.cancelled.is_set():
            return  # its client left while it waited
        self.in_flight += 1
        if job.sequences is not None:
            self.waiting.extend((job, i) for i in range(len(job.sequences)))
            return
        try:  # a job of its own, run whole: the batch's rows wait for it
            result, error = job.run(self.sampler, job.send, job.cancelled), None
        except Exception as e:  # a GenlabError answers 400; anything else is a bug, answered 500; the worker lives on
            result, error = None, e
        self._finish(job, result, error)

    def _step(self) -> None:
        batch = self.batch
        for job in {job for job, _ in self.owners.values() if job.cancelled.is_set()}:
            self._drop(job)
        while self.waiting and batch.free:
            job, i = self.waiting.popleft()
            if job.over:
                continue
            if job.cancelled.is_set():
                self._drop(job)
                continue
            prompt, controls = job.sequences[i]
            try:
                handle = batch.add(prompt, controls)
            except Exception as e:
                self._fail(job, e)
                continue
            self.owners[handle] = (job, i)
            job.handles.add(handle)
        if not self.owners:
            return
        self.peak_rows = max(self.peak_rows, len(self.owners))
        try:
            events = batch.step()
        except Exception as e:  # a bug: every request in the batch answers it, and the batch starts afresh
            for job in {job for job, _ in self.owners.values()}:
                self._fail(job, e)
            return
        for handle, piece, end in events:
            job, i = self.owners[handle]
            job.texts[i] += piece
            if piece:
                job.send(("piece", i, piece))
            if end is not None:
                del self.owners[handle]
                job.handles.discard(handle)
                job.ends[i] = {"text": job.texts[i], **end}
                job.send(("end", i, job.ends[i]))
                if all(e is not None for e in job.ends):
                    self._finish(job, job.ends)

    def _finish(self, job: Job, result: Any = None, error: BaseException | None = None) -> None:
        """Answer a job once, and free its rows and waiting sequences (a cancelled or failed job has some)."""
        if job.over:
            return
        job.over = True
        self.in_flight -= 1
        for handle in job.handles:
            self.batch.remove(handle)
            self.owners.pop(handle, None)
        job.handles.clear()
        if any(j is job for j, _ in self.waiting):
            self.waiting = deque((j, i) for j, i in self.waiting if j is not job)
        job.settle(result, error)

    def _drop(self, job: Job) -> None:
        self._finish(job, None, None)  # its client left: nobody reads the answer

    def _fail(self, job: Job, error: BaseException) -> None:
        self._finish(job, None, error)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
