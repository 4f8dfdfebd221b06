"""Continuous dynamic batching, as text-embeddings-inference does it, for one loaded model.

Requests wait in one bounded FIFO queue. A single inference thread takes, as soon as it is free,
everything queued up to `max_batch` inputs and a token budget (longest input x inputs, which is
what padding costs), runs one forward pass, and hands each request its outputs. An idle model
never waits for a batch to fill: a lone request runs at once; while the model is busy, newcomers
pile up and go together next. The one wait is right after a forward pass: the callers it just
answered are the likeliest next senders, so the next batch waits up to `fill_wait_s` for as many
inputs as the last one held (callers that send again on each answer are all back within a few
milliseconds: the event loop's time to answer them and read their next requests). Without it,
the first of them to come back runs alone and the rest queue behind that lone pass: on a CPU the
event loop's work for the others also slows that pass (they share the cores and the GIL), and a
32-client load splits into uneven pairs of batches. A request whose client has gone, or whose deadline passed, is dropped
before inference. A batch that fails is retried one request at a time, so one bad input fails
only its own request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("vitrine.endpoint")


class QueueFullError(Exception):
    """The queue holds `max_queue` inputs already; the caller should retry later (503 + Retry-After)."""


class BatcherClosedError(Exception):
    """The batcher stopped taking requests (its model is being swapped out): submit to the new one."""


@dataclass(frozen=True)
class BatchLimits:
    """How big a batch and the queue may grow."""

    max_batch: int = 32
    max_batch_tokens: int = 16384
    max_queue: int = 512
    fill_wait_s: float = 0.0
    """Longest the batch after a forward pass waits for as many inputs as that pass held (0: never waits)."""


@dataclass
class Work:
    """One request's inputs waiting for, or in, a batch."""

    inputs: list[Any]
    tokens: list[int]
    deadline: float
    future: asyncio.Future[list[Any]]
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.monotonic)
    dropped: bool = False
    """Set from the event loop when the client went away or timed out: skip it."""
    batch_size: int = 0
    """Inputs in the forward pass that answered it (set before it resolves)."""

    def resolve(self, outputs: list[Any] | None, error: BaseException | None = None) -> None:
        """Hand the outcome to the waiting request (thread-safe; a request that gave up is left alone)."""
        def settle() -> None:
            if self.future.done():
                return
            if self.dropped:  # its request gave up (client gone, timeout): nobody will read an outcome
                self.future.cancel()
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(outputs or [])

        self.loop.call_soon_threadsafe(settle)


@dataclass
class BatchStats:
    """Hooks the endpoint's metrics attach to; each defaults to doing nothing."""

    on_batch: Callable[[int, int, float], None] = lambda size, tokens, seconds: None
    on_drop: Callable[[str], None] = lambda reason: None
    on_queue: Callable[[int], None] = lambda depth: None
    on_wait: Callable[[float], None] = lambda seconds: None
    """Seconds a batch waited after a forward pass for the callers it answered (only when it waited)."""


class Batcher:
    """The queue and inference thread of one loaded model; `run_batch` turns a list of inputs into outputs."""

    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], limits: BatchLimits, *,
                 stats: BatchStats | None = None, name: str = "vitrine-batcher") -> None:
        self.run_batch = run_batch
        self.limits = limits
        self.stats = stats or BatchStats()
        self._queue: deque[Work] = deque()
        self._queued_inputs = 0
        self._running = False
        self._last_active = time.monotonic()
        self._expect = 0
        """Inputs the last forward pass answered (capped at `max_batch`): how many may come back at once."""
        self._ended = 0.0
        self._want = 1
        """Queued inputs that wake the inference thread while it waits (each wake-up takes the GIL from the loop)."""
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Inputs waiting in the queue now."""
        return self._queued_inputs

    @property
    def busy(self) -> bool:
        """Whether inputs are queued or a forward pass is running (what mirrors wait out)."""
        return self._running or self._queued_inputs > 0

    def idle_for(self) -> float:
        """Seconds since the last input arrived or the last forward pass ended; 0 while busy."""
        return 0.0 if self.busy else time.monotonic() - self._last_active

    def submit(self, inputs: list[Any], tokens: list[int], *, timeout_s: float) -> Work:
        """Queue one request's inputs (call from the event loop); await `work.future` for their outputs.

        Raises:
            QueueFullError: the queue is full.
            BatcherClosedError: this batcher is draining for a swap.
        """
        work = Work(inputs, tokens, time.monotonic() + timeout_s, asyncio.get_running_loop().create_future(),
                    asyncio.get_running_loop())
        with self._cond:
            if self._closed:
                raise BatcherClosedError
            if self._queued_inputs + len(inputs) > self.limits.max_queue:
                raise QueueFullError
            self._queue.append(work)
            self._queued_inputs += len(inputs)
            self._last_active = time.monotonic()
            depth = self._queued_inputs
            if depth >= self._want:
                self._cond.notify()
        self.stats.on_queue(depth)
        return work

    def close(self, *, wait_s: float = 60.0) -> None:
        """Stop taking requests, finish every queued and running one, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(wait_s)

    def _take(self) -> list[Work] | None:
        """The next batch (FIFO, within the limits); None once closed and drained."""
        with self._cond:
            self._want = 1
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            waited = None
            until = self._ended + self.limits.fill_wait_s
            if self._queued_inputs < self._expect and time.monotonic() < until:
                started, self._want = time.monotonic(), self._expect
                while self._queued_inputs < self._expect and not self._closed:
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                self._want, waited = 1, time.monotonic() - started
            batch: list[Work] = []
            count = longest = 0
            now = time.monotonic()
            while self._queue:
                work = self._queue[0]
                if work.dropped or work.deadline <= now:
                    self._queue.popleft()
                    self._queued_inputs -= len(work.inputs)
                    self.stats.on_drop("client_gone" if work.dropped else "timeout")
                    work.resolve(None, TimeoutError("the request timed out in the queue"))
                    continue
                size = len(work.inputs)
                peak = max([longest, *work.tokens])
                if batch and (count + size > self.limits.max_batch or peak * (count + size) > self.limits.max_batch_tokens):
                    break
                self._queue.popleft()
                self._queued_inputs -= size
                batch.append(work)
                count, longest = count + size, peak
            depth = self._queued_inputs
        self.stats.on_queue(depth)
        if waited is not None:
            self.stats.on_wait(waited)
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if batch:
                self._running = True
                try:
                    self._run(batch)
                finally:
                    self._last_active = self._ended = time.monotonic()
                    self._expect = min(sum(len(w.inputs) for w in batch), self.limits.max_batch)
                    self._running = False

    def _run(self, batch: list[Work]) -> None:
        inputs = [item for work in batch for item in work.inputs]
        started = time.perf_counter()
        try:
            outputs = self.run_batch(inputs)
        except Exception:  # one bad input must not fail its neighbours: run each request alone
            if len(batch) == 1:
                self._run_alone(batch[0])
                return
            for work in batch:
                self._run_alone(work)
            return
        self.stats.on_batch(len(inputs), max(t for w in batch for t in w.tokens) * len(inputs),
                            time.perf_counter() - started)
        at = 0
        for work in batch:
            work.batch_size = len(inputs)
            work.resolve(outputs[at: at + len(work.inputs)])
            at += len(work.inputs)

    def _run_alone(self, work: Work) -> None:
        started = time.perf_counter()
        try:
            outputs = self.run_batch(work.inputs)
        except Exception as exc:
            log.warning("inference failed: %s: %s", type(exc).__name__, exc)
            work.resolve(None, exc)
            return
        self.stats.on_batch(len(work.inputs), max(work.tokens) * len(work.inputs), time.perf_counter() - started)
        work.batch_size = len(work.inputs)
        work.resolve(outputs)
